package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDurationsInSeconds: every duration attribute, whatever its key and
// however it was made, is written as float seconds under a *_seconds key.
func TestDurationsInSeconds(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo, "json")
	log.With("component", "test").WithGroup("refresh").Warn("IdP metadata refresh failed",
		slog.Duration("retry_in", 30*time.Second),
		slog.Duration("drain_seconds", 1500*time.Millisecond),
		"wait", 250*time.Millisecond, // slog.Any of a time.Duration
		slog.Int("attempt", 3),
	)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	group, ok := line["refresh"].(map[string]any)
	if !ok {
		t.Fatalf("no group %q in %s", "refresh", buf.String())
	}
	tests := []struct {
		key  string
		want float64
	}{
		{"retry_in_seconds", 30},
		{"drain_seconds", 1.5},
		{"wait_seconds", 0.25},
		{"attempt", 3},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, ok := group[tt.key].(float64)
			if !ok || got != tt.want {
				t.Errorf("%s: got %v, want %v (line %s)", tt.key, group[tt.key], tt.want, buf.String())
			}
		})
	}
	for _, old := range []string{"retry_in", "wait", "drain_seconds_seconds"} {
		if _, ok := group[old]; ok {
			t.Errorf("key %q still written: %s", old, buf.String())
		}
	}
	if got, want := line["component"], "test"; got != want {
		t.Errorf("component: got %q, want %q", got, want)
	}
}

func TestTextFormat(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	New(&buf, slog.LevelInfo, "text").Info("shutting down", slog.Duration("delay", 5*time.Second))
	if got, want := buf.String(), " delay_seconds=5\n"; !strings.HasSuffix(got, want) {
		t.Errorf("got %q, want a line ending %q", got, want)
	}
	buf.Reset()
	New(&buf, slog.LevelWarn, "text").Info("not shown")
	if got := buf.String(); got != "" {
		t.Errorf("below the level: got %q, want %q", got, "")
	}
}
