package config

import (
	"fmt"
	"io"
)

// WriteProblems writes every problem in err (see Problems) to w, one per
// line under a header naming the configuration file, as "sso-gateway
// check" and start-up print them. A tenant problem says that it affects
// that tenant alone.
func WriteProblems(w io.Writer, path string, err error) {
	problems := Problems(err)
	fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(problems))
	for _, p := range problems {
		fmt.Fprintf(w, "  %s%s\n", p, tenantOnly(p))
	}
}

// WriteWarnings writes warnings to w, under a header, if there are any.
func WriteWarnings(w io.Writer, path string, warnings []*Problem) {
	if len(warnings) == 0 {
		return
	}
	fmt.Fprintf(w, "%s: %d warning(s):\n", path, len(warnings))
	for _, p := range warnings {
		fmt.Fprintf(w, "  %s\n", p)
	}
}

func tenantOnly(p *Problem) string {
	if p.Tenant == "" {
		return ""
	}
	return " (tenant " + p.Tenant + " only)"
}
