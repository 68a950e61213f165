package repocheck

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sso-gateway/sso-gateway"

// pkg is what go list says of one package of the product's module.
type pkg struct {
	ImportPath string
	Imports    []string // tests aside
}

// listPackages runs go list over the product's module (not the nested
// test modules) from the repository root.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(cmd.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; want the whole module", len(pkgs))
	}
	return pkgs
}

// rule is one import rule of ARCHITECTURE.md: importer may not import
// any package for which forbidden is true.
type rule struct {
	name      string
	applies   func(importer string) bool
	forbidden func(imported string) bool
}

func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func under(prefix string) func(string) bool {
	return func(p string) bool { p = rel(p); return p == prefix || strings.HasPrefix(p, prefix+"/") }
}

func is(names ...string) func(string) bool {
	return func(p string) bool { return slices.Contains(names, rel(p)) }
}

func architectureRules() []rule {
	any := func(string) bool { return true }
	return []rule{
		{"config imports no package of ours but the leaves internal/redirect and internal/gctune",
			is("config"), func(p string) bool { return ours(p) && !is("internal/redirect", "internal/gctune")(p) }},
		{"samlsp never imports proxy or the gateway assembly",
			under("samlsp"), is("proxy", "internal/gateway")},
		{"proxy never imports the gateway assembly",
			under("proxy"), is("internal/gateway")},
		{"nothing imports cmd",
			any, under("cmd")},
		{"only cmd/sso-gateway imports the gateway assembly",
			func(p string) bool { return !is("cmd/sso-gateway")(p) }, is("internal/gateway")},
		{"test support and the end-to-end tests are imported by tests and the benchmarks only",
			func(p string) bool {
				return !under("internal/testsupport")(p) && !is("internal/loadtest", "internal/scalegen")(p)
			}, func(p string) bool {
				return under("internal/testsupport")(p) || under("internal/e2e")(p)
			}},
	}
}

// violations returns every import of pkgs that breaks one of rules.
func violations(pkgs []pkg, rules []rule) []string {
	var out []string
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			for _, r := range rules {
				if r.applies(p.ImportPath) && r.forbidden(imp) {
					out = append(out, fmt.Sprintf("%s imports %s: breaks %q", rel(p.ImportPath), rel(imp), r.name))
				}
			}
		}
	}
	return out
}

// TestImportRules keeps the invariants ARCHITECTURE.md names true.
func TestImportRules(t *testing.T) {
	t.Parallel()
	for _, v := range violations(listPackages(t), architectureRules()) {
		t.Error(v)
	}
}

// TestImportRulesCatch proves each rule fails on the import it forbids.
func TestImportRulesCatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ importer, imported string }{
		{"config", "internal/page"},
		{"samlsp", "proxy"},
		{"samlsp/sub", "internal/gateway"},
		{"proxy", "internal/gateway"},
		{"internal/demo", "internal/gateway"},
		{"internal/demo", "cmd/sso-gateway"},
		{"internal/gateway", "internal/testsupport/samltest"},
		{"proxy", "internal/e2e/browser"},
	} {
		pkgs := []pkg{{ImportPath: module + "/" + tc.importer, Imports: []string{module + "/" + tc.imported}}}
		if len(violations(pkgs, architectureRules())) == 0 {
			t.Errorf("%s importing %s: no rule broken, want one", tc.importer, tc.imported)
		}
	}
	allowed := []pkg{
		{ImportPath: module + "/config", Imports: []string{module + "/internal/redirect", "net/url"}},
		{ImportPath: module + "/cmd/sso-gateway", Imports: []string{module + "/internal/gateway"}},
		{ImportPath: module + "/internal/testsupport/samltest", Imports: []string{module + "/internal/testsupport/race"}},
		{ImportPath: module + "/internal/loadtest", Imports: []string{module + "/internal/testsupport/samltest"}},
	}
	if v := violations(allowed, architectureRules()); len(v) != 0 {
		t.Errorf("allowed imports: got violations %q", v)
	}
}
