package e2e

import (
	"fmt"
	"slices"
	"sync"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// trail writes down, one line each, what a tab does that matters when a
// login goes wrong: every page load and redirect, every cookie the browser
// refused to store or send, failed loads, console messages (where Chromium
// reports Content-Security-Policy violations) and uncaught exceptions.
//
// Some refusals are by design: the IdP's cross-site POST to the ACS does not
// carry the SameSite=Lax session and tenant cookies ("cookie not sent
// [SchemefulSameSiteLax]").
type trail struct {
	w      *syncbuf.Buffer
	prefix string // names the tab

	mu   sync.Mutex
	urls map[network.RequestID]string
}

func newTrail(w *syncbuf.Buffer, prefix string) *trail {
	return &trail{w: w, prefix: prefix, urls: map[network.RequestID]string{}}
}

// record is a chromedp.Listen callback: it runs on the tab's reading
// goroutine, so it only formats and appends.
func (tr *trail) record(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		tr.mu.Lock()
		tr.urls[ev.RequestID] = ev.Request.URL
		tr.mu.Unlock()
		if ev.Type != network.ResourceTypeDocument {
			break
		}
		if ev.RedirectResponse != nil {
			tr.printf("  <- %d redirect", ev.RedirectResponse.Status)
		}
		tr.printf("%s %s", ev.Request.Method, short(ev.Request.URL))
	case *network.EventResponseReceived:
		if ev.Type == network.ResourceTypeDocument {
			tr.printf("  <- %d %s", ev.Response.Status, ev.Response.MimeType)
		}
	case *network.EventLoadingFailed:
		tr.printf("  load of %s failed: %s (blocked: %q, canceled: %t)", short(tr.url(ev.RequestID)), ev.ErrorText, ev.BlockedReason, ev.Canceled)
	case *network.EventResponseReceivedExtraInfo:
		for _, c := range ev.BlockedCookies {
			tr.printf("  Set-Cookie refused %v: %s", c.BlockedReasons, short(c.CookieLine))
		}
	case *network.EventRequestWillBeSentExtraInfo:
		for _, c := range ev.AssociatedCookies {
			reasons := slices.DeleteFunc(slices.Clone(c.BlockedReasons), func(r network.CookieBlockedReason) bool {
				// Cookies for other paths and hosts are not sent by design.
				return r == network.CookieBlockedReasonNotOnPath || r == network.CookieBlockedReasonDomainMismatch
			})
			if len(reasons) > 0 && c.Cookie != nil {
				tr.printf("  cookie not sent %v: %s", reasons, c.Cookie.Name)
			}
		}
	case *log.EventEntryAdded:
		tr.printf("  console %s (%s): %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text)
	case *runtime.EventExceptionThrown:
		text := ev.ExceptionDetails.Text
		if ex := ev.ExceptionDetails.Exception; ex != nil && ex.Description != "" {
			text += " " + ex.Description
		}
		tr.printf("  uncaught exception: %s", text)
	}
}

func (tr *trail) url(id network.RequestID) string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.urls[id]
}

func (tr *trail) printf(format string, args ...any) {
	logf(tr.w, tr.prefix+format, args...)
}

// short cuts long URLs (SAMLRequest) and cookie values down to a
// readable length.
func short(s string) string {
	const limit = 160
	if len(s) <= limit {
		return s
	}
	return s[:limit] + fmt.Sprintf("...(%d bytes)", len(s))
}
