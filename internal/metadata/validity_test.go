package metadata_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/metadata"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestInspectIgnoresTime: `sso-gateway tenants` shows the entity, the
// sign-in URL and every signing certificate of metadata that is unusable
// only because of the time, which Parse refuses.
func TestInspectIgnoresTime(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	_, expired := samltest.NewKeyPair(t, "expired", 2048, now.AddDate(-3, 0, 0), now.AddDate(0, 0, -17))
	_, future := samltest.NewKeyPair(t, "future", 2048, now.AddDate(0, 0, 3), now.AddDate(3, 0, 0))
	idp := samltest.NewIDP(t)
	with := func(certs ...*x509.Certificate) []byte {
		c := *idp
		c.Cert, c.ExtraCerts = certs[0], certs[1:]
		return c.MetadataXML()
	}
	tests := []struct {
		name     string
		data     []byte
		now      time.Time
		entityID string
		ssoURL   string
		certs    []*x509.Certificate
		reason   error
	}{
		{"expired certificate only", with(expired), now, idp.EntityID, idp.SSOURL, []*x509.Certificate{expired}, metadata.ErrExpired},
		{"not yet valid certificate only", with(future), now, idp.EntityID, idp.SSOURL, []*x509.Certificate{future}, metadata.ErrNotYetValid},
		{"both", with(future, expired), now, idp.EntityID, idp.SSOURL, []*x509.Certificate{future, expired}, metadata.ErrNotYetValid},
		{"real Entra file after its certificate expired", readTestdata(t, entraFile), time.Date(2026, 12, 3, 21, 0, 0, 0, time.UTC), entraEntityID, entraSSOURL, []*x509.Certificate{entraSigner(t)}, metadata.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := metadata.Parse(tt.data, tt.now, nil); !errors.Is(err, tt.reason) {
				t.Fatalf("Parse: got %v, want %q", err, tt.reason)
			}
			md, err := metadata.Inspect(tt.data, nil)
			if err != nil {
				t.Fatalf("Inspect: got %q, want no error", err)
			}
			if md.Entity.EntityID != tt.entityID {
				t.Errorf("entity ID: got %q, want %q", md.Entity.EntityID, tt.entityID)
			}
			if md.SSOURL != tt.ssoURL {
				t.Errorf("SSOURL: got %q, want %q", md.SSOURL, tt.ssoURL)
			}
			if len(md.SigningCerts) != len(tt.certs) {
				t.Fatalf("SigningCerts: got %d, want %d", len(md.SigningCerts), len(tt.certs))
			}
			for i, c := range tt.certs {
				if !md.SigningCerts[i].Equal(c) {
					t.Errorf("SigningCerts[%d]: got %q, want %q", i, md.SigningCerts[i].Subject.CommonName, c.Subject.CommonName)
				}
			}
			if err := md.UsableAt(tt.now); !errors.Is(err, tt.reason) || !errors.Is(err, metadata.ErrUnusable) {
				t.Errorf("UsableAt: got %v, want %q and ErrUnusable", err, tt.reason)
			}
		})
	}
}

// TestInspectSigned: Inspect checks a pinned signature as Parse does, and
// a pinned signer's own validity does not matter (crewjam ignores it).
func TestInspectSigned(t *testing.T) {
	t.Parallel()
	signed := readTestdata(t, entraFile)
	_, other := samltest.NewKeyPair(t, "other", 2048, entraNow.AddDate(-1, 0, 0), entraNow.AddDate(1, 0, 0))
	if _, err := metadata.Inspect(signed, []*x509.Certificate{entraSigner(t)}); err != nil {
		t.Errorf("Entra's file, its (expired) signer: got %q, want no error", err)
	}
	if _, err := metadata.Inspect(signed, []*x509.Certificate{other}); !errors.Is(err, metadata.ErrUnusable) {
		t.Errorf("Entra's file, another signer: got %v, want ErrUnusable", err)
	}
}

// TestUsableAt: the error says why and when, and callers can tell the
// reasons apart.
func TestUsableAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 21, 0, 0, 0, time.UTC)
	cert := func(notBefore, notAfter time.Time) *x509.Certificate {
		return &x509.Certificate{NotBefore: notBefore, NotAfter: notAfter}
	}
	days := func(n int) time.Time { return now.AddDate(0, 0, n) }
	tests := []struct {
		name        string
		md          metadata.IDP
		reason      error // nil: usable
		when        time.Time
		lastExpired time.Time
		want        string
	}{
		{name: "valid", md: metadata.IDP{SigningCerts: []*x509.Certificate{cert(days(-10), days(10))}}},
		{name: "one valid beside an expired and a future one", md: metadata.IDP{SigningCerts: []*x509.Certificate{cert(days(-100), days(-1)), cert(days(1), days(100)), cert(days(-10), days(10))}}},
		{name: "expiring this instant", md: metadata.IDP{SigningCerts: []*x509.Certificate{cert(days(-10), now)}}},
		{
			name:   "all expired: the newest counts",
			md:     metadata.IDP{SigningCerts: []*x509.Certificate{cert(days(-1000), days(-40)), cert(days(-900), days(-17)), cert(days(-800), days(-30))}},
			reason: metadata.ErrExpired, when: days(-17),
			want: "unusable IdP metadata: no signing certificate is valid now: every one has expired, the newest 17 days ago on 2026-11-16; download the metadata again after renewing the certificate in Entra",
		},
		{
			name:   "expired an hour ago",
			md:     metadata.IDP{SigningCerts: []*x509.Certificate{cert(days(-1000), now.Add(-time.Hour))}},
			reason: metadata.ErrExpired, when: now.Add(-time.Hour),
			want: "every one has expired, the newest less than a day ago on 2026-12-03",
		},
		{
			name:   "none valid yet: the earliest counts",
			md:     metadata.IDP{SigningCerts: []*x509.Certificate{cert(days(5), days(500)), cert(days(2), days(400))}},
			reason: metadata.ErrNotYetValid, when: days(2),
			want: "unusable IdP metadata: no signing certificate is valid now: the earliest becomes valid in 2 days on 2026-12-05T21:00:00Z; check this host's clock",
		},
		{
			name:   "a gap in a rollover",
			md:     metadata.IDP{SigningCerts: []*x509.Certificate{cert(days(-500), days(-1)), cert(now.Add(time.Hour), days(500))}},
			reason: metadata.ErrNotYetValid, when: now.Add(time.Hour), lastExpired: days(-1),
			want: "the earliest becomes valid in less than a day on 2026-12-03T22:00:00Z (the newest expired 1 day ago on 2026-12-02)",
		},
		{
			name:   "validUntil passed, certificates valid",
			md:     metadata.IDP{ValidUntil: days(-2), SigningCerts: []*x509.Certificate{cert(days(-10), days(10))}},
			reason: metadata.ErrValidUntilPassed, when: days(-2),
			want: "unusable IdP metadata: expired at 2026-12-01T21:00:00Z (validUntil)",
		},
		{name: "validUntil to come", md: metadata.IDP{ValidUntil: days(2), SigningCerts: []*x509.Certificate{cert(days(-10), days(10))}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.md.UsableAt(now)
			if tt.reason == nil {
				if err != nil {
					t.Fatalf("got %q, want no error", err)
				}
				return
			}
			var te *metadata.TimeError
			if !errors.As(err, &te) {
				t.Fatalf("got %v, want a *TimeError", err)
			}
			if !errors.Is(err, tt.reason) || !errors.Is(err, metadata.ErrUnusable) {
				t.Errorf("got %q, want it to match %q and ErrUnusable", err, tt.reason)
			}
			if !te.When.Equal(tt.when) || !te.LastExpired.Equal(tt.lastExpired) || !te.Now.Equal(now) {
				t.Errorf("When, LastExpired, Now: got %v, %v, %v; want %v, %v, %v", te.When, te.LastExpired, te.Now, tt.when, tt.lastExpired, now)
			}
			if got := err.Error(); !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to contain %q", got, tt.want)
			}
		})
	}

	t.Run("no certificates", func(t *testing.T) {
		t.Parallel()
		err := (&metadata.IDP{}).UsableAt(now)
		var te *metadata.TimeError
		if !errors.Is(err, metadata.ErrUnusable) || errors.As(err, &te) {
			t.Errorf("got %v, want ErrUnusable and no TimeError", err)
		}
	})
}
