package metadata_test

import (
	"errors"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
)

// FuzzParse: IdP metadata comes from files and URLs that admins and
// networks get wrong. Parse and Inspect never panic, every refusal matches
// ErrUnusable, Inspect refuses only what Parse refuses for the same reason,
// and what Parse accepts has a sign-on URL and a signing certificate.
func FuzzParse(f *testing.F) {
	for _, d := range wrongDocuments(f) {
		f.Add(d.data)
	}
	idp := newIDP(f, entraNow)
	f.Add(idp.MetadataXML())
	f.Add(readTestdata(f, entraFile))
	f.Add(readTestdata(f, entraCommonFile))
	f.Add(aggregate(f, idp.MetadataXML(), idp.EntityID))
	entra := readTestdata(f, entraFile)
	f.Add(entra[:len(entra)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := metadata.Parse(data, entraNow, nil)
		imd, ierr := metadata.Inspect(data, nil)
		for _, e := range []error{err, ierr} {
			if e != nil && !errors.Is(e, metadata.ErrUnusable) {
				t.Fatalf("got %q, want an error matching ErrUnusable", e)
			}
		}
		if ierr != nil {
			if err == nil || err.Error() != ierr.Error() {
				t.Fatalf("Inspect refused with %q, Parse with %v; want the same error", ierr, err)
			}
			return
		}
		if imd.SSOURL == "" || len(imd.SigningCerts) == 0 || imd.Entity == nil || imd.Entity.EntityID == "" {
			t.Fatalf("Inspect accepted metadata without an entity ID, a sign-on URL or a signing certificate: %q", data)
		}
		if err == nil {
			if md.Entity.EntityID != imd.Entity.EntityID || md.SSOURL != imd.SSOURL {
				t.Fatalf("Parse and Inspect disagree: %q at %q, %q at %q", md.Entity.EntityID, md.SSOURL, imd.Entity.EntityID, imd.SSOURL)
			}
			return
		}
		// Accepted by Inspect, refused by Parse: only the time can say so.
		var te *metadata.TimeError
		if !errors.As(err, &te) || imd.UsableAt(entraNow) == nil {
			t.Fatalf("Inspect accepted what Parse refused with %q", err)
		}
	})
}
