package deploy_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// Envoy's API types (go-control-plane) decode deploy/envoy/envoy.yaml:
// the YAML as JSON through protojson, with no unknown field allowed, every
// typed_config resolved to its real message (the packages above register
// them), and each message's own validation rules applied.

// The names of the HTTP filters, and the clusters of envoy.yaml.
const (
	envoyExtAuthz       = "envoy.filters.http.ext_authz"
	envoyHeaderMutation = "envoy.filters.http.header_mutation"
	envoyRouter         = "envoy.filters.http.router"
	envoyGatewayCluster = "sso_gateway"
	envoyAppCluster     = "document_service"
)

// The typed_config types the file may use.
var _ = []proto.Message{(*routerv3.Router)(nil), (*headermutationv3.HeaderMutation)(nil)}

// envoyValidate runs a message's generated validation rules.
func envoyValidate(m proto.Message) error {
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		return v.ValidateAll()
	}
	return nil
}

// envoyUnpack resolves a typed_config and validates it.
func envoyUnpack(a *anypb.Any) (proto.Message, error) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("typed_config %s: %w", a.GetTypeUrl(), err)
	}
	if err := envoyValidate(m); err != nil {
		return nil, fmt.Errorf("typed_config %s: %w", a.GetTypeUrl(), err)
	}
	return m, nil
}

// envoyConfig is envoy.yaml decoded, with what the checks look at.
type envoyConfig struct {
	boot     *bootstrapv3.Bootstrap
	hcm      *hcmv3.HttpConnectionManager
	filters  []string                       // the HTTP filters' names, in order
	typed    map[string]proto.Message       // each HTTP filter's typed_config
	perRoute []*extauthzv3.ExtAuthzPerRoute // ext_authz's per-route config, by route
}

// envoyDecode decodes the YAML strictly.
func envoyDecode(data []byte) (*envoyConfig, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	c := &envoyConfig{boot: &bootstrapv3.Bootstrap{}, typed: map[string]proto.Message{}}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, c.boot); err != nil {
		return nil, err
	}
	if err := envoyValidate(c.boot); err != nil {
		return nil, err
	}
	ls := c.boot.GetStaticResources().GetListeners()
	if len(ls) != 1 || len(ls[0].GetFilterChains()) != 1 || len(ls[0].GetFilterChains()[0].GetFilters()) != 1 {
		return nil, fmt.Errorf("want one listener with one filter chain of one filter")
	}
	m, err := envoyUnpack(ls[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig())
	if err != nil {
		return nil, err
	}
	var ok bool
	if c.hcm, ok = m.(*hcmv3.HttpConnectionManager); !ok {
		return nil, fmt.Errorf("the listener's filter is %T, want an HttpConnectionManager", m)
	}
	for _, f := range c.hcm.GetHttpFilters() {
		c.filters = append(c.filters, f.GetName())
		if c.typed[f.GetName()], err = envoyUnpack(f.GetTypedConfig()); err != nil {
			return nil, fmt.Errorf("http filter %s: %w", f.GetName(), err)
		}
	}
	for _, vh := range c.hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			var pr *extauthzv3.ExtAuthzPerRoute
			for name, a := range r.GetTypedPerFilterConfig() {
				m, err := envoyUnpack(a)
				if err != nil {
					return nil, fmt.Errorf("route %s: %w", r.GetMatch(), err)
				}
				if name == envoyExtAuthz {
					if pr, ok = m.(*extauthzv3.ExtAuthzPerRoute); !ok {
						return nil, fmt.Errorf("route %s: %s's config is %T", r.GetMatch(), name, m)
					}
				}
			}
			c.perRoute = append(c.perRoute, pr)
		}
	}
	return c, nil
}

// envoyMatches applies a StringMatcher as Envoy does.
func envoyMatches(m *matcherv3.StringMatcher, s string) bool {
	v := s
	if m.GetIgnoreCase() {
		v = strings.ToLower(s)
	}
	low := func(p string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(p)
		}
		return p
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return v == low(p.Exact)
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(v, low(p.Prefix))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(v, low(p.Suffix))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(v, low(p.Contains))
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := regexp.Compile("^(?:" + p.SafeRegex.GetRegex() + ")$")
		return err == nil && re.MatchString(s)
	}
	return false
}

// envoyListMatches reports whether any matcher of l matches s.
func envoyListMatches(l *matcherv3.ListStringMatcher, s string) bool {
	for _, m := range l.GetPatterns() {
		if envoyMatches(m, s) {
			return true
		}
	}
	return false
}

// envoyClusterAddr is the first endpoint of a cluster, host:port.
func envoyClusterAddr(c *clusterv3.Cluster) string {
	for _, e := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range e.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			return fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue())
		}
	}
	return ""
}

// envoyProblems checks the invariants of the forward-auth setup.
func envoyProblems(c *envoyConfig) []string {
	var problems []string
	index := func(name string) int {
		for i, f := range c.filters {
			if f == name {
				return i
			}
		}
		return -1
	}
	mi, ai, ri := index(envoyHeaderMutation), index(envoyExtAuthz), index(envoyRouter)
	if ai < 0 || ri != len(c.filters)-1 || ai > ri {
		problems = append(problems, fmt.Sprintf("http filters %v: want ext_authz, and the router last", c.filters))
	}
	if mi < 0 || mi > ai {
		problems = append(problems, fmt.Sprintf("http filters %v: no header_mutation before ext_authz strips the client's x-remote-* headers", c.filters))
	} else {
		hm := c.typed[envoyHeaderMutation].(*headermutationv3.HeaderMutation)
		strips := func(h string) bool {
			for _, m := range hm.GetMutations().GetRequestMutations() {
				if strings.EqualFold(m.GetRemove(), h) || m.GetRemoveOnMatch() != nil && envoyMatches(m.GetRemoveOnMatch().GetKeyMatcher(), strings.ToLower(h)) {
					return true
				}
			}
			return false
		}
		for _, h := range append(append([]string(nil), ingIdentityHeaders...), "X-Remote-Department") {
			if !strips(h) {
				problems = append(problems, fmt.Sprintf("header_mutation does not remove a client's %s", h))
			}
		}
	}
	if a := c.hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); a == corev3.HttpProtocolOptions_ALLOW {
		problems = append(problems, "headers_with_underscores_action is ALLOW: a client's X_Remote_User would reach the application")
	}

	ea, _ := c.typed[envoyExtAuthz].(*extauthzv3.ExtAuthz)
	hs := ea.GetHttpService()
	switch {
	case ea == nil:
		problems = append(problems, "no ext_authz filter")
	case hs == nil:
		problems = append(problems, "ext_authz is not an http_service")
	default:
		if ea.GetFailureModeAllow() {
			problems = append(problems, "ext_authz failure_mode_allow: with the gateway down, everyone gets in")
		}
		if hs.GetPathPrefix() != ingVerifyPath {
			problems = append(problems, fmt.Sprintf("ext_authz path_prefix is %q, want %q", hs.GetPathPrefix(), ingVerifyPath))
		}
		if hs.GetServerUri().GetCluster() != envoyGatewayCluster {
			problems = append(problems, fmt.Sprintf("ext_authz asks cluster %q, want %q", hs.GetServerUri().GetCluster(), envoyGatewayCluster))
		}
		for _, h := range []string{"cookie", "accept", "sec-fetch-mode"} {
			if !envoyListMatches(hs.GetAuthorizationRequest().GetAllowedHeaders(), h) {
				problems = append(problems, fmt.Sprintf("ext_authz authorization_request does not send %s", h))
			}
		}
		for _, h := range append(append([]string(nil), ingIdentityHeaders...), "X-Remote-Department") {
			if !envoyListMatches(hs.GetAuthorizationResponse().GetAllowedUpstreamHeaders(), strings.ToLower(h)) {
				problems = append(problems, fmt.Sprintf("ext_authz allowed_upstream_headers lacks %s", strings.ToLower(h)))
			}
		}
		for _, h := range []string{"set-cookie", "location", "cookie", "host"} {
			if envoyListMatches(hs.GetAuthorizationResponse().GetAllowedUpstreamHeaders(), h) {
				problems = append(problems, fmt.Sprintf("ext_authz allowed_upstream_headers copies %s upstream", h))
			}
		}
	}

	clusters := map[string]string{}
	for _, cl := range c.boot.GetStaticResources().GetClusters() {
		clusters[cl.GetName()] = envoyClusterAddr(cl)
	}
	if a := clusters[envoyGatewayCluster]; !strings.HasPrefix(a, ingGatewayHost+":") {
		problems = append(problems, fmt.Sprintf("cluster %s is %q, not the gateway", envoyGatewayCluster, a))
	}
	if a := clusters[envoyAppCluster]; !strings.HasPrefix(a, ingAppHost+":") {
		problems = append(problems, fmt.Sprintf("cluster %s is %q, not the application", envoyAppCluster, a))
	}

	ownFirst, seenApp := false, false
	i := 0
	for _, vh := range c.hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			pr := c.perRoute[i]
			i++
			disabled := pr != nil && pr.GetDisabled()
			switch r.GetRoute().GetCluster() {
			case envoyGatewayCluster:
				if r.GetMatch().GetPrefix() != ingOwnPrefix {
					problems = append(problems, fmt.Sprintf("route %v to the gateway, want exactly the prefix %s", r.GetMatch(), ingOwnPrefix))
				}
				if !disabled {
					problems = append(problems, fmt.Sprintf("route %s keeps ext_authz: no one could sign in", r.GetMatch().GetPrefix()))
				}
				ownFirst = ownFirst || !seenApp
			case envoyAppCluster:
				seenApp = true
				if disabled {
					problems = append(problems, fmt.Sprintf("route %v reaches the application with ext_authz disabled", r.GetMatch()))
				}
			default:
				problems = append(problems, fmt.Sprintf("route %v targets %q, neither the gateway nor the application", r.GetMatch(), r.GetRoute().GetCluster()))
			}
		}
	}
	if !ownFirst {
		problems = append(problems, fmt.Sprintf("no route sends %s to the gateway before the application's routes (the first match wins)", ingOwnPrefix))
	}
	return problems
}

// TestEnvoyExample decodes envoy.yaml strictly into Envoy's types and
// checks the invariants.
func TestEnvoyExample(t *testing.T) {
	t.Parallel()
	c, err := envoyDecode(ingReadFile(t, "envoy/envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range envoyProblems(c) {
		t.Error(p)
	}
}

// TestEnvoyChecksCanFail edits copies of envoy.yaml, one break at a time.
func TestEnvoyChecksCanFail(t *testing.T) {
	t.Parallel()
	src := string(ingReadFile(t, "envoy/envoy.yaml"))
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown field", "failure_mode_allow: false", "failure_mode_allows: false", "failure_mode_allows"},
		{"unknown typed_config type", "ext_authz.v3.ExtAuthzPerRoute", "ext_authz.v3.ExtAuthzPerRouteX", "ExtAuthzPerRouteX"},
		{"invalid value", "timeout: 2s", "timeout: -2s", "HttpUri.Timeout"},
		{"fails open", "failure_mode_allow: false", "failure_mode_allow: true", "everyone gets in"},
		{"wrong path_prefix", "path_prefix: /auth/api/v1/saml/verify", "path_prefix: /auth/api/v1/saml/verif", `path_prefix is "/auth/api/v1/saml/verif"`},
		{"no cookie to the gateway", "- exact: cookie\n", "- exact: cookies\n", "does not send cookie"},
		{"an identity header not copied", "- exact: x-remote-tenant\n", "- exact: x-remote-tenantx\n", ""},
		{"tenant headers not copied", "- prefix: x-remote- # the tenants' own headers", "- exact: x-remote-x", "lacks x-remote-department"},
		{"copies Set-Cookie", "- prefix: x-remote- # the tenants' own headers", "- prefix: x-remote-\n                              - exact: set-cookie", "copies set-cookie"},
		{"no stripping", "key_matcher: {prefix: \"x-remote-\"}", "key_matcher: {prefix: \"x-remote-user\"}", "does not remove a client's X-Remote-Email"},
		{"underscores allowed", "headers_with_underscores_action: DROP_HEADER", "headers_with_underscores_action: ALLOW", "headers_with_underscores_action is ALLOW"},
		{"own pages behind ext_authz", "disabled: true", "disabled: false", "keeps ext_authz"},
		{"own pages to the application", "route: {cluster: sso_gateway}", "route: {cluster: document_service}", "no route sends /auth/api/v1/saml/"},
		{"router not last", "                  - name: envoy.filters.http.router\n                    typed_config:\n                      \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n", "", "the router last"},
		{"wrong gateway address", "{address: sso-gateway, port_value: 8080}", "{address: gateway, port_value: 8080}", "not the gateway"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(src, tc.old) {
				t.Fatalf("envoy.yaml has no %q", tc.old)
			}
			c, err := envoyDecode([]byte(strings.Replace(src, tc.old, tc.new, 1)))
			var problems []string
			if err != nil {
				problems = []string{err.Error()}
			} else {
				problems = envoyProblems(c)
			}
			want := tc.want
			if want == "" {
				// The prefix matcher still copies x-remote-tenant: this
				// change must pass.
				if len(problems) > 0 {
					t.Errorf("got problems %q, want none", problems)
				}
				return
			}
			if !ingHasProblem(problems, want) {
				t.Errorf("got problems %q, want one containing %q", problems, want)
			}
		})
	}
}
