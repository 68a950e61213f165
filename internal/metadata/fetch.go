package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Validators are what a server said about a document, to ask next time
// whether it changed (a conditional GET).
type Validators struct {
	ETag         string
	LastModified string
}

// ErrNotModified is returned by Fetch when the server says the document
// has not changed since the validators were given.
var ErrNotModified = errors.New("metadata: not modified")

// Fetch downloads metadata from u with a timeout and a size limit. With
// validators from an earlier fetch it asks only for a changed document and
// returns ErrNotModified when there is none.
func Fetch(ctx context.Context, client *http.Client, u *url.URL, prev Validators) ([]byte, Validators, error) {
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, Validators{}, fmt.Errorf("fetch IdP metadata: %w", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	resp, err := client.Do(req)
	if err != nil {
		// The client's error names the URL (or where a redirect led),
		// and ends up in logs, /readyz and /tenants.
		var ue *url.Error
		if errors.As(err, &ue) {
			if eu, perr := url.Parse(ue.URL); perr == nil {
				ue.URL = Redact(eu)
			} else {
				ue.URL = "(unparsable URL)"
			}
		}
		return nil, Validators{}, fmt.Errorf("fetch IdP metadata: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, prev, ErrNotModified
	default:
		return nil, Validators{}, fmt.Errorf("fetch IdP metadata: HTTP status %s", resp.Status)
	}
	if resp.ContentLength > MaxSize {
		return nil, Validators{}, fmt.Errorf("fetch IdP metadata: %w: %d bytes", ErrUnusable, resp.ContentLength)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, Validators{}, fmt.Errorf("fetch IdP metadata: %w", err)
	}
	if len(data) > MaxSize {
		return nil, Validators{}, fmt.Errorf("fetch IdP metadata: %w: larger than %d bytes", ErrUnusable, MaxSize)
	}
	return data, Validators{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}, nil
}

// Redact returns u for showing: in logs, /readyz, /tenants and the
// command line. A metadata URL's query can carry a token (Entra's appid
// is not one, but another IdP's may be), and its user information a
// password: both values are replaced by "REDACTED", their keys kept so
// that the URL can still be recognised.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	if c.RawQuery != "" {
		q, err := url.ParseQuery(c.RawQuery)
		if err != nil {
			c.RawQuery = "REDACTED"
		} else {
			for k := range q {
				q[k] = []string{"REDACTED"}
			}
			c.RawQuery = q.Encode()
		}
	}
	c.Fragment, c.RawFragment = "", ""
	return c.Redacted()
}
