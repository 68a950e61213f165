package docs

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"unicode/utf8"
)

const (
	// tempPrefix starts every in-flight upload's file name. The leading dot
	// keeps it out of the listing and makes it an invalid document name, so
	// it can be neither downloaded nor overwritten through /documents.
	tempPrefix = ".upload-"

	// maxNameLen is the usual file-system limit on one path component;
	// checking it here turns a late 500 from the OS into an early 400.
	maxNameLen = 255

	// copyBufferSize is larger than io.Copy's 32 KiB to cut syscalls on
	// multi-gigabyte transfers, while staying constant per request.
	copyBufferSize = 256 << 10
)

// stored describes a document after upload, and is what the sha256 endpoint
// reports too, so tests can compare the two directly.
type stored struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// validName reports whether name may be used as a document: a single file
// directly inside Dir. It rejects separators and ".." (escape), a leading
// dot (hidden files and our temp files), control characters including NUL
// (truncation and header injection), and invalid UTF-8.
//
// os.Root enforces containment again underneath, so this check is about
// giving a clear 400 rather than being the only line of defence.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen || name[0] == '.' || !utf8.ValidString(name) {
		return false
	}
	if strings.ContainsAny(name, `/\`) || strings.Contains(name, "..") {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func badName(name string) error {
	return &httpError{
		code: http.StatusBadRequest,
		msg:  "invalid document name",
		err:  fmt.Errorf("docs: rejected document name %q", name),
	}
}

// documentPath is the URL path of a document's download.
func documentPath(name string) string {
	return "/documents/" + url.PathEscape(name)
}

// contentDisposition builds an attachment header whose filename survives
// spaces, quotes and non-ASCII (mime encodes the latter as RFC 2231
// filename*).
func contentDisposition(name string) string {
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}

// openRoot confines file access to Dir. It is opened per request rather than
// once in New because Service has no Close: a Root held for the Service's
// life would leak its descriptor.
func (s *Service) openRoot() (*os.Root, error) {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("docs: open document dir: %w", err)
	}
	return root, nil
}

// openNamed opens the document a request names, checking the name first.
// The file stays open after the Root is closed: they are separate
// descriptors.
func (s *Service) openNamed(r *http.Request) (string, *os.File, fs.FileInfo, error) {
	name := r.PathValue("name")
	if !validName(name) {
		return "", nil, nil, badName(name)
	}
	root, err := s.openRoot()
	if err != nil {
		return "", nil, nil, err
	}
	defer root.Close()
	f, fi, err := openDocument(root, name)
	return name, f, fi, err
}

// openDocument opens the regular file name in root, mapping "absent" and
// "not a file" to 404.
func openDocument(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	notFound := &httpError{code: http.StatusNotFound, msg: "document not found"}
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, notFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("docs: open %q: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("docs: stat %q: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, notFound
	}
	return f, fi, nil
}

// download streams a document. http.ServeContent reads from the file as it
// writes, and handles Range, If-Range and HEAD.
func (s *Service) download(w http.ResponseWriter, r *http.Request) error {
	name, f, fi, err := s.openNamed(r)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Disposition", contentDisposition(name))
	// Uploaded content is arbitrary; never let a browser render it as HTML.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, fi.ModTime(), f)
	return nil
}

// digest reports a document's SHA-256, hashed as it is read, so tests can
// verify multi-gigabyte transfers without downloading them again.
func (s *Service) digest(w http.ResponseWriter, r *http.Request) error {
	name, f, _, err := s.openNamed(r)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, copyBufferSize))
	if err != nil {
		return fmt.Errorf("docs: hash %q: %w", name, err)
	}
	writeJSON(w, http.StatusOK, stored{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// uploadRaw stores the request body as the named document.
func (s *Service) uploadRaw(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !validName(name) {
		return badName(name)
	}
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	up, err := receive(root, r.Body)
	if err != nil {
		return err
	}
	res, err := s.commit(root, up, name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", documentPath(name))
	writeJSON(w, http.StatusCreated, res)
	return nil
}

// uploadMultipart stores the one file part of a multipart/form-data body
// under its own file name. It reads parts with MultipartReader, never
// ParseMultipartForm, which would spool the whole body before we see it.
//
// The file is renamed into place only after the whole body has been read,
// so a second file part or a truncated body leaves Dir unchanged.
func (s *Service) uploadMultipart(w http.ResponseWriter, r *http.Request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return &httpError{code: http.StatusBadRequest, msg: "want a multipart/form-data body", err: err}
	}
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()

	var (
		up   *pending
		name string
	)
	defer func() {
		if up != nil {
			up.discard(root) // no-op once committed
		}
	}()
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &httpError{code: http.StatusBadRequest, msg: "malformed multipart body", err: err}
		}
		// FileName applies filepath.Base, so a client-supplied path is
		// reduced to its last element before validName sees it.
		filename := part.FileName()
		if filename == "" {
			// Ordinary form fields carry nothing we need; drain them
			// without holding them.
			if _, err := io.Copy(io.Discard, part); err != nil {
				return &httpError{code: http.StatusBadRequest, msg: "upload interrupted", err: err}
			}
			continue
		}
		if up != nil {
			return &httpError{code: http.StatusBadRequest, msg: "only one file per upload"}
		}
		if !validName(filename) {
			return badName(filename)
		}
		if up, err = receive(root, part); err != nil {
			return err
		}
		name = filename
	}
	if up == nil {
		return &httpError{code: http.StatusBadRequest, msg: `no file in upload (want a part with a filename, e.g. field "file")`}
	}
	res, err := s.commit(root, up, name)
	if err != nil {
		return err
	}
	if wantsJSON(r) {
		w.Header().Set("Location", documentPath(name))
		writeJSON(w, http.StatusCreated, res)
		return nil
	}
	// Post/redirect/get: a browser reload must not resubmit the upload.
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}

// wantsJSON reports whether the client asked for a JSON answer rather than
// the browser redirect.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(strings.ToLower(r.Header.Get("Accept")), "application/json")
}

// pending is a fully received upload in a temporary file, not yet visible
// under its document name.
type pending struct {
	tmp       string
	size      int64
	sum       []byte
	committed bool
}

// discard removes the temporary file unless the upload was committed.
func (p *pending) discard(root *os.Root) {
	if !p.committed {
		_ = root.Remove(p.tmp) // best effort: a leftover dot file is hidden anyway
	}
}

// receive streams src into a new hidden file in root, hashing on the way,
// so memory use stays constant whatever the size. Read failures (the client
// went away or sent a short body) become 400s, write failures (disk full)
// 500s. On error nothing is left behind.
func receive(root *os.Root, src io.Reader) (*pending, error) {
	tmp := tempPrefix + rand.Text()
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("docs: create temp file: %w", err)
	}
	rd := &readErrors{r: src}
	h := sha256.New()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), rd, make([]byte, copyBufferSize))
	// No fsync: this is demo data, and what matters is that readers never
	// see a half-written document, which the rename already guarantees.
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = root.Remove(tmp)
		if rd.err != nil {
			return nil, &httpError{code: http.StatusBadRequest, msg: "upload interrupted", err: err}
		}
		return nil, fmt.Errorf("docs: write upload: %w", err)
	}
	return &pending{tmp: tmp, size: n, sum: h.Sum(nil)}, nil
}

// commit renames a received upload to name, replacing any document of that
// name atomically.
func (s *Service) commit(root *os.Root, up *pending, name string) (stored, error) {
	if err := root.Rename(up.tmp, name); err != nil {
		up.discard(root)
		return stored{}, fmt.Errorf("docs: store %q: %w", name, err)
	}
	up.committed = true
	res := stored{Name: name, Size: up.size, SHA256: hex.EncodeToString(up.sum)}
	s.log.Info("docs: document stored", "name", name, "size", up.size, "sha256", res.SHA256)
	return res, nil
}

// readErrors remembers whether a copy failed on the reading side, so
// receive can tell a client's fault from the server's.
type readErrors struct {
	r   io.Reader
	err error
}

func (e *readErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}
