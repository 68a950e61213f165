package gctune

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// fakeRuntime records what Apply sets, starting from Go's defaults (or
// what the environment set).
type fakeRuntime struct {
	gogc  int
	limit int64
	sets  int // calls that changed something
}

func (f *fakeRuntime) setGCPercent(p int) int {
	old := f.gogc
	if p != old {
		f.sets++
	}
	f.gogc = p
	return old
}

func (f *fakeRuntime) setMemoryLimit(l int64) int64 {
	old := f.limit
	if l >= 0 {
		if l != old {
			f.sets++
		}
		f.limit = l
	}
	return old
}

func TestApply(t *testing.T) {
	t.Parallel()
	const container = 512 << 20
	tests := []struct {
		name      string
		opts      Options
		env       map[string]string
		start     fakeRuntime // as the runtime has it, from the environment
		container uint64
		err       error
		want      Settings
	}{
		{
			name:  "defaults in a container",
			start: fakeRuntime{gogc: 100, limit: math.MaxInt64}, container: container,
			want: Settings{GOGC: DefaultGOGC, GOGCSource: SourceConfig, MemoryLimit: container * 9 / 10, MemoryLimitSource: SourceContainer, ContainerLimit: container},
		},
		{
			name:  "configured",
			opts:  Options{GOGC: 250, MemoryLimitRatio: 0.75},
			start: fakeRuntime{gogc: 100, limit: math.MaxInt64}, container: container,
			want: Settings{GOGC: 250, GOGCSource: SourceConfig, MemoryLimit: container * 3 / 4, MemoryLimitSource: SourceContainer, ContainerLimit: container},
		},
		{
			name:  "no container limit",
			start: fakeRuntime{gogc: 100, limit: math.MaxInt64}, err: memlimit.ErrNoLimit,
			want: Settings{GOGC: DefaultGOGC, GOGCSource: SourceConfig, MemoryLimit: math.MaxInt64, MemoryLimitSource: SourceNone},
		},
		{
			name:  "not in a cgroup",
			start: fakeRuntime{gogc: 100, limit: math.MaxInt64}, err: memlimit.ErrNoCgroup,
			want: Settings{GOGC: DefaultGOGC, GOGCSource: SourceConfig, MemoryLimit: math.MaxInt64, MemoryLimitSource: SourceNone},
		},
		{
			name:  "the cgroup cannot be read",
			start: fakeRuntime{gogc: 100, limit: math.MaxInt64}, err: errors.New("permission denied"),
			want: Settings{GOGC: DefaultGOGC, GOGCSource: SourceConfig, MemoryLimit: math.MaxInt64, MemoryLimitSource: SourceNone,
				Problem: "read the container's memory limit: permission denied"},
		},
		{
			name:  "GOGC and GOMEMLIMIT in the environment win",
			opts:  Options{GOGC: 250},
			env:   map[string]string{"GOGC": "150", "GOMEMLIMIT": "300MiB"},
			start: fakeRuntime{gogc: 150, limit: 300 << 20}, container: container,
			want: Settings{GOGC: 150, GOGCSource: SourceEnvironment, MemoryLimit: 300 << 20, MemoryLimitSource: SourceEnvironment, ContainerLimit: container},
		},
		{
			name:  "GOGC=off in the environment",
			env:   map[string]string{"GOGC": "off"},
			start: fakeRuntime{gogc: -1, limit: math.MaxInt64}, container: container,
			want: Settings{GOGC: -1, GOGCSource: SourceEnvironment, MemoryLimit: container * 9 / 10, MemoryLimitSource: SourceContainer, ContainerLimit: container},
		},
		{
			name:  "GOMEMLIMIT only",
			env:   map[string]string{"GOMEMLIMIT": "1GiB"},
			start: fakeRuntime{gogc: 100, limit: 1 << 30}, container: container,
			want: Settings{GOGC: DefaultGOGC, GOGCSource: SourceConfig, MemoryLimit: 1 << 30, MemoryLimitSource: SourceEnvironment, ContainerLimit: container},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rt := tt.start
			o := tt.opts
			o.LookupEnv = func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			o.ContainerLimit = func() (uint64, error) { return tt.container, tt.err }
			o.SetGCPercent, o.SetMemoryLimit = rt.setGCPercent, rt.setMemoryLimit
			got := Apply(o)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if rt.gogc != tt.want.GOGC || rt.limit != tt.want.MemoryLimit {
				t.Errorf("runtime: got GOGC %d, limit %d; want %d, %d", rt.gogc, rt.limit, tt.want.GOGC, tt.want.MemoryLimit)
			}
		})
	}
}

// TestContainerLimitFromCgroup: the default ContainerLimit, automemlimit's
// cgroup reader, works on this machine: it fails only by finding no limit
// or no cgroup, and when this process's cgroup v2 has a memory.max it
// returns that.
func TestContainerLimitFromCgroup(t *testing.T) {
	t.Parallel()
	got, err := memlimit.FromCgroup()
	// On the machine running the tests there may or may not be a limit:
	// what must hold is that reading does not fail in another way.
	if err != nil && !errors.Is(err, memlimit.ErrNoLimit) && !errors.Is(err, memlimit.ErrNoCgroup) &&
		!errors.Is(err, memlimit.ErrCgroupsNotSupported) {
		t.Fatalf("FromCgroup: %v", err)
	}
	if max := readMemoryMax(t); max > 0 && got != max {
		t.Errorf("got %d, want memory.max %d", got, max)
	}
}

// readMemoryMax is this process's cgroup v2 memory.max, when it is in a
// cgroup v2 whose file it can read and which has a limit; else 0.
func readMemoryMax(t *testing.T) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	for _, line := range splitLines(string(data)) {
		if len(line) > 3 && line[:3] == "0::" {
			b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", line[3:], "memory.max"))
			if err != nil {
				return 0
			}
			var n uint64
			for _, c := range b {
				if c < '0' || c > '9' {
					break
				}
				n = n*10 + uint64(c-'0')
			}
			return n
		}
	}
	return 0
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
