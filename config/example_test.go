package config_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/config"
)

// TestExampleConfigIsCurrent: deploy/config.example.yaml documents every
// key with the right shape. Its files do not exist here, so only problems
// about them are expected.
func TestExampleConfigIsCurrent(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = config.Parse(data, t.TempDir(), envOf(nil))
	for _, p := range config.Problems(err) {
		if !strings.Contains(p.Msg, "does not exist") && !strings.Contains(p.Msg, "is not set") {
			t.Errorf("example config: %s", p)
		}
	}
	if len(config.Problems(err)) == 0 {
		t.Fatal("want problems about the files the example names")
	}
}

// TestExampleIdentityJWTIsCurrent: the example's identity_jwt section,
// commented out because it is optional, has the right shape once
// uncommented.
func TestExampleIdentityJWTIsCurrent(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../deploy/config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for line := range strings.SplitSeq(string(data), "\n") {
		switch {
		case line == "# identity_jwt:":
			in = true
		case in && !strings.HasPrefix(line, "#   "):
			in = false
		}
		if in {
			line = strings.TrimPrefix(line, "# ")
		}
		out = append(out, line)
	}
	if !slices.Contains(out, "identity_jwt:") {
		t.Fatal(`the example has no "# identity_jwt:" section`)
	}
	_, err = config.Parse([]byte(strings.Join(out, "\n")), t.TempDir(), envOf(nil))
	var keys []string
	for _, p := range config.Problems(err) {
		if strings.HasPrefix(p.Path, "identity_jwt") {
			keys = append(keys, p.Path)
			if !strings.Contains(p.Msg, "does not exist") {
				t.Errorf("example config: %s", p)
			}
		}
	}
	if want := []string{"identity_jwt.key_file", "identity_jwt.previous_key_file"}; !slices.Equal(keys, want) {
		t.Errorf("problems at %q, want only the files' at %q", keys, want)
	}
}
