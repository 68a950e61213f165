package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: Linux reports
// them in USER_HZ, which is 100 on every architecture, whatever the
// kernel's own tick rate.
const userHZ = 100

// procStat is what the benchmark reads from one /proc/<pid>/stat line.
type procStat struct {
	pid, ppid int
	// CPU times in clock ticks (1/userHZ s): the process's own (all its
	// threads), and those of its children that it has waited for.
	utime, stime, cutime, cstime uint64
}

// cpu is the process's CPU time, its reaped children's included.
func (s procStat) cpu() time.Duration {
	ticks := s.utime + s.stime + s.cutime + s.cstime
	return time.Duration(ticks) * time.Second / userHZ
}

// parseStat parses the contents of /proc/<pid>/stat (proc(5)). The second
// field, the command name in parentheses, may hold spaces and parentheses
// itself, so the fields are counted from its last ")".
func parseStat(data []byte) (procStat, error) {
	var s procStat
	line := strings.TrimSpace(string(data))
	open := strings.IndexByte(line, '(')
	end := strings.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return s, fmt.Errorf("stat %q: no command name in parentheses", truncate(line, 60))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return s, fmt.Errorf("stat %q: pid: %w", truncate(line, 60), err)
	}
	s.pid = pid
	// fields[0] is field 3 of proc(5) (state), so field n is fields[n-3].
	fields := strings.Fields(line[end+1:])
	if len(fields) < 15 {
		return s, fmt.Errorf("stat of %d: %d fields after the command name, want at least 15", pid, len(fields))
	}
	if s.ppid, err = strconv.Atoi(fields[4-3]); err != nil {
		return s, fmt.Errorf("stat of %d: ppid: %w", pid, err)
	}
	for i, p := range []*uint64{&s.utime, &s.stime, &s.cutime, &s.cstime} {
		n := 14 + i // utime is field 14, then stime, cutime, cstime
		if *p, err = strconv.ParseUint(fields[n-3], 10, 64); err != nil {
			return s, fmt.Errorf("stat of %d: field %d: %w", pid, n, err)
		}
	}
	return s, nil
}

// statusKB returns the value, in bytes, of a "Key:   1234 kB" line of
// /proc/<pid>/status, such as VmHWM (the peak resident set size).
func statusKB(data []byte, key string) (int64, error) {
	for line := range strings.SplitSeq(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != key {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(rest), " ")
		if unit != "kB" {
			return 0, fmt.Errorf("status %s: unit %q, want kB", key, unit)
		}
		kb, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status %s: %w", key, err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("status: no %s line", key)
}

// procFS reads process statistics from a proc file system; root is
// "/proc" except in tests.
type procFS struct{ root string }

// stats returns the stat of every process that can be read. Processes
// that end while it reads are left out.
func (p procFS) stats() ([]procStat, error) {
	entries, err := os.ReadDir(p.root)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p.root, err)
	}
	var out []procStat
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(p.root, e.Name(), "stat"))
		if err != nil {
			continue // ended meanwhile
		}
		s, err := parseStat(data)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// tree returns pid and its descendants, pid first; an error if pid is not
// running.
func (p procFS) tree(pid int) ([]procStat, error) {
	all, err := p.stats()
	if err != nil {
		return nil, err
	}
	children := map[int][]procStat{}
	var root *procStat
	for i, s := range all {
		children[s.ppid] = append(children[s.ppid], s)
		if s.pid == pid {
			root = &all[i]
		}
	}
	if root == nil {
		return nil, fmt.Errorf("process %d is not running", pid)
	}
	out := []procStat{*root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i].pid]...)
	}
	return out, nil
}

// treeCPU returns the CPU time of pid and all its descendants so far, for
// servers with worker processes (nginx, Apache). Each process counts its
// own time and that of its children that have ended, so workers that end
// between two readings are still counted (in their parent's).
func (p procFS) treeCPU(pid int) (time.Duration, error) {
	tree, err := p.tree(pid)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, s := range tree {
		sum += s.cpu()
	}
	return sum, nil
}

// treePeakRSS returns the sum of the peak resident set sizes (VmHWM) of pid
// and its descendants.
func (p procFS) treePeakRSS(pid int) (int64, error) {
	tree, err := p.tree(pid)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, s := range tree {
		data, err := os.ReadFile(filepath.Join(p.root, strconv.Itoa(s.pid), "status"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && s.pid != pid {
				continue // a worker ended meanwhile
			}
			return 0, fmt.Errorf("peak RSS: %w", err)
		}
		kb, err := statusKB(data, "VmHWM")
		if err != nil {
			return 0, fmt.Errorf("peak RSS of %d: %w", s.pid, err)
		}
		sum += kb
	}
	return sum, nil
}

// resetPeakRSS sets the peak RSS of pid and its descendants back to their
// current RSS (proc(5), clear_refs "5"), so that the next peak measures
// what comes after.
func (p procFS) resetPeakRSS(pid int) error {
	tree, err := p.tree(pid)
	if err != nil {
		return err
	}
	for _, s := range tree {
		err := os.WriteFile(filepath.Join(p.root, strconv.Itoa(s.pid), "clear_refs"), []byte("5"), 0)
		if err != nil && (s.pid == pid || !errors.Is(err, os.ErrNotExist)) {
			return fmt.Errorf("reset peak RSS: %w", err)
		}
	}
	return nil
}

// cpuModel returns the model name of the first CPU in cpuinfo, a
// /proc/cpuinfo file.
func cpuModel(cpuinfo []byte) string {
	for line := range bytes.SplitSeq(cpuinfo, []byte("\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && string(bytes.TrimSpace(name)) == "model name" {
			return string(bytes.TrimSpace(value))
		}
	}
	return "unknown CPU"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
