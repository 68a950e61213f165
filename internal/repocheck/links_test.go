package repocheck

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// repoURL is this repository on GitHub. Links to its main branch
// (repoURL + "blob/main/<path>#<anchor>", or "tree/main/") are checked
// against the working tree, wherever they appear.
const repoURL = "https://github.com/sso-gateway/sso-gateway/"

// repoLink matches an absolute link into the main branch of this
// repository: the path is group 1, the anchor (without "#") group 2. It
// stops at characters that end a URL in Markdown, YAML, JSON and Go.
var repoLink = regexp.MustCompile(`https://github\.com/sso-gateway/sso-gateway/(?:blob|tree)/main/` +
	"([^\\s\"'<>()\\[\\]{}`#?*]*)" + // path
	"(?:\\?[^\\s\"'<>()\\[\\]{}`#*]*)?" + // query, ignored
	"(?:#([^\\s\"'<>()\\[\\]{}`*]*))?") // anchor

// lineAnchor is GitHub's anchor for a line or lines of a file that is not
// rendered (#L12, #L12-L20).
var lineAnchor = regexp.MustCompile(`^L[0-9]+(-L[0-9]+)?$`)

// skipDirs are folders whose documents are not the repository's: fixtures
// that tests read, and git's own.
var skipDirs = map[string]bool{".git": true, "testdata": true, "node_modules": true}

// link is a link destination as written, with the line it starts on.
type link struct {
	dest string
	line int
}

// document is what the check needs of a Markdown file: its links, and the
// anchors a link may name (its headings' slugs and explicit HTML anchors).
type document struct {
	links   []link
	anchors map[string]bool
}

// problem is a link that does not resolve.
type problem struct {
	file string // relative to the root, with slashes
	line int
	link string // as written
	what string
}

func (p problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.file, p.line, p.link, p.what)
}

// slug returns the anchor GitHub gives a heading whose rendered text is
// text: lower case, every character but letters, marks, numbers,
// connector punctuation ('_'), '-' and spaces dropped, spaces made '-' (as
// github-slugger does).
func slug(text string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(text)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-', unicode.IsLetter(r), unicode.IsMark(r), unicode.IsNumber(r), unicode.Is(unicode.Pc, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// slugger hands out the anchors of one document's headings in order: a
// heading whose slug is taken gets "-1", "-2", ... appended, as on GitHub.
type slugger struct{ seen map[string]int }

func (s *slugger) next(text string) string {
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	base := slug(text)
	result := base
	for {
		if _, taken := s.seen[result]; !taken {
			break
		}
		s.seen[base]++
		result = fmt.Sprintf("%s-%d", base, s.seen[base])
	}
	s.seen[result] = 0
	return result
}

// headingText returns the text a heading's inline Markdown renders to, as
// far as its slug can tell: code spans keep their content, links lose their
// destinations, HTML tags and emphasis underscores go, and an escaped
// character is itself. Other markup is punctuation, which slug drops.
func headingText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]):
			b.WriteByte(s[i+1])
			i += 2
		case c == '`':
			n := runLen(s, i, '`')
			if j := closingRun(s, i+n, n); j >= 0 {
				b.WriteString(s[i+n : j])
				i = j + n
			} else {
				b.WriteString(s[i : i+n])
				i += n
			}
		case c == ']' && i+1 < len(s) && s[i+1] == '(':
			if _, end, ok := parseDest(s, i+2); ok {
				i = end
			} else {
				i++
			}
		case c == '<':
			if m := htmlTag.FindString(s[i:]); m != "" {
				i += len(m)
			} else {
				b.WriteByte(c)
				i++
			}
		case c == '_' && (i == 0 || !isWordByte(s[i-1]) || i+1 == len(s) || !isWordByte(s[i+1])):
			i++ // an emphasis delimiter, not text
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

var (
	htmlTag    = regexp.MustCompile(`^</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>`)
	htmlAnchor = regexp.MustCompile(`^<a\s[^<>]*?\b(?:id|name)\s*=\s*"([^"]+)"`)
	htmlHref   = regexp.MustCompile(`^<a\s[^<>]*?\bhref\s*=\s*"([^"]*)"`)
	atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$`)
	setextLine = regexp.MustCompile(`^ {0,3}(?:=+|-+)[ \t]*$`)
	refDef     = regexp.MustCompile(`^ {0,3}\[((?:[^\]\\]|\\.)+)\]:[ \t]*(<[^>\n]*>|\S+)`)
	fenceOpen  = regexp.MustCompile("^[ \t]*(`{3,}|~{3,})")
)

func isASCIIPunct(c byte) bool {
	return c < 0x80 && unicode.IsPunct(rune(c)) || strings.IndexByte("$+<=>^`|~", c) >= 0
}

func isWordByte(c byte) bool {
	return c >= 0x80 || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// runLen returns how many c start s at i.
func runLen(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// closingRun returns where a run of exactly n backticks starts in s at or
// after i (the end of a code span opened by n backticks), or -1.
func closingRun(s string, i, n int) int {
	for i < len(s) {
		j := strings.IndexByte(s[i:], '`')
		if j < 0 {
			return -1
		}
		j += i
		m := runLen(s, j, '`')
		if m == n {
			return j
		}
		i = j + m
	}
	return -1
}

// parseDest reads an inline link's destination and optional title from s
// at i, just after "](", and returns the destination, the index after the
// closing ")", and whether it is one.
func parseDest(s string, i int) (dest string, end int, ok bool) {
	skipSpace := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
			i++
		}
	}
	skipSpace()
	if i < len(s) && s[i] == '<' {
		j := strings.IndexAny(s[i+1:], ">\n")
		if j < 0 || s[i+1+j] != '>' {
			return "", 0, false
		}
		dest, i = s[i+1:i+1+j], i+2+j
	} else {
		var b strings.Builder
		depth := 0
	loop:
		for ; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]):
				i++
				b.WriteByte(s[i])
				continue
			case c == ' ' || c == '\t' || c == '\n' || c < 0x20:
				break loop
			case c == '(':
				depth++
			case c == ')':
				if depth == 0 {
					break loop
				}
				depth--
			}
			b.WriteByte(c)
		}
		dest = b.String()
	}
	skipSpace()
	if i < len(s) && (s[i] == '"' || s[i] == '\'' || s[i] == '(') {
		closer := s[i]
		if closer == '(' {
			closer = ')'
		}
		j := strings.IndexByte(s[i+1:], closer)
		if j < 0 {
			return "", 0, false
		}
		i += j + 2
		skipSpace()
	}
	if i >= len(s) || s[i] != ')' {
		return "", 0, false
	}
	return dest, i + 1, true
}

// normLabel is how link labels compare: case-insensitively, with runs of
// white space as one space.
func normLabel(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// block is a paragraph (or a heading's text) to scan for inline links.
type block struct {
	text string
	line int // of its first line
}

// parse reads a Markdown document: its blocks outside fenced code and HTML
// comments, then the links in them (inline, reference and HTML), skipping
// code spans, and the anchors of its headings.
func parse(src string) document {
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	d := document{anchors: map[string]bool{}}
	defs := map[string]link{}
	var (
		blocks  []block
		para    []string
		paraAt  int
		fence   string // the opening fence while inside fenced code
		comment bool   // inside an HTML comment block
		slugs   slugger
	)
	flush := func() {
		if len(para) > 0 {
			blocks = append(blocks, block{strings.Join(para, "\n"), paraAt})
		}
		para = nil
	}
	heading := func(text string, line int) {
		d.anchors[slugs.next(headingText(text))] = true
		blocks = append(blocks, block{text, line})
	}
	for n, line := range lines {
		lineNo := n + 1
		if fence != "" {
			trimmed := strings.TrimLeft(line, " \t")
			if strings.HasPrefix(trimmed, fence[:1]) && runLen(trimmed, 0, fence[0]) >= len(fence) &&
				strings.TrimSpace(trimmed[runLen(trimmed, 0, fence[0]):]) == "" {
				fence = ""
			}
			continue
		}
		if comment {
			if strings.Contains(line, "-->") {
				comment = false
			}
			continue
		}
		if m := fenceOpen.FindStringSubmatch(line); m != nil && !(m[1][0] == '`' && strings.Contains(line[len(m[0]):], "`")) {
			flush()
			fence = m[1]
			continue
		}
		if trimmed := strings.TrimLeft(line, " "); strings.HasPrefix(trimmed, "<!--") {
			flush()
			comment = !strings.Contains(trimmed[4:], "-->")
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if m := atxHeading.FindStringSubmatch(line); m != nil {
			flush()
			text := strings.TrimRight(m[2], "#")
			if text != m[2] && text != "" && !strings.HasSuffix(text, " ") && !strings.HasSuffix(text, "\t") {
				text = m[2] // a closing sequence needs a space before it
			}
			heading(strings.TrimSpace(text), lineNo)
			continue
		}
		if setextLine.MatchString(line) && len(para) > 0 && !strings.HasPrefix(strings.TrimSpace(para[0]), "|") {
			text := strings.Join(para, " ")
			at := paraAt
			para = nil
			heading(strings.TrimSpace(text), at)
			continue
		}
		if m := refDef.FindStringSubmatch(line); m != nil && len(para) == 0 {
			dest := strings.TrimSuffix(strings.TrimPrefix(m[2], "<"), ">")
			defs[normLabel(m[1])] = link{dest, lineNo}
			d.links = append(d.links, link{dest, lineNo})
			continue
		}
		if len(para) == 0 {
			paraAt = lineNo
		}
		para = append(para, line)
	}
	flush()
	for _, b := range blocks {
		d.links = append(d.links, inlineLinks(b, defs, d.anchors)...)
	}
	return d
}

// inlineLinks returns the links of one block: inline links and images,
// full, collapsed and shortcut references to defs (whose destinations parse
// lists already), and HTML <a href>. Code spans, autolinks and comments are
// skipped. Explicit HTML anchors (<a id>, <a name>) go into anchors.
func inlineLinks(b block, defs map[string]link, anchors map[string]bool) []link {
	s := b.text
	var (
		links []link
		opens []int // where unmatched '[' are
	)
	lineAt := func(i int) int { return b.line + strings.Count(s[:i], "\n") }
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '\\':
			i += 2
		case '`':
			n := runLen(s, i, '`')
			if j := closingRun(s, i+n, n); j >= 0 {
				i = j + n
			} else {
				i += n
			}
		case '<':
			rest := s[i:]
			switch {
			case strings.HasPrefix(rest, "<!--"):
				j := strings.Index(rest[4:], "-->")
				if j < 0 {
					return links
				}
				i += 4 + j + 3
				continue
			case htmlHref.MatchString(rest):
				links = append(links, link{htmlHref.FindStringSubmatch(rest)[1], lineAt(i)})
			}
			if m := htmlAnchor.FindStringSubmatch(rest); m != nil {
				anchors[m[1]] = true
			}
			if m := htmlTag.FindString(rest); m != "" {
				i += len(m)
			} else if j := strings.IndexAny(rest, "> \n"); j > 0 && rest[j] == '>' {
				i += j + 1 // an autolink: absolute, and checked elsewhere if it is ours
			} else {
				i++
			}
		case '[':
			opens = append(opens, i)
			i++
		case ']':
			if len(opens) == 0 {
				i++
				continue
			}
			open := opens[len(opens)-1]
			opens = opens[:len(opens)-1]
			if i+1 < len(s) && s[i+1] == '(' {
				if dest, end, ok := parseDest(s, i+2); ok {
					links = append(links, link{dest, lineAt(open)})
					opens = opens[:0] // no link inside a link
					i = end
					continue
				}
			}
			label := s[open+1 : i]
			end := i + 1
			if i+1 < len(s) && s[i+1] == '[' {
				if j := strings.IndexByte(s[i+2:], ']'); j >= 0 {
					if l := s[i+2 : i+2+j]; l != "" {
						label = l
					}
					end = i + 3 + j
				}
			}
			if _, ok := defs[normLabel(label)]; ok {
				opens = opens[:0]
				i = end
				continue
			}
			i++
		default:
			i++
		}
	}
	return links
}

// checker checks the links of the documents under root, reading each
// target document once.
type checker struct {
	root string
	docs map[string]document
}

func (c *checker) document(path string) (document, error) {
	if d, ok := c.docs[path]; ok {
		return d, nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return document{}, err
	}
	d := parse(string(src))
	c.docs[path] = d
	return d, nil
}

func (c *checker) rel(path string) string {
	r, err := filepath.Rel(c.root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(r)
}

// target checks that path (absolute, cleaned) is inside the root and
// exists, and that anchor, when not empty, is one of its headings' (for
// Markdown) or a line anchor (for other files). It returns what is wrong,
// or "".
func (c *checker) target(path, anchor string) string {
	if path != c.root && !strings.HasPrefix(path, c.root+string(filepath.Separator)) {
		return "leaves the repository"
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("no file or folder %s", c.rel(path))
	}
	if anchor == "" {
		return ""
	}
	switch {
	case info.IsDir():
		return fmt.Sprintf("#%s: an anchor on a folder", anchor)
	case strings.EqualFold(filepath.Ext(path), ".md"):
		d, err := c.document(path)
		if err != nil {
			return err.Error()
		}
		if !d.anchors[anchor] {
			return fmt.Sprintf("no heading in %s has the anchor #%s", c.rel(path), anchor)
		}
	case !lineAnchor.MatchString(anchor):
		return fmt.Sprintf("#%s: not a line anchor, and %s is not Markdown", anchor, c.rel(path))
	}
	return ""
}

// hasScheme reports whether dest is an absolute URL (or a protocol-relative
// one), which the relative check leaves alone.
var hasScheme = regexp.MustCompile(`^(?:[A-Za-z][A-Za-z0-9+.-]*:|//)`)

// relative checks one link of the Markdown file from.
func (c *checker) relative(from string, l link) *problem {
	if l.dest == "" || hasScheme.MatchString(l.dest) {
		return nil
	}
	p := &problem{file: c.rel(from), line: l.line, link: l.dest}
	rawPath, rawAnchor, _ := strings.Cut(l.dest, "#")
	rawPath, _, _ = strings.Cut(rawPath, "?")
	path, err := url.PathUnescape(rawPath)
	if err != nil {
		p.what = fmt.Sprintf("bad escape in the path: %v", err)
		return p
	}
	anchor, err := url.PathUnescape(rawAnchor)
	if err != nil {
		p.what = fmt.Sprintf("bad escape in the anchor: %v", err)
		return p
	}
	switch {
	case path == "":
		path = from
	case strings.HasPrefix(path, "/"):
		path = filepath.Join(c.root, filepath.FromSlash(path))
	default:
		path = filepath.Join(filepath.Dir(from), filepath.FromSlash(path))
	}
	if p.what = c.target(path, anchor); p.what == "" {
		return nil
	}
	return p
}

// absolute checks the links to this repository on GitHub in the file from.
func (c *checker) absolute(from, src string) []problem {
	var problems []problem
	for _, m := range repoLink.FindAllStringSubmatchIndex(src, -1) {
		path := strings.TrimRight(src[m[2]:m[3]], ".,;:")
		anchor := ""
		if m[4] >= 0 {
			anchor = strings.TrimRight(src[m[4]:m[5]], ".,;:")
		}
		p := problem{file: c.rel(from), line: 1 + strings.Count(src[:m[0]], "\n"), link: src[m[0]:m[1]]}
		decoded, err := url.PathUnescape(path)
		if err != nil {
			p.what = fmt.Sprintf("bad escape in the path: %v", err)
		} else {
			p.what = c.target(filepath.Join(c.root, filepath.FromSlash(decoded)), anchor)
		}
		if p.what != "" {
			problems = append(problems, p)
		}
	}
	return problems
}

// check returns every link under root that does not resolve, and the
// Markdown files it read (relative to root). Folders in skipDirs are left
// out.
func check(root string) (problems []problem, markdown []string, err error) {
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, nil, err
	}
	c := &checker{root: root, docs: map[string]document{}}
	err = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != root && skipDirs[e.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if slices.Contains(src[:min(len(src), 8000)], 0) {
			return nil // binary
		}
		if strings.EqualFold(filepath.Ext(path), ".md") {
			markdown = append(markdown, c.rel(path))
			d, err := c.document(path)
			if err != nil {
				return err
			}
			for _, l := range d.links {
				if p := c.relative(path, l); p != nil {
					problems = append(problems, *p)
				}
			}
		}
		problems = append(problems, c.absolute(path, string(src))...)
		return nil
	})
	sort.Slice(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		if a.file != b.file {
			return a.file < b.file
		}
		if a.line != b.line {
			return a.line < b.line
		}
		return a.link < b.link
	})
	return problems, markdown, err
}

// repoRoot returns the repository's root: the nearest folder at or above
// the working directory that holds go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// TestRepositoryLinks: every relative link and anchor in the repository's
// Markdown, and every link to this repository on GitHub in any file,
// resolves in the working tree.
func TestRepositoryLinks(t *testing.T) {
	t.Parallel()
	problems, markdown, err := check(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"README.md", "SECURITY.md"} {
		if !slices.Contains(markdown, want) {
			t.Errorf("checked %q, want %s among them", markdown, want)
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestBrokenLinksFail: the check finds each kind of broken link in a tree
// of bad documents, and only those.
func TestBrokenLinksFail(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	files := map[string]string{
		"README.md": "# Title\n" +
			"\n" +
			"## Set-up\n" +
			"## Set-up\n" +
			"\n" +
			"[same](#set-up) [duplicate](#set-up-1) [other](docs/guide.md#install-it) [folder](docs/) [code](main.go#L3-L9)\n" +
			"[missing file](nope.md)\n" +
			"[missing anchor](#nowhere) and [third duplicate](#set-up-2)\n" +
			"[missing anchor elsewhere](docs/guide.md#nowhere)\n" +
			"[outside](../outside.md)\n" +
			"`[in code](code-span.md)` and ``[in a `longer` span](code-span2.md)``\n" +
			"\n" +
			"```sh\n" +
			"[in a fence](fence.md)\n" +
			"```\n" +
			"<!-- [in a comment](comment.md) -->\n" +
			"[a link that\nwraps](wrapped.md) ![image](img/gone.png \"title\")\n" +
			"[anchor on a folder](docs/#x) [not a line](main.go#main)\n" +
			"\n" +
			"[ref]: nope-ref.md\n",
		"docs/guide.md": "Install it\n" +
			"==========\n" +
			"\n" +
			"[up](../README.md#title) [bad up](../README.md#set-up-3) [root-relative](/README.md#set-up)\n" +
			"<a href=\"../gone.md\">gone</a> <a id=\"here\"></a>[html anchor](#here)\n",
		"main.go": "package main\n",
		"deploy/alerts.yml": "ok: \"" + repoURL + "blob/main/docs/guide.md#install-it\"\n" +
			"bad: \"" + repoURL + "blob/main/docs/guide.md#nope\"\n" +
			"gone: \"" + repoURL + "tree/main/gone/\"\n",
		"testdata/ignored.md": "[ignored](nope.md)\n",
	}
	for name, content := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	problems, _, err := check(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, fmt.Sprintf("%s:%d: %s", p.file, p.line, p.link))
	}
	want := []string{
		"README.md:7: nope.md",
		"README.md:8: #nowhere",
		"README.md:8: #set-up-2",
		"README.md:9: docs/guide.md#nowhere",
		"README.md:10: ../outside.md",
		"README.md:17: wrapped.md",
		"README.md:18: img/gone.png",
		"README.md:19: docs/#x",
		"README.md:19: main.go#main",
		"README.md:21: nope-ref.md",
		"deploy/alerts.yml:2: " + repoURL + "blob/main/docs/guide.md#nope",
		"deploy/alerts.yml:3: " + repoURL + "tree/main/gone/",
		"docs/guide.md:4: ../README.md#set-up-3",
		"docs/guide.md:5: ../gone.md",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
		for _, p := range problems {
			t.Log(p)
		}
	}
}

func TestSlug(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		heading string
		want    string
	}{
		{"SAML rules", "saml-rules"},
		{"Hosts of a tenant's own", "hosts-of-a-tenants-own"},
		{"What it measures, and how", "what-it-measures-and-how"},
		{"SSOGatewayIdPCertificateExpiresWithin30Days", "ssogatewayidpcertificateexpireswithin30days"},
		{"Entra ID → Overview", "entra-id--overview"},
		{"The `deploy/` folder", "the-deploy-folder"},
		{"`log.debug_assertion_tenant`", "logdebug_assertion_tenant"},
		{"snake_case and kebab-case", "snake_case-and-kebab-case"},
		{"_Emphasis_ and **strong**", "emphasis-and-strong"},
		{"See [the guide](docs/guide.md#x) now", "see-the-guide-now"},
		{"A <code>tag</code>", "a-tag"},
		{"Escaped \\_underscore\\_", "escaped-_underscore_"},
		{"C++ & Go: 100% (really)?", "c--go-100-really"},
		{"Ünïcode Straße", "ünïcode-straße"},
		{"  Trimmed  ", "trimmed"},
	} {
		t.Run(tt.heading, func(t *testing.T) {
			t.Parallel()
			if got := slug(headingText(tt.heading)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSluggerDuplicates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		headings []string
		want     []string
	}{
		{"distinct", []string{"A", "B"}, []string{"a", "b"}},
		{"repeated", []string{"Usage", "Usage", "Usage"}, []string{"usage", "usage-1", "usage-2"}},
		{"differ only in punctuation", []string{"Why?", "Why!"}, []string{"why", "why-1"}},
		{"a heading that looks numbered", []string{"Usage", "Usage 1", "Usage"}, []string{"usage", "usage-1", "usage-2"}},
		{"numbered first", []string{"Usage 1", "Usage", "Usage"}, []string{"usage-1", "usage", "usage-2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s slugger
			var got []string
			for _, h := range tt.headings {
				got = append(got, s.next(h))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		src     string
		links   []string
		anchors []string
	}{
		{"inline", "See [a](a.md) and [b](<b c.md> \"title\").", []string{"a.md", "b c.md"}, nil},
		{"parentheses in the destination", "[a](a_(b).md)", []string{"a_(b).md"}, nil},
		{"link text with code and brackets", "[`x]`](x.md) [[y]](y.md)", []string{"x.md", "y.md"}, nil},
		{"image", "![alt](img.png)", []string{"img.png"}, nil},
		{"wrapped over lines", "a [long\nlink](long.md)", []string{"long.md"}, nil},
		{"code span", "`[a](a.md)` [b](b.md)", []string{"b.md"}, nil},
		{"code span over lines", "`one\n[a](a.md) two` [b](b.md)", []string{"b.md"}, nil},
		{"unclosed backticks are text", "`` [a](a.md)", []string{"a.md"}, nil},
		{"escaped bracket", `\[a](a.md)`, nil, nil},
		{"fenced code", "```\n[a](a.md)\n```\n[b](b.md)", []string{"b.md"}, nil},
		{"tilde fence in a list", "- x\n  ~~~~\n  [a](a.md)\n  ~~~~\n[b](b.md)", []string{"b.md"}, nil},
		{"a fence needs its own closer", "````\n```\n[a](a.md)\n````\n[b](b.md)", []string{"b.md"}, nil},
		{"comment", "<!-- [a](a.md) -->\n<!--\n[b](b.md)\n-->\n[c](c.md) <!-- [d](d.md) -->", []string{"c.md"}, nil},
		{"autolink", "<https://example.com/x>", nil, nil},
		{"html", `<a href="h.md">h</a> <a name="n"></a>`, []string{"h.md"}, []string{"n"}},
		{"references", "[a][r] [r][] [r]\n\n[r]: r.md", []string{"r.md"}, nil},
		{"not a reference", "[redacted] and [x]", nil, nil},
		{"headings", "# One #\n## Two ##\n### Three#\nFour\n====\n\nFive\n-----\n####### Seven", nil,
			[]string{"one", "two", "three", "four", "five"}},
		{"heading with a link", "## See [x](x.md)", []string{"x.md"}, []string{"see-x"}},
		{"table is no heading", "| a |\n|---|", nil, nil},
		{"heading in a fence", "```\n# No\n```", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := parse(tt.src)
			var links []string
			for _, l := range d.links {
				links = append(links, l.dest)
			}
			slices.Sort(links)
			links = slices.Compact(links)
			if !slices.Equal(links, tt.links) {
				t.Errorf("links: got %q, want %q", links, tt.links)
			}
			var anchors []string
			for a := range d.anchors {
				anchors = append(anchors, a)
			}
			slices.Sort(anchors)
			want := slices.Sorted(slices.Values(tt.anchors))
			if !slices.Equal(anchors, want) {
				t.Errorf("anchors: got %q, want %q", anchors, want)
			}
		})
	}
}
