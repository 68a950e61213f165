package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// Timings of every gateway in these tests. The upstream timeout is short so
// that the slow-upstream fault shows in a second; the shutdown delay is
// what the load balancer gets to notice /readyz turning 503 (it checks
// every healthInterval).
const (
	upstreamTimeout = time.Second
	shutdownDelay   = time.Second
	shutdownTimeout = 10 * time.Second
	// exitMargin is how much longer than delay + timeout a stopping gateway
	// may take to exit, for a loaded machine.
	exitMargin = 5 * time.Second
	// readyWait bounds the wait for a started gateway's /readyz. Start-up
	// waits up to 20 s for IdP metadata URLs that do not answer.
	readyWait = 40 * time.Second
	// reloadWait bounds the wait for a reload to be counted.
	reloadWait = 15 * time.Second
)

// publicURL is what browsers would see: TLS ends at the load balancer, so
// the gateways serve plain HTTP and still set Secure, __Host- cookies.
const (
	publicURL  = "https://docs.example.com"
	publicHost = "docs.example.com"
)

// sessionKey is one session.keys entry, base64 as in the config file.
type sessionKey struct {
	name        string // for messages: "K1", "K2", ...
	hash, block string
}

// newSessionKey makes a random key pair of the sizes deploy/CONFIGURATION.md recommends.
func newSessionKey(t testing.TB, name string) sessionKey {
	t.Helper()
	return sessionKey{name: name, hash: randomBase64(t, 64), block: randomBase64(t, 32)}
}

func randomBase64(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b) // never fails; it crashes the program instead
	return base64.StdEncoding.EncodeToString(b)
}

func keyNames(keys []sessionKey) string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	return "[" + strings.Join(names, ", ") + "]"
}

// tenantSpec is one tenants[] entry.
type tenantSpec struct {
	id           string
	metadataFile string // absolute path, or "" for a URL tenant
	metadataURL  string
}

// gatewaySpec is what a gateway's config file says, apart from its
// addresses. It is a value: copies are independent (slices are replaced,
// never appended to in place).
type gatewaySpec struct {
	upstream string
	redisURL string // "" for no replay_cache
	spCert   string // absolute paths
	spKey    string
	keys     []sessionKey
	tenants  []tenantSpec
	// shutdownTimeout is shutdown_timeout; zero means the package's
	// shutdownTimeout.
	shutdownTimeout time.Duration
	// extra is appended to the document as it is, to push a broken
	// configuration.
	extra string
}

// render writes the YAML config for listen and admin.
func (s gatewaySpec) render(listen, admin string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "public_url: %s\n", publicURL)
	fmt.Fprintf(&b, "listen: %s\nadmin_listen: %s\n", listen, admin)
	fmt.Fprintf(&b, "upstream: %s\n", s.upstream)
	fmt.Fprintf(&b, "upstream_timeout: %s\n", upstreamTimeout)
	drain := s.shutdownTimeout
	if drain == 0 {
		drain = shutdownTimeout
	}
	fmt.Fprintf(&b, "shutdown_delay: %s\nshutdown_timeout: %s\n", shutdownDelay, drain)
	if s.redisURL != "" {
		fmt.Fprintf(&b, "replay_cache: {redis_url: %q}\n", s.redisURL)
	}
	fmt.Fprintf(&b, "sp: {cert_file: %q, key_file: %q}\n", s.spCert, s.spKey)
	b.WriteString("session:\n  keys:\n")
	for _, k := range s.keys {
		fmt.Fprintf(&b, "    - {hash_key: %q, block_key: %q} # %s\n", k.hash, k.block, k.name)
	}
	b.WriteString("log: {format: json}\n")
	b.WriteString("tenants:\n")
	for _, t := range s.tenants {
		fmt.Fprintf(&b, "  - id: %s\n", t.id)
		if t.metadataFile != "" {
			fmt.Fprintf(&b, "    idp_metadata_file: %q\n", t.metadataFile)
		} else {
			fmt.Fprintf(&b, "    idp_metadata_url: %q\n    idp_metadata_refresh_interval: 1m\n", t.metadataURL)
		}
	}
	b.WriteString(s.extra)
	return b.String()
}

// gateway is one sso-gateway process with its own folder and config file.
type gateway struct {
	name   string
	dir    string
	config string // path of the config file
	listen string // host:port of the public listener
	admin  string // host:port of the admin listener
	log    *syncbuf.Buffer

	mu   sync.Mutex
	spec gatewaySpec

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startGateway starts a gateway with spec on free ports and waits until its
// /readyz answers 200, failing t if it does not. The process belongs to
// owner (t or a test that t is part of): it is killed when owner ends, if
// still running, and its log is shown if owner failed. A port taken by
// another process between the probe and the gateway's bind is retried on
// others.
func startGateway(t, owner testing.TB, name string, spec gatewaySpec) *gateway {
	t.Helper()
	for attempt := 1; ; attempt++ {
		g := launchGateway(t, owner, name, spec)
		err := g.waitReady()
		if err == nil {
			return g
		}
		if attempt < 3 && g.exited() && strings.Contains(g.log.String(), "address already in use") {
			t.Logf("%s: a port was taken meanwhile; trying others", name)
			continue
		}
		t.Fatalf("%v\n%s", err, g.tail(40))
	}
}

// launchGateway starts the process without waiting for it to be ready.
func launchGateway(t, owner testing.TB, name string, spec gatewaySpec) *gateway {
	t.Helper()
	dir := owner.TempDir()
	g := &gateway{
		name:   name,
		dir:    dir,
		config: filepath.Join(dir, "gateway.yaml"),
		listen: freeAddr(t),
		admin:  freeAddr(t),
		log:    &syncbuf.Buffer{},
		spec:   spec,
	}
	g.writeConfig(t, spec)
	g.cmd = exec.Command(gatewayBin, "-config", g.config)
	g.cmd.Stdout = g.log
	g.cmd.Stderr = g.log
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	g.done = make(chan struct{})
	go func() {
		_ = g.cmd.Wait()
		close(g.done)
	}()
	owner.Cleanup(func() {
		g.kill()
		if owner.Failed() {
			owner.Logf("%s (%s) log tail:\n%s", g.name, g.listen, g.tail(60))
		}
	})
	return g
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeConfig replaces the config file in one step (write, then rename), as
// a Kubernetes ConfigMap update does, so that the gateway never reads half a
// file.
func (g *gateway) writeConfig(t testing.TB, spec gatewaySpec) {
	t.Helper()
	tmp := g.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(spec.render(g.listen, g.admin)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, g.config); err != nil {
		t.Fatal(err)
	}
}

// currentSpec is the spec last written to the config file.
func (g *gateway) currentSpec() gatewaySpec {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.spec
}

func (g *gateway) url() string      { return "http://" + g.listen }
func (g *gateway) adminURL() string { return "http://" + g.admin }

func (g *gateway) String() string { return g.name }

// exited reports whether the process has ended.
func (g *gateway) exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// waitReady polls /readyz until it answers 200.
func (g *gateway) waitReady() error {
	deadline := time.Now().Add(readyWait)
	for {
		if g.exited() {
			return fmt.Errorf("%s exited before it was ready (%v)", g.name, g.cmd.ProcessState)
		}
		code, _, err := adminGet(g.adminURL() + "/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v (last: %d %v)", g.name, readyWait, code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readyz returns the status of /readyz, or 0 if it did not answer.
func (g *gateway) readyz() (int, string) {
	code, body, err := adminGet(g.adminURL() + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	return code, body
}

// adminClient talks to admin listeners; it has a timeout, unlike the public
// clients, because an admin endpoint that hangs is a failure.
var adminClient = &http.Client{Timeout: 3 * time.Second}

func adminGet(url string) (int, string, error) {
	resp, err := adminClient.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// metrics returns the gateway's /metrics text.
func (g *gateway) metrics(t testing.TB) metricSet {
	t.Helper()
	code, body, err := adminGet(g.adminURL() + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s /metrics: %d %v\n%s", g.name, code, err, g.tail(20))
	}
	return metricSet(body)
}

// reconfigure writes spec (changed by change) to the config file and waits
// until the gateway counts the reload as wantResult ("success" or
// "failure"). The file watcher does the reload, as it does for a
// Kubernetes ConfigMap; with sighup the test also sends SIGHUP, which
// reloads at once.
func (g *gateway) reconfigure(t testing.TB, wantResult string, change func(*gatewaySpec)) {
	t.Helper()
	g.mu.Lock()
	spec := g.spec
	change(&spec)
	g.spec = spec
	g.mu.Unlock()
	before := g.metrics(t).value("sso_gateway_config_reloads_total", "result", wantResult)
	g.writeConfig(t, spec)
	deadline := time.Now().Add(reloadWait)
	for {
		if g.metrics(t).value("sso_gateway_config_reloads_total", "result", wantResult) > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no reload with result %q within %v:\n%s", g.name, wantResult, reloadWait, g.tail(20))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// sighupReload sends SIGHUP and waits for a reload with result wantResult.
func (g *gateway) sighupReload(t testing.TB, wantResult string) {
	t.Helper()
	before := g.metrics(t).value("sso_gateway_config_reloads_total", "result", wantResult)
	if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("%s: SIGHUP: %v", g.name, err)
	}
	deadline := time.Now().Add(reloadWait)
	for g.metrics(t).value("sso_gateway_config_reloads_total", "result", wantResult) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no reload with result %q within %v of SIGHUP:\n%s", g.name, wantResult, reloadWait, g.tail(20))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// terminate sends SIGTERM, as Kubernetes does to a pod it stops.
func (g *gateway) terminate(t testing.TB) {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: SIGTERM: %v", g.name, err)
	}
}

// waitExit waits for the process to exit within limit and returns its exit
// code.
func (g *gateway) waitExit(t testing.TB, limit time.Duration) int {
	t.Helper()
	select {
	case <-g.done:
		return g.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("%s did not exit within %v:\n%s", g.name, limit, g.tail(30))
		return -1
	}
}

// kill ends the process at once if it still runs, and waits for it.
func (g *gateway) kill() {
	if g.cmd == nil || g.cmd.Process == nil || g.exited() {
		return
	}
	_ = g.cmd.Process.Kill()
	<-g.done
}

// tail returns the last n lines of the gateway's log.
func (g *gateway) tail(n int) string {
	lines := strings.Split(strings.TrimRight(g.log.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return "    " + strings.Join(lines, "\n    ")
}

// metricSet is a /metrics page in the Prometheus text format.
type metricSet string

// value returns the sum of the samples of name whose labels include every
// pair of labelPairs (name, value, name, value, ...); 0 when there is none,
// as for a counter that has not been touched yet.
func (m metricSet) value(name string, labelPairs ...string) float64 {
	sum := 0.0
	for _, v := range m.samples(name, labelPairs...) {
		sum += v
	}
	return sum
}

// has reports whether a sample of name with the labels exists at all.
func (m metricSet) has(name string, labelPairs ...string) bool {
	return len(m.samples(name, labelPairs...)) > 0
}

func (m metricSet) samples(name string, labelPairs ...string) []float64 {
	var out []float64
	for line := range strings.SplitSeq(string(m), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		series, val, ok := cutLast(line, " ")
		if !ok {
			continue
		}
		metric, labels, _ := strings.Cut(series, "{")
		if metric != name {
			continue
		}
		match := true
		for i := 0; i+1 < len(labelPairs); i += 2 {
			if !strings.Contains(labels, labelPairs[i]+`="`+labelPairs[i+1]+`"`) {
				match = false
				break
			}
		}
		if f, err := strconv.ParseFloat(val, 64); match && err == nil {
			out = append(out, f)
		}
	}
	return out
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// poll calls check every interval until it returns nil or limit passes,
// and returns its last error.
func poll(ctx context.Context, limit, interval time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(interval)
	}
}
