package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// TestIdentityFollowsReload: the identity headers of a session, rendered
// once and shared by its requests, follow a reload of the tenant's
// configuration at once, both ways.
func TestIdentityFollowsReload(t *testing.T) {
	t.Parallel()
	g := newSAMLGateway(t)
	cookie := g.signIn(t, tenantDept, nil, department)
	reload := func(headers map[string]string) {
		t.Helper()
		opts := slices.Clone(g.options)
		opts[0].Headers = headers
		ts, err := g.provider.NewTenants(opts)
		if err != nil {
			t.Fatal(err)
		}
		g.provider.SetTenants(ts)
	}
	mapping := g.options[0].Headers
	for _, step := range []struct {
		name    string
		headers map[string]string
		want    []string
	}{
		{"configured", mapping, []string{"Legal,Litigation Support"}},
		{"again, rendered before", mapping, []string{"Legal,Litigation Support"}},
		{"mapping removed", nil, nil},
		{"mapping back", mapping, []string{"Legal,Litigation Support"}},
	} {
		reload(step.headers)
		h := g.upstreamSees(t, cookie)
		if got := only(h, "X-Remote-Department"); !slices.Equal(got, step.want) {
			t.Errorf("%s: upstream X-Remote-Department: got %q, want %q", step.name, got, step.want)
		}
		if got := h.Values("X-Remote-User"); !slices.Equal(got, []string{"b.simon@contoso.example"}) {
			t.Errorf("%s: upstream X-Remote-User: got %q, want the user", step.name, got)
		}
	}
}

// TestSharedIdentityConcurrent: requests of several users at once, each
// user's headers rendered once and shared by its requests, each reach the
// upstream as that user (run it with -race).
func TestSharedIdentityConcurrent(t *testing.T) {
	t.Parallel()
	g := newSAMLGateway(t)
	type user struct{ cookie, dept string }
	var users []user
	for i := range 4 {
		dept := fmt.Sprintf("Dept %d", i)
		users = append(users, user{g.signIn(t, tenantDept, nil, samltest.Attribute{Name: claimDepartment, Values: []string{dept}}), dept})
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := g.srv.Client()
			for i := range 25 {
				u := users[(w+i)%len(users)]
				req, err := http.NewRequest(http.MethodGet, g.srv.URL+"/whoami", nil)
				if err != nil {
					errs <- err.Error()
					return
				}
				req.Host = "docs.example.com"
				req.Header.Set("Cookie", u.cookie)
				req.Header.Set("X-Remote-Department", "Spoofed")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				var got echoed
				err = json.NewDecoder(resp.Body).Decode(&got)
				resp.Body.Close()
				if err != nil {
					errs <- err.Error()
					return
				}
				if d := http.Header(got.Header).Values("X-Remote-Department"); !slices.Equal(d, []string{u.dept}) {
					errs <- fmt.Sprintf("the user of %s: upstream X-Remote-Department %q", u.dept, d)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
