// Package gctune sets the garbage collector for a gateway that runs in a
// container: a soft memory limit (GOMEMLIMIT) below the container's, and a
// GOGC above Go's default of 100.
//
// A proxy's heap is small and short-lived: per request a few KiB, gone
// when the response is. With GOGC=100 the collector runs each time the
// heap doubles, which for a heap of a few MiB is hundreds of times a
// second at 10k requests a second, and it took a quarter of the CPU.
// GOGC=400 lets the heap grow to five times what is live before a
// collection, a fifth as many collections. What keeps that from running
// into the container's memory limit (an OOM kill) is GOMEMLIMIT: near it
// the collector runs as often as it must, whatever GOGC says.
//
// The environment variables GOGC and GOMEMLIMIT, when set, win: the
// runtime has read them, and Apply leaves each alone.
package gctune

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// Defaults of Options.
const (
	// DefaultGOGC: see the package comment. On the 2-core development
	// machine a bare httputil.ReverseProxy served a fifth more requests a
	// second with it than with 100 (12.8k to 15.5k).
	DefaultGOGC = 400
	// DefaultMemoryLimitRatio leaves a tenth of the container's limit to
	// what the Go heap does not count: goroutine stacks beyond the
	// limit's accounting, the binary, the kernel's socket buffers charged
	// to the cgroup.
	DefaultMemoryLimitRatio = 0.9
)

// Where a setting came from, as Settings reports it.
const (
	SourceEnvironment = "environment" // GOGC or GOMEMLIMIT was set
	SourceConfig      = "config"      // Options (gc.gogc)
	SourceContainer   = "container"   // the cgroup's memory limit × ratio
	SourceNone        = "none"        // no limit: no container limit found
)

// Options are the settings to apply where the environment does not set
// them.
type Options struct {
	// GOGC is the collector's target percentage; zero means DefaultGOGC.
	GOGC int
	// MemoryLimitRatio is the share of the container's memory limit that
	// becomes the Go memory limit, in (0, 1]; zero means
	// DefaultMemoryLimitRatio.
	MemoryLimitRatio float64

	// LookupEnv reads GOGC and GOMEMLIMIT; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ContainerLimit returns the container's memory limit in bytes;
	// nil means the cgroup's (v2 or v1), read from /proc. An error means
	// none is known.
	ContainerLimit func() (uint64, error)
	// SetGCPercent and SetMemoryLimit apply the settings; nil means
	// runtime/debug's. They return the previous value, as debug's do.
	SetGCPercent   func(int) int
	SetMemoryLimit func(int64) int64
}

// Settings are the collector's settings in effect after Apply.
type Settings struct {
	// GOGC is the target percentage; -1 is off.
	GOGC       int
	GOGCSource string
	// MemoryLimit is the soft memory limit in bytes; math.MaxInt64 is
	// none.
	MemoryLimit       int64
	MemoryLimitSource string
	// ContainerLimit is the container's memory limit in bytes, 0 if none
	// was found.
	ContainerLimit uint64
	// Problem says why no container limit could be read, when that was
	// not simply because there is none; empty otherwise.
	Problem string
}

// Apply sets GOGC and the memory limit from o, except what the
// environment sets, and returns the settings in effect.
func Apply(o Options) Settings {
	if o.GOGC == 0 {
		o.GOGC = DefaultGOGC
	}
	if o.MemoryLimitRatio == 0 {
		o.MemoryLimitRatio = DefaultMemoryLimitRatio
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.ContainerLimit == nil {
		o.ContainerLimit = memlimit.FromCgroup
	}
	if o.SetGCPercent == nil {
		o.SetGCPercent = debug.SetGCPercent
	}
	if o.SetMemoryLimit == nil {
		o.SetMemoryLimit = debug.SetMemoryLimit
	}
	var s Settings

	if _, ok := o.LookupEnv("GOGC"); ok {
		// The runtime parsed it; read back what it made of it.
		s.GOGC = o.SetGCPercent(100)
		o.SetGCPercent(s.GOGC)
		s.GOGCSource = SourceEnvironment
	} else {
		o.SetGCPercent(o.GOGC)
		s.GOGC, s.GOGCSource = o.GOGC, SourceConfig
	}

	limit, err := o.ContainerLimit()
	switch {
	case err == nil && limit > 0 && limit < math.MaxInt64:
		s.ContainerLimit = limit
	case err != nil && !errors.Is(err, memlimit.ErrNoLimit) && !errors.Is(err, memlimit.ErrNoCgroup) &&
		!errors.Is(err, memlimit.ErrCgroupsNotSupported):
		s.Problem = fmt.Sprintf("read the container's memory limit: %v", err)
	}
	if _, ok := o.LookupEnv("GOMEMLIMIT"); ok {
		s.MemoryLimit = o.SetMemoryLimit(-1) // reads without changing
		s.MemoryLimitSource = SourceEnvironment
		return s
	}
	if s.ContainerLimit == 0 {
		s.MemoryLimit = o.SetMemoryLimit(-1)
		s.MemoryLimitSource = SourceNone
		return s
	}
	s.MemoryLimit = int64(float64(s.ContainerLimit) * o.MemoryLimitRatio)
	o.SetMemoryLimit(s.MemoryLimit)
	s.MemoryLimitSource = SourceContainer
	return s
}

// LogAttrs are the settings as log attributes, for the line that reports
// them at start.
func (s Settings) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.Int("gogc", s.GOGC), slog.String("gogc_from", s.GOGCSource),
		slog.String("memory_limit_from", s.MemoryLimitSource),
	}
	if s.MemoryLimit != math.MaxInt64 {
		attrs = append(attrs, slog.Int64("memory_limit_bytes", s.MemoryLimit))
	}
	if s.ContainerLimit > 0 {
		attrs = append(attrs, slog.Uint64("container_memory_limit_bytes", s.ContainerLimit))
	}
	if s.Problem != "" {
		attrs = append(attrs, slog.String("problem", s.Problem))
	}
	return attrs
}
