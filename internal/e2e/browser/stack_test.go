package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/demo"
	"github.com/sso-gateway/sso-gateway/internal/demo/docs"
	"github.com/sso-gateway/sso-gateway/internal/demo/idp"
	"github.com/sso-gateway/sso-gateway/internal/e2e/ingress"
	"github.com/sso-gateway/sso-gateway/internal/gateway"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/syncbuf"
)

// The two sites. They have different registrable domains, so the browser
// treats the IdP's POST to the ACS as cross-site, as it is with Entra.
const (
	gatewayHost = "cloudimanage.test"
	idpHost     = "login.entra.test"
)

// The plain-http stack's hosts: two hosts of one site, so that the IdP's
// POST to the ACS is same-site and carries the gateway's SameSite=Lax
// cookies (on http the tracking cookie cannot be SameSite=None, which needs
// Secure), under a parent domain that a sibling host could set cookies for.
const (
	plainGatewayHost = "docs.cloudimanage.test"
	plainIDPHost     = "login.cloudimanage.test"
)

// stack is the running product: upstream, IdP and gateway.
type stack struct {
	gatewayURL string // https://cloudimanage.test:<port>
	idpURL     string // https://login.entra.test:<port>
	// tenantHosts are the hosts tenants own (stackOptions.tenantHosts),
	// served by the gateway's listener with certificates of their own.
	tenantHosts []string
	// aliasHosts are stackOptions.aliasHosts.
	aliasHosts []string
	password   string // B.Simon's
	registry   *prometheus.Registry
	// gatewayHost and idpHost are the host names in gatewayURL and
	// idpURL, which the browser maps to 127.0.0.1.
	gatewayHost, idpHost string
	// caSPKI is base64(SHA-256(SubjectPublicKeyInfo)) of the test CA, for
	// Chromium's --ignore-certificate-errors-spki-list.
	caSPKI string
	// log collects the gateway's, the IdP's and the servers' logs; it is
	// printed when the test fails.
	log *syncbuf.Buffer
}

// stackOptions change the stack startStackWith starts. The zero value is
// startStack's stack.
type stackOptions struct {
	// users are IdP users besides B.Simon; their empty passwords become
	// the stack's.
	users []idp.User
	// tenantHosts gives demo tenants, by ID, hosts of their own.
	tenantHosts map[string][]string
	// aliasHosts are other names of the gateway's host, as a DNS alias
	// would give it: the browser reaches the gateway there, with a valid
	// certificate, but the gateway's configuration does not name them.
	aliasHosts []string
	// plainHTTP serves the gateway and the IdP over plain http, on
	// plainGatewayHost and plainIDPHost, with allow_insecure_http: the
	// gateway's cookies then have no __Host- prefix.
	plainHTTP bool
	// nginx puts real nginx, with the shipped deploy/nginx configuration,
	// in front of the plain-http stack (implies plainHTTP): the browser
	// reaches nginx at gatewayURL, nginx asks the gateway's forward-auth
	// endpoint and proxies to the upstream itself.
	nginx bool
}

// startStack starts the upstream, the IdP (with B.Simon and any extra
// users, whose empty passwords become the stack's) and the gateway on
// 127.0.0.1, and stops them when the test ends.
func startStack(t *testing.T, extra ...idp.User) *stack {
	t.Helper()
	return startStackWith(t, stackOptions{users: extra})
}

// startStackWith is startStack, changed as o says.
func startStackWith(t *testing.T, o stackOptions) *stack {
	t.Helper()
	extra := o.users
	s := &stack{
		gatewayHost: gatewayHost,
		idpHost:     idpHost,
		password:    rand.Text(),
		registry:    prometheus.NewRegistry(),
		log:         &syncbuf.Buffer{},
	}
	scheme := "https://"
	if o.nginx {
		o.plainHTTP = true
	}
	if o.plainHTTP {
		s.gatewayHost, s.idpHost, scheme = plainGatewayHost, plainIDPHost, "http://"
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gateway, IdP and server log:\n%s", s.log.String())
		}
	})
	logger := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	serverLog := slog.NewLogLogger(logger.With("component", "http.Server").Handler(), slog.LevelWarn)

	ca, err := newTestCA()
	if err != nil {
		t.Fatal(err)
	}
	s.caSPKI = ca.spki()

	// Listen first, so the ports are known before anything is configured.
	gatewayLn, idpLn := listen(t), listen(t)
	publicLn := gatewayLn // where the browser reaches the gateway
	if o.nginx {
		publicLn = listen(t)
	}
	s.gatewayURL = scheme + net.JoinHostPort(s.gatewayHost, port(publicLn))
	s.idpURL = scheme + net.JoinHostPort(s.idpHost, port(idpLn))

	docDir := filepath.Join(t.TempDir(), "documents")
	if err := os.Mkdir(docDir, 0o755); err != nil {
		t.Fatal(err)
	}
	docService, err := docs.New(docs.Options{Dir: docDir, Logger: logger.With("component", "docs")})
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewUnstartedServer(docService)
	upstream.Config.ErrorLog = serverLog
	upstream.Config.ReadHeaderTimeout = 10 * time.Second
	upstream.Start()
	t.Cleanup(upstream.Close)

	idpURL, err := url.Parse(s.idpURL)
	if err != nil {
		t.Fatal(err)
	}
	for i := range extra {
		if extra[i].Password == "" {
			extra[i].Password = s.password
		}
	}
	identity, err := demo.NewIDP(idpURL, s.password, logger.With("component", "idp"), extra...)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile, err := demo.WriteConfig(t.TempDir(), demo.ConfigOptions{
		PublicURL:   s.gatewayURL,
		Listen:      gatewayLn.Addr().String(),
		AdminListen: "127.0.0.1:0",
		Upstream:    upstream.URL,
		TenantHosts: o.tenantHosts,
	}, identity)
	if err != nil {
		t.Fatal(err)
	}
	if o.plainHTTP {
		appendFile(t, cfgFile, "allow_insecure_http: true\n")
	}
	if o.nginx {
		appendFile(t, cfgFile, "trusted_proxies: [127.0.0.1/32]\n")
	}
	cfg, err := config.Load(cfgFile, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("generated config: %v", err)
	}
	gw, err := gateway.Build(t.Context(), cfg, gateway.Deps{
		Logger:   logger.With("component", "gateway"),
		Registry: s.registry,
		Version:  "e2e",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.RegisterApps(identity, gw); err != nil {
		t.Fatal(err)
	}

	if o.plainHTTP {
		serve(t, idpLn, identity, serverLog)
		serve(t, gatewayLn, gw.PublicHandler(), serverLog)
		if o.nginx {
			ingress.StartNginx(t, ingress.NginxOptions{Listener: publicLn, Gateway: gatewayLn.Addr().String(),
				Upstream: upstream.Listener.Addr().String(), ServerName: s.gatewayHost})
		}
		return s
	}
	// One listener, one certificate per host (chosen by SNI), as an
	// ingress with several host names would serve the gateway.
	certs := []tls.Certificate{ca.leaf(t, gatewayHost)}
	for _, hosts := range o.tenantHosts {
		for _, h := range hosts {
			s.tenantHosts = append(s.tenantHosts, h)
			certs = append(certs, ca.leaf(t, h))
		}
	}
	for _, h := range o.aliasHosts {
		s.aliasHosts = append(s.aliasHosts, h)
		certs = append(certs, ca.leaf(t, h))
	}
	serveTLS(t, idpLn, identity, serverLog, ca.leaf(t, idpHost))
	serveTLS(t, gatewayLn, gw.PublicHandler(), serverLog, certs...)
	return s
}

// hostURL is the gateway's URL on host, one of the stack's tenant hosts:
// the same port as gatewayURL.
func (s *stack) hostURL(t *testing.T, host string) string {
	t.Helper()
	u, err := url.Parse(s.gatewayURL)
	if err != nil {
		t.Fatal(err)
	}
	return "https://" + net.JoinHostPort(host, u.Port())
}

// appendFile appends text to the file name.
func appendFile(t *testing.T, name, text string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// serve serves h over plain http on ln until the test ends.
func serve(t *testing.T, ln net.Listener, h http.Handler, errorLog *log.Logger) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close() // the one NewUnstartedServer made; ln replaces it
	srv.Listener = ln
	srv.Config.ErrorLog = errorLog
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Start()
	t.Cleanup(srv.Close)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) string {
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// serveTLS serves h over TLS with certs (the one for the name the client
// asks for) on ln until the test ends.
func serveTLS(t *testing.T, ln net.Listener, h http.Handler, errorLog *log.Logger, certs ...tls.Certificate) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close() // the one NewUnstartedServer made; ln replaces it
	srv.Listener = ln
	srv.Config.ErrorLog = errorLog
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.TLS = &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
}

// testCA is a certificate authority that exists only for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA() (*testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "sso-gateway e2e test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	return &testCA{cert: cert, key: key}, nil
}

// spki returns the CA's public key pin in the form Chromium's
// --ignore-certificate-errors-spki-list takes.
func (ca *testCA) spki() string {
	sum := sha256.Sum256(ca.cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// leaf issues a server certificate for host. The chain served includes the
// CA: Chromium matches the SPKI list against the certificates the server
// sends, since it cannot build a chain to a root it does not know.
func (ca *testCA) leaf(t *testing.T, host string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    ca.cert.NotBefore,
		NotAfter:     ca.cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// loginCount is the value of sso_gateway_logins_total for one series.
func loginCount(t *testing.T, reg *prometheus.Registry, tenant, flow, result, reason string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"tenant": tenant, "flow": flow, "result": result, "reason": reason}
	for _, mf := range families {
		if mf.GetName() != "sso_gateway_logins_total" {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// failedLogins lists the sso_gateway_logins_total failure series that
// counted anything, as "tenant/flow/reason=N".
func failedLogins(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range families {
		if mf.GetName() != "sso_gateway_logins_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if v := m.GetCounter().GetValue(); labels["result"] == "failure" && v > 0 {
				out = append(out, fmt.Sprintf("%s/%s/%s=%g", labels["tenant"], labels["flow"], labels["reason"], v))
			}
		}
	}
	return out
}
