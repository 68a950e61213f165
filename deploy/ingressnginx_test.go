package deploy_test

import (
	"fmt"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The ingress-nginx component and the annotations it is checked for
// (https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#external-authentication).
const (
	ingNginxComponent = "kubernetes/components/ingress-nginx-forward-auth"
	ingNginxAuthURL   = "nginx.ingress.kubernetes.io/auth-url"
	ingNginxSignin    = "nginx.ingress.kubernetes.io/auth-signin"
	ingNginxHeaders   = "nginx.ingress.kubernetes.io/auth-response-headers"
	ingNginxSigninURL = "/auth/api/v1/saml/signin"
)

// ingNginxOverlay is the overlay the component's kustomization.yaml tells
// operators to write.
const ingNginxOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../kubernetes
components:
  - ../kubernetes/components/ingress-nginx-forward-auth
`

// ingNginxBuild builds the overlay with the component.
func ingNginxBuild(t *testing.T) *k8sBundle {
	t.Helper()
	mem := k8sMemFS(t)
	overlay := path.Join(k8sMemRoot, "overlay")
	if err := mem.WriteFile(path.Join(overlay, "kustomization.yaml"), []byte(ingNginxOverlay)); err != nil {
		t.Fatal(err)
	}
	b, err := k8sBuild(mem, overlay)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ingNginxProblems checks the component's Ingresses against the gateway's
// Service and config, and the document service's NetworkPolicy as the
// component leaves it.
func ingNginxProblems(s *k8sSetup) []string {
	var problems []string
	svc := k8sNamed(s.b.Services, k8sGateway)
	if svc == nil {
		return []string{"no Service " + k8sGateway}
	}
	// leadsToGateway: a Service port (number or name) of the gateway's
	// Service that reaches the container's listen port.
	leadsToGateway := func(port string) bool {
		for _, p := range svc.Spec.Ports {
			if port == fmt.Sprint(p.Port) || port == p.Name {
				return s.servicePortTarget(svc, p.Name) == s.listenPort()
			}
		}
		return false
	}
	upstreamHost := strings.SplitN(s.cfg.Upstream.Hostname(), ".", 2)[0]
	upstreamPort := s.cfg.Upstream.Port()
	publicHost := s.cfg.PublicURL.Hostname()

	var app, own []*networkingv1.Ingress
	for _, ing := range s.b.Ingresses {
		if _, ok := ing.Annotations[ingNginxAuthURL]; ok {
			app = append(app, ing)
		} else {
			own = append(own, ing)
		}
		for k := range ing.Annotations {
			if strings.HasSuffix(k, "-snippet") {
				problems = append(problems, fmt.Sprintf("Ingress %s uses %s: many clusters disable snippets", ing.Name, k))
			}
		}
	}
	if len(app) != 1 || len(own) != 1 {
		return append(problems, fmt.Sprintf("%d Ingresses with auth-url and %d without, want 1 and 1", len(app), len(own)))
	}
	a, o := app[0], own[0]

	u, err := url.Parse(a.Annotations[ingNginxAuthURL])
	if err != nil {
		problems = append(problems, fmt.Sprintf("auth-url: %v", err))
	} else {
		if u.Path != ingVerifyPath {
			problems = append(problems, fmt.Sprintf("auth-url path is %q, want %q", u.Path, ingVerifyPath))
		}
		if u.RawQuery != "" {
			problems = append(problems, fmt.Sprintf("auth-url has query %q: nginx's auth_request needs the 401, not a redirect", u.RawQuery))
		}
		if labels := strings.Split(u.Hostname(), "."); labels[0] != svc.Name || len(labels) > 1 && (len(labels) < 3 || labels[2] != "svc") {
			problems = append(problems, fmt.Sprintf("auth-url host %q is not Service %s", u.Hostname(), svc.Name))
		}
		port := u.Port()
		if port == "" {
			port = "80"
		}
		if u.Scheme != "http" || !leadsToGateway(port) {
			problems = append(problems, fmt.Sprintf("auth-url %s://…:%s is no http port of Service %s that leads to listen", u.Scheme, port, svc.Name))
		}
	}
	if su, err := url.Parse(a.Annotations[ingNginxSignin]); err != nil || su.Path != ingNginxSigninURL || su.Scheme != "https" || (su.Host != "$host" && su.Host != publicHost) {
		problems = append(problems, fmt.Sprintf("auth-signin is %q, want https://$host%s", a.Annotations[ingNginxSignin], ingNginxSigninURL))
	}
	if m := ingMissing(strings.Split(a.Annotations[ingNginxHeaders], ",")); len(m) > 0 {
		problems = append(problems, fmt.Sprintf("auth-response-headers lacks %v: a client could send its own", m))
	}

	hostsOf := func(ing *networkingv1.Ingress) []string {
		var hosts []string
		for _, r := range ing.Spec.Rules {
			hosts = append(hosts, r.Host)
		}
		return hosts
	}
	if !slices.Contains(hostsOf(a), publicHost) {
		problems = append(problems, fmt.Sprintf("Ingress %s serves %v, not public_url's host %s", a.Name, hostsOf(a), publicHost))
	}
	if !reflect.DeepEqual(hostsOf(a), hostsOf(o)) {
		problems = append(problems, fmt.Sprintf("Ingress %s serves %v but %s %v: the gateway's pages must be on every host of the application", o.Name, hostsOf(o), a.Name, hostsOf(a)))
	}
	for _, r := range a.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			be := p.Backend.Service
			if be == nil || be.Name != upstreamHost || fmt.Sprint(be.Port.Number) != upstreamPort {
				problems = append(problems, fmt.Sprintf("Ingress %s path %s does not lead to the upstream %s:%s", a.Name, p.Path, upstreamHost, upstreamPort))
			}
		}
	}
	ownPaths := 0
	for _, r := range o.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			ownPaths++
			be := p.Backend.Service
			if p.Path != ingOwnPrefix || p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix {
				problems = append(problems, fmt.Sprintf("Ingress %s path %q is not the Prefix %s", o.Name, p.Path, ingOwnPrefix))
			}
			port := ""
			if be != nil {
				port = be.Port.Name
				if port == "" {
					port = fmt.Sprint(be.Port.Number)
				}
			}
			if be == nil || be.Name != svc.Name || !leadsToGateway(port) {
				problems = append(problems, fmt.Sprintf("Ingress %s path %s does not lead to Service %s's listen port", o.Name, p.Path, svc.Name))
			}
		}
	}
	if ownPaths == 0 {
		problems = append(problems, fmt.Sprintf("Ingress %s routes nothing to the gateway", o.Name))
	}

	// The document service admits the gateway and, now, the controller's
	// namespace (the one the gateway's policy admits to its public port),
	// and nothing else.
	var controller []networkingv1.NetworkPolicyPeer
	if np := k8sNamed(s.b.NetworkPolicies, k8sGateway); np != nil {
		for _, r := range np.Spec.Ingress {
			for _, p := range r.Ports {
				if p.Port != nil && k8sPort(s.ctr, *p.Port) == s.listenPort() {
					controller = append(controller, r.From...)
				}
			}
		}
	}
	admitsController := false
	for _, np := range s.b.NetworkPolicies {
		if !k8sSelects(&np.Spec.PodSelector, map[string]string{k8sNameLabel: upstreamHost}) {
			continue
		}
		for i, rule := range np.Spec.Ingress {
			// Take the controller's peers out; the rest must be the
			// gateway's pods alone (a rule without peers admits everyone).
			rest := rule.DeepCopy()
			rest.From = slices.DeleteFunc(rest.From, func(peer networkingv1.NetworkPolicyPeer) bool {
				return slices.ContainsFunc(controller, func(c networkingv1.NetworkPolicyPeer) bool { return reflect.DeepEqual(c, peer) })
			})
			if len(rest.From) < len(rule.From) {
				admitsController = true
				if len(rest.From) == 0 {
					continue
				}
			}
			one := np.DeepCopy()
			one.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{*rest}
			problems = append(problems, s.onlyFromGateway(fmt.Sprintf("NetworkPolicy %s ingress[%d]", np.Name, i), one)...)
		}
	}
	if !admitsController {
		problems = append(problems, "the document service's NetworkPolicy does not admit the ingress controller, which now proxies to it")
	}
	return problems
}

// TestIngressNginxComponent builds the base with the ingress-nginx
// component: every object decodes strictly (the Ingresses into
// networking/v1), every check of the base still holds but the upstream's
// "only from the gateway" (the controller now reaches it too, which
// ingNginxProblems checks instead), and the annotations name the real
// Service, port and paths.
func TestIngressNginxComponent(t *testing.T) {
	t.Parallel()
	b := ingNginxBuild(t)
	docker := k8sLoadDockerfile(t)
	for _, p := range k8sProblems(b, docker) {
		if !strings.HasPrefix(p, "upstream-networkpolicy: ") {
			t.Error(p)
		}
	}
	s, problems := k8sPrepare(b, docker)
	if s == nil {
		t.Fatal(problems)
	}
	for _, p := range ingNginxProblems(s) {
		t.Error(p)
	}
	if len(b.Ingresses) != 2 {
		t.Errorf("got %d Ingresses, want 2", len(b.Ingresses))
	}
	// The base alone has no Ingress: the component is optional.
	if n := len(k8sBaseBundle(t).Ingresses); n != 0 {
		t.Errorf("the base has %d Ingresses, want 0", n)
	}
}

// TestIngressNginxComponentCanFail breaks one thing at a time in a copy
// of the built overlay and expects ingNginxProblems to say so; a strict
// decoding error in the component's file fails the build.
func TestIngressNginxComponentCanFail(t *testing.T) {
	t.Parallel()
	built := ingNginxBuild(t)
	docker := k8sLoadDockerfile(t)
	appIng := func(b *k8sBundle) *networkingv1.Ingress { return k8sNamed(b.Ingresses, "document-service") }
	ownIng := func(b *k8sBundle) *networkingv1.Ingress { return k8sNamed(b.Ingresses, k8sGateway) }
	for _, tc := range []struct {
		name   string
		change func(*k8sBundle)
		want   string
	}{
		{"auth-url to another Service", func(b *k8sBundle) {
			appIng(b).Annotations[ingNginxAuthURL] = "http://oauth2-proxy.sso-gateway.svc.cluster.local/auth/api/v1/saml/verify"
		}, `auth-url host "oauth2-proxy.sso-gateway.svc.cluster.local" is not Service sso-gateway`},
		{"auth-url to the metrics port", func(b *k8sBundle) {
			appIng(b).Annotations[ingNginxAuthURL] = "http://sso-gateway.sso-gateway.svc.cluster.local:9090/auth/api/v1/saml/verify"
		}, "is no http port of Service sso-gateway"},
		{"auth-url to another path", func(b *k8sBundle) {
			appIng(b).Annotations[ingNginxAuthURL] = "http://sso-gateway.sso-gateway.svc.cluster.local/auth/api/v1/saml/verfy"
		}, `auth-url path is "/auth/api/v1/saml/verfy"`},
		{"auth-url asks for a redirect", func(b *k8sBundle) {
			appIng(b).Annotations[ingNginxAuthURL] += "?redirect=1"
		}, "needs the 401"},
		{"no auth-signin", func(b *k8sBundle) { delete(appIng(b).Annotations, ingNginxSignin) }, "auth-signin is"},
		{"an identity header not copied", func(b *k8sBundle) {
			appIng(b).Annotations[ingNginxHeaders] = strings.Replace(appIng(b).Annotations[ingNginxHeaders], "X-Remote-Tenant, ", "", 1)
		}, "auth-response-headers lacks [X-Remote-Tenant]"},
		{"a snippet", func(b *k8sBundle) {
			appIng(b).Annotations["nginx.ingress.kubernetes.io/configuration-snippet"] = "more_clear_input_headers X-Remote-*;"
		}, "many clusters disable snippets"},
		{"the application's Ingress to the gateway", func(b *k8sBundle) {
			appIng(b).Spec.Rules[0].HTTP.Paths[0].Backend.Service = &networkingv1.IngressServiceBackend{Name: k8sGateway, Port: networkingv1.ServiceBackendPort{Name: "http"}}
		}, "does not lead to the upstream document-service:8080"},
		{"own pages behind forward-auth", func(b *k8sBundle) {
			ownIng(b).Annotations = map[string]string{ingNginxAuthURL: appIng(b).Annotations[ingNginxAuthURL]}
		}, "2 Ingresses with auth-url and 0 without"},
		{"own pages under another path", func(b *k8sBundle) {
			ownIng(b).Spec.Rules[0].HTTP.Paths[0].Path = "/auth/"
		}, `path "/auth/" is not the Prefix /auth/api/v1/saml/`},
		{"own pages to the metrics port", func(b *k8sBundle) {
			ownIng(b).Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{Name: "metrics"}
		}, "does not lead to Service sso-gateway's listen port"},
		{"own pages on another host", func(b *k8sBundle) {
			ownIng(b).Spec.Rules[0].Host = "sso.example.com"
		}, "must be on every host"},
		{"the application on another host", func(b *k8sBundle) {
			appIng(b).Spec.Rules[0].Host = "docs.example.com"
		}, "not public_url's host cloudimanage.example.com"},
		{"upstream closed to the controller", func(b *k8sBundle) {
			k8sUpstreamPolicy(b).Spec.Ingress[0].From = k8sUpstreamPolicy(b).Spec.Ingress[0].From[:1]
		}, "does not admit the ingress controller"},
		{"upstream open to another namespace", func(b *k8sBundle) {
			r := &k8sUpstreamPolicy(b).Spec.Ingress[0]
			r.From = append(r.From, networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}})
		}, "admits pods of other namespaces"},
		{"upstream open to everyone", func(b *k8sBundle) {
			k8sUpstreamPolicy(b).Spec.Ingress = append(k8sUpstreamPolicy(b).Spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{{Port: k8sPtr(intstr.FromInt32(8080))}}})
		}, "admits every source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := built.clone()
			tc.change(b)
			s, problems := k8sPrepare(b, docker)
			if s != nil {
				problems = append(problems, ingNginxProblems(s)...)
			}
			if !ingHasProblem(problems, tc.want) {
				t.Errorf("got problems %q, want one containing %q", problems, tc.want)
			}
		})
	}

	t.Run("unknown field", func(t *testing.T) {
		t.Parallel()
		mem := k8sMemFS(t)
		if err := k8sEditFile(mem, path.Join(k8sMemRoot, ingNginxComponent, "ingress.yaml"), "  ingressClassName: nginx", "  ingressClass: nginx"); err != nil {
			t.Fatal(err)
		}
		overlay := path.Join(k8sMemRoot, "overlay")
		if err := mem.WriteFile(path.Join(overlay, "kustomization.yaml"), []byte(ingNginxOverlay)); err != nil {
			t.Fatal(err)
		}
		_, err := k8sBuild(mem, overlay)
		if err == nil || !strings.Contains(err.Error(), `unknown field "ingressClass"`) {
			t.Errorf("got %v, want an error containing %q", err, `unknown field "ingressClass"`)
		}
	})
}
