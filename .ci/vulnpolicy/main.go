// Command vulnpolicy reads govulncheck's JSON stream (-format json) on stdin,
// prints one line per vulnerability and decides CI's verdict: it exits 1
// when code calls a vulnerable symbol, of a required module (the fix is to
// upgrade it) or of the standard library (the fix is the toolchain CI and
// releases are built with, GOTOOLCHAIN in .ci/run and the Dockerfile).
// Findings that are only imported or required, not called, are printed and
// pass.
//
// Usage: govulncheck -format json ./... | go run ./.ci/vulnpolicy [-ignore ID,...]
//
// It uses only the standard library so that it adds nothing to go.mod.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// The subset of govulncheck's protocol (x/vuln internal/govulncheck) read here.
type message struct {
	Config *struct {
		ScannerVersion string `json:"scanner_version"`
		DB             string `json:"db"`
		GoVersion      string `json:"go_version"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string  `json:"osv"`
		FixedVersion string  `json:"fixed_version"`
		Trace        []frame `json:"trace"`
	} `json:"finding"`
}

type frame struct {
	Module, Version, Package, Function, Receiver string
}

func (f frame) String() string {
	s := f.Package
	if i := strings.LastIndex(s, "/"); i >= 0 {
		s = s[i+1:]
	}
	if f.Receiver != "" {
		s += "." + strings.TrimPrefix(f.Receiver, "*")
	}
	return s + "." + f.Function
}

// Levels in rising order of evidence: govulncheck reports a vulnerable module
// that is only required, then imported, then called (trace has a function).
var levels = []string{"required only", "imported, not called", "CALLED"}

type vuln struct {
	id, module, version, fixed, example string
	level                               int
}

func main() {
	ignore := flag.String("ignore", "", "comma-separated OSV IDs that never fail the run (each needs a written reason where it is set)")
	flag.Parse()
	ignored := map[string]bool{}
	for _, id := range strings.FieldsFunc(*ignore, func(r rune) bool { return r == ',' || r == ' ' }) {
		ignored[id] = true
	}

	summaries := map[string]string{}
	vulns := map[string]*vuln{} // by OSV ID + module
	sawConfig := false
	dec := json.NewDecoder(os.Stdin)
	for {
		var m message
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "vulnpolicy: reading govulncheck JSON:", err)
			os.Exit(2)
		}
		switch {
		case m.Config != nil:
			sawConfig = true
			fmt.Printf("govulncheck %s, %s, database %s\n", m.Config.ScannerVersion, m.Config.GoVersion, m.Config.DB)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f, top := m.Finding, m.Finding.Trace[0]
			level := 0
			if top.Function != "" {
				level = 2
			} else if top.Package != "" {
				level = 1
			}
			v := vulns[f.OSV+" "+top.Module]
			if v == nil {
				v = &vuln{id: f.OSV, module: top.Module, version: top.Version, fixed: f.FixedVersion, level: -1}
				vulns[f.OSV+" "+top.Module] = v
			}
			if level > v.level {
				v.level, v.example = level, ""
			}
			if level == 2 { // trace runs from the vulnerable symbol to the project's code
				// Keep the shortest example; the stream's order is not stable.
				ex := fmt.Sprintf("%s -> %s", f.Trace[len(f.Trace)-1], top)
				if v.example == "" || len(ex) < len(v.example) || len(ex) == len(v.example) && ex < v.example {
					v.example = ex
				}
			}
		}
	}
	if !sawConfig { // an empty or foreign stream must not pass as "no findings"
		fmt.Fprintln(os.Stderr, "vulnpolicy: no govulncheck config message on stdin")
		os.Exit(2)
	}

	var std, mods []*vuln
	for _, v := range vulns {
		if v.module == "stdlib" || v.module == "toolchain" {
			std = append(std, v)
		} else {
			mods = append(mods, v)
		}
	}
	var failing []string
	for _, group := range []struct {
		title string
		vs    []*vuln
	}{
		{"Standard library (fix: a newer Go toolchain; a CALLED one fails CI)", std},
		{"Required modules (fix: upgrade the module; a CALLED one fails CI)", mods},
	} {
		fmt.Printf("\n%s: %d\n", group.title, len(group.vs))
		sort.Slice(group.vs, func(i, j int) bool {
			a, b := group.vs[i], group.vs[j]
			if a.level != b.level {
				return a.level > b.level
			}
			return a.id < b.id
		})
		for _, v := range group.vs {
			fixed := v.fixed
			if fixed == "" {
				fixed = "none yet"
			}
			note := ""
			if v.level == 2 {
				if ignored[v.id] {
					note = " [ignored via -ignore]"
				} else {
					failing = append(failing, v.id+" ("+v.module+")")
				}
			}
			fmt.Printf("  %-13s %-20s %s@%s, fixed in %s%s\n      %s\n", v.id, levels[v.level], v.module, v.version, fixed, note, summaries[v.id])
			if v.example != "" {
				fmt.Printf("      e.g. %s\n", v.example)
			}
		}
	}
	if len(failing) > 0 {
		fmt.Printf("\nFAIL: code calls vulnerable symbols: %s\n", strings.Join(failing, ", "))
		os.Exit(1)
	}
	fmt.Println("\nOK: no called vulnerability")
}
