package gateway

import (
	"strings"
	"testing"
)

// TestMetadataURLQueryNeverShown: a metadata URL's query (which can hold a
// token) is redacted in every place the gateway shows the URL or an error
// that names it: /readyz, /tenants, its JSON, the metrics and the log.
func TestMetadataURLQueryNeverShown(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-token-value"
	e := newIsoEnv(t, "acme")
	e.writeIsoConfig(e.ids...)
	cfg := strings.Replace(readFile(t, e.configPath()), "tenants:\n",
		"tenants:\n  - id: remote\n    idp_metadata_url: http://127.0.0.1:1/federationmetadata.xml?appid=1&token="+secret+"\n", 1)
	e.write("config.yaml", cfg)
	e.build()
	if err := e.gw.Refresher().RefreshNow(t.Context(), "remote"); err == nil {
		t.Fatal("an unreachable URL answered")
	}
	shown := map[string]string{
		"/readyz":              e.admin("/readyz").Body.String(),
		"/tenants":             e.admin("/tenants").Body.String(),
		"/tenants?format=json": e.admin("/tenants?format=json").Body.String(),
		"/metrics":             e.admin("/metrics").Body.String(),
		"the log":              e.logs.String(),
	}
	for where, text := range shown {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the metadata URL's token:\n%s", where, text)
		}
	}
	if !strings.Contains(shown["/tenants"], "url http://127.0.0.1:1/federationmetadata.xml?appid=REDACTED&token=REDACTED") {
		t.Errorf("/tenants does not name the URL, redacted:\n%s", shown["/tenants"])
	}
	if !strings.Contains(shown["/readyz"], "token=REDACTED") {
		t.Errorf("/readyz does not name the URL it failed to fetch, redacted:\n%s", shown["/readyz"])
	}
}
