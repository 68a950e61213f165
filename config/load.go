package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration, at a key path.
//
// Problems come in two kinds. A global problem (Tenant == "": the YAML,
// unknown keys, public_url, listeners, keys, duplicate tenant IDs, hosts or
// domains) makes the whole configuration unusable: the gateway refuses to
// start, and a reload keeps the configuration in force. A tenant problem
// (Tenant != "": that tenant's own IdP material, such as its metadata file
// or pinned metadata signer) affects that tenant alone: it is not ready,
// or keeps its last good metadata, while every other tenant serves.
type Problem struct {
	Path string // e.g. "tenants[2].idp_metadata_url"; "" for the file as a whole
	Msg  string
	// Tenant is the ID of the one tenant the problem affects, or "" for a
	// global problem.
	Tenant string
}

func (p *Problem) Error() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Problems returns every *Problem in err, which may be a joined error.
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if p, ok := err.(*Problem); ok {
			out = append(out, p)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		out = append(out, &Problem{Msg: err.Error()})
	}
	walk(err)
	return out
}

// Global returns the global problems in err (see Problem), joined, or nil
// when there are none: then the Config that came with err can serve, and
// each tenant problem is also in its tenant's Problems.
func Global(err error) error {
	var global []error
	for _, p := range Problems(err) {
		if p.Tenant == "" {
			global = append(global, p)
		}
	}
	return errors.Join(global...)
}

// LookupEnv is os.LookupEnv; tests pass their own.
type LookupEnv func(key string) (string, bool)

// Load reads, defaults and validates the configuration file at path.
// Relative paths in it are relative to the file's folder. The error, if any,
// joins one *Problem per thing wrong.
func Load(path string, env LookupEnv) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Problem{Msg: fmt.Sprintf("read config: %v", err)}
	}
	defer f.Close()
	// Read one byte past the limit so an endless file (a pipe, /dev/zero)
	// is refused instead of exhausting memory.
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, &Problem{Msg: fmt.Sprintf("read config: %v", err)}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Problem{Msg: fmt.Sprintf("config path: %v", err)}
	}
	cfg, err := Parse(data, filepath.Dir(abs), env)
	if cfg != nil {
		cfg.Path = abs
	}
	return cfg, err
}

// maxConfigSize guards against pointing -config at something that is not a
// config file.
const maxConfigSize = 4 << 20

// Parse decodes, defaults and validates a configuration document. dir is the
// folder relative paths are resolved against.
//
// When the document is YAML but has problems, Parse returns the error
// together with a partial Config, so that a checker can go on to report
// problems that only show when the named files are loaded. The error holds
// every problem, global and tenant. When Global(err) is nil, every problem
// is a tenant problem and the Config is usable: those tenants carry their
// problems in Tenant.Problems, and the gateway serves the others. Otherwise
// the Config must not be used for anything but reporting.
func Parse(data []byte, dir string, env LookupEnv) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, &Problem{Msg: fmt.Sprintf("config is larger than %d bytes", maxConfigSize)}
	}
	var raw file
	d, err := decode(data, &raw)
	if err != nil {
		return nil, err
	}
	if d.fatal {
		return nil, errors.Join(d.problems...)
	}
	// Validate even when decoding found unknown keys or type errors: a
	// typo must not hide every other problem in the file. A value that did
	// not decode is not also reported as missing.
	v := &validator{dir: dir, env: env}
	cfg := v.config(&raw)
	problems := d.problems
	for _, p := range v.problems {
		if !d.consequence(p.(*Problem)) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return cfg, errors.Join(problems...)
	}
	return cfg, nil
}

// decoded is what decode found wrong.
type decoded struct {
	problems []error
	// brokenPaths did not decode; validation problems at or under them
	// are consequences and not reported.
	brokenPaths []string
	// fatal means the document could not be decoded at all, so validating
	// it would only report every key as missing.
	fatal bool
}

func (d *decoded) add(p *Problem) {
	d.problems = append(d.problems, p)
	if p.Path == "" {
		d.fatal = true
		return
	}
	d.brokenPaths = append(d.brokenPaths, p.Path)
}

// consequence reports whether a validation problem only follows from a
// value that did not decode: it is at or under that value's path, or it is
// about that key of its parent ("exactly one of hash_key, ..." when
// hash_key held a mapping).
func (d *decoded) consequence(p *Problem) bool {
	for _, b := range d.brokenPaths {
		if p.Path == b || isUnder(p.Path, b) {
			return true
		}
		if isUnder(b, p.Path) {
			key := b[strings.LastIndexAny(b, ".")+1:]
			if strings.Contains(p.Msg, key) {
				return true
			}
		}
	}
	return false
}

// decode decodes data into out, as far as it can. It returns an error only
// when data is not a single YAML document; unknown keys and type mismatches
// are returned as problems with their key paths, and the rest of the
// document is still decoded.
func decode(data []byte, out *file) (*decoded, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Problem{Msg: "config is empty"}
		}
		return nil, &Problem{Msg: fmt.Sprintf("invalid YAML: %v", err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Problem{Msg: "config must hold exactly one YAML document"}
	}

	d := &decoded{}
	w := &keyWalker{lines: map[int]string{}, shapeLines: map[int]bool{}, d: d}
	w.check(&doc, reflect.TypeFor[file](), "")
	if err := doc.Decode(out); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &Problem{Msg: fmt.Sprintf("invalid YAML: %v", err)}
		}
		for _, msg := range te.Errors {
			p := typeProblem(msg, w.lines, w.shapeLines)
			switch {
			case p == nil:
			case !strings.Contains(msg, "cannot unmarshal"):
				// Anything else (a duplicate key) stops yaml.v3 from
				// decoding the rest of the document.
				d.problems = append(d.problems, p)
				d.fatal = true
			default:
				d.add(p)
			}
		}
	}
	return d, nil
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// ambiguous marks a line that holds more than one key (flow style), where
// a yaml error, which only gives the line, cannot be pinned to one key.
const ambiguous = "\x00"

// typeProblem turns a yaml.v3 type error ("line 7: cannot unmarshal ...")
// into a Problem at the key path that starts on that line, or nil when the
// walker already reported that line's value as the wrong shape.
func typeProblem(msg string, lines map[int]string, shapeLines map[int]bool) *Problem {
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return &Problem{Msg: msg}
	}
	n, _ := strconv.Atoi(m[1])
	if shapeLines[n] {
		return nil
	}
	if path, ok := lines[n]; ok && path != ambiguous {
		return &Problem{Path: path, Msg: m[2]}
	}
	return &Problem{Msg: msg}
}

// recordLine notes that path starts on line. A list item and its first key
// share a line ("- id: acme"): the deeper path wins. Two unrelated keys on
// one line make it ambiguous.
func recordLine(lines map[int]string, line int, path string) {
	prev, seen := lines[line]
	switch {
	case !seen || isUnder(path, prev):
		lines[line] = path
	case prev == path || prev == ambiguous || isUnder(prev, path):
	default:
		lines[line] = ambiguous
	}
}

// isUnder reports whether path is a key path inside parent.
func isUnder(path, parent string) bool {
	return strings.HasPrefix(path, parent+".") || strings.HasPrefix(path, parent+"[")
}

// keyWalker walks the YAML tree alongside the Go type it decodes into,
// reporting every key that has no field and every value of the wrong shape,
// and records the key path of every line so that yaml's own errors, which
// only give a line, can name the key.
type keyWalker struct {
	lines      map[int]string
	shapeLines map[int]bool
	d          *decoded
}

func (w *keyWalker) shape(path, want string, n *yaml.Node) {
	w.shapeLines[n.Line] = true
	w.d.add(&Problem{Path: path, Msg: fmt.Sprintf("must be a %s (line %d)", want, n.Line)})
}

func (w *keyWalker) check(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	isNull := n.Kind == yaml.ScalarNode && n.Tag == "!!null"
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if !isNull {
				w.shape(path, "mapping", n)
			}
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			if key.Value == "<<" && key.Tag == "!!merge" {
				// A merge key (<<: *defaults) brings in the keys of the
				// mapping or mappings it names, at this level.
				merged := []*yaml.Node{val}
				if val.Kind == yaml.SequenceNode {
					merged = val.Content
				}
				for _, m := range merged {
					w.check(m, t, path)
				}
				continue
			}
			child := joinPath(path, key.Value)
			f, ok := fields[key.Value]
			if !ok {
				w.d.problems = append(w.d.problems, &Problem{Path: child, Msg: fmt.Sprintf("unknown key (line %d)", key.Line)})
				continue
			}
			recordLine(w.lines, key.Line, child)
			w.check(val, f.Type, child)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			if !isNull {
				w.shape(path, "mapping", n)
			}
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			child := joinPath(path, key.Value)
			recordLine(w.lines, key.Line, child)
			w.check(val, t.Elem(), child)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if !isNull {
				w.shape(path, "list", n)
			}
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			recordLine(w.lines, item.Line, p)
			w.check(item, t.Elem(), p)
		}
	default:
		// yaml reports a bad scalar at the value's line, which differs
		// from the key's when the value is a block below it.
		if path != "" {
			recordLine(w.lines, n.Line, path)
		}
	}
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// yamlFields maps the yaml tag names of struct type t to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f
	}
	return fields
}
