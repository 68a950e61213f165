// Package ingress runs the gateway behind the ingresses it ships
// configurations for, with the configuration exactly as shipped: today
// nginx with deploy/nginx/sso-gateway.conf, whose forward-auth setup
// (auth_request to /auth/api/v1/saml/verify) its tests exercise with a
// net/http client, and the browser tests (internal/e2e/browser) with
// Chromium.
//
// nginx is Debian's (/usr/sbin/nginx, package nginx-light or nginx, which
// .ci/run installs), or the binary named by the environment variable
// NGINX. Without it the tests fail rather than skip. nginx listens on
// 127.0.0.1 only.
package ingress

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ShippedNginxConf is the path of the shipped nginx configuration.
func ShippedNginxConf(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("ingress: cannot find the source directory")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "nginx", "sso-gateway.conf")
}

// NginxOptions fill the shipped configuration's placeholders.
type NginxOptions struct {
	// Listener is where nginx is to listen: the test reserves the port
	// by listening, and closes it just before nginx starts.
	Listener net.Listener
	// Gateway and Upstream are host:port.
	Gateway, Upstream string
	// ServerName is __SERVER_NAME__; "" means "_".
	ServerName string
}

// StartNginx starts nginx with the shipped configuration, its placeholders
// replaced and nothing else changed, in a temporary prefix (pid, logs,
// temporary files), and stops it when the test ends. It returns nginx's
// address. The error log is printed if the test fails.
func StartNginx(t testing.TB, o NginxOptions) string {
	t.Helper()
	bin := os.Getenv("NGINX")
	if bin == "" {
		bin = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("nginx is needed (Debian package nginx-light, or NGINX=path): %v", err)
	}
	shipped, err := os.ReadFile(ShippedNginxConf(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := o.Listener.Addr().String()
	name := o.ServerName
	if name == "" {
		name = "_"
	}
	conf := strings.NewReplacer("__GATEWAY__", o.Gateway, "__UPSTREAM__", o.Upstream,
		"__LISTEN__", addr, "__SERVER_NAME__", name).Replace(string(shipped))
	for _, line := range strings.Split(conf, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") && strings.Contains(line, "__") {
			t.Fatalf("a placeholder of the shipped config is left: %q", line)
		}
	}
	dir := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sso-gateway.conf", conf)
	write("nginx.conf", fmt.Sprintf(`# The test's frame around the shipped server block.
daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/sso-gateway.conf;
}
`, dir))
	test := exec.Command(bin, "-t", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	o.Listener.Close()
	cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error log:\n%s", b)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s", err, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
