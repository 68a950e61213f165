package config

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ListenError is a listener that could not be opened. It names the setting
// to change, so that an operator whose port is taken knows what to edit.
type ListenError struct {
	// Addr is the address that could not be listened on.
	Addr string
	// Change says what sets Addr, e.g. `"listen" in /etc/sso-gateway.yaml`
	// or "-idp-listen".
	Change string
	// Err is the cause, from net.Listen.
	Err error
}

func (e *ListenError) Error() string {
	reason := e.Err.Error()
	var se *os.SyscallError
	switch {
	case errors.Is(e.Err, syscall.EADDRINUSE):
		reason = "address already in use: another process holds it"
	case errors.As(e.Err, &se):
		// "bind: permission denied" rather than the whole
		// "listen tcp 1.2.3.4:80: bind: ...", which repeats the address.
		reason = se.Error()
	}
	return fmt.Sprintf("listen %s: %s; change %s", e.Addr, reason, e.Change)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Key names a key of the configuration file at path, for a ListenError's
// Change.
func Key(key, path string) string {
	if path == "" {
		return fmt.Sprintf("%q in the configuration", key)
	}
	return fmt.Sprintf("%q in %s", key, path)
}
