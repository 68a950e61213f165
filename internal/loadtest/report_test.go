package loadtest

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sampleReport is a full run's report, with made-up numbers.
func sampleReport() *Report {
	rep := &Report{
		Machine: Machine{CPU: "AMD EPYC", Cores: 2, Kernel: "6.18.44", Go: "go1.27.3", Servers: []string{"nginx/1.22.1", "Apache/2.4.71 (Debian) with mod_auth_mellon 0.18.1-1", "Redis 7.0.15"}},
		Method: Method{Client: "wrk 4.1.0 (-t2 -c32)", Connections: 32, Duration: 10, Warmup: 2, Rounds: 3,
			Upstream: "a Go net/http server", Sessions: 5000, Logins: 4000, StreamBytes: 1 << 30},
		Proxy: []ProxyRow{
			{ID: rowDirect, Name: "upstream direct (no proxy)", ReqPerSec: 28000, P50us: 900, P99us: 7800, CPUPerReqUs: 26},
			{ID: rowBare, Name: "bare httputil.ReverseProxy", ReqPerSec: 7000, P50us: 4500, P99us: 12000, CPUPerReqUs: 110},
			{ID: rowMellon, Name: "Apache + mod_auth_mellon, 20 groups", ReqPerSec: 6000, P50us: 4600, P99us: 11500, CPUPerReqUs: 158},
			{ID: rowGateway, Name: "gateway, 20 groups", ReqPerSec: 7700, P50us: 4000, P99us: 11000, CPUPerReqUs: 95},
			{ID: rowGateway150, Name: "gateway, 150 groups", ReqPerSec: 3500, P50us: 9000, P99us: 25000, CPUPerReqUs: 240},
		},
		Logins: []LoginRow{
			{ID: rowLoginMemory, Name: "gateway, in-memory replay cache", Logins: 4000, LoginsPerSec: 2200, CPUPerLoginMs: 0.9},
			{ID: rowLoginRedis, Name: "gateway, Redis replay cache", Logins: 4000, LoginsPerSec: 1900, CPUPerLoginMs: 1.0, RedisCPUPerLoginMs: 0.08},
			{ID: rowLoginMellon, Name: "Apache + mod_auth_mellon", Logins: 4000, LoginsPerSec: 850, CPUPerLoginMs: 2.3},
		},
		Streams: []StreamRow{
			{ID: rowDownloadGateway, Name: "download via gateway", Bytes: 1 << 30, MBPerSec: 1100, PeakRSSMiB: 21.4},
			{ID: rowDownloadNginx, Name: "download via nginx", Bytes: 1 << 30, MBPerSec: 750, PeakRSSMiB: 20.5},
			{ID: rowUploadGateway, Name: "upload via gateway", Bytes: 1 << 30, MBPerSec: 700, PeakRSSMiB: 40},
			{ID: rowUploadNginx, Name: "upload via nginx", Bytes: 1 << 30, MBPerSec: 600, PeakRSSMiB: 20.5},
		},
		Absent: []string{"nothing, really"},
	}
	fillProxyRatios(rep.Proxy)
	fillLoginRatios(rep.Logins)
	fillStreamRatios(rep.Streams)
	rep.Targets = rep.targets()
	return rep
}

// TestReportText compares the tables, in plain text and in Markdown, with
// the files in testdata; -update rewrites them.
func TestReportText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		golden string
		write  func(*Report, io.Writer) error
	}{
		{"report.txt", (*Report).writeText},
		{"report.md", (*Report).writeMarkdown},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := tc.write(sampleReport(), &b); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("report:\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := sampleReport().writeJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("the JSON does not parse back: %v\n%s", err, b.String())
	}
	if g, w := got.Proxy[3].VsBare.ReqPerSec, Ratio(1.1); g != w {
		t.Errorf("gateway's req/s ÷ bare: got %v, want %v", g, w)
	}
	if g, w := got.Logins[0].VsMellon.String(), "2.59×"; g != w {
		t.Errorf("in-memory logins ÷ mellon: got %q, want %q", g, w)
	}
}

func TestRatios(t *testing.T) {
	t.Parallel()
	rep := sampleReport()
	for _, tc := range []struct {
		name string
		got  Ratio
		want string
	}{
		{"bare ÷ bare", rep.Proxy[1].VsBare.ReqPerSec, "1.00×"},
		{"gateway p99 ÷ bare", rep.Proxy[3].VsBare.P99, "0.92×"},
		{"gateway CPU ÷ bare", rep.Proxy[3].VsBare.CPU, "0.86×"},
		{"gateway ÷ mellon", rep.Proxy[3].VsMellon.ReqPerSec, "1.28×"},
		{"Redis ÷ in-memory", rep.Logins[1].VsMemory, "0.86×"},
		{"download ÷ nginx", rep.Streams[0].VsNginx, "1.47×"},
		{"upload ÷ nginx", rep.Streams[2].VsNginx, "1.17×"},
		{"no reference", ratio(5, 0), "-"},
	} {
		if got := tc.got.String(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestTargets(t *testing.T) {
	t.Parallel()
	got := map[string]bool{}
	for _, g := range sampleReport().targets() {
		got[g.Row+": "+g.What] = g.Met
	}
	want := map[string]bool{
		"gateway, 20 groups: req/s ≥ 1.0× bare proxy":                true,
		"gateway, 20 groups: req/s ≥ 1.0× mellon":                    true,
		"gateway, 20 groups: CPU/req ≤ 100 µs":                       true,
		"gateway, 20 groups: p99 ≤ bare proxy's":                     true,
		"gateway, 150 groups: req/s ≥ 1.0× bare proxy (same cookie)": false,
		"gateway, 150 groups: req/s ≥ 1.0× mellon (150 groups)":      false,
		"gateway, 150 groups: CPU/req ≤ 100 µs":                      false,
		"gateway, 150 groups: p99 ≤ bare proxy's (same cookie)":      false,
		"gateway, in-memory replay cache: logins/s ≥ 2.5× mellon":    true,
		"gateway, in-memory replay cache: CPU/login ≤ 1.5 ms":        true,
		"gateway, Redis replay cache: logins/s ≥ 0.9× in-memory":     false,
		"download via gateway: MB/s ≥ 1.2× nginx":                    true,
		"download via gateway: peak RSS ≤ 32 MiB":                    true,
		"upload via gateway: MB/s ≥ 1.2× nginx":                      false,
		"upload via gateway: peak RSS ≤ 32 MiB":                      false,
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("no target %q", k)
		case g != w:
			t.Errorf("%s: got met %t, want %t", k, g, w)
		}
		delete(got, k)
	}
	for k := range got {
		t.Errorf("unexpected target %q", k)
	}

	// Without the reference rows, the targets that compare are left out.
	alone := &Report{Proxy: []ProxyRow{{ID: rowGateway, Name: "gateway", CPUPerReqUs: 50}}}
	if g := alone.targets(); len(g) != 1 || g[0].What != "CPU/req ≤ 100 µs" || !g[0].Met {
		t.Errorf("targets without bare and mellon: got %+v, want the CPU target alone, met", g)
	}
}

// TestVerifyTarget: the forward-auth row is held against the handler
// replaying its answer behind the same nginx, or, without that row, the
// empty 200's; and only when one of them ran.
func TestVerifyTarget(t *testing.T) {
	t.Parallel()
	const (
		vsReplay = "nginx auth_request, gateway verify: CPU/req ≤ the same answer's from a trivial handler + 10 µs"
		vsEmpty  = "nginx auth_request, gateway verify: CPU/req ≤ an empty 200's from a trivial handler + 10 µs"
	)
	for _, tt := range []struct {
		name            string
		verifyCPU       float64
		trivial, replay bool
		want            map[string]bool
	}{
		{"met against the replay", 40, true, true, map[string]bool{vsReplay: true}},
		{"missed against the replay", 47, true, true, map[string]bool{vsReplay: false}},
		{"met against the empty 200", 40, true, false, map[string]bool{vsEmpty: true}},
		{"missed against the empty 200", 45, true, false, map[string]bool{vsEmpty: false}},
		{"replay only", 40, false, true, map[string]bool{vsReplay: true}},
		{"no baseline", 40, false, false, map[string]bool{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := &Report{Proxy: []ProxyRow{{ID: rowAuthGateway, Name: "nginx auth_request, gateway verify", CPUPerReqUs: tt.verifyCPU}}}
			if tt.trivial {
				rep.Proxy = append(rep.Proxy, ProxyRow{ID: rowAuthTrivial, Name: "nginx auth_request, a trivial 200 handler", CPUPerReqUs: 33})
			}
			if tt.replay {
				rep.Proxy = append(rep.Proxy, ProxyRow{ID: rowAuthReplay, Name: "nginx auth_request, a trivial handler replaying the gateway's answer", CPUPerReqUs: 36})
			}
			got := map[string]bool{}
			for _, g := range rep.targets() {
				got[g.Row+": "+g.What] = g.Met
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
