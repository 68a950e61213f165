package samlsp

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// Entra's limits and the browser's: a SAML token carries at most 150
// groups, a browser stores a cookie of at most 4096 bytes (name, value and
// attributes), and many servers and load balancers refuse a request header
// line over 8 KiB.
const (
	entraMaxGroups   = 150
	browserMaxCookie = 4096
	maxCookieHeader  = 8 << 10
)

// upstreamCookie is a typical cookie of the upstream application's own, of
// 200 bytes, that the browser sends along with the gateway's.
var upstreamCookie = "app_session=" + strings.Repeat("u", 200-len("app_session="))

// claimDepartment is a custom claim an Entra admin adds to the enterprise
// application (Attributes & Claims: user.department).
const claimDepartment = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/department"

// randomGUIDs returns n distinct random lower-case GUIDs, the form of
// Entra's group object IDs.
func randomGUIDs(t testing.TB, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for len(out) < n {
		b := randomBytes(t, 16)
		h := hex.EncodeToString(b)
		g := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

// randomNames returns n group names of random text that deflate cannot
// shrink much.
func randomNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "grp-" + rand.Text() + rand.Text()
	}
	return out
}

// isSessionChunk reports whether name is one of the session cookie's
// pieces: __Host-ssogw_session or __Host-ssogw_session_<n>.
func isSessionChunk(name string) bool {
	base := strings.TrimPrefix(name, "__Host-")
	if base == sessionCookie {
		return true
	}
	n, ok := strings.CutPrefix(base, sessionCookie+"_")
	if !ok {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

// sessionChunks returns the session pieces rec set (not the ones it
// expired), in order: the first, then _1, _2, ...
func sessionChunks(t testing.TB, rec *httptest.ResponseRecorder) []*http.Cookie {
	t.Helper()
	var out []*http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if isSessionChunk(ck.Name) && ck.Value != "" && ck.MaxAge >= 0 {
			out = append(out, ck)
		}
	}
	slices.SortFunc(out, func(a, b *http.Cookie) int { return strings.Compare(a.Name, b.Name) })
	for i, ck := range out {
		want := "__Host-" + sessionCookie
		if i > 0 {
			want += "_" + strconv.Itoa(i)
		}
		if ck.Name != want {
			t.Fatalf("session piece %d is named %q, want %q", i, ck.Name, want)
		}
	}
	return out
}

// browser holds the cookies a browser keeps for one host at path "/", as
// Set-Cookie headers leave them: set in order, deleted when expired.
type browser struct {
	names  []string
	values map[string]string
}

func newBrowser() *browser { return &browser{values: map[string]string{}} }

// store applies every Set-Cookie of rec for path "/" (tracking cookies are
// scoped to the ACS path and never sent elsewhere).
func (b *browser) store(rec *httptest.ResponseRecorder) {
	for _, ck := range rec.Result().Cookies() {
		if ck.Path != "/" {
			continue
		}
		if ck.MaxAge < 0 {
			delete(b.values, ck.Name)
			b.names = slices.DeleteFunc(b.names, func(n string) bool { return n == ck.Name })
			continue
		}
		if _, ok := b.values[ck.Name]; !ok {
			b.names = append(b.names, ck.Name)
		}
		b.values[ck.Name] = ck.Value
	}
}

// cookieHeader is the Cookie header the browser sends, with extra cookies
// of the upstream's after the stored ones.
func (b *browser) cookieHeader(extra ...string) string {
	var parts []string
	for _, n := range b.names {
		parts = append(parts, n+"="+b.values[n])
	}
	return strings.Join(append(parts, extra...), "; ")
}

// authenticateHeader presents a Cookie header on a navigation to host.
func (f *fixture) authenticateHeader(host, cookie string) (*Session, bool) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = host
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	return f.p.Authenticate(req)
}

// authenticateChunks presents exactly these cookies.
func (f *fixture) authenticateChunks(chunks []*http.Cookie) (*Session, bool) {
	var parts []string
	for _, ck := range chunks {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	return f.authenticateHeader("docs.example.com", strings.Join(parts, "; "))
}

// withGroups is a response change giving the user these groups, and the
// claims Entra sends by default.
func withGroups(f *fixture, tenant string, groups ...string) func(*samltest.Response) {
	return func(r *samltest.Response) {
		r.Attributes = samltest.DefaultAttributes(f.idps[tenant].TenantID, r.NameID, "B Simon", groups...)
	}
}

// TestBigTokenGUIDGroups: a user in 150 groups (Entra's maximum before
// overage) signs in, and the session fits in cookies a browser stores and a
// request header that servers accept.
func TestBigTokenGUIDGroups(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	groups := randomGUIDs(t, entraMaxGroups)
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, withGroups(f, acme, groups...)), ""))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
	}

	for _, line := range rec.Header().Values("Set-Cookie") {
		if len(line) >= browserMaxCookie {
			name, _, _ := strings.Cut(line, "=")
			t.Errorf("Set-Cookie %s is %d bytes with its attributes, want under %d", name, len(line), browserMaxCookie)
		}
	}
	chunks := sessionChunks(t, rec)
	if len(chunks) == 0 || len(chunks) > 2 {
		t.Fatalf("got %d session cookies, want 1 or 2 for 150 groups", len(chunks))
	}
	sizes := make([]int, len(chunks))
	for i, ck := range chunks {
		sizes[i] = len(ck.String())
	}
	t.Logf("150 GUID groups: %d session cookies of %v bytes", len(chunks), sizes)

	b := newBrowser()
	b.store(rec)
	header := b.cookieHeader(upstreamCookie)
	if len(header) >= maxCookieHeader {
		t.Errorf("Cookie header is %d bytes with a %d-byte upstream cookie, want under %d", len(header), len(upstreamCookie), maxCookieHeader)
	}
	t.Logf("Cookie header the browser sends back: %d bytes", len(header))

	s, ok := f.authenticateChunks(chunks)
	if !ok {
		t.Fatal("the session cookies do not authenticate")
	}
	if !slices.Equal(s.Groups, groups) {
		t.Errorf("got %d groups %q, want the %d sent, in order %q", len(s.Groups), s.Groups, len(groups), groups)
	}
	if s.GroupsOverage {
		t.Error("got GroupsOverage, want false")
	}
	// The browser's whole Cookie header, upstream cookie included, works
	// too.
	if s, ok := f.authenticateHeader("docs.example.com", header); !ok || !slices.Equal(s.Groups, groups) {
		t.Errorf("the browser's Cookie header: got session %v with groups %q, want the 150 groups", ok, groupsOf(s))
	}
}

func groupsOf(s *Session) []string {
	if s == nil {
		return nil
	}
	return s.Groups
}

// TestBigTokenDisplayNames: groups sent as names (Entra's "cloud-only
// group display names" option, or on-premises sAMAccountName) are not
// GUIDs; they are kept as the strings they are, in order.
func TestBigTokenDisplayNames(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var groups []string
	for i := range 60 {
		groups = append(groups, fmt.Sprintf("Contoso Legal – Litigation Support Team, Zürich Office (Matter Group %03d)", i))
	}
	groups = append(groups, "1F0E2D3C-4B5A-6978-8796-A5B4C3D2E1F0") // an upper-case GUID among them
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, withGroups(f, acme, groups...)), ""))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
	}
	chunks := sessionChunks(t, rec)
	for _, line := range rec.Header().Values("Set-Cookie") {
		if len(line) >= browserMaxCookie {
			t.Errorf("a Set-Cookie is %d bytes, want under %d", len(line), browserMaxCookie)
		}
	}
	s, ok := f.authenticateChunks(chunks)
	if !ok {
		t.Fatalf("the %d session cookies do not authenticate", len(chunks))
	}
	if !slices.Equal(s.Groups, groups) {
		t.Errorf("got groups %q, want %q", s.Groups, groups)
	}
}

// TestSessionTooBigForCookies: a session that would need more than four
// cookies fails the login with a page that says why; no session is set.
func TestSessionTooBigForCookies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, withGroups(f, acme, randomNames(500)...)), ""))
	if rec.Code != http.StatusForbidden {
		t.Fatalf("got status %d, want 403: %s", rec.Code, rec.Body)
	}
	if body := rec.Body.String(); !strings.Contains(body, "more information than this service can keep in a session") || !strings.Contains(body, "limit the groups") {
		t.Errorf("got page %q, want one that explains the session is too large", body)
	}
	for _, ck := range rec.Result().Cookies() {
		if isSessionChunk(ck.Name) && ck.MaxAge >= 0 {
			t.Errorf("got Set-Cookie %s (%d bytes), want no session cookie", ck.Name, len(ck.Value))
		}
	}
	if got := f.logins(acme, flowIDP, "failure", ReasonOther); got != 1 {
		t.Errorf("got %v failures with reason %q, want 1", got, ReasonOther)
	}
	if got := f.logins(acme, flowIDP, "success", "none"); got != 0 {
		t.Errorf("got %v successes, want 0", got)
	}
}

// TestWriteSessionLimits: writeSession splits at maxCookieValue and refuses
// a value that needs more than maxSessionChunks cookies without writing
// anything.
func TestWriteSessionLimits(t *testing.T) {
	t.Parallel()
	c := cookies{secure: true}
	tests := []struct {
		size      int
		wantLive  int
		wantError bool
	}{
		{1, 1, false},
		{maxCookieValue, 1, false},
		{maxCookieValue + 1, 2, false},
		{maxCookieValue * maxSessionChunks, maxSessionChunks, false},
		{maxCookieValue*maxSessionChunks + 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.size), func(t *testing.T) {
			t.Parallel()
			value := strings.Repeat("v", tt.size)
			rec := httptest.NewRecorder()
			err := c.writeSession(rec, value, time.Now().Add(time.Hour))
			if tt.wantError {
				if err == nil {
					t.Fatal("got no error, want one")
				}
				if got := rec.Header().Values("Set-Cookie"); len(got) != 0 {
					t.Errorf("got Set-Cookie %q after the error, want none", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			live := sessionChunks(t, rec)
			if len(live) != tt.wantLive {
				t.Fatalf("got %d cookies, want %d", len(live), tt.wantLive)
			}
			for _, line := range rec.Header().Values("Set-Cookie") {
				if len(line) >= browserMaxCookie {
					t.Errorf("Set-Cookie is %d bytes, want under %d", len(line), browserMaxCookie)
				}
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, ck := range live {
				req.AddCookie(ck)
			}
			if got := c.readSession(req); got != value {
				t.Errorf("readSession: got %d bytes, want the %d written", len(got), len(value))
			}
		})
	}
}

// groupsForChunks returns random group names with which f's session for
// acme needs n cookies, by encoding trial sessions with f's keys.
func groupsForChunks(t testing.TB, f *fixture, n int) []string {
	t.Helper()
	set := f.p.currentSettings()
	var groups []string
	for range 1000 {
		v, err := set.codec.encode(set.cookies.hostName(sessionCookie), Session{Tenant: acme, NameID: "b.simon@acme.example", Groups: groups})
		if err != nil {
			t.Fatal(err)
		}
		// Aim at the middle of the band, so that the real session's other
		// claims do not change its count.
		if len(v) > (n-1)*maxCookieValue+maxCookieValue/2 {
			return groups
		}
		groups = append(groups, randomNames(4)...)
	}
	t.Fatalf("no session of %d cookies", n)
	return nil
}

// TestStaleChunksExpired: when a smaller session replaces a bigger one, the
// pieces the bigger one left are expired, and the browser presents only the
// new session.
func TestStaleChunksExpired(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := newBrowser()
	big := groupsForChunks(t, f, 3)
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, withGroups(f, acme, big...)), ""))
	if got := len(sessionChunks(t, rec)); got != 3 {
		t.Fatalf("first login: got %d session cookies, want 3 (status %d)", got, rec.Code)
	}
	b.store(rec)

	for _, tt := range []struct {
		name    string
		groups  []string
		live    int
		expired []string
	}{
		{"two pieces after three", groupsForChunks(t, f, 2), 2, []string{"__Host-ssogw_session_2", "__Host-ssogw_session_3"}},
		{"one piece after two", []string{"g1"}, 1, []string{"__Host-ssogw_session_1", "__Host-ssogw_session_2", "__Host-ssogw_session_3"}},
	} {
		rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, withGroups(f, acme, tt.groups...)), ""))
		live := sessionChunks(t, rec)
		if len(live) != tt.live {
			t.Fatalf("%s: got %d session cookies, want %d", tt.name, len(live), tt.live)
		}
		if tt.live == 1 && strings.Contains(live[0].Value, "~") {
			t.Errorf("%s: a single cookie carries a count prefix: %.10q", tt.name, live[0].Value)
		}
		expired := map[string]bool{}
		for _, ck := range rec.Result().Cookies() {
			if isSessionChunk(ck.Name) && ck.MaxAge < 0 {
				if ck.Path != "/" || !ck.Secure || ck.Value != "" {
					t.Errorf("%s: expiring %s with Path %q Secure %v: a browser would keep the old one", tt.name, ck.Name, ck.Path, ck.Secure)
				}
				expired[ck.Name] = true
			}
		}
		for _, name := range tt.expired {
			if !expired[name] {
				t.Errorf("%s: %s is not expired; got expired %v", tt.name, name, slices.Sorted(maps.Keys(expired)))
			}
		}
		b.store(rec)
		for name := range b.values {
			if isSessionChunk(name) && !slices.ContainsFunc(live, func(c *http.Cookie) bool { return c.Name == name }) {
				t.Errorf("%s: the browser still holds %s", tt.name, name)
			}
		}
		s, ok := f.authenticateHeader("docs.example.com", b.cookieHeader())
		if !ok || !slices.Equal(s.Groups, tt.groups) {
			t.Errorf("%s: the browser's cookies give session %v with %d groups, want the new session's %d", tt.name, ok, len(groupsOf(s)), len(tt.groups))
		}
	}
}

// TestLogoutExpiresEveryPiece: signing out expires every piece of a split
// session, so the browser keeps none of it.
func TestLogoutExpiresEveryPiece(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	b := newBrowser()
	rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, withGroups(f, acme, groupsForChunks(t, f, 3)...)), ""))
	if got := len(sessionChunks(t, rec)); got != 3 {
		t.Fatalf("got %d session cookies, want 3 (status %d)", got, rec.Code)
	}
	b.store(rec)
	req := httptest.NewRequest(http.MethodGet, LogoutPath, nil)
	req.Header.Set("Cookie", b.cookieHeader())
	rec = f.serve(req)
	b.store(rec)
	for name := range b.values {
		if isSessionChunk(name) {
			t.Errorf("after logout (status %d) the browser still holds %s", rec.Code, name)
		}
	}
	if _, ok := f.authenticateHeader("docs.example.com", b.cookieHeader()); ok {
		t.Error("the browser's cookies still authenticate after logout")
	}
}

// TestChunkedSessionRejects: a session split in pieces authenticates only
// when every piece is there, intact, in its place, and the count is true.
func TestChunkedSessionRejects(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	groups := groupsForChunks(t, f, 3)
	signIn := func() []*http.Cookie {
		rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, withGroups(f, acme, groups...)), ""))
		chunks := sessionChunks(t, rec)
		if len(chunks) != 3 {
			t.Fatalf("got %d session cookies, want 3 (status %d)", len(chunks), rec.Code)
		}
		if !strings.HasPrefix(chunks[0].Value, "3~") {
			t.Fatalf("first piece starts %.10q, want the count prefix 3~", chunks[0].Value)
		}
		return chunks
	}
	good, other := signIn(), signIn()
	if _, ok := f.authenticateChunks(good); !ok {
		t.Fatal("the intact pieces do not authenticate")
	}

	value := func(i int) string { return good[i].Value }
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	_, rest, _ := strings.Cut(value(0), "~")
	const absent = "\x00absent"
	tests := []struct {
		name   string
		values []string // by piece; absent leaves the piece out
	}{
		{"middle piece missing", []string{value(0), absent, value(2)}},
		{"last piece missing", []string{value(0), value(1), absent}},
		{"first piece missing", []string{absent, value(1), value(2)}},
		{"middle piece tampered", []string{value(0), flip(value(1), len(value(1))/2), value(2)}},
		{"middle piece truncated", []string{value(0), value(1)[:len(value(1))-1], value(2)}},
		{"middle piece empty", []string{value(0), "", value(2)}},
		{"pieces swapped", []string{value(0), value(2), value(1)}},
		{"middle piece of another session", []string{value(0), other[1].Value, value(2)}},
		{"count says 9", []string{"9~" + rest, value(1), value(2)}},
		{"count says 4, one piece short", []string{"4~" + rest, value(1), value(2)}},
		{"count says 4 with a forged fourth piece", []string{"4~" + rest, value(1), value(2), "AAAA"}},
		{"count says 2", []string{"2~" + rest, value(1), value(2)}},
		{"count says 1", []string{"1~" + rest, value(1), value(2)}},
		{"count says 0", []string{"0~" + rest, value(1), value(2)}},
		{"count says -3", []string{"-3~" + rest, value(1), value(2)}},
		{"count not a number", []string{"x~" + rest, value(1), value(2)}},
		{"count huge", []string{"99999999999999999999~" + rest, value(1), value(2)}},
		{"no count", []string{rest, value(1), value(2)}},
		{"count only", []string{"3~", value(1), value(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var parts []string
			for i, v := range tt.values {
				if v == absent {
					continue
				}
				name := "__Host-" + sessionCookie
				if i > 0 {
					name += "_" + strconv.Itoa(i)
				}
				parts = append(parts, name+"="+v)
			}
			if s, ok := f.authenticateHeader("docs.example.com", strings.Join(parts, "; ")); ok {
				t.Fatalf("got a session of %d groups, want none", len(s.Groups))
			}
		})
	}
}

// sessionRoundTrip encodes s as JSON, and through the cookie serializer, and
// fails t unless both give s back.
func sessionRoundTrip(t *testing.T, s Session) {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var got Session
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("unmarshal %s: %v", data, err)
	}
	if !sameSession(got, s) {
		t.Fatalf("JSON round trip: got %#v, want %#v (wire %s)", got, s, data)
	}
	cj := &compressingJSON{}
	ser, err := cj.Serialize(s)
	if err != nil {
		t.Fatalf("serialize: %v", err)
	}
	got = Session{}
	if err := cj.Deserialize(ser, &got); err != nil {
		t.Fatalf("deserialize: %v", err)
	}
	if !sameSession(got, s) {
		t.Fatalf("serializer round trip: got %#v, want %#v", got, s)
	}
}

// sameSession compares sessions, taking an empty list or map as equal to
// nil: JSON leaves both out.
func sameSession(a, b Session) bool {
	for _, s := range []*Session{&a, &b} {
		if len(s.Groups) == 0 {
			s.Groups = nil
		}
		if len(s.Headers) == 0 {
			s.Headers = nil
		}
	}
	return reflect.DeepEqual(a, b)
}

// wireKeys returns the keys of s's JSON form.
func wireKeys(t *testing.T, s Session) []string {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return slices.Sorted(maps.Keys(m))
}

func TestSessionRoundTrip(t *testing.T) {
	t.Parallel()
	full := Session{
		Tenant: acme, NameID: "b.simon@acme.example", NameIDFormat: emailNameIDFormat,
		Email: "b.simon@acme.example", Name: "B. Simön", GroupsOverage: false,
		Headers:      map[string][]string{"X-Remote-Department": {"Legal", "Litigation, EMEA", " padded ", ""}},
		SessionIndex: "_a1b2", IssuedAt: 1_700_000_000, Expires: 1_700_028_800,
	}
	guids := randomGUIDs(t, entraMaxGroups)
	tests := []struct {
		name   string
		groups []string
		packed bool // sent as 16 bytes per GUID
	}{
		{"no groups", nil, false},
		{"one GUID", guids[:1], true},
		{"150 GUIDs", guids, true},
		{"upper-case GUID", []string{strings.ToUpper(guids[0])}, false},
		{"mixed-case GUIDs", []string{guids[0], "1F0E2D3C-4b5a-6978-8796-a5b4c3d2e1f0", guids[1]}, false},
		{"GUID and name", []string{guids[0], "Readers"}, false},
		{"GUID in braces", []string{"{" + guids[0] + "}"}, false},
		{"GUID with a space", []string{guids[0] + " "}, false},
		{"36 characters, not hex", []string{"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"}, false},
		{"hyphens misplaced", []string{strings.ReplaceAll(guids[0], "-", "") + "----"}, false},
		{"duplicate GUIDs", []string{guids[0], guids[0]}, true},
		{"empty group name", []string{""}, false},
		{"names with commas and Unicode", []string{"Legal, EMEA", "Zürich – Team ✓", "日本語"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := full
			s.Groups = tt.groups
			sessionRoundTrip(t, s)
			keys := wireKeys(t, s)
			if tt.groups != nil && slices.Contains(keys, "gg") != tt.packed {
				t.Errorf("got wire keys %q, want packed GUIDs (gg) %v", keys, tt.packed)
			}
		})
	}
	t.Run("overage, nothing else", func(t *testing.T) {
		t.Parallel()
		sessionRoundTrip(t, Session{Tenant: acme, NameID: "x", GroupsOverage: true})
	})
}

// FuzzSessionRoundTrip: any session made of valid UTF-8 strings comes back
// exactly from its JSON form and from the cookie serializer, whether its
// groups are packed GUIDs or strings.
func FuzzSessionRoundTrip(f *testing.F) {
	f.Add("acme", "b.simon@acme.example", "B. Simon", "Readers\nWriters", uint8(3), uint8(0), false, "X-Remote-Department", "Legal", int64(1), int64(2))
	f.Add("globex", "", "", "", uint8(150), uint8(0), true, "", "", int64(0), int64(0))
	f.Add("t", "n", "", "", uint8(2), uint8(0b10), false, "", "", int64(-1), int64(1<<62))
	f.Add("t", "n", "x", "1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\n1F0E2D3C-4B5A-6978-8796-A5B4C3D2E1F0", uint8(0), uint8(0), false, "h", "", int64(5), int64(6))
	f.Fuzz(func(t *testing.T, tenant, nameID, name, groupText string, guidCount, upper uint8, overage bool, header, headerValue string, iat, exp int64) {
		for _, s := range []string{tenant, nameID, name, groupText, header, headerValue} {
			if !utf8.ValidString(s) {
				// encoding/json replaces invalid UTF-8; values from a
				// parsed XML document are always valid, so there is
				// nothing to check.
				return
			}
		}
		var groups []string
		if groupText != "" {
			groups = strings.Split(groupText, "\n")
		}
		// GUIDs derived from the inputs, some upper-cased.
		seed := sha256.Sum256([]byte(groupText + nameID))
		for i := range int(guidCount) {
			sum := sha256.Sum256(append(seed[:], byte(i)))
			h := hex.EncodeToString(sum[:16])
			g := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
			if upper&(1<<(i%8)) != 0 {
				g = strings.ToUpper(g)
			}
			groups = append(groups, g)
		}
		s := Session{
			Tenant: tenant, NameID: nameID, Name: name, Email: name + "@x",
			Groups: groups, GroupsOverage: overage, IssuedAt: iat, Expires: exp,
		}
		if header != "" {
			s.Headers = map[string][]string{header: strings.Split(headerValue, "\n")}
		}
		sessionRoundTrip(t, s)
	})
}

// withTenants rebuilds f's tenant table with change applied to each
// tenant's options.
func (f *fixture) withTenants(change func(o *TenantOptions)) {
	f.t.Helper()
	var tos []TenantOptions
	for _, id := range allTenants {
		o := tenantOptions(f, id)
		change(&o)
		tos = append(tos, o)
	}
	ts, err := f.p.NewTenants(tos)
	if err != nil {
		f.t.Fatal(err)
	}
	f.p.SetTenants(ts)
}

// groupsLink is the claim Entra sends instead of the groups when a user is
// in more than 150.
func groupsLink(f *fixture, tenant string) samltest.Attribute {
	return samltest.Attribute{Name: ClaimGroupsLink, Values: []string{
		"https://graph.windows.net/" + f.idps[tenant].TenantID + "/users/0d7e1e8f-0000-4000-8000-000000000001/getMemberObjects",
	}}
}

func TestGroupsOverage(t *testing.T) {
	t.Parallel()
	t.Run("session without allowed_groups", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
			r.Attributes = append(samltest.DefaultAttributes(f.idps[acme].TenantID, r.NameID, "B Simon"), groupsLink(f, acme))
		}), ""))
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("got status %d, want 303: %s", rec.Code, rec.Body)
		}
		s, ok := f.authenticateChunks(sessionChunks(t, rec))
		if !ok {
			t.Fatal("no session")
		}
		if !s.GroupsOverage || len(s.Groups) != 0 {
			t.Errorf("got GroupsOverage %v and groups %q, want true and none", s.GroupsOverage, s.Groups)
		}
	})
	t.Run("groups and the link", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
			r.Attributes = append(samltest.DefaultAttributes(f.idps[acme].TenantID, r.NameID, "B Simon", "g1"), groupsLink(f, acme))
		}), ""))
		s, ok := f.authenticateChunks(sessionChunks(t, rec))
		if !ok || s.GroupsOverage || !slices.Equal(s.Groups, []string{"g1"}) {
			t.Errorf("got session %v %+v, want groups [g1] and no overage", ok, s)
		}
	})
	t.Run("refused where allowed_groups is set", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		l := f.startLogin(globex, "")
		rec := f.postACS(globex, f.idps[globex].PostForm(t, f.response(globex, func(r *samltest.Response) {
			r.InResponseTo = l.requestID
			r.Attributes = append(samltest.DefaultAttributes(f.idps[globex].TenantID, r.NameID, "B Simon"), groupsLink(f, globex))
		}), l.relayState), l.tracker)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("got status %d, want 403: %s", rec.Code, rec.Body)
		}
		body := rec.Body.String()
		for _, want := range []string{"too many groups", "Groups assigned to the application", `id="switch"`, `id="retry"`} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q: %s", want, body)
			}
		}
		if ck := sessionCookieOf(rec); ck != nil {
			t.Errorf("got session cookie %s, want none", ck.Name)
		}
		if got := f.logins(globex, flowSP, "failure", ReasonGroupOverage); got != 1 {
			t.Errorf("got %v failures with reason %q, want 1", got, ReasonGroupOverage)
		}
	})
}

// TestHeadersMapping: a tenant's own headers carry a claim's values, each
// as the IdP sent it, in the session (the proxy joins them).
func TestHeadersMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		department []string // nil: the claim is not sent
		want       map[string][]string
		status     int
		reason     string
	}{
		{"one value", []string{"Legal"}, map[string][]string{"X-Remote-Department": {"Legal"}}, http.StatusSeeOther, ""},
		{"several values", []string{"Legal", "Litigation Support", "Zürich"}, map[string][]string{"X-Remote-Department": {"Legal", "Litigation Support", "Zürich"}}, http.StatusSeeOther, ""},
		// A comma is part of its value, not a separator; white space is
		// kept (the proxy quotes such values).
		{"values with a comma, a quote, white space", []string{"Legal, EMEA", `say "hi"`, " padded "}, map[string][]string{"X-Remote-Department": {"Legal, EMEA", `say "hi"`, " padded "}}, http.StatusSeeOther, ""},
		{"claim absent", nil, nil, http.StatusSeeOther, ""},
		// A literal CR cannot be tested here: XML parsing turns it into LF.
		{"newline", []string{"Legal\nX-Remote-User: admin"}, nil, http.StatusBadRequest, ReasonMalformed},
		{"newline in the second value", []string{"Legal", "a\nb"}, nil, http.StatusBadRequest, ReasonMalformed},
		{"tab", []string{"Legal\tDept"}, nil, http.StatusBadRequest, ReasonMalformed},
		{"DEL", []string{"Legal\x7f"}, nil, http.StatusBadRequest, ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.withTenants(func(o *TenantOptions) {
				if o.ID == acme {
					o.Headers = map[string]string{"X-Remote-Department": claimDepartment, "X-Remote-Cost-Center": "http://schemas.example/claims/costcenter"}
				}
			})
			rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
				r.Attributes = samltest.DefaultAttributes(f.idps[acme].TenantID, r.NameID, "B Simon", "g1")
				if tt.department != nil {
					r.Attributes = append(r.Attributes, samltest.Attribute{Name: claimDepartment, Values: tt.department})
				}
			}), ""))
			if rec.Code != tt.status {
				t.Fatalf("got status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.reason != "" {
				if ck := sessionCookieOf(rec); ck != nil {
					t.Errorf("got a session cookie, want none")
				}
				if got := f.logins(acme, flowIDP, "failure", tt.reason); got != 1 {
					t.Errorf("got %v failures with reason %q, want 1", got, tt.reason)
				}
				return
			}
			s, ok := f.authenticateChunks(sessionChunks(t, rec))
			if !ok {
				t.Fatal("no session")
			}
			if !maps.EqualFunc(s.Headers, tt.want, slices.Equal) {
				t.Errorf("got headers %q, want %q", s.Headers, tt.want)
			}
		})
	}
	t.Run("another tenant keeps no headers", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.withTenants(func(o *TenantOptions) {
			if o.ID == initech {
				o.Headers = map[string]string{"X-Remote-Department": claimDepartment}
			}
		})
		rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, func(r *samltest.Response) {
			r.Attributes = append(samltest.DefaultAttributes(f.idps[acme].TenantID, r.NameID, "B Simon"),
				samltest.Attribute{Name: claimDepartment, Values: []string{"Legal"}})
		}), ""))
		s, ok := f.authenticateChunks(sessionChunks(t, rec))
		if !ok || len(s.Headers) != 0 {
			t.Errorf("got session %v with headers %q, want a session without headers", ok, s.Headers)
		}
	})
}

// TestSessionAttributes: a tenant's session keeps only the attributes it
// lists, but the group policy still sees the groups at login.
func TestSessionAttributes(t *testing.T) {
	t.Parallel()
	const allowed = "7a1c2b3d-0000-4000-8000-00000000000a"
	tests := []struct {
		name      string
		attrs     []string
		allowed   []string
		groups    []string
		status    int
		wantEmail string
		wantName  string
		wantGroup []string
	}{
		{"all by default", nil, nil, []string{"g1"}, http.StatusSeeOther, "b.simon@acme.example", "B Simon", []string{"g1"}},
		{"email only", []string{AttributeEmail}, nil, []string{"g1"}, http.StatusSeeOther, "b.simon@acme.example", "", nil},
		{"email only, allowed group held", []string{AttributeEmail}, []string{allowed}, []string{"g1", allowed}, http.StatusSeeOther, "b.simon@acme.example", "", nil},
		{"email only, allowed group not held", []string{AttributeEmail}, []string{allowed}, []string{"g1"}, http.StatusForbidden, "", "", nil},
		{"none", []string{}, nil, []string{"g1"}, http.StatusSeeOther, "", "", nil},
		{"none, allowed group held", []string{}, []string{allowed}, []string{allowed}, http.StatusSeeOther, "", "", nil},
		{"name and groups", []string{AttributeName, AttributeGroups}, nil, []string{"g1"}, http.StatusSeeOther, "", "B Simon", []string{"g1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.withTenants(func(o *TenantOptions) {
				if o.ID == acme {
					o.SessionAttributes = tt.attrs
					o.AllowedGroups = tt.allowed
				}
			})
			rec := f.postACS(acme, f.idps[acme].PostForm(t, f.response(acme, withGroups(f, acme, tt.groups...)), ""))
			if rec.Code != tt.status {
				t.Fatalf("got status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status != http.StatusSeeOther {
				if got := f.logins(acme, flowIDP, "failure", ReasonGroupDenied); got != 1 {
					t.Errorf("got %v failures with reason %q, want 1", got, ReasonGroupDenied)
				}
				if ck := sessionCookieOf(rec); ck != nil {
					t.Error("got a session cookie, want none")
				}
				return
			}
			s, ok := f.authenticateChunks(sessionChunks(t, rec))
			if !ok {
				t.Fatal("no session")
			}
			if s.NameID != "b.simon@acme.example" || s.Email != tt.wantEmail || s.Name != tt.wantName || !slices.Equal(s.Groups, tt.wantGroup) {
				t.Errorf("got NameID %q email %q name %q groups %q, want b.simon@acme.example %q %q %q",
					s.NameID, s.Email, s.Name, s.Groups, tt.wantEmail, tt.wantName, tt.wantGroup)
			}
		})
	}
}
