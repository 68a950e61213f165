package logging

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// attr is one attribute of a test line.
type attr struct {
	key string
	val any // string, int64 or float64
}

// viaSlog is what the handler New makes writes for the line.
func viaSlog(t testing.TB, format string, at time.Time, level slog.Level, msg string, attrs []attr) string {
	t.Helper()
	var buf bytes.Buffer
	h := NewHandler(&buf, slog.LevelDebug, format)
	r := slog.NewRecord(at, level, msg, 0)
	for _, a := range attrs {
		switch v := a.val.(type) {
		case string:
			r.AddAttrs(slog.String(a.key, v))
		case int64:
			r.AddAttrs(slog.Int64(a.key, v))
		case float64:
			r.AddAttrs(slog.Float64(a.key, v))
		}
	}
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// viaLines is what Lines writes for the line.
func viaLines(t testing.TB, format string, at time.Time, level slog.Level, msg string, attrs []attr) string {
	t.Helper()
	var buf bytes.Buffer
	ls := LinesOf(New(&buf, slog.LevelDebug, format))
	ln := ls.startAt(at, level, msg)
	for _, a := range attrs {
		switch v := a.val.(type) {
		case string:
			ln.String(a.key, v)
		case int64:
			ln.Int(a.key, v)
		case float64:
			ln.Float(a.key, v)
		}
	}
	ls.End(ln)
	return buf.String()
}

// accessAttrs is an access-log line with value v in every string field.
func accessAttrs(v string, seconds float64) []attr {
	return []attr{
		{"method", "GET"}, {"path", v}, {"status", int64(200)}, {"bytes", int64(1024)},
		{"duration_seconds", seconds}, {"outcome", "proxied"}, {"upstream_seconds", seconds / 3},
		{"tenant", "acme"}, {"user", v}, {"client_ip", "203.0.113.7"}, {"correlation_id", "0123456789abcdef"},
	}
}

// TestLinesMatchSlog: Lines writes every line byte for byte as the
// handler of New would, in both formats, whatever the values.
func TestLinesMatchSlog(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 18, 25, 11, 123456789, time.UTC)
	values := []string{
		"/documents/Q3%20Minutes.md", "b.simon@contoso.example", "", "with space", "a=b", `quote " and \ backslash`,
		"tab\tnewline\nreturn\r", "\x00\x01\x1f\x7f", "zoë Ångström 日本", "\xff\xfe invalid", "line\u2028para\u2029sep",
		"non\u00a0breaking", "<html>&amp;", "emoji 🙂",
	}
	floats := []float64{0, 1, 0.000123456, 1.5e-7, 3e-10, 12345.678, 1e21, 2.5e22, 0.1 + 0.2, 1e-6, 999999.9999999}
	for _, format := range []string{"json", "text"} {
		for i, v := range values {
			for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
				f := floats[i%len(floats)]
				t.Run(fmt.Sprintf("%s %q %s", format, v, level), func(t *testing.T) {
					want := viaSlog(t, format, at, level, "request", accessAttrs(v, f))
					if got := viaLines(t, format, at, level, "request", accessAttrs(v, f)); got != want {
						t.Errorf("got  %q\nwant %q", got, want)
					}
				})
			}
		}
		for _, f := range floats {
			t.Run(fmt.Sprintf("%s %v", format, f), func(t *testing.T) {
				attrs := []attr{{"duration_seconds", f}, {"negative_seconds", -f}}
				want := viaSlog(t, format, at, slog.LevelInfo, "request", attrs)
				if got := viaLines(t, format, at, slog.LevelInfo, "request", attrs); got != want {
					t.Errorf("got  %q\nwant %q", got, want)
				}
			})
		}
	}
}

// FuzzLinesMatchSlog: for any string, integer, float, time and message,
// Lines and slog write the same bytes.
func FuzzLinesMatchSlog(f *testing.F) {
	f.Add("/a b", "user@example.com", int64(200), 0.0123, int64(1796000000123456789), "request", true)
	f.Add("\xff\x00\"\\", "日本\u2028", int64(-1), 1e-9, int64(0), "", false)
	f.Fuzz(func(t *testing.T, s1, s2 string, n int64, x float64, nanos int64, msg string, json bool) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return // not a duration; the two differ on purpose
		}
		at := time.Unix(0, nanos).UTC()
		if y := at.Year(); y < 0 || y >= 10000 {
			return // slog refuses such times
		}
		format := "text"
		if json {
			format = "json"
		}
		attrs := []attr{{"path", s1}, {"status", n}, {"duration_seconds", x}, {s2, s1}, {"user", s2}}
		want := viaSlog(t, format, at, slog.LevelInfo, msg, attrs)
		if got := viaLines(t, format, at, slog.LevelInfo, msg, attrs); got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
}

// TestLinesOf: the fast lines exist for a logger of New only, and follow
// its level.
func TestLinesOf(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	for _, tt := range []struct {
		name string
		log  *slog.Logger
		want bool
	}{
		{"New", New(&buf, slog.LevelInfo, "json"), true},
		{"New, text", New(&buf, slog.LevelInfo, "text"), true},
		{"With", New(&buf, slog.LevelInfo, "json").With("component", "x"), false},
		{"WithGroup", New(&buf, slog.LevelInfo, "json").WithGroup("g"), false},
		{"slog's own", slog.New(slog.NewJSONHandler(&buf, nil)), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := LinesOf(tt.log) != nil; got != tt.want {
				t.Errorf("got lines %v, want %v", got, tt.want)
			}
		})
	}
	ls := LinesOf(New(&buf, slog.LevelWarn, "json"))
	if ln := ls.Start(slog.LevelInfo, "request"); ln != nil {
		t.Error("a line below the level was started")
	}
	if ln := ls.Start(slog.LevelWarn, "request"); ln == nil {
		t.Error("a line at the level was not started")
	} else {
		ls.End(ln)
	}
}

// TestOutputBuffersLines: a buffered line waits for the interval, and
// never overtakes a line written at once after it.
func TestOutputBuffersLines(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	out := NewOutput(&buf, 50*time.Millisecond)
	log := New(out, slog.LevelInfo, "json")
	ls := LinesOf(log)
	ln := ls.Start(slog.LevelInfo, "request")
	ln.String("n", "1")
	ls.End(ln)
	if got := buf.String(); got != "" {
		t.Fatalf("written at once: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for buf.String() == "" && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := buf.String(); !strings.Contains(got, `"n":"1"`) {
		t.Fatalf("after the interval: got %q", got)
	}

	ln = ls.Start(slog.LevelInfo, "request")
	ln.String("n", "2")
	ls.End(ln)
	log.Warn("upstream error")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], `"n":"2"`) || !strings.Contains(lines[2], "upstream error") {
		t.Errorf("got lines %q, want the buffered line before the one written after it", lines)
	}
}

// TestOutputClose: Close writes what waits, and a line after it is
// written at once: nothing is lost at a graceful stop.
func TestOutputClose(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	out := NewOutput(&buf, time.Hour)
	ls := LinesOf(New(out, slog.LevelInfo, "json"))
	for i := range 3 {
		ln := ls.Start(slog.LevelInfo, "request")
		ln.Int("n", int64(i))
		ls.End(ln)
	}
	if got := buf.String(); got != "" {
		t.Fatalf("written before Close: %q", got)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "\n"); got != 3 {
		t.Fatalf("after Close: got %d lines, want 3", got)
	}
	ln := ls.Start(slog.LevelInfo, "request")
	ln.Int("n", 3)
	ls.End(ln)
	if got := strings.Count(buf.String(), "\n"); got != 4 {
		t.Errorf("a line after Close: got %d lines, want 4", got)
	}
}

// TestOutputFull: 64 KiB of waiting lines are written without waiting for
// the interval.
func TestOutputFull(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	out := NewOutput(&buf, time.Hour)
	defer out.Close()
	ls := LinesOf(New(out, slog.LevelInfo, "json"))
	long := strings.Repeat("x", 1000)
	for range 70 {
		ln := ls.Start(slog.LevelInfo, "request")
		ln.String("path", long)
		ls.End(ln)
	}
	if got := len(buf.String()); got < maxBuffered {
		t.Errorf("got %d bytes written, want at least %d", got, maxBuffered)
	}
}

// TestOutputConcurrent: lines from many goroutines, buffered and not,
// each arrive whole (run it with -race).
func TestOutputConcurrent(t *testing.T) {
	t.Parallel()
	var buf syncbuf.Buffer
	out := NewOutput(&buf, time.Millisecond)
	log := New(out, slog.LevelInfo, "json")
	ls := LinesOf(log)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if i%10 == 0 {
					log.Info("event", slog.Int("g", g), slog.Int("i", i))
					continue
				}
				ln := ls.Start(slog.LevelInfo, "request")
				ln.Int("g", int64(g))
				ln.Int("i", int64(i))
				ln.String("pad", strings.Repeat("p", i))
				ls.End(ln)
			}
		}()
	}
	wg.Wait()
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 8*200 {
		t.Fatalf("got %d lines, want %d", len(lines), 8*200)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `{"time":`) || !strings.HasSuffix(l, "}") || strings.Count(l, `"time"`) != 1 {
			t.Fatalf("a broken line: %q", l)
		}
	}
}
