package loadtest

import (
	"errors"
	"flag"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRows(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string // nil: every row
	}{
		{"", nil},
		{"all", nil},
		{"gateway", []string{rowGateway}},
		{"bare, gateway-rotation", []string{rowBare, rowGatewayRotation}},
		{"logins", []string{rowLoginMemory, rowLoginRedis, rowLoginMellon}},
		{"streams,nginx", []string{rowDownloadGateway, rowDownloadNginx, rowDownloadBare, rowUploadGateway, rowUploadNginx, rowUploadBare, rowNginx}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseRows(tc.in)
			if err != nil {
				t.Fatalf("parseRows: got error %q, want success", err)
			}
			if tc.want == nil {
				if got != nil {
					t.Errorf("got %v, want every row (nil)", got)
				}
				return
			}
			if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(slices.Values(tc.want)); !slices.Equal(g, w) {
				t.Errorf("got %q, want %q", g, w)
			}
		})
	}
	if _, err := parseRows("gateway,gateway-200"); err == nil || !strings.Contains(err.Error(), `"gateway-200"`) {
		t.Errorf("unknown row: got error %v, want one naming it", err)
	}
}

func TestOptionsRuns(t *testing.T) {
	t.Parallel()
	all := Options{}
	if !all.runs(rowMellon) || !all.runsAny(rowLoginRedis) {
		t.Errorf("no -rows: got a row left out, want every row")
	}
	some := Options{Rows: map[string]bool{rowBare: true}}
	if some.runs(rowGateway) || !some.runs(rowBare) || !some.runsAny(rowGateway, rowBare) || some.runsAny(rowGateway, rowNginx) {
		t.Errorf("-rows bare: got the wrong rows")
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	full := Options{}.Defaults()
	short := Options{Short: true}.Defaults()
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"full duration", full.Duration, 10 * time.Second},
		{"full rounds", full.Rounds, 3},
		{"full sessions", full.Sessions, 5000},
		{"full stream", full.StreamBytes, int64(1 << 30)},
		{"full connections", full.Connections, 32},
		{"full threads", full.Threads, 2},
		{"short duration", short.Duration, 2 * time.Second},
		{"short rounds", short.Rounds, 1},
		{"short sessions", short.Sessions, 500},
		{"short logins", short.Logins, 500},
		{"short stream", short.StreamBytes, int64(64 << 20)},
		{"given values kept", Options{Short: true, Duration: time.Second, Sessions: 7}.Defaults().Sessions, 7},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"-short", "-duration", "3s", "-rows", "proxy", "-connections", "64", "-stream-mib", "8", "-json", "-client", "go"}, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags: got error %q, want success", err)
	}
	if !o.Short || o.Duration != 3*time.Second || o.Connections != 64 || o.StreamBytes != 8<<20 || !o.JSON || o.Client != "go" || len(o.Rows) != 12 {
		t.Errorf("got %+v", o)
	}
	if o.Sessions != 500 || o.Rounds != 1 {
		t.Errorf("-short defaults: got sessions %d, rounds %d; want 500, 1", o.Sessions, o.Rounds)
	}
	for _, args := range [][]string{
		{"-rows", "nope"},
		{"-client", "ab"},
		{"-connections", "0"},
		{"-threads", "8", "-connections", "4"},
		{"-duration", "-1s"},
		{"extra"},
		{"-no-such-flag"},
	} {
		var stderr strings.Builder
		if _, err := parseFlags(args, &stderr); !errors.Is(err, ErrUsage) || stderr.Len() == 0 {
			t.Errorf("parseFlags(%q): got error %v and message %q, want ErrUsage with a message", args, err, stderr.String())
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: got error %v, want flag.ErrHelp", err)
	}
}
