package repocheck

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestEveryModuleIsTested checks that each nested module of the tree is in
// .ci/go.work and in the README's test command, which .ci/run runs: in a
// workspace, ./... stops at a nested module's root, so a module left out
// of the patterns would silently never be tested.
func TestEveryModuleIsTested(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	var nested []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.Name() == "go.mod" && filepath.Dir(path) != root {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			nested = append(nested, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(nested) == 0 {
		t.Fatal("found no nested module; want deploy and internal/e2e")
	}
	// The go command reads the file, as it does for the tests.
	cmd := exec.Command("go", "work", "edit", "-json", filepath.Join(root, ".ci", "go.work"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go work edit -json: %v", err)
	}
	var work struct{ Use []struct{ DiskPath string } }
	if err := json.Unmarshal(out, &work); err != nil {
		t.Fatal(err)
	}
	var used []string
	for _, u := range work.Use {
		used = append(used, filepath.ToSlash(filepath.Clean(filepath.Join(".ci", u.DiskPath))))
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var command string
	for l := range strings.Lines(string(readme)) {
		if strings.Contains(l, "go test") {
			command = l
			break
		}
	}
	for _, m := range append(nested, ".") {
		if !slices.Contains(used, m) {
			t.Errorf(".ci/go.work does not use %s (it uses %q)", m, used)
		}
	}
	for _, m := range nested {
		if !strings.Contains(command, " ./"+m+"/...") {
			t.Errorf("README's test command %q does not name ./%s/...", strings.TrimSpace(command), m)
		}
	}
}
