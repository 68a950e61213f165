package loadtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statLine makes a /proc/<pid>/stat line as Linux writes it, with the
// given command name and times; the other fields are plausible values.
func statLine(pid int, comm string, ppid int, utime, stime, cutime, cstime uint64) string {
	return fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560 1234 0 0 0 %d %d %d %d 20 0 4 0 5678 123456789 2345 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
		pid, comm, ppid, pid, pid, utime, stime, cutime, cstime)
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		line string
		want procStat
	}{
		{"plain", statLine(42, "nginx", 1, 300, 100, 7, 3), procStat{pid: 42, ppid: 1, utime: 300, stime: 100, cutime: 7, cstime: 3}},
		{"name with spaces and parentheses", statLine(7, "a) (b c) S 9", 2, 1, 2, 3, 4), procStat{pid: 7, ppid: 2, utime: 1, stime: 2, cutime: 3, cstime: 4}},
		{"empty name", statLine(8, "", 3, 5, 6, 0, 0), procStat{pid: 8, ppid: 3, utime: 5, stime: 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStat([]byte(tc.line))
			if err != nil {
				t.Fatalf("parseStat: got error %q, want success", err)
			}
			if got != tc.want {
				t.Errorf("parseStat: got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseStatErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, line string }{
		{"empty", ""},
		{"no parentheses", "42 nginx S 1 2 3"},
		{"bad pid", "x (nginx) S 1"},
		{"too short", "42 (nginx) S 1 42 42 0 -1 4194560 1234 0 0 0 300"},
		{"bad utime", strings.Replace(statLine(42, "nginx", 1, 300, 100, 0, 0), " 300 ", " 3x0 ", 1)},
		{"bad ppid", "42 (nginx) S one 42 42 0 -1 4194560 1234 0 0 0 300 100 0 0 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got, err := parseStat([]byte(tc.line)); err == nil {
				t.Errorf("parseStat(%q): got %+v, want an error", tc.line, got)
			}
		})
	}
}

func TestStatCPU(t *testing.T) {
	t.Parallel()
	s := procStat{utime: 150, stime: 50, cutime: 20, cstime: 30}
	if got, want := s.cpu(), 2500*time.Millisecond; got != want {
		t.Errorf("cpu: got %v, want %v", got, want)
	}
}

func TestStatusKB(t *testing.T) {
	t.Parallel()
	status := "Name:\tsso-gateway\nVmPeak:\t 1300000 kB\nVmHWM:\t   21904 kB\nVmRSS:\t   20000 kB\n"
	got, err := statusKB([]byte(status), "VmHWM")
	if err != nil {
		t.Fatalf("statusKB: got error %q, want success", err)
	}
	if want := int64(21904 * 1024); got != want {
		t.Errorf("statusKB: got %d, want %d", got, want)
	}
	for _, tc := range []struct{ name, status string }{
		{"missing", "Name:\tx\nVmRSS:\t 1 kB\n"},
		{"unit", "VmHWM:\t 1 MB\n"},
		{"number", "VmHWM:\t x kB\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := statusKB([]byte(tc.status), "VmHWM"); err == nil {
				t.Errorf("statusKB(%q): got %d, want an error", tc.status, got)
			}
		})
	}
}

// fakeProc writes a proc file system with processes (pid, ppid, ticks of
// user time, VmHWM in kB) into a temporary folder.
func fakeProc(t *testing.T, procs ...[4]int) procFS {
	t.Helper()
	root := t.TempDir()
	for _, p := range procs {
		dir := filepath.Join(root, fmt.Sprint(p[0]))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{
			"stat":       statLine(p[0], "proc", p[1], uint64(p[2]), 0, 1, 0),
			"status":     fmt.Sprintf("Name:\tproc\nVmHWM:\t %d kB\n", p[3]),
			"clear_refs": "",
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Entries that are not processes are ignored.
	if err := os.WriteFile(filepath.Join(root, "uptime"), []byte("1 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return procFS{root: root}
}

func TestProcTree(t *testing.T) {
	t.Parallel()
	// 10 is a master with workers 11 and 12; 12 has a helper 13; 20 is
	// someone else's.
	fs := fakeProc(t,
		[4]int{1, 0, 1000, 5000},
		[4]int{10, 1, 100, 1000},
		[4]int{11, 10, 200, 2000},
		[4]int{12, 10, 300, 3000},
		[4]int{13, 12, 400, 4000},
		[4]int{20, 1, 900, 9000},
	)
	cpu, err := fs.treeCPU(10)
	if err != nil {
		t.Fatalf("treeCPU: got error %q, want success", err)
	}
	// utime plus cutime (1 tick each) of 10, 11, 12 and 13.
	if want := time.Duration(100+200+300+400+4) * 10 * time.Millisecond; cpu != want {
		t.Errorf("treeCPU: got %v, want %v", cpu, want)
	}
	rss, err := fs.treePeakRSS(10)
	if err != nil {
		t.Fatalf("treePeakRSS: got error %q, want success", err)
	}
	if want := int64(1000+2000+3000+4000) * 1024; rss != want {
		t.Errorf("treePeakRSS: got %d, want %d", rss, want)
	}
	if err := fs.resetPeakRSS(12); err != nil {
		t.Fatalf("resetPeakRSS: got error %q, want success", err)
	}
	for pid, want := range map[int]string{10: "", 11: "", 12: "5", 13: "5", 20: ""} {
		got, err := os.ReadFile(filepath.Join(fs.root, fmt.Sprint(pid), "clear_refs"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("clear_refs of %d: got %q, want %q", pid, got, want)
		}
	}
	if _, err := fs.treeCPU(99); err == nil {
		t.Errorf("treeCPU of a process that does not run: got no error, want one")
	}
}

// TestProcSelf reads the real /proc: this test's own CPU time grows as it
// burns CPU, and it has a peak RSS.
func TestProcSelf(t *testing.T) {
	fs := procFS{root: "/proc"}
	before, err := fs.treeCPU(os.Getpid())
	if err != nil {
		t.Fatalf("treeCPU: got error %q, want success", err)
	}
	x := 0
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
		x++
	}
	after, err := fs.treeCPU(os.Getpid())
	if err != nil {
		t.Fatalf("treeCPU: got error %q, want success", err)
	}
	// The clock ticks every 10 ms; the loop ran for 100 ms of wall time,
	// of which a loaded machine may give it much less.
	if after-before < 10*time.Millisecond {
		t.Errorf("treeCPU after 100 ms of spinning (%d loops): grew by %v, want at least 10ms", x, after-before)
	}
	rss, err := fs.treePeakRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("treePeakRSS: got %d, %v; want at least 1 MiB", rss, err)
	}
}

func TestCPUModel(t *testing.T) {
	t.Parallel()
	info := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	if got, want := cpuModel([]byte(info)), "AMD EPYC 7B13"; got != want {
		t.Errorf("cpuModel: got %q, want %q", got, want)
	}
	if got, want := cpuModel([]byte("processor\t: 0\n")), "unknown CPU"; got != want {
		t.Errorf("cpuModel without a model: got %q, want %q", got, want)
	}
}
