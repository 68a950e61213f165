package docs

import (
	"bytes"
	"cmp"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
)

// pageData is what the index template renders. Everything in it is
// attacker-controllable (headers, file names), which is why the template is
// html/template and takes no template.HTML values.
type pageData struct {
	User, Email, Name, Groups, Tenant string
	// GroupList is Groups read as the list it is (parseList);
	// GroupsInvalid says it could not be.
	GroupList     []string
	GroupsInvalid bool
	Headers       []headerRow
	Documents     []documentRow
}

type headerRow struct{ Name, Value string }

type documentRow struct {
	Name      string
	Href      string // already path-escaped, so '?' and '#' in names survive
	Size      int64
	HumanSize string
}

// index renders the demo page: who the gateway says the caller is, the
// documents, and an upload form.
func (s *Service) index(w http.ResponseWriter, r *http.Request) error {
	docs, err := s.list()
	if err != nil {
		return err
	}
	data := pageData{
		User:      headerValue(r.Header, headerRemoteUser),
		Email:     headerValue(r.Header, headerRemoteEmail),
		Name:      headerValue(r.Header, headerRemoteName),
		Groups:    headerValue(r.Header, headerRemoteGroups),
		Tenant:    headerValue(r.Header, headerRemoteTenant),
		Documents: docs,
	}
	groups, ok := parseList(data.Groups)
	data.GroupList, data.GroupsInvalid = groups, !ok
	for name, values := range r.Header {
		if isIdentityHeader(name) {
			data.Headers = append(data.Headers, headerRow{Name: name, Value: strings.Join(values, ", ")})
		}
	}
	slices.SortFunc(data.Headers, func(a, b headerRow) int { return cmp.Compare(a.Name, b.Name) })

	// Render to a buffer first so a template failure becomes a clean 500
	// instead of half a page. The page is small; documents are not inlined.
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, data); err != nil {
		return fmt.Errorf("docs: render page: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store") // the page shows the caller's identity
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy",
		"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	_, _ = buf.WriteTo(w)
	return nil
}

// list returns the downloadable documents in Dir, sorted by name. It skips
// directories (WebDAV can create them) and dot files, which include
// in-flight uploads.
func (s *Service) list() ([]documentRow, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("docs: list documents: %w", err)
	}
	var rows []documentRow
	for _, e := range entries {
		if !e.Type().IsRegular() || !validName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed since ReadDir; not worth failing the page
		}
		rows = append(rows, documentRow{
			Name:      e.Name(),
			Href:      documentPath(e.Name()),
			Size:      fi.Size(),
			HumanSize: humanSize(fi.Size()),
		})
	}
	return rows, nil
}

// humanSize formats n bytes with a binary unit, e.g. "1.5 KiB".
func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// pageHTML is the index page. Elements a browser test reads carry ids; the
// identity values sit directly inside their element, with no surrounding
// whitespace, so textContent equals the header value. The group list shows
// X-Remote-Groups parsed, one group per item.
const pageHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo Document Service</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 56rem; margin: 2rem auto; padding: 0 1rem; color: #1f2933; }
header { display: flex; justify-content: space-between; align-items: baseline; }
.note { background: #fff8e1; border-left: 4px solid #f0b429; padding: .5rem 1rem; }
#signed-in { border: 1px solid #cbd2d9; border-radius: 6px; padding: 0 1rem 1rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; border-bottom: 1px solid #e4e7eb; padding: .25rem .5rem; vertical-align: top; word-break: break-all; }
#documents li { margin: .25rem 0; }
.size { color: #616e7c; }
</style>
</head>
<body>
<header>
<h1>Demo Document Service</h1>
<a id="sign-out" href="/auth/api/v1/saml/logout">Sign out</a>
</header>
<p class="note" id="upstream-note">This page is served by the upstream document service running behind the sso-gateway.
It does no authentication of its own: it knows who you are only from the identity headers the gateway added to your request.</p>

<section id="signed-in">
<h2>Signed in as</h2>
<dl>
<dt>User</dt><dd id="remote-user">{{.User}}</dd>
<dt>Email</dt><dd id="remote-email">{{.Email}}</dd>
<dt>Name</dt><dd id="remote-name">{{.Name}}</dd>
<dt>Groups</dt><dd id="remote-groups">{{.Groups}}</dd>
<dt>Group list</dt><dd>{{if .GroupsInvalid}}<span id="remote-groups-invalid">not a valid list</span>{{else}}<ul id="remote-group-list">{{range .GroupList}}<li>{{.}}</li>{{end}}</ul>{{end}}</dd>
<dt>Tenant</dt><dd id="remote-tenant">{{.Tenant}}</dd>
</dl>
<h3>Identity headers received</h3>
<table id="identity-headers">
<thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead>
<tbody>
{{- range .Headers}}
<tr><th scope="row"><code>{{.Name}}</code></th><td><code>{{.Value}}</code></td></tr>
{{- else}}
<tr><td colspan="2">No identity headers received.</td></tr>
{{- end}}
</tbody>
</table>
</section>

<section>
<h2>Documents</h2>
<ul id="documents">
{{- range .Documents}}
<li data-name="{{.Name}}" data-size="{{.Size}}"><a href="{{.Href}}">{{.Name}}</a> <span class="size" title="{{.Size}} bytes">{{.HumanSize}}</span></li>
{{- end}}
</ul>
{{- if not .Documents}}
<p id="no-documents">No documents yet.</p>
{{- end}}
<h2>Upload</h2>
<form id="upload" method="post" action="/documents" enctype="multipart/form-data">
<input type="file" name="file" required>
<button type="submit">Upload</button>
</form>
</section>
</body>
</html>
`
