package samlsp

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	crewsaml "github.com/crewjam/saml"
)

// assertionFor is a verified assertion, as crewjam returns it, naming
// nameID with these attributes.
func assertionFor(nameID string, attrs map[string][]string) *crewsaml.Assertion {
	a := &crewsaml.Assertion{
		ID:      "_a",
		Subject: &crewsaml.Subject{NameID: &crewsaml.NameID{Value: nameID, Format: emailNameIDFormat}},
	}
	var st crewsaml.AttributeStatement
	for _, name := range slices.Sorted(maps.Keys(attrs)) {
		at := crewsaml.Attribute{Name: name}
		for _, v := range attrs[name] {
			at.Values = append(at.Values, crewsaml.AttributeValue{Value: v})
		}
		st.Attributes = append(st.Attributes, at)
	}
	a.AttributeStatements = []crewsaml.AttributeStatement{st}
	return a
}

// TestNewSessionIdentityValues: the session holds exactly what the
// upstream will be told. A NameID or email with white space at either
// end, which the HTTP client would trim on the way, is refused (malformed);
// a display name is trimmed; group and header values keep their white
// space, commas and quotes (the proxy quotes them); non-ASCII letters are
// kept as they are.
func TestNewSessionIdentityValues(t *testing.T) {
	t.Parallel()
	const user = "b.simon@acme.example"
	tests := []struct {
		name   string
		nameID string
		attrs  map[string][]string
		// want is checked when refused is false.
		want    Session
		refused bool
	}{
		{name: "plain", nameID: user, want: Session{NameID: user, Email: user}},
		{name: "non-ASCII NameID", nameID: "zoë.ångström@acme.example", want: Session{NameID: "zoë.ångström@acme.example", Email: "zoë.ångström@acme.example"}},
		{name: "space inside a NameID", nameID: "b simon", want: Session{NameID: "b simon", Email: "b simon"}},
		{name: "NameID with a trailing space", nameID: user + " ", refused: true},
		{name: "NameID with a leading space", nameID: " " + user, refused: true},
		{name: "NameID with a trailing no-break space", nameID: user + "\u00a0", refused: true},
		{name: "NameID with a leading ideographic space", nameID: "\u3000" + user, refused: true},
		{name: "email claim with a trailing space", nameID: user, attrs: map[string][]string{ClaimEmail: {user + " "}}, refused: true},
		{name: "email claim with a leading space", nameID: "opaque-1", attrs: map[string][]string{ClaimEmail: {" " + user}}, refused: true},
		{name: "email claim with a space inside", nameID: "opaque-1", attrs: map[string][]string{ClaimEmail: {"b simon@acme.example"}},
			want: Session{NameID: "opaque-1", Email: "b simon@acme.example"}},
		{name: "display name padded", nameID: user, attrs: map[string][]string{ClaimDisplayName: {"  B Simon\u00a0"}},
			want: Session{NameID: user, Email: user, Name: "B Simon"}},
		{name: "given name and surname padded", nameID: user, attrs: map[string][]string{ClaimGivenName: {" B. "}, ClaimSurname: {" Simon "}},
			want: Session{NameID: user, Email: user, Name: "B. Simon"}},
		{name: "surname only, padded", nameID: user, attrs: map[string][]string{ClaimSurname: {" Simon "}},
			want: Session{NameID: user, Email: user, Name: "Simon"}},
		{name: "groups keep their white space, commas and quotes", nameID: user,
			attrs: map[string][]string{ClaimGroups: {"Finance,00000000-0000-0000-0000-00000000ad01", ` padded `, `say "hi"`, `back\slash`, ""}},
			want:  Session{NameID: user, Email: user, Groups: []string{"Finance,00000000-0000-0000-0000-00000000ad01", ` padded `, `say "hi"`, `back\slash`, ""}}},
		{name: "header values kept apart", nameID: user,
			attrs: map[string][]string{claimDepartment: {"Legal, EMEA", " Litigation "}},
			want:  Session{NameID: user, Email: user, Headers: map[string][]string{"X-Remote-Department": {"Legal, EMEA", " Litigation "}}}},
	}
	f := newFixture(t)
	f.withTenants(func(o *TenantOptions) {
		if o.ID == acme {
			o.Headers = map[string]string{"X-Remote-Department": claimDepartment}
		}
	})
	tn := f.tenant(acme)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := f.p.newSession(tn, assertionFor(tt.nameID, tt.attrs))
			if tt.refused {
				var le loginError
				if !errors.As(err, &le) || le.reason != ReasonMalformed || le.page.Code != http.StatusBadRequest {
					t.Fatalf("got session %+v, error %v; want it refused as %q with 400", s, err, ReasonMalformed)
				}
				if !strings.Contains(le.page.Msg, "begins or ends with a space") {
					t.Errorf("got page %q, want it to say what is wrong", le.page.Msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want a session", err)
			}
			got := Session{NameID: s.NameID, Email: s.Email, Name: s.Name, Groups: s.Groups, Headers: s.Headers}
			if !sameSession(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestSessionsOfEarlierGatewaysMeanOneThing: a session made before
// newSession refused white space around the NameID or email is no session
// now; one with a padded display name is trimmed; one with its header
// values comma-joined under the old key reads as the list it was sent as.
func TestSessionsOfEarlierGatewaysMeanOneThing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withTenants(func(o *TenantOptions) {
		if o.ID == acme {
			o.Headers = map[string]string{"X-Remote-Department": claimDepartment}
		}
	})
	now := f.clock.Now().Unix()
	name := f.p.currentSettings().cookies.hostName(sessionCookie)
	old := func(t *testing.T, fields map[string]any) *http.Cookie {
		t.Helper()
		wire := map[string]any{"t": acme, "n": "b.simon@acme.example", "iat": now, "exp": now + 3600}
		for k, v := range fields {
			wire[k] = v
		}
		v, err := f.p.currentSettings().codec.encode(name, wire)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Cookie{Name: name, Value: v}
	}
	for _, tt := range []struct {
		name   string
		fields map[string]any
	}{
		{"NameID with a trailing space", map[string]any{"n": "b.simon@acme.example "}},
		{"email with a leading space", map[string]any{"e": " b.simon@acme.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s, ok := f.authenticate(old(t, tt.fields)); ok {
				t.Errorf("got session %+v, want none", s)
			}
		})
	}
	t.Run("padded display name, old headers", func(t *testing.T) {
		s, ok := f.authenticate(old(t, map[string]any{"dn": " B Simon ", "h": map[string]string{"X-Remote-Department": "Legal,Litigation Support"}}))
		if !ok {
			t.Fatal("got no session, want one")
		}
		if s.Name != "B Simon" {
			t.Errorf("got name %q, want %q", s.Name, "B Simon")
		}
		if got, want := s.Headers["X-Remote-Department"], []string{"Legal", "Litigation Support"}; !slices.Equal(got, want) {
			t.Errorf("got department %q, want %q", got, want)
		}
	})
}
