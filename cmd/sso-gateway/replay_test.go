package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sso-gateway/sso-gateway/internal/cli"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/redistest"
)

// check asks the replay store whether it answers: a gateway whose Redis
// is down starts, but nobody can sign in.
func TestCheckReplayStore(t *testing.T) {
	t.Parallel()
	srv := redistest.StartWith(t, redistest.Options{Password: "s3cret-pw"})
	d := newCheckDir(t)
	config := func(redisURL string) string {
		return d.writeConfig(t, fmt.Sprintf(`
public_url: https://sso.example.com
upstream: http://127.0.0.1:3000
sp: {cert_file: sp-cert.pem, key_file: sp-key.pem}
session:
  keys: [{hash_key: %s, block_key: %s}]
replay_cache: {redis_url: "%s"}
tenants:
  - id: acme
    idp_metadata_file: acme.xml
`, b64n(64), b64n(32), redisURL))
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"check", "-config", config(srv.URL())}, &stdout, &stderr); err != nil {
		t.Fatalf("check with Redis up: %v\n%s", err, stderr.String())
	}

	wrong := strings.Replace(srv.URL(), "s3cret-pw", "wrong-pw", 1)
	stdout.Reset()
	stderr.Reset()
	err := run(t.Context(), []string{"check", "-config", config(wrong)}, &stdout, &stderr)
	if !errors.Is(err, cli.ErrReported) || !strings.Contains(stderr.String(), "replay_cache: Redis does not answer") {
		t.Errorf("check with a wrong password: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "wrong-pw") || strings.Contains(stderr.String(), "s3cret-pw") {
		t.Errorf("the password is printed:\n%s", stderr.String())
	}

	srv.Stop()
	stderr.Reset()
	err = run(t.Context(), []string{"check", "-config", config(srv.URL())}, &stdout, &stderr)
	if !errors.Is(err, cli.ErrReported) || !strings.Contains(stderr.String(), "replay_cache: Redis does not answer") {
		t.Errorf("check with Redis down: %v\n%s", err, stderr.String())
	}
}
