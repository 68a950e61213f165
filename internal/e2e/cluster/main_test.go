package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// gatewayBin is the sso-gateway binary that TestMain builds once for every
// test of the package.
var gatewayBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests builds the gateway, runs the tests and removes the binary; a
// function of its own so that the deferred removal runs before os.Exit.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sso-gateway-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	gatewayBin = filepath.Join(dir, "sso-gateway")
	if err := buildGateway(gatewayBin); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	return m.Run()
}

// buildGateway runs `go build -o bin ./cmd/sso-gateway` in the module root
// with the go command in PATH. GOTOOLCHAIN is passed on as it is; when it
// is not set, it is set to the toolchain this test binary was built with,
// so that the gateway and its tests are built by the same Go.
func buildGateway(bin string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build the gateway: %w", err)
	}
	cmd := exec.Command(goCmd, "build", "-o", bin, "./cmd/sso-gateway")
	cmd.Dir = "../../.." // the module root
	cmd.Env = os.Environ()
	if _, set := os.LookupEnv("GOTOOLCHAIN"); !set && strings.HasPrefix(runtime.Version(), "go1.") {
		cmd.Env = append(cmd.Env, "GOTOOLCHAIN="+runtime.Version())
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd/sso-gateway: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "cluster: built %s in %v\n", bin, time.Since(start).Round(time.Millisecond))
	return nil
}
