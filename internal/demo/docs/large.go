package docs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

const (
	// MaxLargeBytes is the most GET /large will serve: enough for any
	// transfer test, small enough that a typo cannot stream forever.
	MaxLargeBytes = 64 << 30

	// largeBlock is the unit of the /large stream. Each block is generated
	// from its own ChaCha8 seed, so any offset can be reached by generating
	// one block, which makes the stream seekable (Range requests) without
	// ever holding more than one block in memory.
	largeBlock = 64 << 10

	// largeSeedLabel fills the first bytes of every block's seed; the last
	// 8 bytes are the block index. It is fixed so the stream is identical on
	// every run and machine.
	largeSeedLabel = "sso-gateway demo /large"
)

// LargeReader returns the first n bytes of the deterministic pseudo-random
// stream that GET /large?bytes=n serves. Tests use it to compute the
// expected digest, or the expected bytes at any offset, without keeping a
// copy of a multi-gigabyte body. A negative n is treated as 0.
//
// The stream is ChaCha8 output: incompressible, so compression anywhere on
// the path cannot hide a truncation, and cheap to generate.
func LargeReader(n int64) io.ReadSeeker {
	return &largeStream{size: max(n, 0), block: -1}
}

// largeStream implements LargeReader. Its buffer is allocated on first read.
type largeStream struct {
	size  int64
	off   int64
	block int64 // index of the block held in buf; -1 if none
	buf   []byte
	rng   *rand.ChaCha8
}

func (l *largeStream) Read(p []byte) (int, error) {
	if l.off >= l.size {
		return 0, io.EOF
	}
	if rem := l.size - l.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		if b := l.off / largeBlock; b != l.block {
			l.fill(b)
		}
		m := copy(p[n:], l.buf[l.off%largeBlock:])
		n += m
		l.off += int64(m)
	}
	return n, nil
}

// fill generates block b into buf.
func (l *largeStream) fill(b int64) {
	var seed [32]byte
	copy(seed[:24], largeSeedLabel)
	binary.BigEndian.PutUint64(seed[24:], uint64(b))
	if l.rng == nil {
		l.rng = rand.NewChaCha8(seed)
		l.buf = make([]byte, largeBlock)
	} else {
		l.rng.Seed(seed)
	}
	_, _ = l.rng.Read(l.buf) // ChaCha8.Read never fails
	l.block = b
}

func (l *largeStream) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += l.off
	case io.SeekEnd:
		offset += l.size
	default:
		return 0, errors.New("docs: large stream: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("docs: large stream: negative position")
	}
	l.off = offset
	return offset, nil
}

// large serves LargeReader(n) for ?bytes=n through http.ServeContent, which
// sets Content-Length and answers Range requests, generating bytes only as
// the client reads them.
func (s *Service) large(w http.ResponseWriter, r *http.Request) error {
	n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
	if err != nil || n < 0 || n > MaxLargeBytes {
		return &httpError{
			code: http.StatusBadRequest,
			msg:  fmt.Sprintf("bytes must be an integer from 0 to %d", MaxLargeBytes),
			err:  err,
		}
	}
	// Setting the type stops ServeContent sniffing (a read and a seek back).
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, LargeReader(n))
	return nil
}
