package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/buildinfo"
)

// TestVersionFromBuild builds the binary as an operator would, with a plain
// "go build" in the git checkout and no -ldflags, and checks that both
// "version" and sso_gateway_build_info carry the checkout's revision.
// (-buildvcs=true is spelled out only because this machine's GOFLAGS turns
// it off; it is go build's default.)
func TestVersionFromBuild(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is not installed (%v): this test checks that a build in a git checkout records its revision", err)
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").CombinedOutput()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v: %s\nbuild and test sso-gateway in a git clone: the binary takes its revision from it", err, out)
	}
	head := strings.TrimSpace(string(out))
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "sso-gateway")
	build := exec.Command(goTool, "build", "-buildvcs=true", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	// The revision, "+dirty" when the checkout has uncommitted changes.
	revision := regexp.QuoteMeta(head) + `(\+dirty)?`

	out, err = exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("sso-gateway version: %v: %s", err, out)
	}
	line := strings.TrimSpace(string(out))
	if !regexp.MustCompile(`^sso-gateway \S+ \(revision ` + revision + `, go1\.\S+\)$`).MatchString(line) {
		t.Errorf("sso-gateway version: got %q, want the version and revision %s", line, head)
	}
	if strings.HasPrefix(line, "sso-gateway "+buildinfo.Dev+" ") {
		t.Errorf("sso-gateway version: got %q, want a version other than %q", line, buildinfo.Dev)
	}

	metrics := scrapeDemo(t, bin)
	m := regexp.MustCompile(`(?m)^sso_gateway_build_info\{goversion="go[^"]+",revision="` + revision + `",version="([^"]+)"\} 1$`).FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("no sso_gateway_build_info with revision %s in:\n%s", head, grepLines(metrics, "sso_gateway_build_info"))
	}
	if m[1] == buildinfo.Dev {
		t.Errorf("sso_gateway_build_info version: got %q, want the stamped version", m[1])
	}
}

// scrapeDemo runs "bin demo" on free loopback ports, returns its metrics and
// stops it with SIGINT.
func scrapeDemo(t *testing.T, bin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "-dir", t.TempDir(),
		"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-idp-listen", "127.0.0.1:0", "-upstream-listen", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		if err := cmd.Wait(); err != nil {
			t.Errorf("demo after SIGINT: %v", err)
		}
	}()
	metricsURL := ""
	sc := bufio.NewScanner(stdout)
	for metricsURL == "" && sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "Metrics, health:"); ok {
			metricsURL = strings.Fields(rest)[0]
		}
	}
	go io.Copy(io.Discard, stdout)
	if metricsURL == "" {
		t.Fatalf("the demo printed no metrics URL (%v)", sc.Err())
	}
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func grepLines(s, substr string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
