package config_test

import (
	"os"
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
