package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Report is everything one run measured; -json prints it as it is.
type Report struct {
	Machine Machine     `json:"machine"`
	Method  Method      `json:"method"`
	Proxy   []ProxyRow  `json:"proxy,omitempty"`
	Logins  []LoginRow  `json:"logins,omitempty"`
	Streams []StreamRow `json:"streams,omitempty"`
	// Targets are the goals, checked against this run.
	Targets []Target `json:"targets,omitempty"`
	// Absent lists rows that were asked for but not run, and why (a
	// server that is not installed).
	Absent []string `json:"absent,omitempty"`
}

// Machine is where the run happened.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	// Go is the toolchain that built the gateway.
	Go string `json:"go"`
	// Servers are the versions of the other servers, when installed.
	Servers []string `json:"servers,omitempty"`
}

// Method is how the run measured.
type Method struct {
	Short       bool   `json:"short"`
	Client      string `json:"client"`
	Connections int    `json:"connections"`
	// Duration and Warmup are per proxying row and round, in seconds.
	Duration float64 `json:"duration_s"`
	Warmup   float64 `json:"warmup_s"`
	Rounds   int     `json:"rounds"`
	Upstream string  `json:"upstream"`
	// Sessions is how many distinct sessions the rotation row uses.
	Sessions int `json:"sessions"`
	// Logins is how many logins each login row posts.
	Logins int `json:"logins"`
	// StreamBytes is the size of each download and upload.
	StreamBytes int64 `json:"stream_bytes"`
}

// Ratio is a row's value divided by a reference row's; 0 when either is
// missing.
type Ratio float64

// ProxyRow is one server proxying the 1 KiB page: medians over the rounds.
type ProxyRow struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Requests  int64   `json:"requests"`
	ReqPerSec float64 `json:"req_per_s"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	// CPUPerReqUs is the server's CPU time (user and system, workers
	// included; never the upstream's or the client's) per request.
	CPUPerReqUs float64 `json:"cpu_per_req_us"`
	// Ratios to the bare httputil.ReverseProxy and to Apache +
	// mod_auth_mellon, in the same run.
	VsBare   Ratios `json:"vs_bare"`
	VsMellon Ratios `json:"vs_mellon"`
}

// Ratios compare a row with a reference row.
type Ratios struct {
	ReqPerSec Ratio `json:"req_per_s"`
	P99       Ratio `json:"p99"`
	CPU       Ratio `json:"cpu"`
}

// LoginRow is one server accepting distinct signed responses.
type LoginRow struct {
	ID           string  `json:"id"`
	Name         string  `json:"name"`
	Logins       int     `json:"logins"`
	LoginsPerSec float64 `json:"logins_per_s"`
	// CPUPerLoginMs is the server's CPU per login; Redis's own is
	// RedisCPUPerLoginMs, apart.
	CPUPerLoginMs      float64 `json:"cpu_per_login_ms"`
	RedisCPUPerLoginMs float64 `json:"redis_cpu_per_login_ms,omitempty"`
	VsMellon           Ratio   `json:"vs_mellon"`
	VsMemory           Ratio   `json:"vs_in_memory"`
}

// StreamRow is one download or upload through one proxy.
type StreamRow struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Bytes    int64   `json:"bytes"`
	MBPerSec float64 `json:"mb_per_s"`
	// PeakRSSMiB is the proxy's peak resident set during the transfer
	// (VmHWM, workers summed).
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	VsNginx    Ratio   `json:"vs_nginx"`
}

// Target is one of the goals and whether this run met it.
type Target struct {
	Row  string `json:"row"`
	What string `json:"what"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

// writeJSON prints r as indented JSON.
func (r *Report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// writeText prints r as plain-text tables.
func (r *Report) writeText(w io.Writer) error {
	return r.write(w, false)
}

// writeMarkdown prints r as the Markdown tables of the README's
// "Performance" section.
func (r *Report) writeMarkdown(w io.Writer) error {
	return r.write(w, true)
}

func (r *Report) write(w io.Writer, markdown bool) error {
	var b strings.Builder
	m := r.Method
	mode := ""
	if m.Short {
		mode = " (-short: numbers for CI, not for comparison)"
	}
	para := func(format string, a ...any) {
		b.WriteString("\n")
		fmt.Fprintf(&b, format+"\n", a...)
		if markdown {
			b.WriteString("\n")
		}
	}
	line := func(format string, a ...any) {
		if markdown {
			b.WriteString("- ")
		}
		fmt.Fprintf(&b, format+"\n", a...)
	}
	if !markdown {
		line("sso-gateway load benchmark%s", mode)
	}
	line("machine: %s, %d cores, Linux %s; gateway built with %s", r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel, r.Machine.Go)
	if len(r.Machine.Servers) > 0 {
		line("servers: %s", strings.Join(r.Machine.Servers, ", "))
	}
	line("client: %s; everything on 127.0.0.1, sharing the same cores", m.Client)
	line("upstream: %s", m.Upstream)

	if len(r.Proxy) > 0 {
		para("Authenticated proxying: GET of a 1 KiB page, %d connections, %s per row after a %s warm-up, median of %d round(s)",
			m.Connections, seconds(m.Duration), seconds(m.Warmup), m.Rounds)
		t := table{header: []string{"row", "req/s", "p50", "p99", "CPU/req", "÷bare req/s", "÷bare p99", "÷bare CPU", "÷mellon req/s"}}
		for _, p := range r.Proxy {
			t.add(p.Name, fmt.Sprintf("%.0f", p.ReqPerSec), micros(p.P50us), micros(p.P99us), micros(p.CPUPerReqUs),
				p.VsBare.ReqPerSec.String(), p.VsBare.P99.String(), p.VsBare.CPU.String(), p.VsMellon.ReqPerSec.String())
		}
		t.write(&b, markdown)
	}
	if len(r.Logins) > 0 {
		para("Logins: %d distinct signed responses per row (IdP-initiated, 20 groups), %d posted at once", m.Logins, loginPosters)
		t := table{header: []string{"row", "logins/s", "CPU/login", "÷mellon", "÷in-memory"}}
		for _, l := range r.Logins {
			cpu := fmt.Sprintf("%.2f ms", l.CPUPerLoginMs)
			if l.RedisCPUPerLoginMs > 0 {
				cpu += fmt.Sprintf(" (+ Redis %.2f ms)", l.RedisCPUPerLoginMs)
			}
			t.add(l.Name, fmt.Sprintf("%.0f", l.LoginsPerSec), cpu, l.VsMellon.String(), l.VsMemory.String())
		}
		t.write(&b, markdown)
	}
	if len(r.Streams) > 0 {
		para("Streaming: %s each way, one transfer at a time", size(m.StreamBytes))
		t := table{header: []string{"row", "MB/s", "÷nginx", "peak RSS"}}
		for _, s := range r.Streams {
			t.add(s.Name, fmt.Sprintf("%.0f", s.MBPerSec), s.VsNginx.String(), fmt.Sprintf("%.1f MiB", s.PeakRSSMiB))
		}
		t.write(&b, markdown)
	}
	if len(r.Targets) > 0 {
		para("Targets (issues 11 and 13), in this run:")
		t := table{header: []string{"row", "target", "got", "met"}, left: 2}
		for _, g := range r.Targets {
			met := "no"
			if g.Met {
				met = "yes"
			}
			t.add(g.Row, g.What, g.Got, met)
		}
		t.write(&b, markdown)
	}
	if len(r.Absent) > 0 {
		b.WriteString("\n")
		for _, a := range r.Absent {
			line("not run: %s", a)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// table is a table of text cells. Its first left columns are aligned
// left, the others (numbers) right.
type table struct {
	header []string
	rows   [][]string
	left   int // 0 means 1
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// write renders t as plain text or as Markdown.
func (t *table) write(b *strings.Builder, markdown bool) {
	left := max(t.left, 1)
	if markdown {
		row := func(cells []string) {
			b.WriteString("|")
			for _, c := range cells {
				b.WriteString(" " + strings.ReplaceAll(c, "|", "\\|") + " |")
			}
			b.WriteString("\n")
		}
		row(t.header)
		b.WriteString("|")
		for i := range t.header {
			if i < left {
				b.WriteString("---|")
			} else {
				b.WriteString("---:|")
			}
		}
		b.WriteString("\n")
		for _, r := range t.rows {
			row(r)
		}
		return
	}
	widths := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i < left {
				b.WriteString("  " + c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
}

// String formats a ratio as "1.23×", or "-" when there is none.
func (r Ratio) String() string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", float64(r))
}

// ratio returns a/b, or 0 if either is 0.
func ratio(a, b float64) Ratio {
	if a == 0 || b == 0 {
		return 0
	}
	return Ratio(a / b)
}

func micros(us float64) string {
	if us >= 10000 {
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.0f µs", us)
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).String()
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
