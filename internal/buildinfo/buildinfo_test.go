package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	const rev = "d7ffe7e5e94e34e3001c3ae56ffb7cc1e5bf6525"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev},
			{Key: "vcs.time", Value: "2026-11-28T16:50:39Z"},
			{Key: "vcs.modified", Value: modified},
		}
	}
	tests := []struct {
		name         string
		bi           *debug.BuildInfo
		wantVersion  string
		wantRevision string
	}{
		{
			name:        "no build information",
			bi:          nil,
			wantVersion: Dev,
		},
		{
			name:        "no VCS information (-buildvcs=false, go run)",
			bi:          &debug.BuildInfo{Main: debug.Module{Path: "github.com/sso-gateway/sso-gateway", Version: "(devel)"}},
			wantVersion: Dev,
		},
		{
			name:         "devel version with a revision",
			bi:           &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("false")},
			wantVersion:  "devel",
			wantRevision: rev,
		},
		{
			name:         "empty version with a modified checkout",
			bi:           &debug.BuildInfo{Settings: vcs("true")},
			wantVersion:  "devel",
			wantRevision: rev + "+dirty",
		},
		{
			name:         "pseudo-version stamped from the checkout",
			bi:           &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261128165039-d7ffe7e5e94e"}, Settings: vcs("false")},
			wantVersion:  "v0.0.0-20261128165039-d7ffe7e5e94e",
			wantRevision: rev,
		},
		{
			name:         "pseudo-version of a dirty checkout",
			bi:           &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261128165039-d7ffe7e5e94e+dirty"}, Settings: vcs("true")},
			wantVersion:  "v0.0.0-20261128165039-d7ffe7e5e94e+dirty",
			wantRevision: rev + "+dirty",
		},
		{
			name:         "tagged module version",
			bi:           &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}, Settings: vcs("false")},
			wantVersion:  "v1.4.0",
			wantRevision: rev,
		},
		{
			name:        "tagged module version installed without VCS information",
			bi:          &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}},
			wantVersion: "v1.4.0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Parse(tt.bi)
			if got.Version != tt.wantVersion {
				t.Errorf("Version: got %q, want %q", got.Version, tt.wantVersion)
			}
			if got.Revision != tt.wantRevision {
				t.Errorf("Revision: got %q, want %q", got.Revision, tt.wantRevision)
			}
			if got.GoVersion == "" {
				t.Errorf("GoVersion: got %q, want the toolchain's", got.GoVersion)
			}
		})
	}
}

func TestLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		info Info
		want string
	}{
		{"stamped", Info{Version: "v1.4.0", Revision: "abc123", GoVersion: "go1.27.3"}, "sso-gateway v1.4.0 (revision abc123, go1.27.3)"},
		{"nothing known", Info{Version: Dev, GoVersion: "go1.27.3"}, "sso-gateway dev (revision unknown, go1.27.3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.info.Line(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
