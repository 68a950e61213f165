package logging

import (
	"io"
	"sync"
	"time"
)

// DefaultFlushInterval is how long a buffered line (the access log) may
// wait in an Output before it is written: short next to how fast a log
// collector ships it, long enough that a busy gateway writes a few times
// per interval instead of once per request.
const DefaultFlushInterval = 100 * time.Millisecond

// maxBuffered is the size at which an Output writes its buffer at once
// rather than at the end of the interval.
const maxBuffered = 64 << 10

// Output is where the process's log lines go. Lines written with Write
// (every line of a logger from New) go out at once, after whatever is
// buffered, so that the order of lines is kept. The access log's lines
// (Lines) are buffered and written within the flush interval, or as soon
// as 64 KiB wait: one write per many requests instead of one each.
// Close writes what is left; lines that come after Close are written at
// once, so none is lost at a graceful stop. Output is safe for concurrent
// use.
type Output struct {
	w        io.Writer
	interval time.Duration // 0: nothing is buffered

	// writeMu serialises the writes to w, so that a buffer taken out is
	// written before anything that comes after it.
	writeMu sync.Mutex

	mu     sync.Mutex // guards what follows
	buf    []byte     // lines waiting
	spare  []byte     // the other buffer, written last time
	timer  *time.Timer
	armed  bool // timer will flush
	closed bool
}

// NewOutput returns an Output writing to w, buffering for at most
// interval; zero buffers nothing.
func NewOutput(w io.Writer, interval time.Duration) *Output {
	return &Output{w: w, interval: interval}
}

// Write writes p, a whole line or lines, after everything buffered.
func (o *Output) Write(p []byte) (int, error) {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	if err := o.writeBuffered(); err != nil {
		return 0, err
	}
	return o.w.Write(p)
}

// buffer adds line, which ends in a newline, to be written within the
// interval. It does not keep line.
func (o *Output) buffer(line []byte) error {
	o.mu.Lock()
	if o.interval <= 0 || o.closed {
		o.mu.Unlock()
		_, err := o.Write(line)
		return err
	}
	o.buf = append(o.buf, line...)
	full := len(o.buf) >= maxBuffered
	if !full && !o.armed {
		o.armed = true
		if o.timer == nil {
			o.timer = time.AfterFunc(o.interval, o.flushTimer)
		} else {
			o.timer.Reset(o.interval)
		}
	}
	o.mu.Unlock()
	if full {
		return o.Flush()
	}
	return nil
}

func (o *Output) flushTimer() {
	o.mu.Lock()
	o.armed = false
	o.mu.Unlock()
	// Nobody to tell of an error: the next write will meet it too.
	_ = o.Flush()
}

// Flush writes every buffered line.
func (o *Output) Flush() error {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	return o.writeBuffered()
}

// writeBuffered writes the buffer out. Called with writeMu held: lines
// buffered meanwhile go into the other buffer, and wait for the next.
func (o *Output) writeBuffered() error {
	o.mu.Lock()
	b := o.buf
	o.buf = o.spare[:0]
	o.mu.Unlock()
	if len(b) == 0 {
		o.keepSpare(b)
		return nil
	}
	_, err := o.w.Write(b)
	o.keepSpare(b)
	return err
}

// keepSpare keeps b, written, for the next swap, unless a burst grew it
// far.
func (o *Output) keepSpare(b []byte) {
	if cap(b) > 4*maxBuffered {
		b = nil
	}
	o.mu.Lock()
	o.spare = b[:0]
	o.mu.Unlock()
}

// Close writes what is buffered and stops buffering: lines that come
// later are written at once. It does not close the underlying writer.
func (o *Output) Close() error {
	o.mu.Lock()
	o.closed = true
	if o.timer != nil {
		o.timer.Stop()
	}
	o.armed = false
	o.mu.Unlock()
	return o.Flush()
}
