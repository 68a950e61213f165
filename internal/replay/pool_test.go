package replay

import (
	"runtime"
	"testing"
)

// TestPoolSize: without pool_size in the URL, the store keeps connections
// for at least minPoolSize concurrent logins, whatever GOMAXPROCS is; a
// pool_size in the URL is the operator's choice.
func TestPoolSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want int
	}{
		{"redis://127.0.0.1:1/0", max(minPoolSize, 10*runtime.GOMAXPROCS(0))},
		{"redis://127.0.0.1:1/0?pool_size=5", 5},
		{"redis://127.0.0.1:1/0?pool_size=100", 100},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			r, err := NewRedis(RedisOptions{URL: tt.url})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.client.Options().PoolSize; got != tt.want {
				t.Errorf("got pool size %d, want %d", got, tt.want)
			}
		})
	}
}
