package config

import (
	"fmt"
	"io"
)

// WriteProblems writes every problem in err (see Problems) to w, one per
// line under a header naming the configuration file, as "sso-gateway
// check" and start-up print them.
func WriteProblems(w io.Writer, path string, err error) {
	problems := Problems(err)
	fmt.Fprintf(w, "%s: %d problem(s):\n", path, len(problems))
	for _, p := range problems {
		fmt.Fprintf(w, "  %s\n", p)
	}
}
