package config

// The checks of gc and log: the process's memory settings and logging.

import (
	"log/slog"
	"strconv"
	"strings"

	"github.com/sso-gateway/sso-gateway/internal/gctune"
)

func (v *validator) gc(path string, f *gcFile) GC {
	g := GC{
		GOGC:             v.positiveInt(path+".gogc", f.GOGC, gctune.DefaultGOGC),
		MemoryLimitRatio: gctune.DefaultMemoryLimitRatio,
	}
	if s := strings.TrimSpace(f.MemoryLimitRatio); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || !(r > 0 && r <= 1) {
			v.add(path+".memory_limit_ratio", "must be a number above 0 and at most 1 (got %q)", f.MemoryLimitRatio)
		} else {
			g.MemoryLimitRatio = r
		}
	}
	return g
}

func (v *validator) log(path string, f *logFile) Log {
	l := Log{Level: slog.LevelInfo, Format: "json", Access: f.Access == nil || *f.Access, DebugAssertionTenant: f.DebugAssertionTenant}
	if f.Level != "" {
		if err := l.Level.UnmarshalText([]byte(f.Level)); err != nil {
			v.add(path+".level", "%q is not one of debug, info, warn, error", f.Level)
		}
	}
	switch f.Format {
	case "", "json":
	case "text":
		l.Format = "text"
	default:
		v.add(path+".format", "%q is not json or text", f.Format)
	}
	return l
}
