package config

// The checks of public_url, listen, admin_listen, tls and trusted_proxies: where the gateway listens and how it is reached.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// trustedProxies parses addresses and CIDR blocks. Trusting every address
// would let any client name its own address in X-Forwarded-For.
func (v *validator) trustedProxies(path string, entries []string) []netip.Prefix {
	var out []netip.Prefix
	for i, e := range entries {
		p := fmt.Sprintf("%s[%d]", path, i)
		e = strings.TrimSpace(e)
		prefix, err := netip.ParsePrefix(e)
		if err != nil {
			addr, aerr := netip.ParseAddr(e)
			if aerr != nil {
				v.add(p, "%q is not an IP address or CIDR block like 10.0.0.0/8", e)
				continue
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		if prefix.Bits() == 0 {
			v.add(p, "%q trusts every address, so any client could set its own address in X-Forwarded-For: list the load balancers' addresses", e)
			continue
		}
		if prefix.Addr().Is4In6() {
			prefix = netip.PrefixFrom(prefix.Addr().Unmap(), prefix.Bits()-96)
		}
		out = append(out, prefix.Masked())
	}
	return out
}

// publicURL parses public_url and normalises it to the one spelling Entra
// would compare equal: every Identifier and Reply URL derives from it, and
// Entra compares the audience exactly, so "https://CloudiManage.com:443"
// would make every login fail although the admin typed what they meant.
// The form taken is reported as a warning.
func (v *validator) publicURL(path, s string) *url.URL {
	u := v.httpURL(path, s, true)
	if u == nil {
		return nil
	}
	if u.Path != "" && u.Path != "/" {
		v.add(path, "must not have a path (got %q): the gateway serves the whole host", u.Path)
		return nil
	}
	u.Path, u.RawPath = "", ""
	var changes []string
	if host := u.Hostname(); host != strings.ToLower(host) {
		changes = append(changes, "host names are case-insensitive, so the host is written in lower case")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "80" && u.Scheme == "http" || port == "443" && u.Scheme == "https" {
		changes = append(changes, fmt.Sprintf("port %s is the default for %s, so it is left out", port, u.Scheme))
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	u.Host = host
	if len(changes) > 0 {
		v.warn(path, "%q is taken as %s (%s): the Identifier and Reply URL in Entra must use this form", s, u, strings.Join(changes, "; "))
	}
	return u
}

// httpURL parses an absolute http or https URL without query or fragment.
func (v *validator) httpURL(path, s string, required bool) *url.URL {
	if s == "" {
		if required {
			v.add(path, "is required")
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		v.add(path, "not a URL: %v", errors.Unwrap(err))
		return nil
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		v.add(path, "must be an absolute http or https URL (got %q)", s)
	case u.Host == "" || u.Hostname() == "":
		v.add(path, "must name a host (got %q)", s)
	case u.User != nil:
		v.add(path, "must not contain credentials")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		v.add(path, "must not have a query or fragment (got %q)", s)
	default:
		return u
	}
	return nil
}

// hostPort accepts a Host header value: a host name or IP, with an
// optional port.
func (v *validator) hostPort(path, s string) string {
	if s == "" {
		return ""
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.add(path, "invalid port in %q", s)
			return ""
		}
		host = h
	}
	if net.ParseIP(host) == nil && !validHostname(host) {
		v.add(path, "%q is not a host name", s)
		return ""
	}
	return s
}

func (v *validator) listenAddr(path, s, def string) string {
	if s == "" {
		return def
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.add(path, "must be host:port (got %q)", s)
		return ""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(path, "invalid port %q", port)
		return ""
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		v.add(path, "invalid host %q", host)
		return ""
	}
	return s
}

// adminExposure warns when the admin listener may be reachable from
// outside: /metrics, /readyz and /tenants answer without authentication,
// and list every Customer_ID, email domain and metadata source, and
// /debug/pprof/ profiles the process. Loopback
// and private addresses pass; every interface (as in a Kubernetes pod),
// a public address or a host name the gateway cannot judge without
// resolving it get a warning.
func (v *validator) adminExposure(path, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return // reported by listenAddr
	}
	if host == "localhost" {
		return
	}
	ip, err := netip.ParseAddr(host)
	if err == nil && (ip.IsLoopback() || ip.IsPrivate()) {
		return
	}
	where := "on " + host
	switch {
	case host == "" || err == nil && ip.IsUnspecified():
		where = "on every interface"
	case err != nil:
		where = "on host name " + host + ", which may not be private"
	}
	v.warn(path, "%s listens %s: /metrics, /readyz and /tenants answer without authentication and list every Customer_ID, email domain and metadata source, and /debug/pprof/ profiles the process. Keep the port private (a firewall, or in Kubernetes the NetworkPolicy of deploy/kubernetes, which admits only Prometheus), or listen on 127.0.0.1 or a private address", addr, where)
}

// sharePort reports whether two listen addresses would bind the same port
// on a common address: equal hosts, or one of them a wildcard.
func sharePort(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "" || ip != nil && ip.IsUnspecified()
	}
	return ha == hb || wildcard(ha) || wildcard(hb)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) tlsPair(path string, f *tlsFile) *tls.Certificate {
	certPEM := v.readFile(path+".cert_file", f.CertFile)
	keyPEM := v.readFile(path+".key_file", f.KeyFile)
	if certPEM == nil || keyPEM == nil {
		return nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		v.add(path, "cert_file and key_file are not a usable key pair: %v", err)
		return nil
	}
	return &pair
}
