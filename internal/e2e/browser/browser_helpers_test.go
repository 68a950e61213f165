package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// defaultChromium is where Debian's chromium package installs the browser.
const defaultChromium = "/usr/bin/chromium"

// flowTimeout bounds all the browser flows of one test together, and
// stepTimeout each step, so that one stuck step leaves time to report.
const (
	flowTimeout = 90 * time.Second
	stepTimeout = 20 * time.Second
)

// tab is a tab of a headless Chromium. All tabs share the browser's
// cookies.
type tab struct {
	name string
	// ctx is the tab's context, which lives until the test ends; it is
	// for looking at the page after a failure.
	ctx context.Context
	// flow is ctx with the deadline of all the flows; steps use it.
	flow context.Context
	// trail is what every tab did: navigations, redirects, refused
	// cookies, console messages. It is printed on failure.
	trail *syncbuf.Buffer
}

// browserFlags returns Chromium's flags. hostRules sends the test's host
// names to 127.0.0.1 (keeping the port of the URL); spki lists the public
// key hashes whose certificate chains are accepted despite an unknown
// issuer.
func browserFlags(userDataDir, hostRules, spki string) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.Flag("headless", true),
		// CI runs as root, where Chromium refuses to start sandboxed.
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		// The servers speak TCP only.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		// Nothing but the test's servers is reachable, and nothing else
		// may be contacted.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		// Debian's launcher means to add this when /dev/shm is small, but
		// its check fails on some hosts; containers often have 64 MB.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("user-data-dir", userDataDir),
		chromedp.Flag("host-resolver-rules", hostRules),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
	}
}

// startBrowser starts Chromium for the stack, returns its first tab, and
// closes it when the test ends (before the servers stop, since cleanups run
// last-in first-out).
func startBrowser(t *testing.T, s *stack) *tab {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = defaultChromium
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("Chromium is required for the end-to-end tests and was not found at %q: %v "+
			"(install the Debian package chromium, or set CHROMIUM to the browser's path)", path, err)
	}
	output, trail := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	rules := "MAP " + s.gatewayHost + " 127.0.0.1, MAP " + s.idpHost + " 127.0.0.1"
	for _, h := range append(s.tenantHosts, s.aliasHosts...) {
		rules += ", MAP " + h + " 127.0.0.1"
	}
	opts := append(browserFlags(t.TempDir(), rules, s.caSPKI),
		chromedp.ExecPath(path),
		chromedp.CombinedOutput(output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx,
		chromedp.WithErrorf(func(format string, args ...any) { logf(output, "chromedp: "+format, args...) }))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Chromium output:\n%s", output.String())
			t.Logf("what the tabs did:\n%s", trail.String())
		}
	})
	t.Cleanup(cancelAlloc) // waits for the browser process to exit
	t.Cleanup(cancelTab)
	// The first action starts the browser, which lives as long as ctx: it
	// must not carry the flows' deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium (%s): %v\n%s", path, err, output.String())
	}
	flow, cancelFlow := context.WithTimeout(ctx, flowTimeout)
	t.Cleanup(cancelFlow)
	return newTab(t, "tab 1", ctx, flow, trail)
}

// newTab opens another tab in the same browser, until the test ends.
func (tb *tab) newTab(t *testing.T, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	deadline, _ := tb.flow.Deadline()
	flow, cancelFlow := context.WithDeadline(ctx, deadline)
	t.Cleanup(cancelFlow)
	return newTab(t, name, ctx, flow, tb.trail)
}

func newTab(t *testing.T, name string, ctx, flow context.Context, trail *syncbuf.Buffer) *tab {
	t.Helper()
	if err := chromedp.Listen(ctx, newTrail(trail, "["+name+"] ").record); err != nil {
		t.Fatalf("listen to %s: %v", name, err)
	}
	return &tab{name: name, ctx: ctx, flow: flow, trail: trail}
}

func logf(w *syncbuf.Buffer, format string, args ...any) {
	line := strings.TrimSuffix(fmt.Sprintf(format, args...), "\n") + "\n"
	_, _ = w.Write([]byte(line))
}

// do runs steps within stepTimeout, failing the test with what was being
// done.
func (tb *tab) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.flow, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v (the log of what the tabs did follows the test)", what, err)
	}
}

// text returns the visible text of the element with this id.
func (tb *tab) text(t *testing.T, id string) string {
	t.Helper()
	s, err := chromedp.Run(tb.flow, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("read #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

// location returns the page's URL.
func (tb *tab) location(t *testing.T) string {
	t.Helper()
	loc, err := chromedp.Run(tb.flow, chromedp.Location())
	if err != nil {
		t.Fatalf("read location: %v", err)
	}
	return loc
}

// cookies returns every cookie the browser holds for host, whatever its
// path.
func (tb *tab) cookies(t *testing.T, host string) map[string]*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(tb.flow, storage.GetCookies, storage.GetCookiesParams{})
	if err != nil {
		t.Fatalf("get cookies: %v", err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range res.Cookies {
		if c.Domain == host {
			out[c.Name] = c
		}
	}
	return out
}

// fetch runs fetch(path) in the page and returns the status and body.
func (tb *tab) fetch(t *testing.T, path string) (status int, body string) {
	t.Helper()
	type result struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	quoted, err := json.Marshal(path)
	if err != nil {
		t.Fatal(err)
	}
	js := `fetch(` + string(quoted) + `).then(async r => ({status: r.status, body: await r.text()}))`
	r, err := chromedp.Run(tb.flow, chromedp.Evaluate[result](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch %s: %v", path, err)
	}
	return r.Status, r.Body
}

// dumpOnFailure logs the page's URL and text and saves a screenshot, if the
// test failed. Defer it at the start of each flow.
func (tb *tab) dumpOnFailure(t *testing.T) {
	if !t.Failed() {
		return
	}
	// The flows' deadline may be what failed: look with a fresh one.
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	if loc, err := chromedp.Run(ctx, chromedp.Location()); err != nil {
		t.Logf("%s: cannot read the URL: %v", tb.name, err)
	} else {
		t.Logf("%s URL: %s", tb.name, loc)
	}
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : "(no body)"`)); err != nil {
		t.Logf("%s: cannot read the page text: %v", tb.name, err)
	} else {
		t.Logf("%s page text:\n%s", tb.name, text)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("%s: cannot take a screenshot: %v", tb.name, err)
		return
	}
	name := filepath.Join(t.ArtifactDir(), strings.ReplaceAll(tb.name, " ", "")+".png")
	if err := os.WriteFile(name, png, 0o644); err != nil {
		t.Logf("save screenshot: %v", err)
		return
	}
	t.Logf("%s screenshot: %s (kept only with go test -artifacts)", tb.name, name)
}
