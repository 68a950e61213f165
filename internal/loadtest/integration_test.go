package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// buildLoadtest builds cmd/loadtest into dir and returns its path.
func buildLoadtest(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "loadtest")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/loadtest")
	cmd.Dir = filepath.Join("..", "..") // the module root
	cmd.Env = goEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/loadtest: %v\n%s", err, out)
	}
	return bin
}

// goEnv is the environment for the go command: GOTOOLCHAIN as it is, or
// the toolchain of this test when it is not set, as cluster/ does.
func goEnv() []string {
	env := os.Environ()
	if _, set := os.LookupEnv("GOTOOLCHAIN"); !set && strings.HasPrefix(runtime.Version(), "go1.") {
		env = append(env, "GOTOOLCHAIN="+runtime.Version())
	}
	return env
}

// leftovers returns the command lines of running processes that mention
// dir: every server the benchmark starts has its files there.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmdline := strings.ReplaceAll(string(data), "\x00", " "); strings.Contains(cmdline, dir) {
			out = append(out, e.Name()+": "+cmdline)
		}
	}
	return out
}

// TestShortRun runs the benchmark as CI does, shorter still, against the
// real gateway binary (which it builds), and checks that every row ran and
// measured something, and that nothing it started is left behind: no
// process, no temporary folder. nginx and Apache with mod_auth_mellon add
// their rows when they are installed; without them the rows are absent,
// never failed. wrk is used when installed, else the built-in client.
func TestShortRun(t *testing.T) {
	dir := t.TempDir()
	bin := buildLoadtest(t, dir)
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	// Apache's workers, which run as nobody when the test runs as root,
	// read their files in TMPDIR; t.TempDir makes folders (its own, and
	// one above for the test) that only their owner may enter.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-short", "-duration", "1s", "-warmup", "1s", "-sessions", "40", "-logins", "64", "-stream-mib", "8", "-json")
	cmd.Dir = filepath.Join("..", "..") // it builds ./cmd/sso-gateway
	cmd.Env = append(goEnv(), "TMPDIR="+tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Fatalf("loadtest -short: %v\n%s", err, stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("the -json report does not parse: %v\n%s", err, stdout.String())
	}

	tools := findTools()
	want := map[string]bool{
		rowDirect: true, rowBare: true, rowBare150: true, rowGateway: true, rowGateway150: true, rowGatewayRotation: true,
		rowLoginMemory: true, rowLoginRedis: true,
		rowDownloadGateway: true, rowUploadGateway: true, rowDownloadBare: true, rowUploadBare: true,
	}
	if tools.nginx != "" {
		want[rowNginx], want[rowDownloadNginx], want[rowUploadNginx] = true, true, true
		want[rowAuthTrivial], want[rowAuthReplay], want[rowAuthGateway] = true, true, true
	}
	if tools.apacheModules != "" {
		want[rowMellon], want[rowMellon150], want[rowLoginMellon] = true, true, true
	}
	got := map[string]bool{}
	for _, p := range rep.Proxy {
		got[p.ID] = true
		if p.ReqPerSec <= 0 || p.P99us <= 0 || p.CPUPerReqUs <= 0 || p.Requests <= 0 {
			t.Errorf("%s: got %+v, want every measure positive", p.ID, p)
		}
		if p.VsBare.ReqPerSec <= 0 {
			t.Errorf("%s: no ratio to the bare proxy", p.ID)
		}
	}
	for _, l := range rep.Logins {
		got[l.ID] = true
		if l.Logins != 64 || l.LoginsPerSec <= 0 || l.CPUPerLoginMs <= 0 {
			t.Errorf("%s: got %+v, want 64 logins and positive measures", l.ID, l)
		}
		// Loading the system's CA bundle on every login would cost mellon
		// about 80 ms of CPU (mellon.go); it needs a few.
		if l.ID == rowLoginMellon && l.CPUPerLoginMs > 30 {
			t.Errorf("%s: got %.1f ms of CPU per login, want mellon at its best, under 30 ms", l.ID, l.CPUPerLoginMs)
		}
	}
	for _, s := range rep.Streams {
		got[s.ID] = true
		if s.Bytes != 8<<20 || s.MBPerSec <= 0 || s.PeakRSSMiB <= 0 {
			t.Errorf("%s: got %+v, want 8 MiB and positive measures", s.ID, s)
		}
	}
	for id := range want {
		if !got[id] {
			t.Errorf("row %s: missing from the report", id)
		}
	}
	for id := range got {
		if !want[id] {
			t.Errorf("row %s: in the report, but its server is not installed", id)
		}
	}
	if rep.Method.Sessions != 40 || rep.Machine.Cores < 1 || !strings.HasPrefix(rep.Machine.Go, "go1.") {
		t.Errorf("got method %+v and machine %+v", rep.Method, rep.Machine)
	}
	if wantClient := map[bool]string{true: "wrk", false: "built-in Go client"}[tools.wrk != ""]; !strings.HasPrefix(rep.Method.Client, wantClient) {
		t.Errorf("client: got %q, want %s", rep.Method.Client, wantClient)
	}
	if len(rep.Targets) == 0 {
		t.Errorf("no targets in the report")
	}

	if left := leftovers(t, tmp); len(left) > 0 {
		t.Errorf("processes left running:\n%s", strings.Join(left, "\n"))
	}
	if entries, _ := os.ReadDir(tmp); len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("left in the temporary folder: %q", names)
	}
}

// TestFailedRow checks that a server that does not start fails the run,
// with a message saying which and why.
func TestFailedRow(t *testing.T) {
	dir := t.TempDir()
	bin := buildLoadtest(t, dir)
	fake := filepath.Join(dir, "sso-gateway")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'config: no such tenant' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-short", "-rows", rowGateway, "-gateway", fake)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("got %v, want exit status 1\n%s", err, stderr.String())
	}
	for _, want := range []string{"gateway (exit status 1): exited before it was ready", "config: no such tenant"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if stdout.Len() > 0 {
		t.Errorf("got a report for a failed run:\n%s", stdout.String())
	}
}
