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
type Problem struct {
	Path string // e.g. "tenants[2].idp_metadata_url"; "" for the file as a whole
	Msg  string
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

// LookupEnv is os.LookupEnv; tests pass their own.
type LookupEnv func(key string) (string, bool)

// Load reads, defaults and validates the configuration file at path.
// Relative paths in it are relative to the file's folder. The error, if any,
// joins one *Problem per thing wrong.
func Load(path string, env LookupEnv) (*Config, error) {
	data, err := os.ReadFile(path)
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
// When the document decodes but does not validate, Parse returns the error
// together with a partial Config, so that a checker can go on to report
// problems that only show when the named files are loaded. A caller that
// gets an error must not use the Config for anything else.
func Parse(data []byte, dir string, env LookupEnv) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, &Problem{Msg: fmt.Sprintf("config is larger than %d bytes", maxConfigSize)}
	}
	var raw file
	if err := decode(data, &raw); err != nil {
		return nil, err
	}
	v := &validator{dir: dir, env: env}
	cfg := v.config(&raw)
	if len(v.problems) > 0 {
		return cfg, errors.Join(v.problems...)
	}
	return cfg, nil
}

// decode strictly decodes data into out. Unknown keys and type mismatches are
// reported with their key paths.
func decode(data []byte, out *file) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Problem{Msg: "config is empty"}
		}
		return &Problem{Msg: fmt.Sprintf("invalid YAML: %v", err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return &Problem{Msg: "config must hold exactly one YAML document"}
	}

	lines := map[int]string{}
	var problems []error
	checkKeys(&doc, reflect.TypeFor[file](), "", lines, &problems)
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	if err := doc.Decode(out); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return &Problem{Msg: fmt.Sprintf("invalid YAML: %v", err)}
		}
		for _, msg := range te.Errors {
			problems = append(problems, typeProblem(msg, lines))
		}
		return errors.Join(problems...)
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// typeProblem turns a yaml.v3 type error ("line 7: cannot unmarshal ...")
// into a Problem at the key path that starts on that line.
func typeProblem(msg string, lines map[int]string) *Problem {
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return &Problem{Msg: msg}
	}
	n, _ := strconv.Atoi(m[1])
	if path, ok := lines[n]; ok {
		return &Problem{Path: path, Msg: m[2]}
	}
	return &Problem{Msg: msg}
}

// checkKeys walks the YAML tree alongside the Go type it decodes into,
// reporting every key that has no field, and records the key path of every
// line so that later errors can name the key.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines map[int]string, problems *[]error) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path != "" {
		if _, seen := lines[n.Line]; !seen {
			lines[n.Line] = path
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				*problems = append(*problems, &Problem{Path: path, Msg: fmt.Sprintf("must be a mapping (line %d)", n.Line)})
			}
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			child := joinPath(path, key.Value)
			f, ok := fields[key.Value]
			if !ok {
				*problems = append(*problems, &Problem{Path: child, Msg: fmt.Sprintf("unknown key (line %d)", key.Line)})
				continue
			}
			lines[key.Line] = child
			checkKeys(val, f.Type, child, lines, problems)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				*problems = append(*problems, &Problem{Path: path, Msg: fmt.Sprintf("must be a list (line %d)", n.Line)})
			}
			return
		}
		for i, item := range n.Content {
			checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines, problems)
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
