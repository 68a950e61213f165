package docs

import (
	"io"
	"net/http"
	"net/url"
	"strings"
)

// websocket greets the client with {"hello": <X-Remote-User>} and then
// echoes every message, so tests can check the gateway upgrades the
// connection, forwards identity on the handshake and relays frames both
// ways. Messages are copied frame by frame, never buffered whole.
func (s *Service) websocket(w http.ResponseWriter, r *http.Request) {
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered with an HTTP error.
		s.log.Info("docs: websocket upgrade refused", "error", err)
		return
	}
	defer conn.Close()
	if err := conn.WriteJSON(map[string]string{"hello": headerValue(r.Header, headerRemoteUser)}); err != nil {
		s.log.Info("docs: websocket hello", "error", err)
		return
	}
	for {
		typ, rd, err := conn.NextReader()
		if err != nil {
			return // a close frame or a broken connection both end the echo
		}
		wr, err := conn.NextWriter(typ)
		if err != nil {
			return
		}
		if _, err := io.Copy(wr, rd); err != nil {
			return
		}
		if err := wr.Close(); err != nil {
			return
		}
	}
}

// sameOrigin is the websocket CheckOrigin. It refuses browser pages from
// other sites (cross-site websocket hijacking would ride the gateway's
// session cookie) but accepts requests with no Origin, which only
// non-browser clients such as the tests send.
//
// The origin may match either Host or X-Forwarded-Host: behind the gateway,
// Host may be the upstream's own address while the browser's Origin names
// the gateway.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	fwd, _, _ := strings.Cut(r.Header.Get(headerForwardedHost), ",")
	for _, h := range []string{r.Host, strings.TrimSpace(fwd)} {
		if h != "" && strings.EqualFold(u.Host, h) {
			return true
		}
	}
	return false
}
