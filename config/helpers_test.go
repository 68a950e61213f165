package config_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/testfiles"
)

// fixture is a folder holding every file the test configs name: key pairs,
// IdP metadata and secret files. Tests only read it, so parallel subtests
// share one.
type fixture struct {
	dir string
}

// Names of the files in a fixture's folder, relative to it.
const (
	spCertFile    = "sp-cert.pem"    // 2048-bit SP certificate
	spKeyFile     = "sp-key.pem"     // its key (PKCS #8)
	otherCertFile = "other-cert.pem" // 2048-bit certificate of another key
	otherKeyFile  = "other-key.pem"
	smallCertFile = "small-cert.pem" // 1024-bit pair
	smallKeyFile  = "small-key.pem"
	metadataFile  = "idp/acme.xml"        // IdP metadata of a samltest.IdP
	hashKeyFile   = "secrets/hash.key"    // base64 of hashKey, with a newline
	blockKeyFile  = "secrets/block.key"   // base64 of blockKey, with a newline
	shortKeyFile  = "secrets/short.key"   // base64 of 31 bytes
	garbageFile   = "secrets/garbage.key" // not base64
	folderName    = "secrets"             // a folder, not a file
)

// The session keys the fixtures and the base document use.
var (
	hashKey  = bytes.Repeat([]byte{'h'}, 64)
	blockKey = bytes.Repeat([]byte{'b'}, 32)
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// b64n is the base64 of n bytes.
func b64n(n int) string { return b64(bytes.Repeat([]byte{'k'}, n)) }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	for _, kp := range []struct {
		name string
		bits int
	}{{"sp", 2048}, {"other", 2048}, {"small", 1024}} {
		key, cert := samltest.NewKeyPair(t, kp.name, kp.bits, now.Add(-time.Hour), now.AddDate(1, 0, 0))
		samltest.WriteKeyPairPEM(t, dir, kp.name, key, cert)
	}
	testfiles.Write(t, filepath.Join(dir, metadataFile), samltest.NewIDP(t).MetadataXML())
	testfiles.Write(t, filepath.Join(dir, hashKeyFile), []byte(b64(hashKey)+"\n"))
	testfiles.Write(t, filepath.Join(dir, blockKeyFile), []byte(b64(blockKey)+"\n"))
	testfiles.Write(t, filepath.Join(dir, shortKeyFile), []byte(b64n(31)))
	testfiles.Write(t, filepath.Join(dir, garbageFile), []byte("this is not base64!\n"))
	return &fixture{dir: dir}
}

func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

// baseDoc returns a complete, valid configuration document whose relative
// paths point into a fixture's folder. Tests edit it and marshal it.
func baseDoc() map[string]any {
	return map[string]any{
		"public_url": "https://sso.example.com",
		"upstream":   "http://127.0.0.1:3000",
		"sp": map[string]any{
			"cert_file": spCertFile,
			"key_file":  spKeyFile,
		},
		"session": map[string]any{
			"keys": []any{
				map[string]any{"hash_key": b64(hashKey), "block_key": b64(blockKey)},
			},
		},
		"tenants": []any{
			map[string]any{
				"id":                "acme",
				"idp_metadata_file": metadataFile,
				"email_domains":     []any{"acme.example"},
			},
			map[string]any{
				"id":               "contoso",
				"idp_metadata_url": "https://login.microsoftonline.com/contoso/federationmetadata/2007-06/federationmetadata.xml?appid=1",
				"email_domains":    []any{"contoso.example"},
			},
		},
	}
}

// deleted, as an edit's value, removes the key.
var deleted = &struct{ deleted bool }{true}

// edit sets the value at a key path like "tenants[1].id" in a document.
// An index one past the end of a list appends.
type edit struct {
	path  string
	value any
}

func apply(t *testing.T, doc map[string]any, edits ...edit) map[string]any {
	t.Helper()
	for _, e := range edits {
		setPath(t, doc, e.path, e.value)
	}
	return doc
}

func setPath(t *testing.T, doc map[string]any, path string, value any) {
	t.Helper()
	// Split "a.b[1][2].c" into steps: string keys and int indexes.
	var steps []any
	for _, seg := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(seg, "[")
		steps = append(steps, name)
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			n, err := strconv.Atoi(idx)
			if !ok || err != nil {
				t.Fatalf("bad edit path %q", path)
			}
			steps = append(steps, n)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	var cur any = doc
	for i, step := range steps {
		last := i == len(steps)-1
		switch c := cur.(type) {
		case map[string]any:
			key := step.(string)
			if last {
				if value == deleted {
					delete(c, key)
				} else {
					c[key] = value
				}
				return
			}
			if _, ok := c[key]; !ok {
				if _, nextIsIndex := steps[i+1].(int); nextIsIndex {
					c[key] = []any{}
				} else {
					c[key] = map[string]any{}
				}
			}
			if list, ok := c[key].([]any); ok {
				// Lists are values: grow them in place through the parent.
				n := steps[i+1].(int)
				if n == len(list) {
					c[key] = append(list, map[string]any{})
				}
			}
			cur = c[key]
		case []any:
			n := step.(int)
			if last {
				c[n] = value
				return
			}
			cur = c[n]
		default:
			t.Fatalf("edit path %q: step %v into %T", path, step, cur)
		}
	}
}

func marshal(t *testing.T, doc map[string]any) []byte {
	t.Helper()
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// envOf returns a LookupEnv that sees only vars.
func envOf(vars map[string]string) config.LookupEnv {
	return func(key string) (string, bool) {
		v, ok := vars[key]
		return v, ok
	}
}

// problem is an expected problem: its exact key path and a fragment of its
// message.
type problem struct {
	path, msg string
}

func (p problem) String() string { return p.path + ": ..." + p.msg + "..." }

// checkProblems fails t unless err holds exactly the want problems, in any
// order, each matched by a different *Problem.
func checkProblems(t *testing.T, err error, want []problem) {
	t.Helper()
	got := config.Problems(err)
	used := make([]bool, len(got))
	var missing []string
	for _, w := range want {
		found := false
		for i, p := range got {
			if !used[i] && p.Path == w.path && strings.Contains(p.Msg, w.msg) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, w.String())
		}
	}
	var extra []string
	for i, p := range got {
		if !used[i] {
			extra = append(extra, p.Error())
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("got problems:\n%swant (path: message fragment): %q\nmissing %q\nunexpected %q",
			listProblems(got), want, missing, extra)
	}
}

func listProblems(ps []*config.Problem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %q\n", p.Error())
	}
	return b.String()
}
