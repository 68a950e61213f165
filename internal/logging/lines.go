package logging

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Lines writes log lines of a fixed shape (the access log's) fast: it
// appends the line into a pooled buffer, byte for byte as the logger's
// slog handler would write it (the same keys, quoting, number and time
// formats; tests compare the two), and hands it to the Output buffered.
// slog would box every attribute, marshal each float with encoding/json,
// and write each line by itself.
//
//	if ln := lines.Start(slog.LevelInfo, "request"); ln != nil {
//		ln.String("method", r.Method)
//		lines.End(ln)
//	}
type Lines struct {
	out   *Output
	json  bool
	level slog.Leveler
	// replacement is what the JSON handler writes for a byte that is not
	// UTF-8: an escape, or the character itself (with GOEXPERIMENT
	// jsonv2), found out by asking it.
	replacement string
	pool        sync.Pool // of *Line
}

// Line is one line being built. Its methods append an attribute each, in
// the order they are called.
type Line struct {
	lines *Lines
	buf   []byte
}

// LinesOf returns the fast writer of l's lines, or nil if l is not a
// logger from New (or has attributes or groups of its own, which Lines
// does not write): the caller then logs through l.
func LinesOf(l *slog.Logger) *Lines {
	h, ok := l.Handler().(*handler)
	if !ok {
		return nil
	}
	return h.lines
}

func newLines(out *Output, json bool, level slog.Leveler) *Lines {
	ls := &Lines{out: out, json: json, level: level}
	ls.pool.New = func() any { return &Line{lines: ls, buf: make([]byte, 0, 512)} }
	if json {
		ls.replacement = jsonReplacement()
	}
	return ls
}

// jsonReplacement asks slog's JSON handler how it writes a byte that is
// not UTF-8.
func jsonReplacement() string {
	var buf bytes.Buffer
	_ = slog.NewJSONHandler(&buf, nil).Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "\xff", 0))
	if bytes.Contains(buf.Bytes(), []byte(`\ufffd`)) {
		return `\ufffd`
	}
	return "\ufffd"
}

// Start begins a line at level with message msg, stamped now; nil when
// the level is not logged.
func (ls *Lines) Start(level slog.Level, msg string) *Line {
	if level < ls.level.Level() {
		return nil
	}
	return ls.startAt(time.Now(), level, msg)
}

func (ls *Lines) startAt(t time.Time, level slog.Level, msg string) *Line {
	ln := ls.pool.Get().(*Line)
	ln.buf = ln.buf[:0]
	t = t.Round(0)
	if ls.json {
		ln.buf = append(ln.buf, `{"time":"`...)
		ln.buf = t.AppendFormat(ln.buf, time.RFC3339Nano)
		ln.buf = append(ln.buf, `","level":`...)
		ln.appendString(level.String())
		ln.buf = append(ln.buf, `,"msg":`...)
		ln.appendString(msg)
		return ln
	}
	ln.buf = append(ln.buf, "time="...)
	ln.buf = appendRFC3339Millis(ln.buf, t)
	ln.buf = append(ln.buf, " level="...)
	ln.appendString(level.String())
	ln.buf = append(ln.buf, " msg="...)
	ln.appendString(msg)
	return ln
}

// End writes the line and recycles it; ln must not be used again.
func (ls *Lines) End(ln *Line) {
	if ls.json {
		ln.buf = append(ln.buf, '}')
	}
	ln.buf = append(ln.buf, '\n')
	// Lost like a line slog could not write: the logger has nobody to
	// tell either.
	_ = ls.out.buffer(ln.buf)
	if cap(ln.buf) <= 16<<10 {
		ls.pool.Put(ln)
	}
}

// key starts an attribute.
func (ln *Line) key(k string) {
	if ln.lines.json {
		ln.buf = append(ln.buf, ',')
		ln.appendString(k)
		ln.buf = append(ln.buf, ':')
		return
	}
	ln.buf = append(ln.buf, ' ')
	ln.appendString(k)
	ln.buf = append(ln.buf, '=')
}

// String appends a string attribute.
func (ln *Line) String(k, v string) {
	ln.key(k)
	ln.appendString(v)
}

// Int appends an integer attribute.
func (ln *Line) Int(k string, v int64) {
	ln.key(k)
	ln.buf = strconv.AppendInt(ln.buf, v, 10)
}

// Float appends a float attribute (seconds, by the convention of this
// package).
func (ln *Line) Float(k string, v float64) {
	ln.key(k)
	if ln.lines.json {
		ln.buf = appendJSONFloat(ln.buf, v)
		return
	}
	ln.buf = strconv.AppendFloat(ln.buf, v, 'g', -1, 64)
}

func (ln *Line) appendString(s string) {
	if ln.lines.json {
		ln.buf = append(ln.buf, '"')
		ln.buf = appendEscapedJSONString(ln.buf, s, ln.lines.replacement)
		ln.buf = append(ln.buf, '"')
		return
	}
	if needsQuoting(s) {
		ln.buf = strconv.AppendQuote(ln.buf, s)
		return
	}
	ln.buf = append(ln.buf, s...)
}

// appendJSONFloat appends f as encoding/json writes a float64, which is
// what slog's JSON handler calls: like ES6, 'f' between 1e-6 and 1e21 and
// 'e' outside, with a one-digit exponent where it has one. NaN and the
// infinities are no JSON: they are written as strings ("NaN", "+Inf"),
// where slog would write an error; a duration is never one.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.AppendQuote(b, strconv.FormatFloat(f, 'g', -1, 64))
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendRFC3339Millis is slog's text time format: RFC 3339 with exactly
// three digits of milliseconds.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the 4th digit
}

// appendEscapedJSONString is slog's JSON string escaping (encoding/json's,
// without HTML escaping), with replacement for a byte that is not UTF-8.
func appendEscapedJSONString(buf []byte, s, replacement string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe(b) {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\')
			switch b {
			case '\\', '"':
				buf = append(buf, b)
			case '\n':
				buf = append(buf, 'n')
			case '\r':
				buf = append(buf, 'r')
			case '\t':
				buf = append(buf, 't')
			default:
				buf = append(buf, 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, replacement...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(buf, s[start:]...)
}

// needsQuoting is slog's rule for quoting a text value: empty, or holding
// a space, '=', a byte JSON would escape (but '\\'), a rune that is not
// UTF-8, white space or not printable.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b != '\\' && (b == ' ' || b == '=' || !jsonSafe(b)) {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// jsonSafe reports whether an ASCII byte goes into a JSON string as it
// is: every printable one but '"' and '\\' (encoding/json's safeSet, which
// has DEL).
func jsonSafe(b byte) bool {
	return b >= 0x20 && b != '"' && b != '\\'
}
