package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// TestConcurrentUse writes from many goroutines while reading; under -race
// an unguarded buffer fails, and every write must arrive whole.
func TestConcurrentUse(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if _, err := b.Write([]byte("line\n")); err != nil {
					t.Error(err)
				}
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 800 {
		t.Errorf("got %d lines, want 800", got)
	}
}
