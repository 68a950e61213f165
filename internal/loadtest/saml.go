package loadtest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// newIDP returns an Entra-shaped IdP with a fresh 2048-bit key, for a
// directory derived from seed.
func newIDP(seed string) (*samltest.IDP, error) {
	kp, err := selfsigned.New(selfsigned.Options{
		CommonName: "Microsoft Azure Federated SSO Certificate",
		NotAfter:   time.Now().AddDate(3, 0, 0),
	})
	if err != nil {
		return nil, err
	}
	return &samltest.IDP{TenantID: guid("directory", seed), Key: kp.Key, Cert: kp.Cert}, nil
}

// guid returns a version 4 GUID, in Entra's lower-case form, that depends
// only on its parts.
func guid(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// groupIDs returns n group object IDs, as Entra sends them in the groups
// claim.
func groupIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = guid("group", fmt.Sprint(i))
	}
	return ids
}

// userResponse describes an IdP-initiated response for user number i of
// the IdP's directory, member of groups, addressed to acs and audience.
func userResponse(idp *samltest.IDP, i int, groups []string, acs, audience string) samltest.Response {
	email := fmt.Sprintf("user%05d@contoso.example", i)
	name := fmt.Sprintf("User %05d", i)
	return samltest.Response{
		Destination: acs,
		Audience:    audience,
		NameID:      email,
		Attributes:  samltest.DefaultAttributes(idp.TenantID, email, name, groups...),
	}
}

// signForms signs every response, on every core, and returns the
// urlencoded form bodies a browser would post (SAMLResponse alone, as in an
// IdP-initiated login).
func signForms(ctx context.Context, idp *samltest.IDP, responses []samltest.Response) ([]string, error) {
	forms := make([]string, len(responses))
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(responses) {
					return
				}
				xml, err := idp.Sign(responses[i])
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				forms[i] = url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(xml)}}.Encode()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return forms, ctx.Err()
}

// browser is the HTTP client of logins, session checks and streams: it
// keeps connections alive, follows no redirect and, like the clients of
// cluster/, carries cookies itself, since the gateway's are Secure and
// __Host- prefixed (its public URL is https, TLS ending in front of it).
func newBrowser(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConnsPerHost: conns,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       60 * time.Second,
	}
}

// postLogin posts form to the ACS at rawURL with the Host header host, as
// a browser does after the IdP's page, and returns the Cookie header a
// browser would send back for the cookies set whose names contain part.
// Anything but a redirect with such a cookie is an error.
func postLogin(ctx context.Context, client *http.Client, rawURL, host, form, part string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, strings.NewReader(form))
	if err != nil {
		return "", err
	}
	req.Host = host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return "", fmt.Errorf("login: read answer: %w", err)
	}
	cookie := cookieHeader(resp, part)
	if resp.StatusCode/100 != 3 || cookie == "" {
		return "", fmt.Errorf("login: got %s with cookies %q, want a redirect setting a %q cookie; body %q",
			resp.Status, resp.Header.Values("Set-Cookie"), part, truncate(string(body), 300))
	}
	return cookie, nil
}

// cookieHeader returns the Cookie header a browser would send back for the
// cookies resp sets whose names contain part.
func cookieHeader(resp *http.Response, part string) string {
	var pairs []string
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, part) && c.Value != "" {
			pairs = append(pairs, c.Name+"="+c.Value)
		}
	}
	return strings.Join(pairs, "; ")
}

// loginAll posts every form with 16 browsers at once, and returns the
// cookies in the order of forms.
func loginAll(ctx context.Context, client *http.Client, rawURL, host, part string, forms []string) ([]string, error) {
	cookies := make([]string, len(forms))
	err := parallel(ctx, loginPosters, len(forms), func(i int) error {
		c, err := postLogin(ctx, client, rawURL, host, forms[i], part)
		cookies[i] = c
		return err
	})
	return cookies, err
}

// loginPosters is how many logins are posted at once.
const loginPosters = 16

// parallel calls f(0) ... f(n-1) on workers goroutines and returns the
// first error; it stops handing out work after an error.
func parallel(ctx context.Context, workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for !failed.Load() && ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// checkPage fetches the benchmark's page through the server at addr with
// cookie, and returns an error unless the upstream's page came back: a
// session the server refuses would make every request of a row a redirect
// to sign in.
func checkPage(ctx context.Context, client *http.Client, addr, host, cookie string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+pagePath, nil)
	if err != nil {
		return err
	}
	req.Host = host
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", accept)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get(upstreamMark) == "" || len(body) != bodySize {
		return fmt.Errorf("GET %s with the session: got %s, %d bytes, Location %q; want the upstream's 200 with %d bytes",
			pagePath, resp.Status, len(body), resp.Header.Get("Location"), bodySize)
	}
	return nil
}
