package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// supervisor starts the servers under test, each in a process group of its
// own with its output in a log file, and kills every one of them (workers
// included) when the benchmark ends, however it ends.
type supervisor struct {
	dir string // for the log files

	mu    sync.Mutex
	procs []*process
}

// process is one started server (the leader of its process group).
type process struct {
	name string
	cmd  *exec.Cmd
	log  string        // path of the file with its stdout and stderr
	done chan struct{} // closed when it has exited
}

// start starts cmd as name. Its output goes to <dir>/<name>.log.
func (s *supervisor) start(name string, cmd *exec.Cmd) (*process, error) {
	logPath := filepath.Join(s.dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A group of its own: the terminal's Ctrl-C reaches the benchmark
	// alone, which then kills the whole group, workers included.
	// Pdeathsig ends the leader even if the benchmark is killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// stopAll kills every process group started, and waits for the leaders.
func (s *supervisor) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// kill kills p's process group and waits for p to exit.
func (p *process) kill() {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// exited reports whether p has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n lines of p's log, indented, for error messages.
func (p *process) tail(n int) string {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return "    (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return "    " + strings.Join(lines, "\n    ")
}

// clearLog empties p's log, so that a busy server's access log does not
// fill the disk over a long run; p keeps appending to it.
func (p *process) clearLog() {
	_ = os.Truncate(p.log, 0)
}

// failed returns err with p's name, exit status and log tail.
func (p *process) failed(err error) error {
	state := "running"
	if p.exited() {
		state = p.cmd.ProcessState.String()
	}
	return fmt.Errorf("%s (%s): %w\n%s", p.name, state, err, p.tail(20))
}

// waitFor calls ready every 20 ms until it returns nil, p exits, ctx ends or
// limit passes.
func (p *process) waitFor(ctx context.Context, limit time.Duration, ready func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if p.exited() {
			return p.failed(fmt.Errorf("exited before it was ready: %w", err))
		}
		if time.Now().After(deadline) {
			return p.failed(fmt.Errorf("not ready after %v: %w", limit, err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago,
// for servers that cannot report the port they chose.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startAttempts is how many free ports a server that must be given one
// is tried on: another process may take the port between the probe and
// the server's bind.
const startAttempts = 3

// startOnFreePort calls launch with a free address until the server it
// starts becomes ready, at most startAttempts times; a server that exits
// complaining of the address in use is tried again on another.
func startOnFreePort(ctx context.Context, launch func(addr string) (*process, error), ready func(p *process, addr string) error) (*process, string, error) {
	for attempt := 1; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, "", err
		}
		p, err := launch(addr)
		if err != nil {
			return nil, "", err
		}
		err = ready(p, addr)
		if err == nil {
			return p, addr, nil
		}
		p.kill()
		if attempt < startAttempts && ctx.Err() == nil && strings.Contains(strings.ToLower(p.tail(20)), "address already in use") {
			continue
		}
		return nil, "", err
	}
}

// dialReady returns nil once addr accepts TCP connections.
func dialReady(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// readAddrFile returns the address a role wrote to path, or an error if it
// has not yet.
func readAddrFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", errors.New("no address yet")
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

// startRole starts a role of this program (an upstream or the bare proxy)
// and returns it with its address.
func (s *supervisor) startRole(ctx context.Context, self, role string, args ...string) (*process, string, error) {
	addrFile := filepath.Join(s.dir, role+".addr")
	cmd := exec.Command(self, append([]string{role, "-addr-file", addrFile}, args...)...)
	p, err := s.start(role, cmd)
	if err != nil {
		return nil, "", err
	}
	var addr string
	err = p.waitFor(ctx, 10*time.Second, func() error {
		a, err := readAddrFile(addrFile)
		if err != nil {
			return err
		}
		addr = a
		return dialReady(a)
	})
	if err != nil {
		p.kill()
		return nil, "", err
	}
	return p, addr, nil
}
