// Package logging builds the process's loggers: JSON lines for log
// collectors, or text for people, with every duration in seconds.
//
// slog writes a time.Duration as integer nanoseconds in JSON
// ("retry_in":30000000000) and as "30s" in text: neither is what a log
// query or a reader expects. Every handler made here writes durations as
// float seconds under a key ending in "_seconds", the unit Prometheus and
// the access log use.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a logger writing to w at level: text lines when format is
// "text", JSON lines otherwise. When w is an *Output, the access log's
// lines (LinesOf) are buffered in it; any other w gets an Output that
// buffers nothing, which also keeps the fast lines and slog's apart.
func New(w io.Writer, level slog.Leveler, format string) *slog.Logger {
	return slog.New(NewHandler(w, level, format))
}

// NewHandler is the handler New uses.
func NewHandler(w io.Writer, level slog.Leveler, format string) slog.Handler {
	out, ok := w.(*Output)
	if !ok {
		out = NewOutput(w, 0)
	}
	if level == nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: Seconds}
	json := format != "text"
	h := &handler{lines: newLines(out, json, level)}
	if json {
		h.Handler = slog.NewJSONHandler(out, opts)
	} else {
		h.Handler = slog.NewTextHandler(out, opts)
	}
	return h
}

// handler is slog's JSON or text handler, and Lines that write as it does.
// A logger with attributes or a group of its own gets slog's handler
// alone.
type handler struct {
	slog.Handler
	lines *Lines
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler { return h.Handler.WithAttrs(as) }
func (h *handler) WithGroup(name string) slog.Handler    { return h.Handler.WithGroup(name) }

// Seconds is a slog.HandlerOptions.ReplaceAttr function that writes a
// time.Duration attribute as float seconds, adding the suffix "_seconds" to
// its key unless it has it. Call sites should name such keys with the
// suffix themselves (and log seconds); this catches the ones that do not.
func Seconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindDuration {
		return a
	}
	key := a.Key
	if !strings.HasSuffix(key, "_seconds") {
		key += "_seconds"
	}
	return slog.Float64(key, a.Value.Duration().Seconds())
}
