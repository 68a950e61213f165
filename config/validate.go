package config

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sso-gateway/sso-gateway/internal/gctune"
	"github.com/sso-gateway/sso-gateway/redirect"
)

// validator accumulates problems while it builds a Config, so that every
// problem is reported, not only the first.
type validator struct {
	publicHost string // lower case, for tenants' hosts to be checked against
	dir        string
	env        LookupEnv
	problems   []error
	warnings   []*Problem
	files      []string // every file the configuration names
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, &Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warn(path, format string, args ...any) {
	v.warnings = append(v.warnings, &Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// forTenant runs check, and makes the problems it finds tenant problems
// of t: they affect t alone (see Problem).
func (v *validator) forTenant(t *Tenant, check func()) {
	before := len(v.problems)
	check()
	for _, err := range v.problems[before:] {
		p := err.(*Problem)
		p.Tenant = t.ID
		t.Problems = append(t.Problems, p)
	}
}

// path resolves a file name from the config against the config's folder
// and records it as a file the configuration depends on, without reading
// it.
func (v *validator) path(s string) string {
	if !filepath.IsAbs(s) {
		s = filepath.Join(v.dir, s)
	}
	v.files = append(v.files, s)
	return s
}

func (v *validator) config(f *file) *Config {
	c := &Config{}
	c.PublicURL = v.publicURL("public_url", f.PublicURL)
	if c.PublicURL != nil {
		v.publicHost = strings.TrimSuffix(strings.ToLower(c.PublicURL.Hostname()), ".")
	}
	c.Upstream = v.httpURL("upstream", f.Upstream, true)
	c.UpstreamHost = v.hostPort("upstream_host", f.UpstreamHost)
	c.UpstreamTimeout = v.duration("upstream_timeout", f.UpstreamTimeout, DefaultUpstreamTimeout)
	c.ShutdownTimeout = v.duration("shutdown_timeout", f.ShutdownTimeout, DefaultShutdownTimeout)
	c.ShutdownDelay = DefaultShutdownDelay
	if d, err := time.ParseDuration(f.ShutdownDelay); err == nil && d == 0 {
		c.ShutdownDelay = 0 // no delay: nothing balances load in front
	} else {
		c.ShutdownDelay = v.duration("shutdown_delay", f.ShutdownDelay, DefaultShutdownDelay)
	}
	if c.ShutdownDelay > 5*time.Minute {
		v.add("shutdown_delay", "must be at most 5m (got %s)", c.ShutdownDelay)
	}
	c.AllowInsecureHTTP = f.AllowInsecure != nil && *f.AllowInsecure
	if u := c.PublicURL; u != nil && u.Scheme == "http" && !isLoopback(u.Hostname()) && !c.AllowInsecureHTTP {
		v.add("public_url", "is http on %q, so session cookies would cross the network in clear: use https (TLS may end at a load balancer in front), or set allow_insecure_http: true for a throwaway test deployment", u.Hostname())
	}
	c.TrustedProxies = v.trustedProxies("trusted_proxies", f.TrustedProxies)
	c.Limits = v.limits("limits", &f.Limits)
	c.ReplayCache = v.replayCache("replay_cache", &f.ReplayCache)

	if f.TLS != nil {
		c.TLS = v.tlsPair("tls", f.TLS)
	}
	defaultListen := ":8080"
	if f.TLS != nil {
		defaultListen = ":8443"
	}
	c.Listen = v.listenAddr("listen", f.Listen, defaultListen)
	c.AdminListen = v.listenAddr("admin_listen", f.AdminListen, DefaultAdminListen)
	v.adminExposure("admin_listen", c.AdminListen)
	if sharePort(c.Listen, c.AdminListen) {
		v.add("admin_listen", "must not share a port with listen (%s and %s): metrics and health must never be served on the public listener", c.AdminListen, c.Listen)
	}

	c.SP = v.sp("sp", &f.SP)
	c.Session = v.session("session", &f.Session)
	c.Tenants = v.tenants("tenants", f.Tenants)
	c.Log = v.log("log", &f.Log)
	c.GC = v.gc("gc", &f.GC)
	if id := c.Log.DebugAssertionTenant; id != "" && !slices.ContainsFunc(c.Tenants, func(t Tenant) bool { return t.ID == id }) {
		v.add("log.debug_assertion_tenant", "%q is not a configured tenant", id)
	}
	c.Files = v.files
	c.Warnings = v.warnings
	return c
}

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

func (v *validator) limits(path string, f *limitsFile) Limits {
	l := Limits{
		LoginConcurrencyPerClient: v.positiveInt(path+".login_concurrency_per_client", f.LoginConcurrencyPerClient, DefaultLoginConcurrencyPerClient),
		LoginConcurrency:          v.positiveInt(path+".login_concurrency", f.LoginConcurrency, DefaultLoginConcurrency),
		IPv6ClientPrefix:          v.positiveInt(path+".ipv6_client_prefix", f.IPv6ClientPrefix, DefaultIPv6ClientPrefix),
	}
	if l.IPv6ClientPrefix < MinIPv6ClientPrefix || l.IPv6ClientPrefix > MaxIPv6ClientPrefix {
		v.add(path+".ipv6_client_prefix", "must be a prefix length from %d to %d (got %d)", MinIPv6ClientPrefix, MaxIPv6ClientPrefix, l.IPv6ClientPrefix)
		l.IPv6ClientPrefix = DefaultIPv6ClientPrefix
	}
	if l.LoginConcurrencyPerClient > l.LoginConcurrency {
		v.add(path+".login_concurrency_per_client", "must not exceed login_concurrency (%d > %d)", l.LoginConcurrencyPerClient, l.LoginConcurrency)
	}
	return l
}

func (v *validator) positiveInt(path, s string, def int) int {
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		v.add(path, "must be a positive whole number (got %q)", s)
		return def
	}
	return n
}

// replayCache checks the Redis URL without ever echoing it: it may hold a
// password.
func (v *validator) replayCache(path string, f *replayFile) ReplayCache {
	raw, key := v.secretString(path, "redis_url", f.RedisURL, f.RedisURLFile, f.RedisURLEnv, false)
	if key == "" {
		return ReplayCache{}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		v.add(key, "not a URL")
	case u.Scheme != "redis" && u.Scheme != "rediss":
		v.add(key, "must be a redis:// or rediss:// (TLS) URL")
	case u.Hostname() == "":
		v.add(key, "must name a host")
	default:
		return ReplayCache{RedisURL: raw}
	}
	return ReplayCache{}
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

func (v *validator) duration(path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		v.add(path, "not a duration like 90s or 8h: %q", s)
		return def
	}
	if d <= 0 {
		v.add(path, "must be positive (got %s)", s)
		return def
	}
	return d
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

// file resolves a path from the config against the config's folder and
// checks that it is a readable regular file.
func (v *validator) file(path, s string) string {
	if s == "" {
		v.add(path, "is required")
		return ""
	}
	s = v.path(s)
	st, err := os.Stat(s)
	if err != nil {
		v.add(path, "%v", pathErr(err, s))
		return ""
	}
	if !st.Mode().IsRegular() {
		v.add(path, "%s is not a regular file", s)
		return ""
	}
	return s
}

// pathErr renders an os error without Go's "stat" prefix.
func pathErr(err error, name string) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Sprintf("file %s does not exist", name)
	case errors.Is(err, os.ErrPermission):
		return fmt.Sprintf("file %s is not readable", name)
	}
	return err.Error()
}

func (v *validator) readFile(path, s string) []byte {
	name := v.file(path, s)
	if name == "" {
		return nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		v.add(path, "%s", pathErr(err, name))
		return nil
	}
	return data
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

// minRSABits is the smallest RSA key accepted anywhere: Entra itself issues
// 2048-bit signing keys, and anything smaller is breakable.
const minRSABits = 2048

func (v *validator) sp(path string, f *spFile) SP {
	var sp SP
	sp.Certificate, sp.Key = v.keyPair(path, "cert_file", f.CertFile, "key_file", f.KeyFile)
	if f.PreviousCertFile != "" || f.PreviousKeyFile != "" {
		sp.PreviousCertificate, sp.PreviousKey = v.keyPair(path, "previous_cert_file", f.PreviousCertFile, "previous_key_file", f.PreviousKeyFile)
		if sp.PreviousKey != nil && sp.Key != nil && sp.PreviousKey.Equal(sp.Key) {
			v.add(path+".previous_key_file", "is the same key as key_file")
		}
	}
	return sp
}

// keyPair loads an RSA key pair of at least minRSABits whose certificate
// matches its key.
func (v *validator) keyPair(path, certKey, certFile, keyKey, keyFile string) (*x509.Certificate, *rsa.PrivateKey) {
	certPEM := v.readFile(path+"."+certKey, certFile)
	keyPEM := v.readFile(path+"."+keyKey, keyFile)
	if certPEM == nil || keyPEM == nil {
		return nil, nil
	}
	cert, err := parseCertificatePEM(certPEM)
	if err != nil {
		v.add(path+"."+certKey, "%v", err)
		return nil, nil
	}
	key, err := parseRSAKeyPEM(keyPEM)
	if err != nil {
		v.add(path+"."+keyKey, "%v", err)
		return nil, nil
	}
	if key.N.BitLen() < minRSABits {
		v.add(path+"."+keyKey, "RSA key has %d bits, want at least %d", key.N.BitLen(), minRSABits)
		return nil, nil
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		v.add(path, "%s does not match %s", certKey, keyKey)
		return nil, nil
	}
	return cert, key
}

// certificates reads every certificate in a PEM file.
func (v *validator) certificates(path, name string) []*x509.Certificate {
	data := v.readFile(path, name)
	if data == nil {
		return nil
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			v.add(path, "parse certificate: %v", err)
			return nil
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		v.add(path, "no PEM CERTIFICATE block")
	}
	return certs
}

func parseCertificatePEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// parseRSAKeyPEM accepts PKCS#1 ("RSA PRIVATE KEY") and PKCS#8 ("PRIVATE
// KEY") RSA keys: the key decrypts XML encryption, which needs RSA.
func parseRSAKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse key: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("key is %T, want RSA (XML encryption needs RSA)", k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("PEM block is %q, want RSA PRIVATE KEY or PRIVATE KEY", block.Type)
}

const maxSessionLifetime = 30 * 24 * time.Hour

func (v *validator) session(path string, f *sessionFile) Session {
	s := Session{
		Lifetime:     v.duration(path+".lifetime", f.Lifetime, DefaultSessionLifetime),
		CacheEntries: DefaultSessionCacheEntries,
		CacheMiB:     v.positiveInt(path+".cache_mib", f.CacheMiB, DefaultSessionCacheMiB),
	}
	if c := strings.TrimSpace(f.CacheEntries); c != "" {
		if n, err := strconv.Atoi(c); err != nil || n < 0 {
			v.add(path+".cache_entries", "must be a whole number, 0 for no cache (got %q)", f.CacheEntries)
		} else {
			s.CacheEntries = n
		}
	}
	if s.Lifetime > maxSessionLifetime {
		v.add(path+".lifetime", "must be at most %s (got %s)", maxSessionLifetime, s.Lifetime)
	}
	if len(f.Keys) == 0 {
		v.add(path+".keys", "at least one key is required")
	}
	for i, k := range f.Keys {
		p := fmt.Sprintf("%s.keys[%d]", path, i)
		hash := v.secret(p, "hash_key", k.HashKey, k.HashKeyFile, k.HashKeyEnv, 32, 64)
		block := v.secret(p, "block_key", k.BlockKey, k.BlockKeyFile, k.BlockKeyEnv, 16, 24, 32)
		if hash != nil && block != nil {
			s.Keys = append(s.Keys, SessionKey{Hash: hash, Block: block})
		}
	}
	return s
}

// secret reads a base64 key given inline (name), from a file (name_file) or
// from an environment variable (name_env): exactly one of them.
func (v *validator) secret(path, name, inline, fileName, envName string, lengths ...int) []byte {
	encoded, key := v.secretString(path, name, inline, fileName, envName, true)
	if key == "" {
		return nil
	}
	hint := fmt.Sprintf("generate one with: openssl rand -base64 %d", lengths[len(lengths)-1])
	encoded = strings.TrimSpace(encoded)
	if looksHex(encoded) {
		// "openssl rand -hex 32" is a common slip. Its digits are valid
		// base64 too, but decode to the wrong length, or to a key with
		// far fewer random bits than its length suggests.
		v.add(key, "looks like hex, want base64 (%s)", hint)
		return nil
	}
	raw, err := decodeBase64(encoded)
	if err != nil {
		v.add(key, "not valid base64 (%s)", hint)
		return nil
	}
	for _, n := range lengths {
		if len(raw) == n {
			return raw
		}
	}
	v.add(key, "decodes to %d bytes, want %s (%s)", len(raw), orList(lengths), hint)
	return nil
}

// looksHex reports whether s is a string of hex digits long enough to be a
// key. A random base64 key (22 characters or more) is all hex digits with a
// probability below 2^-33, a 32-byte one below 2^-67.
func looksHex(s string) bool {
	if len(s) < 22 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// secretString reads a secret given inline (name), from a file (name_file)
// or from an environment variable (name_env). With required, exactly one
// must be set; otherwise at most one. It returns the secret and the key
// path it came from, or an empty path when there is none (or it is bad).
func (v *validator) secretString(path, name, inline, fileName, envName string, required bool) (string, string) {
	set := 0
	for _, s := range []string{inline, fileName, envName} {
		if s != "" {
			set++
		}
	}
	switch {
	case set == 0 && !required:
		return "", ""
	case set != 1 && required:
		v.add(path, "exactly one of %s, %s_file and %s_env is required", name, name, name)
		return "", ""
	case set > 1:
		v.add(path, "set at most one of %s, %s_file and %s_env", name, name, name)
		return "", ""
	}
	switch {
	case inline != "":
		return inline, path + "." + name
	case fileName != "":
		key := path + "." + name + "_file"
		data := v.readFile(key, fileName)
		if data == nil {
			return "", ""
		}
		return strings.TrimSpace(string(data)), key
	default:
		key := path + "." + name + "_env"
		val, ok := v.env(envName)
		if !ok || val == "" {
			v.add(key, "environment variable %s is not set", envName)
			return "", ""
		}
		return strings.TrimSpace(val), key
	}
}

// decodeBase64 accepts standard and URL-safe base64, with or without
// padding: operators paste keys from many tools.
func decodeBase64(s string) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func orList(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

// tenantIDPattern keeps Customer_IDs to RFC 3986 unreserved characters, so
// that an ID is the same string in a URL path, a cookie and a metric label.
var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$`)

// guidPattern is a lower case GUID, the form of an Entra directory ID.
var guidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// nameIDFormats maps the short names operators may write to the URIs.
var nameIDFormats = map[string]string{
	"email":       DefaultNameIDFormat,
	"unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
	"persistent":  "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
	"transient":   "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
}

func (v *validator) tenants(path string, fs []tenantFile) []Tenant {
	if len(fs) == 0 {
		v.add(path, "at least one tenant is required")
	}
	seenID := map[string]string{}
	seenDomain := map[string]string{}
	seenHost := map[string]string{}
	publicHost := v.publicHost
	var out []Tenant
	for i, f := range fs {
		p := fmt.Sprintf("%s[%d]", path, i)
		t := Tenant{
			ID:                f.ID,
			EntraTenantID:     strings.ToLower(strings.TrimSpace(f.EntraTenantID)),
			AllowIDPInitiated: f.AllowIDPInitiated == nil || *f.AllowIDPInitiated,
			AllowSHA1:         f.AllowSHA1 != nil && *f.AllowSHA1,
			DefaultRelayState: f.DefaultRelayState,
			NameIDFormat:      f.NameIDFormat,
		}
		switch {
		case f.ID == "":
			v.add(p+".id", "is required")
		case !tenantIDPattern.MatchString(f.ID) || strings.Trim(f.ID, ".") == "":
			v.add(p+".id", "%q is not URL-safe: use 1 to 64 letters, digits, '-', '_', '.' or '~', starting with a letter or digit", f.ID)
		default:
			if prev, dup := seenID[strings.ToLower(f.ID)]; dup {
				v.add(p+".id", "%q duplicates %s", f.ID, prev)
			}
			seenID[strings.ToLower(f.ID)] = p + ".id"
		}

		if t.EntraTenantID != "" && !guidPattern.MatchString(t.EntraTenantID) {
			v.add(p+".entra_tenant_id", "%q is not a directory (tenant) ID like 72f988bf-86f1-41af-91ab-2d7cd011db47: find it in Entra ID under Overview", f.EntraTenantID)
		}

		switch {
		case f.IDPMetadataFile != "" && f.IDPMetadataURL != "":
			v.add(p, "set only one of idp_metadata_file and idp_metadata_url")
		case f.IDPMetadataFile != "":
			// Read by the gateway, where a problem with it is the
			// tenant's alone.
			t.MetadataFile = v.path(f.IDPMetadataFile)
		case f.IDPMetadataURL != "":
			t.MetadataURL = v.metadataURL(p+".idp_metadata_url", f.IDPMetadataURL)
		default:
			v.add(p, "one of idp_metadata_file and idp_metadata_url is required")
		}
		t.MetadataRefresh = v.duration(p+".idp_metadata_refresh_interval", f.IDPMetadataRefresh, DefaultMetadataRefresh)
		if t.MetadataRefresh < MinMetadataRefresh {
			v.add(p+".idp_metadata_refresh_interval", "must be at least %s (got %s)", MinMetadataRefresh, t.MetadataRefresh)
		}
		if f.IDPMetadataRefresh != "" && f.IDPMetadataURL == "" {
			v.add(p+".idp_metadata_refresh_interval", "applies only to idp_metadata_url; a file is read again when the config is reloaded")
		}
		if f.IDPMetadataSigner != "" {
			// The customer's certificate: a problem with it stops only
			// this tenant, which must then not trust unsigned metadata.
			v.forTenant(&t, func() {
				t.MetadataSigners = v.certificates(p+".idp_metadata_signing_cert", f.IDPMetadataSigner)
			})
		}

		for j, h := range f.Hosts {
			hp := fmt.Sprintf("%s.hosts[%d]", p, j)
			h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
			switch {
			case !validHostname(h) || !strings.Contains(h, "."):
				v.add(hp, "%q is not a host name (no scheme, port or path)", f.Hosts[j])
			case h == publicHost:
				v.add(hp, "%q is public_url's host, which serves every tenant", h)
			case seenHost[h] != "":
				v.add(hp, "%q is already %s: a host must lead to one tenant", h, seenHost[h])
			default:
				seenHost[h] = hp
				t.Hosts = append(t.Hosts, h)
			}
		}
		if f.SAMLURLsOnHost != nil && *f.SAMLURLsOnHost {
			if len(f.Hosts) == 0 {
				v.add(p+".saml_urls_on_host", "needs hosts: the Identifier, Reply URL and Logout URL move to the first of them")
			}
			t.SAMLURLsOnHost = true
		}
		for j, d := range f.EmailDomains {
			dp := fmt.Sprintf("%s.email_domains[%d]", p, j)
			d = strings.ToLower(strings.TrimSpace(d))
			if !validHostname(d) || !strings.Contains(d, ".") {
				v.add(dp, "%q is not a domain name", f.EmailDomains[j])
				continue
			}
			if prev, dup := seenDomain[d]; dup {
				v.add(dp, "%q is already mapped by %s: a domain must lead to one tenant", d, prev)
				continue
			}
			seenDomain[d] = dp
			t.EmailDomains = append(t.EmailDomains, d)
		}
		for j, g := range f.AllowedGroups {
			if strings.TrimSpace(g) == "" {
				v.add(fmt.Sprintf("%s.allowed_groups[%d]", p, j), "must not be empty")
				continue
			}
			t.AllowedGroups = append(t.AllowedGroups, g)
		}

		seenAttr := map[string]bool{}
		for j, a := range f.SessionAttributes {
			ap := fmt.Sprintf("%s.session_attributes[%d]", p, j)
			switch {
			case a != "email" && a != "name" && a != "groups":
				v.add(ap, "%q is not one of email, name, groups", a)
			case seenAttr[a]:
				v.add(ap, "%q is listed twice", a)
			default:
				seenAttr[a] = true
				t.SessionAttributes = append(t.SessionAttributes, a)
			}
		}
		if f.SessionAttributes != nil && t.SessionAttributes == nil {
			t.SessionAttributes = []string{} // keep none of them
		}
		for name, claim := range f.Headers {
			hp := p + ".headers." + name
			canon := http.CanonicalHeaderKey(name)
			switch {
			case !validHeaderName(name) || !strings.HasPrefix(canon, "X-Remote-") || len(canon) == len("X-Remote-"):
				v.add(hp, "header names must start with X-Remote- (so that the gateway strips them from clients) and be a valid header name")
			case reservedHeaders[canon]:
				v.add(hp, "%s is one of the gateway's own headers", canon)
			case strings.TrimSpace(claim) == "":
				v.add(hp, "needs the claim whose values it carries")
			default:
				if t.Headers == nil {
					t.Headers = map[string]string{}
				}
				if _, dup := t.Headers[canon]; dup {
					v.add(hp, "%s is listed twice (header names are case-insensitive)", canon)
					continue
				}
				t.Headers[canon] = claim
			}
		}

		if t.DefaultRelayState == "" {
			t.DefaultRelayState = DefaultDefaultRelayState
		} else if _, ok := redirect.Local(t.DefaultRelayState); !ok {
			v.add(p+".default_relay_state", "%q must be a path on this site, like /documents", t.DefaultRelayState)
		}

		switch format := f.NameIDFormat; {
		case format == "":
			t.NameIDFormat = DefaultNameIDFormat
		case nameIDFormats[format] != "":
			t.NameIDFormat = nameIDFormats[format]
		case containsValue(nameIDFormats, format):
		default:
			v.add(p+".nameid_format", "%q is not one of email, unspecified, persistent, transient or their URIs", format)
		}
		out = append(out, t)
	}
	return out
}

// reservedHeaders are the identity headers the gateway itself sets.
var reservedHeaders = map[string]bool{
	"X-Remote-User": true, "X-Remote-Email": true, "X-Remote-Name": true,
	"X-Remote-Groups": true, "X-Remote-Tenant": true, "X-Remote-Groups-Overage": true,
}

// validHeaderName reports whether s is an HTTP token without '_', which
// some servers drop or treat as '-'.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// metadataURL accepts https, and http only for loopback hosts: whoever can
// change the metadata in transit decides who can log in.
func (v *validator) metadataURL(path, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		// Not echoed: its query may carry a token, and this ends up in
		// logs.
		v.add(path, "must be an absolute https URL, like Entra's App Federation Metadata Url")
		return nil
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		v.add(path, "must use https: metadata fetched over plain http can be replaced in transit")
		return nil
	}
	return u
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func containsValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

var hostnamePattern = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

func validHostname(s string) bool {
	return len(s) <= 253 && hostnamePattern.MatchString(s)
}

func (v *validator) gc(path string, f *gcFile) GC {
	g := GC{
		GOGC:             v.positiveInt(path+".gogc", f.GOGC, gctune.DefaultGOGC),
		MemoryLimitRatio: gctune.DefaultMemoryLimitRatio,
	}
	if s := strings.TrimSpace(f.MemoryLimitRatio); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || !(r > 0 && r <= 1) {
			v.add(path+".memory_limit_ratio", "must be a number above 0 and at most 1 (got %q)", f.MemoryLimitRatio)
		} else {
			g.MemoryLimitRatio = r
		}
	}
	return g
}

func (v *validator) log(path string, f *logFile) Log {
	l := Log{Level: slog.LevelInfo, Format: "json", Access: f.Access == nil || *f.Access, DebugAssertionTenant: f.DebugAssertionTenant}
	if f.Level != "" {
		if err := l.Level.UnmarshalText([]byte(f.Level)); err != nil {
			v.add(path+".level", "%q is not one of debug, info, warn, error", f.Level)
		}
	}
	switch f.Format {
	case "", "json":
	case "text":
		l.Format = "text"
	default:
		v.add(path+".format", "%q is not json or text", f.Format)
	}
	return l
}
