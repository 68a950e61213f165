package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// startRedis starts redis-server (bin) on 127.0.0.1, keeping nothing on
// disk, for the gateway's Redis replay cache; it returns the server and its
// redis:// URL.
func startRedis(ctx context.Context, sup *supervisor, bin string) (*process, string, error) {
	dir := filepath.Join(sup.dir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	p, addr, err := startOnFreePort(ctx, func(addr string) (*process, error) {
		_, port, _ := net.SplitHostPort(addr)
		return sup.start("redis", exec.Command(bin,
			"--bind", "127.0.0.1", "--port", port, "--dir", dir,
			"--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"))
	}, func(p *process, addr string) error {
		return p.waitFor(ctx, 10*time.Second, func() error { return redisPing(addr) })
	})
	if err != nil {
		return nil, "", err
	}
	return p, "redis://" + addr, nil
}

// redisPing returns nil once the Redis at addr answers PING.
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING: got %q, want +PONG", line)
	}
	return nil
}
