package config_test

import (
	"testing"

	"github.com/sso-gateway/sso-gateway/config"
)

func TestLogSettings(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	c, err := config.Parse(marshal(t, baseDoc()), fx.dir, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Log.Access || c.Log.DebugAssertionTenant != "" {
		t.Errorf("defaults: %+v", c.Log)
	}
	c, err = config.Parse(marshal(t, apply(t, baseDoc(), edit{"log", map[string]any{"access": false, "debug_assertion_tenant": "contoso"}})), fx.dir, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Access || c.Log.DebugAssertionTenant != "contoso" {
		t.Errorf("set: %+v", c.Log)
	}
	_, err = config.Parse(marshal(t, apply(t, baseDoc(), edit{"log.debug_assertion_tenant", "initech"})), fx.dir, envOf(nil))
	checkProblems(t, err, []problem{{"log.debug_assertion_tenant", `"initech" is not a configured tenant`}})
}
