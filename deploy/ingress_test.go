package deploy_test

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/sso-gateway/sso-gateway/proxy"
)

// The forward-auth contract every ingress example is checked against.
const (
	ingVerifyPath  = "/auth/api/v1/saml/verify" // the gateway's forward-auth endpoint
	ingOwnPrefix   = "/auth/api/v1/saml/"       // the gateway's own pages, routed to it directly
	ingGatewayHost = "sso-gateway"              // the first label of the gateway's host name
	ingAppHost     = "document-service"         // the first label of the application's host name
)

// ingIdentityHeaders are the headers the gateway answers forward-auth with
// and every ingress must copy upstream (and never take from a client).
var ingIdentityHeaders = []string{
	proxy.HeaderUser, proxy.HeaderEmail, proxy.HeaderName, proxy.HeaderGroups,
	proxy.HeaderTenant, proxy.HeaderGroupsOverage, "X-Remote-Jwt-Assertion",
}

// ingMissing returns the identity headers not in names (in any case).
func ingMissing(names []string) []string {
	var missing []string
	for _, h := range ingIdentityHeaders {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(strings.TrimSpace(n), h) }) {
			missing = append(missing, h)
		}
	}
	return missing
}

// ingHasProblem reports whether one of problems contains want.
func ingHasProblem(problems []string, want string) bool {
	return slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) })
}

// ingReadFile reads a file under deploy/.
func ingReadFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// ---------------------------------------------------------------------------
// Traefik.
//
// Traefik's Go module is not served here, so these types are a MODEL of
// Traefik v3's documented schema, not Traefik's own types: the forwardAuth
// options of
// https://doc.traefik.io/traefik/v3.3/reference/routing-configuration/http/middlewares/forwardauth/,
// the routers and services of the file provider
// (https://doc.traefik.io/traefik/v3.3/reference/routing-configuration/http/routing/router/,
// .../http/load-balancing/service/) and the traefik.io/v1alpha1 Middleware
// and IngressRoute CRDs
// (https://doc.traefik.io/traefik/v3.3/reference/routing-configuration/kubernetes/crd/http/ingressroute/).
// Only the fields of the objects the examples use are modelled; decoding is
// strict, so a misspelt or unmodelled field fails the test.

// traefikForwardAuth is the forwardAuth middleware's options.
type traefikForwardAuth struct {
	Address                  string            `json:"address"`
	TLS                      *traefikClientTLS `json:"tls,omitempty"`
	TrustForwardHeader       bool              `json:"trustForwardHeader,omitempty"`
	AuthResponseHeaders      []string          `json:"authResponseHeaders,omitempty"`
	AuthResponseHeadersRegex string            `json:"authResponseHeadersRegex,omitempty"`
	AuthRequestHeaders       []string          `json:"authRequestHeaders,omitempty"`
	AddAuthCookiesToResponse []string          `json:"addAuthCookiesToResponse,omitempty"`
	HeaderField              string            `json:"headerField,omitempty"`
	ForwardBody              bool              `json:"forwardBody,omitempty"`
	MaxBodySize              *int64            `json:"maxBodySize,omitempty"`
	PreserveLocationHeader   bool              `json:"preserveLocationHeader,omitempty"`
	PreserveRequestMethod    bool              `json:"preserveRequestMethod,omitempty"`
	MaxResponseBodySize      *int64            `json:"maxResponseBodySize,omitempty"`
}

// traefikClientTLS is forwardAuth's tls (in the CRD, certSecret for
// cert and key).
type traefikClientTLS struct {
	CA                 string `json:"ca,omitempty"`
	Cert               string `json:"cert,omitempty"`
	Key                string `json:"key,omitempty"`
	CertSecret         string `json:"certSecret,omitempty"`
	InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
	CAOptional         bool   `json:"caOptional,omitempty"`
}

// traefikMiddleware is one middleware; only forwardAuth is modelled.
type traefikMiddleware struct {
	ForwardAuth *traefikForwardAuth `json:"forwardAuth,omitempty"`
}

// traefikRouterTLS is a router's (or an IngressRoute's) tls.
type traefikRouterTLS struct {
	Options      string `json:"options,omitempty"`
	CertResolver string `json:"certResolver,omitempty"`
	SecretName   string `json:"secretName,omitempty"` // CRD only
	Domains      []struct {
		Main string   `json:"main"`
		SANs []string `json:"sans,omitempty"`
	} `json:"domains,omitempty"`
}

// traefikDynamic is a file provider's dynamic configuration (http only).
type traefikDynamic struct {
	HTTP struct {
		Routers map[string]struct {
			Rule        string            `json:"rule"`
			RuleSyntax  string            `json:"ruleSyntax,omitempty"`
			EntryPoints []string          `json:"entryPoints,omitempty"`
			Middlewares []string          `json:"middlewares,omitempty"`
			Service     string            `json:"service"`
			Priority    int               `json:"priority,omitempty"`
			TLS         *traefikRouterTLS `json:"tls,omitempty"`
		} `json:"routers"`
		Middlewares map[string]traefikMiddleware `json:"middlewares"`
		Services    map[string]struct {
			LoadBalancer *struct {
				Servers []struct {
					URL          string `json:"url"`
					Weight       *int   `json:"weight,omitempty"`
					PreservePath bool   `json:"preservePath,omitempty"`
				} `json:"servers"`
				PassHostHeader   *bool  `json:"passHostHeader,omitempty"`
				ServersTransport string `json:"serversTransport,omitempty"`
			} `json:"loadBalancer,omitempty"`
		} `json:"services"`
	} `json:"http"`
}

// traefikCRD is a traefik.io/v1alpha1 Middleware or IngressRoute.
type traefikCRD struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		traefikMiddleware `json:",inline"` // Middleware
		// IngressRoute:
		EntryPoints []string `json:"entryPoints,omitempty"`
		Routes      []struct {
			Match       string `json:"match"`
			Kind        string `json:"kind,omitempty"`
			Priority    int    `json:"priority,omitempty"`
			Syntax      string `json:"syntax,omitempty"`
			Middlewares []struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace,omitempty"`
			} `json:"middlewares,omitempty"`
			Services []struct {
				Name             string             `json:"name"`
				Namespace        string             `json:"namespace,omitempty"`
				Kind             string             `json:"kind,omitempty"`
				Port             intstr.IntOrString `json:"port"`
				Scheme           string             `json:"scheme,omitempty"`
				PassHostHeader   *bool              `json:"passHostHeader,omitempty"`
				Weight           *int               `json:"weight,omitempty"`
				ServersTransport string             `json:"serversTransport,omitempty"`
			} `json:"services,omitempty"`
		} `json:"routes,omitempty"`
		TLS *traefikRouterTLS `json:"tls,omitempty"`
	} `json:"spec"`
}

// traefikRoute is a router of either form, reduced to what the checks
// look at.
type traefikRoute struct {
	name        string
	rule        string
	priority    int
	middlewares []string
	backend     string // the first label of the target's host name, or the Service name
	port        string // the target's port, or the Service port
	passHost    *bool
}

// traefikView is either form of the example, reduced to what the checks
// look at.
type traefikView struct {
	middlewares map[string]*traefikForwardAuth
	routes      []traefikRoute
	// gatewayPorts are the ports under which the gateway is reached: the
	// gateway service's URL port (file), or the Service's port numbers and
	// names that lead to the container's http port (CRD).
	gatewayPorts []string
}

// traefikFromDynamic decodes dynamic.yml strictly.
func traefikFromDynamic(data []byte) (*traefikView, error) {
	var d traefikDynamic
	if err := yaml.UnmarshalStrict(data, &d); err != nil {
		return nil, err
	}
	v := &traefikView{middlewares: map[string]*traefikForwardAuth{}}
	for name, m := range d.HTTP.Middlewares {
		if m.ForwardAuth != nil {
			v.middlewares[name] = m.ForwardAuth
		}
	}
	for name, r := range d.HTTP.Routers {
		rt := traefikRoute{name: name, rule: r.Rule, priority: r.Priority, middlewares: r.Middlewares}
		svc, ok := d.HTTP.Services[r.Service]
		if !ok || svc.LoadBalancer == nil || len(svc.LoadBalancer.Servers) == 0 {
			return nil, fmt.Errorf("router %s: no service %q with servers", name, r.Service)
		}
		for _, s := range svc.LoadBalancer.Servers {
			u, err := url.Parse(s.URL)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", r.Service, err)
			}
			backend := strings.SplitN(u.Hostname(), ".", 2)[0]
			if rt.backend != "" && rt.backend != backend {
				return nil, fmt.Errorf("service %s mixes servers %s and %s", r.Service, rt.backend, backend)
			}
			rt.backend, rt.port = backend, u.Port()
			if backend == ingGatewayHost && !slices.Contains(v.gatewayPorts, u.Port()) {
				v.gatewayPorts = append(v.gatewayPorts, u.Port())
			}
		}
		rt.passHost = svc.LoadBalancer.PassHostHeader
		v.routes = append(v.routes, rt)
	}
	slices.SortFunc(v.routes, func(a, b traefikRoute) int { return strings.Compare(a.name, b.name) })
	return v, nil
}

// traefikFromCRDs decodes kubernetes.yaml strictly; gatewayPorts are the
// gateway Service's ports that lead to its http container port.
func traefikFromCRDs(data []byte, gatewayPorts []string) (*traefikView, error) {
	docs, err := k8sDocs(data)
	if err != nil {
		return nil, err
	}
	v := &traefikView{middlewares: map[string]*traefikForwardAuth{}, gatewayPorts: gatewayPorts}
	for i, doc := range docs {
		var c traefikCRD
		if err := yaml.UnmarshalStrict(doc, &c); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if c.APIVersion != "traefik.io/v1alpha1" {
			return nil, fmt.Errorf("document %d: apiVersion %q, want traefik.io/v1alpha1", i+1, c.APIVersion)
		}
		switch c.Kind {
		case "Middleware":
			if c.Spec.ForwardAuth != nil {
				v.middlewares[c.Metadata.Name] = c.Spec.ForwardAuth
			}
		case "IngressRoute":
			for j, r := range c.Spec.Routes {
				if r.Kind != "Rule" {
					return nil, fmt.Errorf("IngressRoute %s route %d: kind %q, want Rule", c.Metadata.Name, j, r.Kind)
				}
				rt := traefikRoute{name: fmt.Sprintf("%s[%d]", c.Metadata.Name, j), rule: r.Match, priority: r.Priority}
				for _, m := range r.Middlewares {
					rt.middlewares = append(rt.middlewares, m.Name)
				}
				if len(r.Services) != 1 {
					return nil, fmt.Errorf("IngressRoute %s route %d: %d services, want 1", c.Metadata.Name, j, len(r.Services))
				}
				s := r.Services[0]
				rt.backend, rt.port, rt.passHost = s.Name, s.Port.String(), s.PassHostHeader
				v.routes = append(v.routes, rt)
			}
		default:
			return nil, fmt.Errorf("document %d: unexpected kind %q", i+1, c.Kind)
		}
	}
	return v, nil
}

var (
	traefikPathPrefix = regexp.MustCompile("PathPrefix\\(`([^`]*)`\\)")
	traefikHost       = regexp.MustCompile("Host\\(`([^`]*)`\\)")
)

// traefikProblems checks the invariants of the forward-auth setup.
func traefikProblems(v *traefikView) []string {
	var problems []string
	if len(v.middlewares) != 1 {
		return []string{fmt.Sprintf("%d forwardAuth middlewares, want 1", len(v.middlewares))}
	}
	var mw string
	var fa *traefikForwardAuth
	for name, m := range v.middlewares { // the only one
		mw, fa = name, m
	}
	u, err := url.Parse(fa.Address)
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("forwardAuth address: %v", err))
	default:
		if u.Path != ingVerifyPath {
			problems = append(problems, fmt.Sprintf("forwardAuth address path is %q, want %q", u.Path, ingVerifyPath))
		}
		if u.Query().Get("redirect") != "1" {
			problems = append(problems, "forwardAuth address lacks ?redirect=1: Traefik passes the answer to the browser, which needs a 302, not a 401")
		}
		if h := strings.SplitN(u.Hostname(), ".", 2)[0]; h != ingGatewayHost {
			problems = append(problems, fmt.Sprintf("forwardAuth address host is %q, want the gateway %q", u.Hostname(), ingGatewayHost))
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		if !slices.Contains(v.gatewayPorts, port) {
			problems = append(problems, fmt.Sprintf("forwardAuth address port %s is not the gateway's (%v)", port, v.gatewayPorts))
		}
	}
	if fa.TrustForwardHeader {
		problems = append(problems, "forwardAuth trustForwardHeader is true: a client could name any method, host and URI")
	}
	if !fa.PreserveLocationHeader {
		problems = append(problems, "forwardAuth preserveLocationHeader is false: Traefik would resolve the sign-in Location against the gateway's internal address")
	}
	if m := ingMissing(fa.AuthResponseHeaders); len(m) > 0 {
		problems = append(problems, fmt.Sprintf("forwardAuth authResponseHeaders lacks %v", m))
	}
	if fa.AuthResponseHeadersRegex == "" {
		problems = append(problems, "forwardAuth has no authResponseHeadersRegex: a client's X-Remote-* headers other than those listed would reach the application")
	} else if re, err := regexp.Compile(fa.AuthResponseHeadersRegex); err != nil {
		problems = append(problems, fmt.Sprintf("forwardAuth authResponseHeadersRegex: %v", err))
	} else {
		for _, h := range append(slices.Clone(ingIdentityHeaders), "X-Remote-Department", "X_remote_user", "x-remote-tenant") {
			if !re.MatchString(h) {
				problems = append(problems, fmt.Sprintf("forwardAuth authResponseHeadersRegex does not match %q: a client's copy would reach the application", h))
			}
		}
		for _, h := range []string{"Cookie", "Authorization", "X-Forwarded-Host", "X-Remotely"} {
			if re.MatchString(h) {
				problems = append(problems, fmt.Sprintf("forwardAuth authResponseHeadersRegex matches %q, which the application needs from the client", h))
			}
		}
	}
	if fa.AuthRequestHeaders != nil && !slices.ContainsFunc(fa.AuthRequestHeaders, func(h string) bool { return strings.EqualFold(h, "Cookie") }) {
		problems = append(problems, "forwardAuth authRequestHeaders lacks Cookie: the gateway would never see a session")
	}

	var app, own []traefikRoute
	for _, r := range v.routes {
		switch r.backend {
		case ingAppHost:
			app = append(app, r)
			if !slices.Contains(r.middlewares, mw) {
				problems = append(problems, fmt.Sprintf("router %s reaches the application without middleware %s", r.name, mw))
			}
		case ingGatewayHost:
			own = append(own, r)
			if slices.Contains(r.middlewares, mw) {
				problems = append(problems, fmt.Sprintf("router %s puts the gateway's own pages behind forward-auth: no one could sign in", r.name))
			}
			if m := traefikPathPrefix.FindStringSubmatch(r.rule); m == nil || m[1] != ingOwnPrefix {
				problems = append(problems, fmt.Sprintf("router %s rule %q does not route exactly PathPrefix(`%s`) to the gateway", r.name, r.rule, ingOwnPrefix))
			}
			if !slices.Contains(v.gatewayPorts, r.port) {
				problems = append(problems, fmt.Sprintf("router %s targets port %s of the gateway, not %v", r.name, r.port, v.gatewayPorts))
			}
			if r.passHost != nil && !*r.passHost {
				problems = append(problems, fmt.Sprintf("router %s: passHostHeader false: the gateway picks the tenant by Host", r.name))
			}
		default:
			problems = append(problems, fmt.Sprintf("router %s targets %q, neither the gateway nor the application", r.name, r.backend))
		}
	}
	if len(app) == 0 {
		problems = append(problems, "no router for the application")
	}
	if len(own) == 0 {
		problems = append(problems, fmt.Sprintf("no router sends %s to the gateway itself", ingOwnPrefix))
	}
	for _, o := range own {
		for _, a := range app {
			oh, ah := traefikHost.FindAllStringSubmatch(o.rule, -1), traefikHost.FindAllStringSubmatch(a.rule, -1)
			if fmt.Sprint(oh) != fmt.Sprint(ah) {
				problems = append(problems, fmt.Sprintf("router %s serves hosts %v, router %s %v: the gateway's pages must be on every host of the application", o.name, oh, a.name, ah))
			}
			if o.priority <= a.priority {
				problems = append(problems, fmt.Sprintf("router %s (priority %d) does not win over %s (priority %d)", o.name, o.priority, a.name, a.priority))
			}
		}
	}
	return problems
}

// traefikK8sGatewayPorts are the gateway Service's ports (number and name)
// that lead to the container's http port, from the built base.
func traefikK8sGatewayPorts(t *testing.T) []string {
	t.Helper()
	b := k8sBaseBundle(t)
	s, problems := k8sPrepare(b, k8sLoadDockerfile(t))
	if s == nil {
		t.Fatal(problems)
	}
	svc := k8sNamed(b.Services, k8sGateway)
	var ports []string
	for _, p := range svc.Spec.Ports {
		if s.servicePortTarget(svc, p.Name) == s.listenPort() {
			ports = append(ports, fmt.Sprint(p.Port), p.Name)
		}
	}
	return ports
}

// TestTraefikExamples: both Traefik examples decode strictly into the
// model of Traefik's schema and hold every invariant.
func TestTraefikExamples(t *testing.T) {
	t.Parallel()
	t.Run("file provider", func(t *testing.T) {
		v, err := traefikFromDynamic(ingReadFile(t, "traefik/dynamic.yml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range traefikProblems(v) {
			t.Error(p)
		}
	})
	t.Run("kubernetes CRDs", func(t *testing.T) {
		v, err := traefikFromCRDs(ingReadFile(t, "traefik/kubernetes.yaml"), traefikK8sGatewayPorts(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range traefikProblems(v) {
			t.Error(p)
		}
	})
}

// TestTraefikChecksCanFail edits copies of the examples, one break at a
// time, and expects the decoder or the checks to say so.
func TestTraefikChecksCanFail(t *testing.T) {
	t.Parallel()
	dynamic := string(ingReadFile(t, "traefik/dynamic.yml"))
	crds := string(ingReadFile(t, "traefik/kubernetes.yaml"))
	ports := traefikK8sGatewayPorts(t)
	for _, tc := range []struct {
		name, file, old, new, want string
	}{
		{"misspelt option", "dynamic", "trustForwardHeader: false", "trustForwardHeaders: false", `unknown field "trustForwardHeaders"`},
		{"duplicate option", "dynamic", "trustForwardHeader: false", "trustForwardHeader: false\n        trustForwardHeader: false", "already set"},
		{"trusts client headers", "dynamic", "trustForwardHeader: false", "trustForwardHeader: true", "trustForwardHeader is true"},
		{"no redirect", "dynamic", "verify?redirect=1", "verify", "lacks ?redirect=1"},
		{"wrong path", "dynamic", "saml/verify?", "saml/verif?", `path is "/auth/api/v1/saml/verif"`},
		{"wrong gateway port", "dynamic", "8080/auth/api/v1/saml/verify", "8081/auth/api/v1/saml/verify", "port 8081 is not the gateway's"},
		{"an identity header not copied", "dynamic", "          - X-Remote-Groups-Overage\n", "", "authResponseHeaders lacks [X-Remote-Groups-Overage]"},
		{"the JWT not copied", "dynamic", "          - X-Remote-Jwt-Assertion\n", "", "lacks [X-Remote-Jwt-Assertion]"},
		{"no regex", "dynamic", `        authResponseHeadersRegex: "(?i)^x[-_]remote[-_]"` + "\n", "", "no authResponseHeadersRegex"},
		{"case-sensitive regex", "dynamic", `"(?i)^x[-_]remote[-_]"`, `"^X-Remote-"`, `does not match "X_remote_user"`},
		{"regex too wide", "dynamic", `"(?i)^x[-_]remote[-_]"`, `"(?i)^x"`, `matches "X-Forwarded-Host"`},
		{"relative Location rewritten", "dynamic", "preserveLocationHeader: true", "preserveLocationHeader: false", "preserveLocationHeader is false"},
		{"app without forward-auth", "dynamic", "      middlewares: [sso-gateway]\n", "", "reaches the application without middleware sso-gateway"},
		{"own pages behind forward-auth", "dynamic", "      service: sso-gateway\n", "      service: sso-gateway\n      middlewares: [sso-gateway]\n", "no one could sign in"},
		{"own pages lose on priority", "dynamic", "priority: 20", "priority: 5", "does not win over"},
		{"own pages on another prefix", "dynamic", "PathPrefix(`/auth/api/v1/saml/`)", "PathPrefix(`/auth/`)", "does not route exactly"},
		{"own pages on another host", "dynamic", "Host(`app.example.com`) && PathPrefix", "Host(`sso.example.com`) && PathPrefix", "must be on every host"},
		{"no Host passed to the gateway", "dynamic", "passHostHeader: true", "passHostHeader: false", "passHostHeader false"},
		{"crd misspelt option", "crds", "authResponseHeaders:", "authResponseHeader:", `unknown field "authResponseHeader"`},
		{"crd unknown kind", "crds", "kind: IngressRoute", "kind: IngressRouteTCP", `unexpected kind "IngressRouteTCP"`},
		{"crd address port not the Service's", "crds", "svc.cluster.local/auth", "svc.cluster.local:8080/auth", "port 8080 is not the gateway's"},
		{"crd route to the metrics port", "crds", "port: http", "port: metrics", "targets port metrics of the gateway"},
		{"crd app without forward-auth", "crds", "      middlewares:\n        - name: sso-gateway\n", "", "reaches the application without middleware"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := map[string]string{"dynamic": dynamic, "crds": crds}[tc.file]
			if !strings.Contains(src, tc.old) {
				t.Fatalf("the %s example has no %q", tc.file, tc.old)
			}
			src = strings.Replace(src, tc.old, tc.new, 1)
			var v *traefikView
			var err error
			if tc.file == "dynamic" {
				v, err = traefikFromDynamic([]byte(src))
			} else {
				v, err = traefikFromCRDs([]byte(src), ports)
			}
			var problems []string
			if err != nil {
				problems = []string{err.Error()}
			} else {
				problems = traefikProblems(v)
			}
			if !ingHasProblem(problems, tc.want) {
				t.Errorf("got problems %q, want one containing %q", problems, tc.want)
			}
		})
	}
}
