// Package buildinfo says which build of sso-gateway is running: the module
// version and the VCS revision the Go toolchain stamped into the binary.
// A plain "go build" inside a git checkout is enough; nothing has to be
// passed with -ldflags.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Dev is the version of a binary built without any version or VCS
// information (for example with -buildvcs=false, or by "go run").
const Dev = "dev"

// dirty marks a revision built with uncommitted changes, as the Go
// toolchain marks such a module version.
const dirty = "+dirty"

// Info describes a build.
type Info struct {
	// Version is the main module's version: a tag such as v1.4.0, a
	// pseudo-version such as v0.0.0-20261128165039-d7ffe7e5e94e (Go stamps
	// one from the checkout, with "+dirty" when it had uncommitted
	// changes), "devel" when only the revision is known, or Dev when
	// nothing is.
	Version string
	// Revision is the VCS commit the binary was built from, with "+dirty"
	// appended when the checkout had uncommitted changes; "" when unknown.
	Revision string
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return Parse(bi)
}

// Parse extracts the version and revision from bi; nil means the binary has
// no build information.
func Parse(bi *debug.BuildInfo) Info {
	info := Info{Version: Dev, GoVersion: runtime.Version()}
	if bi == nil {
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if info.Revision != "" && modified {
		info.Revision += dirty
	}
	switch v := bi.Main.Version; {
	case v != "" && v != "(devel)":
		info.Version = v
	case info.Revision != "":
		// Built from a checkout the toolchain could not turn into a
		// version (older Go, or a VCS it does not version): the revision
		// says everything.
		info.Version = "devel"
	}
	return info
}

// Line is what "sso-gateway version" prints: the version, then the
// revision and Go version, e.g.
// "sso-gateway v0.0.0-20261128165039-d7ffe7e5e94e (revision d7ffe7e…, go1.27.3)".
func (i Info) Line() string {
	revision := i.Revision
	if revision == "" {
		revision = "unknown"
	}
	return fmt.Sprintf("sso-gateway %s (revision %s, %s)", i.Version, revision, i.GoVersion)
}
