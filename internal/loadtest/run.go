package loadtest

import (
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
)

// tools are the paths of the programs the benchmark uses; "" for one that
// is not installed. Only redis-server and go (when no -gateway is given)
// are required; the others add rows.
type tools struct {
	wrk, nginx, apache, redis string
	// apacheModules is the folder of Apache's modules, when every module
	// the mellon row needs is in it.
	apacheModules string
	// whyNoMellon says what is missing for the mellon rows.
	whyNoMellon string
}

// findTools looks the programs up in PATH, then in the sbin folders a
// user's PATH may lack. REDIS_SERVER names redis-server's path, as for the
// tests (internal/redistest).
func findTools() tools {
	look := func(name string) string {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		return ""
	}
	t := tools{wrk: look("wrk"), nginx: look("nginx"), apache: look("apache2"), redis: os.Getenv("REDIS_SERVER")}
	if t.redis == "" {
		t.redis = look("redis-server")
	}
	if t.apache == "" {
		t.apache = look("httpd")
	}
	const modDir = "/usr/lib/apache2/modules"
	switch missing := mellonModulesMissing(modDir); {
	case t.apache == "":
		t.whyNoMellon = "Apache is not installed (apt-get install apache2 libapache2-mod-auth-mellon)"
	case len(missing) > 0:
		t.whyNoMellon = fmt.Sprintf("%s lacks %s (apt-get install libapache2-mod-auth-mellon)", modDir, strings.Join(missing, ", "))
	default:
		t.apacheModules = modDir
	}
	return t
}

// runner is one run of the benchmark.
type runner struct {
	o       Options
	stderr  io.Writer // progress
	dir     string
	self    string // this program, for its roles
	sup     *supervisor
	proc    procFS
	tools   tools
	client  loadClient
	browser *http.Client

	gatewayBin string
	idp        *samltest.IDP
	files      gatewayFiles

	upstream     *process
	upstreamAddr string
	bare         *process
	bareAddr     string
	nginx        *process
	nginxAddr    string
	mellon       *mellonProc

	// users numbers the users of the responses signed so far, so that
	// every response of a run is for a user of its own.
	users int
}

// Run runs the benchmark and prints its report to stdout, and its
// progress to stderr. It returns an error if any row could not be run;
// the numbers themselves, whatever they are, are no error. Every process
// it starts is killed, and its temporary folder removed, before it
// returns, also when ctx is cancelled (Ctrl-C).
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	o = o.Defaults()
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("loadtest: find this program: %w", err)
	}
	dir, err := os.MkdirTemp("", "sso-gateway-loadtest-")
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	// Apache's and nginx's workers may run as nobody, and read their
	// files here.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if o.Keep {
		defer fmt.Fprintf(stderr, "loadtest: kept %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	sup := &supervisor{dir: dir}
	defer sup.stopAll() // before the folder is removed
	r := &runner{
		o: o, stderr: stderr, dir: dir, self: self, sup: sup,
		proc:    procFS{root: "/proc"},
		tools:   findTools(),
		browser: newBrowser(loginPosters),
	}
	rep, err := r.run(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("loadtest: interrupted: %w", ctx.Err())
		}
		return fmt.Errorf("loadtest: %w", err)
	}
	switch {
	case o.JSON:
		return rep.writeJSON(stdout)
	case o.Markdown:
		return rep.writeMarkdown(stdout)
	}
	return rep.writeText(stdout)
}

// logf prints a progress line.
func (r *runner) logf(format string, a ...any) {
	fmt.Fprintf(r.stderr, "loadtest: "+format+"\n", a...)
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	rep := &Report{}
	switch {
	case r.o.Client == "go" || r.o.Client == "" && r.tools.wrk == "":
		r.client = &goClient{connections: r.o.Connections}
	case r.tools.wrk == "":
		return nil, fmt.Errorf("-client wrk: wrk is not installed (apt-get install wrk)")
	default:
		out, _ := exec.CommandContext(ctx, r.tools.wrk, "-v").CombinedOutput()
		r.client = &wrkClient{bin: r.tools.wrk, version: wrkVersion(string(out)), threads: r.o.Threads, connections: r.o.Connections, dir: r.dir}
	}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	rep.Machine = r.machine(ctx)
	rep.Method = Method{
		Short: r.o.Short, Client: r.client.name(), Connections: r.o.Connections,
		Duration: r.o.Duration.Seconds(), Warmup: r.o.Warmup.Seconds(), Rounds: r.o.Rounds,
		Upstream:    "a Go net/http server in its own process (the same behind every proxy)",
		Sessions:    r.o.Sessions,
		Logins:      r.o.Logins,
		StreamBytes: r.o.StreamBytes,
	}
	if r.tools.nginx == "" && r.o.runsAny(rowNginx, rowDownloadNginx, rowUploadNginx) {
		rep.Absent = append(rep.Absent, "nginx rows: nginx is not installed (apt-get install nginx-light)")
	}
	if r.tools.apacheModules == "" && r.o.runsAny(rowMellon, rowLoginMellon) {
		rep.Absent = append(rep.Absent, "mellon rows: "+r.tools.whyNoMellon)
	}
	steps := []struct {
		rows []string
		run  func(context.Context, *Report) error
	}{
		{sections[0].rows, r.proxyRows},
		{sections[1].rows, r.loginRows},
		{sections[2].rows, r.streamRows},
	}
	for _, s := range steps {
		if !r.o.runsAny(s.rows...) {
			continue
		}
		if err := s.run(ctx, rep); err != nil {
			return nil, err
		}
	}
	rep.Targets = rep.targets()
	return rep, nil
}

// prepare builds the gateway, makes the IdP and the files every gateway
// shares, and starts the upstream.
func (r *runner) prepare(ctx context.Context) error {
	if r.tools.redis == "" && r.o.runs(rowLoginRedis) {
		return fmt.Errorf("redis-server is not installed (apt-get install redis-server), or set REDIS_SERVER")
	}
	r.gatewayBin = r.o.GatewayBin
	if r.gatewayBin == "" {
		r.gatewayBin = filepath.Join(r.dir, "sso-gateway")
		r.logf("building the gateway")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", r.gatewayBin, "github.com/sso-gateway/sso-gateway/cmd/sso-gateway")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/sso-gateway (run this from the repository, or pass -gateway): %w\n%s", err, out)
		}
	}
	idp, err := newIDP("loadtest")
	if err != nil {
		return err
	}
	r.idp = idp
	sp, err := selfsigned.New(selfsigned.Options{CommonName: "sso-gateway loadtest SP"})
	if err != nil {
		return err
	}
	r.files = gatewayFiles{
		spCert:        filepath.Join(r.dir, "sp.crt"),
		spKey:         filepath.Join(r.dir, "sp.key"),
		idpMetadata:   filepath.Join(r.dir, "idp.xml"),
		hashKey:       randomBase64(64),
		blockKey:      randomBase64(32),
		entraTenantID: idp.TenantID,
	}
	for path, data := range map[string][]byte{r.files.spCert: sp.CertPEM(), r.files.spKey: sp.KeyPEM(), r.files.idpMetadata: idp.MetadataXML()} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
	}
	r.upstream, r.upstreamAddr, err = r.sup.startRole(ctx, r.self, roleUpstream)
	return err
}

func randomBase64(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails; it crashes the program instead
	return base64.StdEncoding.EncodeToString(b)
}

// machine describes the machine and the programs compared.
func (r *runner) machine(ctx context.Context) Machine {
	m := Machine{Cores: runtime.NumCPU(), CPU: "unknown CPU", Kernel: "unknown", Go: "unknown Go"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(data)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if bi, err := buildinfo.ReadFile(r.gatewayBin); err == nil {
		m.Go = bi.GoVersion
	}
	version := func(args ...string) string {
		out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	if r.tools.nginx != "" {
		if v := version(r.tools.nginx, "-v"); v != "" {
			m.Servers = append(m.Servers, strings.TrimPrefix(v, "nginx version: "))
		}
	}
	if r.tools.apacheModules != "" {
		v := strings.TrimPrefix(version(r.tools.apache, "-v"), "Server version: ")
		if mv := version("dpkg-query", "-W", "-f=${Version}", "libapache2-mod-auth-mellon"); mv != "" {
			v += " with mod_auth_mellon " + mv
		}
		m.Servers = append(m.Servers, v)
	}
	if r.tools.redis != "" {
		if f := strings.Fields(version(r.tools.redis, "--version")); len(f) >= 3 {
			m.Servers = append(m.Servers, "Redis "+strings.TrimPrefix(f[2], "v="))
		}
	}
	return m
}

// gatewayForms signs n responses for the gateway's tenant, each for a
// user of its own in groups groups.
func (r *runner) gatewayForms(ctx context.Context, n, groups int) ([]string, error) {
	return r.forms(ctx, n, groups, gatewayACS, gatewayACS)
}

// forms signs n responses addressed to acs and audience.
func (r *runner) forms(ctx context.Context, n, groups int, acs, audience string) ([]string, error) {
	ids := groupIDs(groups)
	responses := make([]samltest.Response, n)
	for i := range responses {
		r.users++
		responses[i] = userResponse(r.idp, r.users, ids, acs, audience)
	}
	return signForms(ctx, r.idp, responses)
}

// startBare starts the bare proxy, once.
func (r *runner) startBare(ctx context.Context) error {
	if r.bare != nil {
		return nil
	}
	p, addr, err := r.sup.startRole(ctx, r.self, roleBareProxy, "-upstream", "http://"+r.upstreamAddr)
	r.bare, r.bareAddr = p, addr
	return err
}

// startNginx starts nginx, once.
func (r *runner) startNginx(ctx context.Context) error {
	if r.nginx != nil {
		return nil
	}
	p, addr, err := startNginx(ctx, r.sup, r.tools.nginx, "nginx", r.upstreamAddr, "", "")
	r.nginx, r.nginxAddr = p, addr
	return err
}

// startMellon starts Apache with mod_auth_mellon, once.
func (r *runner) startMellon(ctx context.Context) error {
	if r.mellon != nil {
		return nil
	}
	m, err := startMellon(ctx, r.sup, r.tools.apache, r.tools.apacheModules, r.upstreamAddr, r.idp)
	r.mellon = m
	return err
}

// mellonForms signs n responses for mellon.
func (r *runner) mellonForms(ctx context.Context, n, groups int) ([]string, error) {
	return r.forms(ctx, n, groups, r.mellon.acs(), r.mellon.entityID())
}

// elapsed measures a step: the wall time and the CPU time of the process
// trees pids, each apart.
func (r *runner) elapsed(pids []int, step func() error) (time.Duration, []time.Duration, error) {
	before := make([]time.Duration, len(pids))
	for i, pid := range pids {
		c, err := r.proc.treeCPU(pid)
		if err != nil {
			return 0, nil, err
		}
		before[i] = c
	}
	start := time.Now()
	if err := step(); err != nil {
		return 0, nil, err
	}
	wall := time.Since(start)
	cpu := make([]time.Duration, len(pids))
	for i, pid := range pids {
		c, err := r.proc.treeCPU(pid)
		if err != nil {
			return 0, nil, err
		}
		cpu[i] = c - before[i]
	}
	return wall, cpu, nil
}
