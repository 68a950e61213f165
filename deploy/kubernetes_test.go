// Package deploy_test checks the files in deploy/ (the container image, the
// Kubernetes manifests, the Prometheus rules) against the gateway's own
// config parser, the real API types and each other. deploy/ holds no Go
// besides these tests.
package deploy_test

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"go/build"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/sso-gateway/sso-gateway/config"
)

// The names the manifests are checked against.
const (
	k8sDir        = "kubernetes" // the kustomize base, relative to deploy/
	k8sAlertsFile = "prometheus/alerts.yml"
	k8sDockerfile = "Dockerfile"
	k8sIgnoreFile = "Dockerfile.dockerignore"
	k8sCIRun      = "../.ci/run"
	k8sGateway    = "sso-gateway" // the name of every gateway object
	k8sUID        = 65532         // the image's USER and the pods' runAsUser
	k8sJob        = "sso-gateway" // the scrape job deploy/prometheus/alerts.yml expects
	k8sMemRoot    = "/repo/deploy"
	k8sNameLabel  = "app.kubernetes.io/name"
)

// k8sKinds are the only kinds the manifests may hold, each decoded into its
// real API type.
var k8sKinds = map[string]func() any{
	"apps/v1 Deployment":                      func() any { return new(appsv1.Deployment) },
	"v1 Service":                              func() any { return new(corev1.Service) },
	"v1 ConfigMap":                            func() any { return new(corev1.ConfigMap) },
	"v1 Secret":                               func() any { return new(corev1.Secret) },
	"policy/v1 PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"autoscaling/v2 HorizontalPodAutoscaler":  func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"networking.k8s.io/v1 NetworkPolicy":      func() any { return new(networkingv1.NetworkPolicy) },
	"networking.k8s.io/v1 Ingress":            func() any { return new(networkingv1.Ingress) }, // components/ingress-nginx-forward-auth
	"monitoring.coreos.com/v1 ServiceMonitor": func() any { return new(monitoringv1.ServiceMonitor) },
	"monitoring.coreos.com/v1 PrometheusRule": func() any { return new(monitoringv1.PrometheusRule) },
}

// k8sDecode decodes one YAML document strictly into its API type: an
// unknown or duplicate field is an error, as is a kind not in k8sKinds.
func k8sDecode(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	newObj, ok := k8sKinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("unexpected apiVersion %q kind %q", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if obj.(metav1.Object).GetName() == "" {
		return nil, fmt.Errorf("%s without metadata.name", tm.Kind)
	}
	return obj, nil
}

// k8sDocs splits a YAML stream into its non-empty documents.
func k8sDocs(data []byte) ([][]byte, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		if v != nil { // only comments
			docs = append(docs, doc)
		}
	}
}

// k8sBundle is a rendered set of manifests, decoded.
type k8sBundle struct {
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	ConfigMaps      []*corev1.ConfigMap
	Secrets         []*corev1.Secret
	PDBs            []*policyv1.PodDisruptionBudget
	HPAs            []*autoscalingv2.HorizontalPodAutoscaler
	NetworkPolicies []*networkingv1.NetworkPolicy
	Ingresses       []*networkingv1.Ingress
	ServiceMonitors []*monitoringv1.ServiceMonitor
	PrometheusRules []*monitoringv1.PrometheusRule
}

func (b *k8sBundle) add(obj any) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		b.Deployments = append(b.Deployments, o)
	case *corev1.Service:
		b.Services = append(b.Services, o)
	case *corev1.ConfigMap:
		b.ConfigMaps = append(b.ConfigMaps, o)
	case *corev1.Secret:
		b.Secrets = append(b.Secrets, o)
	case *policyv1.PodDisruptionBudget:
		b.PDBs = append(b.PDBs, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		b.HPAs = append(b.HPAs, o)
	case *networkingv1.NetworkPolicy:
		b.NetworkPolicies = append(b.NetworkPolicies, o)
	case *networkingv1.Ingress:
		b.Ingresses = append(b.Ingresses, o)
	case *monitoringv1.ServiceMonitor:
		b.ServiceMonitors = append(b.ServiceMonitors, o)
	case *monitoringv1.PrometheusRule:
		b.PrometheusRules = append(b.PrometheusRules, o)
	default:
		panic(fmt.Sprintf("k8sBundle.add: %T", obj))
	}
}

// clone is a deep copy, for tests that break one.
func (b *k8sBundle) clone() *k8sBundle {
	c := &k8sBundle{}
	k8sCloneInto(c, b.Deployments)
	k8sCloneInto(c, b.Services)
	k8sCloneInto(c, b.ConfigMaps)
	k8sCloneInto(c, b.Secrets)
	k8sCloneInto(c, b.PDBs)
	k8sCloneInto(c, b.HPAs)
	k8sCloneInto(c, b.NetworkPolicies)
	k8sCloneInto(c, b.Ingresses)
	k8sCloneInto(c, b.ServiceMonitors)
	k8sCloneInto(c, b.PrometheusRules)
	return c
}

// k8sCloneInto adds a deep copy of each of objs to c.
func k8sCloneInto[T interface{ DeepCopyObject() runtime.Object }](c *k8sBundle, objs []T) {
	for _, o := range objs {
		c.add(o.DeepCopyObject())
	}
}

// k8sNamed returns the object called name, or nil.
func k8sNamed[T metav1.Object](objs []T, name string) T {
	for _, o := range objs {
		if o.GetName() == name {
			return o
		}
	}
	var zero T
	return zero
}

func (b *k8sBundle) configMap(name string) *corev1.ConfigMap {
	return k8sNamed(b.ConfigMaps, name)
}

func (b *k8sBundle) secret(name string) *corev1.Secret {
	return k8sNamed(b.Secrets, name)
}

// k8sMemFS copies deploy/kubernetes into an in-memory file system under
// k8sMemRoot, where a test may change the copy before building it.
func k8sMemFS(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(k8sDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := path.Join(k8sMemRoot, filepath.ToSlash(p))
		if d.IsDir() {
			return mem.MkdirAll(dst)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(dst, data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// k8sBuild is `kustomize build dir`, in memory, with every resulting
// document decoded strictly.
func k8sBuild(fsys filesys.FileSystem, dir string) (*k8sBundle, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	b := &k8sBundle{}
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		obj, err := k8sDecode(doc)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s/%s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		b.add(obj)
	}
	return b, nil
}

// k8sBase is the base, built once; tests clone it before changing it.
var k8sBase = sync.OnceValues(func() (*k8sBundle, error) {
	return k8sBuild(filesys.MakeFsOnDisk(), k8sDir)
})

func k8sBaseBundle(t *testing.T) *k8sBundle {
	t.Helper()
	b, err := k8sBase()
	if err != nil {
		t.Fatal(err)
	}
	return b.clone()
}

// k8sSetup is what the checks look at: the rendered manifests, the
// gateway's Deployment and container, and the configuration in the
// ConfigMap as the gateway's own parser reads it.
type k8sSetup struct {
	b          *k8sBundle
	dep        *appsv1.Deployment
	pod        *corev1.PodSpec
	ctr        *corev1.Container
	configPath string         // the -config the container runs with
	cfg        *config.Config // partial: the files it names do not exist here
	envs       []string       // the environment variables the config reads
}

// k8sPrepare finds the gateway in b and parses its configuration. The
// problems are those that keep the checks from running, and those the
// gateway's parser finds (other than files and variables missing here).
func k8sPrepare(b *k8sBundle, docker *k8sDockerfileModel) (*k8sSetup, []string) {
	s := &k8sSetup{b: b}
	s.dep = k8sNamed(b.Deployments, k8sGateway)
	if s.dep == nil {
		return nil, []string{"no Deployment " + k8sGateway}
	}
	s.pod = &s.dep.Spec.Template.Spec
	for i := range s.pod.Containers {
		if s.pod.Containers[i].Name == k8sGateway {
			s.ctr = &s.pod.Containers[i]
		}
	}
	if s.ctr == nil {
		return nil, []string{"Deployment " + k8sGateway + " has no container " + k8sGateway}
	}
	var err error
	s.configPath, err = k8sConfigFlag(s.ctr, docker)
	if err != nil {
		return nil, []string{err.Error()}
	}
	src, err := k8sFileAt(b, s.pod, s.ctr, s.configPath)
	if err != nil {
		return nil, []string{"the config file: " + err.Error()}
	}
	lookup := func(name string) (string, bool) {
		s.envs = append(s.envs, name)
		return "", false
	}
	s.cfg, err = config.Parse(src.data, path.Dir(s.configPath), lookup)
	if s.cfg == nil {
		return nil, []string{fmt.Sprintf("%s: %v", s.configPath, err)}
	}
	var problems []string
	for _, p := range config.Problems(err) {
		// The files it names are in the pod, not here.
		if !strings.Contains(p.Msg, "does not exist") && !strings.Contains(p.Msg, "is not set") {
			problems = append(problems, fmt.Sprintf("%s: %s", s.configPath, p))
		}
	}
	return s, problems
}

// k8sConfigFlag is the -config value the container runs with: its args,
// or else the image's CMD (Kubernetes' command replaces the ENTRYPOINT and
// drops the CMD).
func k8sConfigFlag(ctr *corev1.Container, docker *k8sDockerfileModel) (string, error) {
	args := ctr.Args
	if len(ctr.Command) == 0 && len(ctr.Args) == 0 && docker != nil {
		args = docker.final().jsonArgs("CMD")
	}
	for i, a := range args {
		a = strings.TrimPrefix(a, "-")
		switch {
		case a == "-config" || a == "config":
			if i+1 < len(args) {
				return args[i+1], nil
			}
		case strings.HasPrefix(a, "config="), strings.HasPrefix(a, "-config="):
			return a[strings.Index(a, "=")+1:], nil
		}
	}
	return "", fmt.Errorf("container %s runs without -config (args %q)", ctr.Name, args)
}

// k8sFile is a file a container sees, and where it comes from.
type k8sFile struct {
	from string // e.g. `Secret "sso-gateway" key "sp.key"`
	data []byte
}

// k8sFileAt finds what the container sees at the absolute path p: the
// read-only volume mount over it, and the ConfigMap or Secret key that
// volume projects there, which must exist.
func k8sFileAt(b *k8sBundle, pod *corev1.PodSpec, ctr *corev1.Container, p string) (k8sFile, error) {
	var mount *corev1.VolumeMount
	for i, m := range ctr.VolumeMounts {
		mp := strings.TrimSuffix(m.MountPath, "/")
		if strings.HasPrefix(p, mp+"/") && (mount == nil || len(mp) > len(mount.MountPath)) {
			mount = &ctr.VolumeMounts[i]
		}
	}
	if mount == nil {
		return k8sFile{}, fmt.Errorf("%s: no volume mount of container %s covers it", p, ctr.Name)
	}
	if !mount.ReadOnly {
		return k8sFile{}, fmt.Errorf("%s: volume mount %s is not readOnly", p, mount.MountPath)
	}
	if mount.SubPath != "" || mount.SubPathExpr != "" {
		// A subPath mount is never updated: the gateway would not reload.
		return k8sFile{}, fmt.Errorf("%s: volume mount %s uses subPath, which Kubernetes never updates", p, mount.MountPath)
	}
	rel := strings.TrimPrefix(p, strings.TrimSuffix(mount.MountPath, "/")+"/")
	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == mount.Name {
			vol = &pod.Volumes[i]
		}
	}
	if vol == nil {
		return k8sFile{}, fmt.Errorf("%s: no volume %q", p, mount.Name)
	}
	for _, f := range k8sVolumeFiles(b, vol) {
		if f.path == rel {
			if f.err != nil {
				return k8sFile{}, fmt.Errorf("%s: %w", p, f.err)
			}
			return f.k8sFile, nil
		}
	}
	return k8sFile{}, fmt.Errorf("%s: volume %q projects no file %s", p, vol.Name, rel)
}

// k8sVolumeFile is one file of a ConfigMap, Secret or projected volume:
// where it appears in the volume, and its source (or why it has none).
type k8sVolumeFile struct {
	path string
	k8sFile
	err error
}

// k8sVolumeFiles lists the files a volume holds. An item naming a key that
// its ConfigMap or Secret lacks is a file with an error: Kubernetes would
// not start the pod.
func k8sVolumeFiles(b *k8sBundle, vol *corev1.Volume) []k8sVolumeFile {
	type source struct {
		kind, name string
		items      []corev1.KeyToPath
	}
	var sources []source
	switch {
	case vol.ConfigMap != nil:
		sources = append(sources, source{"ConfigMap", vol.ConfigMap.Name, vol.ConfigMap.Items})
	case vol.Secret != nil:
		sources = append(sources, source{"Secret", vol.Secret.SecretName, vol.Secret.Items})
	case vol.Projected != nil:
		for _, s := range vol.Projected.Sources {
			switch {
			case s.ConfigMap != nil:
				sources = append(sources, source{"ConfigMap", s.ConfigMap.Name, s.ConfigMap.Items})
			case s.Secret != nil:
				sources = append(sources, source{"Secret", s.Secret.Name, s.Secret.Items})
			}
		}
	}
	var files []k8sVolumeFile
	for _, src := range sources {
		data := map[string][]byte{}
		found := false
		switch src.kind {
		case "ConfigMap":
			if cm := b.configMap(src.name); cm != nil {
				found = true
				for k, v := range cm.Data {
					data[k] = []byte(v)
				}
				for k, v := range cm.BinaryData {
					data[k] = v
				}
			}
		case "Secret":
			if sec := b.secret(src.name); sec != nil {
				found = true
				for k, v := range sec.Data {
					data[k] = v
				}
				for k, v := range sec.StringData {
					data[k] = []byte(v)
				}
			}
		}
		from := func(key string) string { return fmt.Sprintf("%s %q key %q", src.kind, src.name, key) }
		if !found {
			for _, it := range src.items {
				files = append(files, k8sVolumeFile{path: it.Path, err: fmt.Errorf("no %s %q", src.kind, src.name)})
			}
			continue
		}
		if len(src.items) == 0 {
			for k, v := range data {
				files = append(files, k8sVolumeFile{path: k, k8sFile: k8sFile{from(k), v}})
			}
			continue
		}
		for _, it := range src.items {
			v, ok := data[it.Key]
			f := k8sVolumeFile{path: it.Path, k8sFile: k8sFile{from(it.Key), v}}
			if !ok {
				f.err = fmt.Errorf("%s %q has no key %q", src.kind, src.name, it.Key)
			}
			files = append(files, f)
		}
	}
	return files
}

// k8sSelects reports whether sel selects a pod with these labels. A nil
// selector selects nothing.
func k8sSelects(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(podLabels))
}

// k8sPort resolves a port (a number or a container port name) to the
// container's port number, or 0.
func k8sPort(ctr *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range ctr.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// k8sAddrPort is the port of a host:port listen address, or 0.
func k8sAddrPort(addr string) int32 {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0
	}
	return int32(n)
}

func (s *k8sSetup) listenPort() int32 { return k8sAddrPort(s.cfg.Listen) }
func (s *k8sSetup) adminPort() int32  { return k8sAddrPort(s.cfg.AdminListen) }
func (s *k8sSetup) podLabels() map[string]string {
	return s.dep.Spec.Template.Labels
}

// selectsOnlyGateway: sel selects the gateway's pods and no other
// Deployment's in the bundle (the Redis component's, say).
func (s *k8sSetup) selectsOnlyGateway(what string, sel *metav1.LabelSelector) []string {
	if !k8sSelects(sel, s.podLabels()) {
		return []string{fmt.Sprintf("%s: selector %v does not select the gateway's pods %v", what, k8sSelectorString(sel), s.podLabels())}
	}
	var problems []string
	for _, d := range s.b.Deployments {
		if d != s.dep && k8sSelects(sel, d.Spec.Template.Labels) {
			problems = append(problems, fmt.Sprintf("%s: selector %v also selects Deployment %s's pods", what, k8sSelectorString(sel), d.Name))
		}
	}
	return problems
}

func k8sSelectorString(sel *metav1.LabelSelector) string {
	if sel == nil {
		return "<nil>"
	}
	return metav1.FormatLabelSelector(sel)
}

// k8sChecks are the invariants between the manifests, the configuration
// and the image. Each returns its problems; none means it holds.
var k8sChecks = []struct {
	name  string
	check func(*k8sSetup) []string
}{
	{"ports", k8sCheckPorts},
	{"probes", k8sCheckProbes},
	{"service", k8sCheckService},
	{"servicemonitor", k8sCheckServiceMonitor},
	{"selectors", k8sCheckSelectors},
	{"gateway-networkpolicy", k8sCheckGatewayPolicy},
	{"upstream-networkpolicy", k8sCheckUpstreamPolicy},
	{"security", k8sCheckSecurity},
	{"grace-period", k8sCheckGracePeriod},
	{"files", k8sCheckFiles},
	{"env", k8sCheckEnv},
	{"resources", k8sCheckResources},
	{"image", k8sCheckImage},
}

// k8sProblems prepares b and runs every check on it.
func k8sProblems(b *k8sBundle, docker *k8sDockerfileModel) []string {
	s, problems := k8sPrepare(b, docker)
	if s == nil {
		return problems
	}
	for _, c := range k8sChecks {
		for _, p := range c.check(s) {
			problems = append(problems, c.name+": "+p)
		}
	}
	return problems
}

// k8sCheckPorts: the container listens where the config says, under the
// names the Service, the probes and the NetworkPolicy use.
func k8sCheckPorts(s *k8sSetup) []string {
	var problems []string
	want := map[string]int32{"http": s.listenPort(), "metrics": s.adminPort()}
	if len(s.ctr.Ports) != len(want) {
		problems = append(problems, fmt.Sprintf("container has %d ports, want %d (listen and admin_listen)", len(s.ctr.Ports), len(want)))
	}
	for name, port := range want {
		got := k8sPort(s.ctr, intstr.FromString(name))
		if got != port {
			problems = append(problems, fmt.Sprintf("container port %q is %d, want %d from %s", name, got, port, map[string]string{"http": "listen", "metrics": "admin_listen"}[name]))
		}
	}
	for _, p := range s.ctr.Ports {
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			problems = append(problems, fmt.Sprintf("container port %q is %s, want TCP", p.Name, p.Protocol))
		}
	}
	return problems
}

// k8sCheckProbes: readiness is /readyz and liveness /healthz, both over
// HTTP on admin_listen's port.
func k8sCheckProbes(s *k8sSetup) []string {
	var problems []string
	check := func(kind string, p *corev1.Probe, paths ...string) {
		if p == nil {
			problems = append(problems, kind+"Probe is missing")
			return
		}
		if p.HTTPGet == nil {
			problems = append(problems, kind+"Probe is not an httpGet")
			return
		}
		if !slices.Contains(paths, p.HTTPGet.Path) {
			problems = append(problems, fmt.Sprintf("%sProbe path is %q, want %q", kind, p.HTTPGet.Path, paths[0]))
		}
		if got := k8sPort(s.ctr, p.HTTPGet.Port); got != s.adminPort() {
			problems = append(problems, fmt.Sprintf("%sProbe port %s is container port %d, want admin_listen's %d", kind, p.HTTPGet.Port.String(), got, s.adminPort()))
		}
		if p.HTTPGet.Scheme != "" && p.HTTPGet.Scheme != corev1.URISchemeHTTP {
			problems = append(problems, fmt.Sprintf("%sProbe scheme is %s, want HTTP (the admin listener has no TLS)", kind, p.HTTPGet.Scheme))
		}
	}
	check("readiness", s.ctr.ReadinessProbe, "/readyz")
	check("liveness", s.ctr.LivenessProbe, "/healthz")
	if s.ctr.StartupProbe != nil {
		check("startup", s.ctr.StartupProbe, "/healthz", "/readyz")
	}
	return problems
}

// k8sCheckService: the Service selects the gateway's pods only, and each of
// its ports targets the container port of the same role.
func k8sCheckService(s *k8sSetup) []string {
	svc := k8sNamed(s.b.Services, k8sGateway)
	if svc == nil {
		return []string{"no Service " + k8sGateway}
	}
	problems := s.selectsOnlyGateway("Service "+svc.Name, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector})
	if svc.Spec.Type != "" && svc.Spec.Type != corev1.ServiceTypeClusterIP {
		problems = append(problems, fmt.Sprintf("Service type is %s, want ClusterIP (the Ingress exposes it)", svc.Spec.Type))
	}
	want := map[string]int32{"http": s.listenPort(), "metrics": s.adminPort()}
	for _, p := range svc.Spec.Ports {
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		got := k8sPort(s.ctr, target)
		if got == 0 {
			problems = append(problems, fmt.Sprintf("Service port %q targets %s, which is no container port", p.Name, target.String()))
			continue
		}
		if w, ok := want[p.Name]; ok && got != w {
			problems = append(problems, fmt.Sprintf("Service port %q targets container port %d, want %d", p.Name, got, w))
		}
		delete(want, p.Name)
	}
	for name := range want {
		problems = append(problems, fmt.Sprintf("Service has no port %q", name))
	}
	return problems
}

// servicePortTarget is the container port a Service port named name
// leads to, or 0.
func (s *k8sSetup) servicePortTarget(svc *corev1.Service, name string) int32 {
	for _, p := range svc.Spec.Ports {
		if p.Name == name {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			return k8sPort(s.ctr, target)
		}
	}
	return 0
}

// k8sCheckServiceMonitor: the ServiceMonitor selects the gateway's Service
// and scrapes /metrics on admin_listen's port, as the job the alerts
// expect.
func k8sCheckServiceMonitor(s *k8sSetup) []string {
	sm := k8sNamed(s.b.ServiceMonitors, k8sGateway)
	if sm == nil {
		return []string{"no ServiceMonitor " + k8sGateway}
	}
	svc := k8sNamed(s.b.Services, k8sGateway)
	if svc == nil {
		return []string{"no Service " + k8sGateway}
	}
	var problems []string
	if !k8sSelects(&sm.Spec.Selector, svc.Labels) {
		problems = append(problems, fmt.Sprintf("selector %s does not select Service %s's labels %v", k8sSelectorString(&sm.Spec.Selector), svc.Name, svc.Labels))
	}
	for _, other := range s.b.Services {
		if other != svc && k8sSelects(&sm.Spec.Selector, other.Labels) {
			problems = append(problems, fmt.Sprintf("selector %s also selects Service %s", k8sSelectorString(&sm.Spec.Selector), other.Name))
		}
	}
	if len(sm.Spec.Endpoints) == 0 {
		problems = append(problems, "no endpoints")
	}
	// The Prometheus Operator names the job after the Service's jobLabel
	// label, else after the Service; a relabeling may replace it.
	job := svc.Name
	if v, ok := svc.Labels[sm.Spec.JobLabel]; sm.Spec.JobLabel != "" && ok {
		job = v
	}
	for i, ep := range sm.Spec.Endpoints {
		epJob := job
		for _, rc := range ep.RelabelConfigs {
			if rc.TargetLabel == "job" && rc.Replacement != nil && (rc.Action == "" || strings.EqualFold(rc.Action, "replace")) {
				epJob = *rc.Replacement
			}
		}
		if epJob != k8sJob {
			problems = append(problems, fmt.Sprintf("endpoints[%d] scrapes as job %q, want %q", i, epJob, k8sJob))
		}
		if ep.Port == "" {
			problems = append(problems, fmt.Sprintf("endpoints[%d] names no Service port", i))
		} else if got := s.servicePortTarget(svc, ep.Port); got != s.adminPort() {
			problems = append(problems, fmt.Sprintf("endpoints[%d] port %q leads to container port %d, want admin_listen's %d", i, ep.Port, got, s.adminPort()))
		}
		if ep.Path != "" && ep.Path != "/metrics" {
			problems = append(problems, fmt.Sprintf("endpoints[%d] path is %q, want /metrics", i, ep.Path))
		}
		if ep.Scheme != nil && ep.Scheme.String() != "http" {
			problems = append(problems, fmt.Sprintf("endpoints[%d] scheme is %q, want http", i, ep.Scheme.String()))
		}
	}
	// The job the alerting rules name.
	for _, pr := range s.b.PrometheusRules {
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				for _, m := range regexp.MustCompile(`job\s*=\s*"([^"]*)"`).FindAllStringSubmatch(r.Expr.String(), -1) {
					if m[1] != job {
						problems = append(problems, fmt.Sprintf("rule %s selects job %q, but the ServiceMonitor scrapes as %q", r.Alert, m[1], job))
					}
				}
			}
		}
	}
	return problems
}

// k8sCheckSelectors: the PodDisruptionBudget, the HPA, the topology spread
// and the Deployment itself all mean the gateway's pods.
func k8sCheckSelectors(s *k8sSetup) []string {
	var problems []string
	if !k8sSelects(s.dep.Spec.Selector, s.podLabels()) {
		problems = append(problems, fmt.Sprintf("Deployment selector %s does not select its own pod labels %v", k8sSelectorString(s.dep.Spec.Selector), s.podLabels()))
	}
	if pdb := k8sNamed(s.b.PDBs, k8sGateway); pdb == nil {
		problems = append(problems, "no PodDisruptionBudget "+k8sGateway)
	} else {
		problems = append(problems, s.selectsOnlyGateway("PodDisruptionBudget", pdb.Spec.Selector)...)
		if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			problems = append(problems, "PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
		}
	}
	if hpa := k8sNamed(s.b.HPAs, k8sGateway); hpa == nil {
		problems = append(problems, "no HorizontalPodAutoscaler "+k8sGateway)
	} else {
		ref := hpa.Spec.ScaleTargetRef
		if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != s.dep.Name {
			problems = append(problems, fmt.Sprintf("HPA scales %s %s/%s, want apps/v1 Deployment/%s", ref.APIVersion, ref.Kind, ref.Name, s.dep.Name))
		}
		minReplicas := int32(1)
		if hpa.Spec.MinReplicas != nil {
			minReplicas = *hpa.Spec.MinReplicas
		}
		if minReplicas < 2 || hpa.Spec.MaxReplicas < minReplicas {
			problems = append(problems, fmt.Sprintf("HPA replicas %d to %d: want at least 2, so that a disruption leaves one", minReplicas, hpa.Spec.MaxReplicas))
		}
		if r := s.dep.Spec.Replicas; r != nil && (*r < minReplicas || *r > hpa.Spec.MaxReplicas) {
			problems = append(problems, fmt.Sprintf("Deployment replicas %d is outside the HPA's %d to %d", *r, minReplicas, hpa.Spec.MaxReplicas))
		}
		cpu := false
		for _, m := range hpa.Spec.Metrics {
			cpu = cpu || m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
		}
		if !cpu {
			problems = append(problems, "HPA has no CPU resource metric")
		} else if _, ok := s.ctr.Resources.Requests[corev1.ResourceCPU]; !ok {
			problems = append(problems, "HPA scales on CPU utilization, but the container requests no CPU")
		}
	}
	keys := map[string]bool{}
	for _, c := range s.pod.TopologySpreadConstraints {
		keys[c.TopologyKey] = true
		problems = append(problems, s.selectsOnlyGateway("topologySpreadConstraints "+c.TopologyKey, c.LabelSelector)...)
	}
	for _, k := range []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"} {
		if !keys[k] {
			problems = append(problems, "no topologySpreadConstraint over "+k)
		}
	}
	return problems
}

// k8sCheckGatewayPolicy: a NetworkPolicy selects the gateway's pods and
// admits only the two ports, each from named peers, and never the admin
// port from the peers that reach the public one.
func k8sCheckGatewayPolicy(s *k8sSetup) []string {
	np := k8sNamed(s.b.NetworkPolicies, k8sGateway)
	if np == nil {
		return []string{"no NetworkPolicy " + k8sGateway}
	}
	problems := s.selectsOnlyGateway("NetworkPolicy "+np.Name, &np.Spec.PodSelector)
	if !k8sPolicyHasIngress(np) {
		problems = append(problems, "NetworkPolicy does not restrict ingress")
	}
	peersOf := map[int32][]networkingv1.NetworkPolicyPeer{}
	for i, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 {
			problems = append(problems, fmt.Sprintf("ingress[%d] admits every source", i))
		}
		if len(rule.Ports) == 0 {
			problems = append(problems, fmt.Sprintf("ingress[%d] admits every port", i))
		}
		for _, peer := range rule.From {
			if peer.IPBlock != nil || peer.NamespaceSelector != nil && len(peer.NamespaceSelector.MatchLabels)+len(peer.NamespaceSelector.MatchExpressions) == 0 {
				problems = append(problems, fmt.Sprintf("ingress[%d] admits a whole address block or every namespace", i))
			}
		}
		for _, p := range rule.Ports {
			if p.Port == nil {
				problems = append(problems, fmt.Sprintf("ingress[%d] admits every port", i))
				continue
			}
			port := k8sPort(s.ctr, *p.Port)
			if port == 0 {
				problems = append(problems, fmt.Sprintf("ingress[%d] port %s is no container port", i, p.Port.String()))
				continue
			}
			peersOf[port] = append(peersOf[port], rule.From...)
		}
	}
	for _, port := range []int32{s.listenPort(), s.adminPort()} {
		if len(peersOf[port]) == 0 {
			problems = append(problems, fmt.Sprintf("no ingress rule admits port %d", port))
		}
	}
	for _, pub := range peersOf[s.listenPort()] {
		for _, adm := range peersOf[s.adminPort()] {
			if reflect.DeepEqual(pub, adm) {
				problems = append(problems, fmt.Sprintf("the peers that reach the public port %d also reach the admin port %d", s.listenPort(), s.adminPort()))
			}
		}
	}
	return problems
}

func k8sPolicyHasIngress(np *networkingv1.NetworkPolicy) bool {
	return len(np.Spec.PolicyTypes) == 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
}

// k8sCheckUpstreamPolicy: the document service (the upstream's host names
// its Service, and by the convention of networkpolicy.yaml its pods'
// app.kubernetes.io/name) admits ingress from the gateway's pods alone, in
// every NetworkPolicy that selects it.
func k8sCheckUpstreamPolicy(s *k8sSetup) []string {
	if s.cfg.Upstream == nil {
		return []string{"the config has no upstream"}
	}
	host := strings.SplitN(s.cfg.Upstream.Hostname(), ".", 2)[0]
	upstreamPods := map[string]string{k8sNameLabel: host}
	var problems []string
	found := false
	for _, np := range s.b.NetworkPolicies {
		if !k8sSelects(&np.Spec.PodSelector, upstreamPods) {
			continue
		}
		found = true
		if k8sSelects(&np.Spec.PodSelector, s.podLabels()) {
			problems = append(problems, fmt.Sprintf("NetworkPolicy %s selects the gateway's pods as well as the upstream's", np.Name))
		}
		problems = append(problems, s.onlyFromGateway("NetworkPolicy "+np.Name, np)...)
	}
	if !found {
		problems = append(problems, fmt.Sprintf("no NetworkPolicy selects the upstream's pods %v: anyone could reach it and claim any identity", upstreamPods))
	}
	return problems
}

// onlyFromGateway: np restricts ingress, and every rule admits only pods
// of this namespace that are the gateway's.
func (s *k8sSetup) onlyFromGateway(what string, np *networkingv1.NetworkPolicy) []string {
	var problems []string
	if !k8sPolicyHasIngress(np) {
		problems = append(problems, what+" does not restrict ingress")
	}
	if len(np.Spec.Ingress) == 0 {
		problems = append(problems, what+" admits nothing, not even the gateway")
	}
	for i, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 {
			problems = append(problems, fmt.Sprintf("%s ingress[%d] admits every source", what, i))
		}
		for j, peer := range rule.From {
			w := fmt.Sprintf("%s ingress[%d].from[%d]", what, i, j)
			switch {
			case peer.IPBlock != nil:
				problems = append(problems, w+" admits an address block")
			case peer.NamespaceSelector != nil:
				problems = append(problems, w+" admits pods of other namespaces")
			case peer.PodSelector == nil || len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) == 0:
				problems = append(problems, w+" admits every pod of the namespace")
			default:
				problems = append(problems, s.selectsOnlyGateway(w, peer.PodSelector)...)
			}
		}
	}
	return problems
}

// k8sCheckSecurity: every container of every Deployment runs as a
// non-root user with a read-only root, no privilege escalation, no
// capabilities and the runtime's seccomp profile; the gateway as 65532,
// without a service account token.
func k8sCheckSecurity(s *k8sSetup) []string {
	var problems []string
	for _, d := range s.b.Deployments {
		uid := int64(0) // any but root
		if d == s.dep {
			uid = k8sUID
			if a := d.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
				problems = append(problems, "Deployment "+d.Name+": automountServiceAccountToken is not false (the gateway never calls the API)")
			}
		}
		problems = append(problems, k8sPodSecurity(d, uid)...)
		problems = append(problems, k8sSecretModes(d)...)
	}
	return problems
}

// k8sSecretModes: the files of a volume holding a Secret are not readable
// by every user, and the pod's fsGroup lets the non-root user read them
// (Kubernetes makes them root-owned, group fsGroup).
func k8sSecretModes(d *appsv1.Deployment) []string {
	var problems []string
	pod := d.Spec.Template.Spec
	for _, v := range pod.Volumes {
		var mode *int32
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			mode, items = v.Secret.DefaultMode, v.Secret.Items
		case v.Projected != nil && slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.Secret != nil }):
			mode = v.Projected.DefaultMode
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					items = append(items, s.Secret.Items...)
				}
			}
		default:
			continue
		}
		w := fmt.Sprintf("Deployment %s volume %s", d.Name, v.Name)
		if mode == nil {
			mode = k8sPtr(corev1.SecretVolumeSourceDefaultMode)
		}
		if *mode&0o007 != 0 {
			problems = append(problems, fmt.Sprintf("%s: defaultMode %#o makes its secrets readable by every user", w, *mode))
		}
		for _, it := range items {
			if it.Mode != nil && *it.Mode&0o007 != 0 {
				problems = append(problems, fmt.Sprintf("%s: item %s mode %#o is readable by every user", w, it.Path, *it.Mode))
			}
		}
		if pod.SecurityContext == nil || pod.SecurityContext.FSGroup == nil {
			problems = append(problems, w+": the pod sets no fsGroup, so its non-root user cannot read the secrets")
		}
	}
	return problems
}

func k8sPodSecurity(d *appsv1.Deployment, wantUID int64) []string {
	var problems []string
	pod := d.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		problems = append(problems, "Deployment "+d.Name+" shares a host namespace")
	}
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		w := fmt.Sprintf("Deployment %s container %s", d.Name, c.Name)
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		nonRoot := k8sFirst(sc.RunAsNonRoot, psc.RunAsNonRoot)
		if nonRoot == nil || !*nonRoot {
			problems = append(problems, w+": runAsNonRoot is not true")
		}
		uid := k8sFirst(sc.RunAsUser, psc.RunAsUser)
		switch {
		case uid == nil:
			problems = append(problems, w+": runAsUser is not set")
		case *uid == 0 || wantUID != 0 && *uid != wantUID:
			problems = append(problems, fmt.Sprintf("%s: runAsUser is %d, want %s", w, *uid, map[bool]string{true: strconv.FormatInt(wantUID, 10), false: "non-zero"}[wantUID != 0]))
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			problems = append(problems, w+": readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			problems = append(problems, w+": allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			problems = append(problems, w+": privileged")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			problems = append(problems, w+": capabilities do not drop ALL (and add none)")
		}
		seccomp := k8sFirst(sc.SeccompProfile, psc.SeccompProfile)
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			problems = append(problems, w+": seccompProfile is not RuntimeDefault")
		}
	}
	return problems
}

// k8sFirst is the first non-nil pointer: a container's setting overrides its
// pod's.
func k8sFirst[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// k8sCheckGracePeriod: the kubelet waits longer than shutdown_delay plus
// shutdown_timeout before it kills the gateway.
func k8sCheckGracePeriod(s *k8sSetup) []string {
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if g := s.pod.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	need := s.cfg.ShutdownDelay + s.cfg.ShutdownTimeout
	if time.Duration(grace)*time.Second <= need {
		return []string{fmt.Sprintf("terminationGracePeriodSeconds is %d, want more than shutdown_delay + shutdown_timeout = %s", grace, need)}
	}
	return nil
}

// k8sCheckFiles: the config file and every file it names (keys,
// certificates, metadata, secrets) are in a read-only mount, projected from
// a ConfigMap or Secret key that exists.
func k8sCheckFiles(s *k8sSetup) []string {
	var problems []string
	if len(s.cfg.Files) == 0 {
		problems = append(problems, "the config names no files (want sp and session keys at least)")
	}
	for _, f := range append([]string{s.configPath}, s.cfg.Files...) {
		if _, err := k8sFileAt(s.b, s.pod, s.ctr, f); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// k8sCheckEnv: every environment variable the config reads (the *_env
// keys) is set in the container, from a Secret key that exists or a value.
func k8sCheckEnv(s *k8sSetup) []string {
	var problems []string
	for _, name := range s.envs {
		i := slices.IndexFunc(s.ctr.Env, func(e corev1.EnvVar) bool { return e.Name == name })
		if i < 0 {
			problems = append(problems, fmt.Sprintf("the config reads $%s, which the container does not set", name))
			continue
		}
		e := s.ctr.Env[i]
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			ok := false
			if sec := s.b.secret(ref.Name); sec != nil {
				_, inData := sec.Data[ref.Key]
				_, inString := sec.StringData[ref.Key]
				ok = inData || inString
			}
			if !ok {
				problems = append(problems, fmt.Sprintf("$%s comes from Secret %q key %q, which does not exist", name, ref.Name, ref.Key))
			}
		case e.ValueFrom != nil:
			problems = append(problems, fmt.Sprintf("$%s does not come from a Secret", name))
		case e.Value == "":
			problems = append(problems, fmt.Sprintf("$%s is empty", name))
		}
	}
	return problems
}

// k8sCheckResources: every container requests CPU and memory (the HPA
// measures against the CPU request) and is limited in both.
func k8sCheckResources(s *k8sSetup) []string {
	var problems []string
	for _, d := range s.b.Deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[r]; !ok {
					problems = append(problems, fmt.Sprintf("Deployment %s container %s requests no %s", d.Name, c.Name, r))
				}
				if _, ok := c.Resources.Limits[r]; !ok {
					problems = append(problems, fmt.Sprintf("Deployment %s container %s has no %s limit", d.Name, c.Name, r))
				}
			}
		}
	}
	return problems
}

// k8sCheckImage: the gateway's image is a release, not whatever "latest"
// is today.
func k8sCheckImage(s *k8sSetup) []string {
	img := s.ctr.Image
	name := img[strings.LastIndex(img, "/")+1:]
	if !strings.Contains(name, "@sha256:") && (!strings.Contains(name, ":") || strings.HasSuffix(name, ":latest")) {
		return []string{fmt.Sprintf("image %q has no version tag or digest", img)}
	}
	return nil
}

// k8sDockerfileModel is a Dockerfile parsed just enough to check it: its
// stages and their instructions.
type k8sDockerfileModel struct {
	Stages []*k8sStage
}

type k8sStage struct {
	Image, Name string
	Instrs      []k8sInstr
}

type k8sInstr struct {
	Cmd  string // upper case: RUN, COPY, USER, ...
	Args string // the rest, continuation lines joined
}

func (d *k8sDockerfileModel) final() *k8sStage {
	if len(d.Stages) == 0 {
		return &k8sStage{}
	}
	return d.Stages[len(d.Stages)-1]
}

// all returns the arguments of every instruction cmd of the stage.
func (st *k8sStage) all(cmd string) []string {
	var out []string
	for _, in := range st.Instrs {
		if in.Cmd == cmd {
			out = append(out, in.Args)
		}
	}
	return out
}

// jsonArgs is the exec form (a JSON array) of the stage's last cmd, or nil.
func (st *k8sStage) jsonArgs(cmd string) []string {
	all := st.all(cmd)
	if len(all) == 0 {
		return nil
	}
	var args []string
	if err := json.Unmarshal([]byte(all[len(all)-1]), &args); err != nil {
		return nil
	}
	return args
}

// k8sParseDockerfile splits a Dockerfile into stages and instructions:
// comments dropped, continuation lines joined. Heredocs are not supported.
func k8sParseDockerfile(src string) (*k8sDockerfileModel, error) {
	d := &k8sDockerfileModel{}
	var logical []string
	cur := ""
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" && cur == "" {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		logical = append(logical, cur+trimmed)
		cur = ""
	}
	if strings.TrimSpace(cur) != "" {
		logical = append(logical, cur)
	}
	for _, l := range logical {
		cmd, args, _ := strings.Cut(l, " ")
		cmd, args = strings.ToUpper(cmd), strings.TrimSpace(args)
		if strings.Contains(args, "<<") && cmd == "RUN" {
			return nil, fmt.Errorf("heredoc in %q: not supported by this check", l)
		}
		if cmd == "FROM" {
			f := strings.Fields(args)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			if len(f) == 0 {
				return nil, errors.New("FROM without an image")
			}
			st := &k8sStage{Image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.Name = f[2]
			}
			d.Stages = append(d.Stages, st)
			continue
		}
		if len(d.Stages) == 0 {
			if cmd != "ARG" {
				return nil, fmt.Errorf("%s before FROM", cmd)
			}
			continue
		}
		st := d.Stages[len(d.Stages)-1]
		st.Instrs = append(st.Instrs, k8sInstr{cmd, args})
	}
	return d, nil
}

// k8sCheckDockerfile: a Go goVersion builder makes a static binary that a
// final stage without a shell runs as a numeric non-root user, with no
// HEALTHCHECK, exposing the config's ports.
func k8sCheckDockerfile(d *k8sDockerfileModel, goVersion string, ports []int32) []string {
	var problems []string
	if len(d.Stages) < 2 {
		return []string{fmt.Sprintf("%d stage(s), want a builder and a final stage", len(d.Stages))}
	}
	final := d.final()
	for i, st := range d.Stages {
		if len(st.all("HEALTHCHECK")) > 0 {
			problems = append(problems, fmt.Sprintf("stage %d has a HEALTHCHECK (Kubernetes probes instead; the image has no shell to run one)", i))
		}
	}
	// The stage that runs go build.
	var builder *k8sStage
	var build string
	for _, st := range d.Stages[:len(d.Stages)-1] {
		for _, run := range st.all("RUN") {
			if strings.Contains(run, "go build") {
				builder, build = st, run
			}
		}
	}
	if builder == nil {
		problems = append(problems, "no stage before the final one runs go build")
	} else {
		repo, tag, _ := strings.Cut(builder.Image, ":")
		if repo != "golang" && repo != "docker.io/library/golang" || tag != goVersion && !strings.HasPrefix(tag, goVersion+"-") {
			problems = append(problems, fmt.Sprintf("builder image is %q, want golang:%s (the Go of CI and releases)", builder.Image, goVersion))
		}
		cgoOff := strings.Contains(build, "CGO_ENABLED=0")
		for _, env := range builder.all("ENV") {
			cgoOff = cgoOff || regexp.MustCompile(`(^|\s)CGO_ENABLED[= ]0(\s|$)`).MatchString(env)
		}
		if !cgoOff {
			problems = append(problems, "go build runs without CGO_ENABLED=0: the binary would not be static")
		}
		for _, flag := range []string{"-trimpath", "-X main.version=", "./cmd/sso-gateway"} {
			if !strings.Contains(build, flag) {
				problems = append(problems, fmt.Sprintf("go build lacks %q", flag))
			}
		}
	}
	if strings.HasPrefix(final.Image, "golang") {
		problems = append(problems, fmt.Sprintf("final stage is %q: ship the binary without the toolchain", final.Image))
	}
	if !strings.HasPrefix(final.Image, "gcr.io/distroless/static") && final.Image != "scratch" {
		problems = append(problems, fmt.Sprintf("final stage is %q, want gcr.io/distroless/static* or scratch", final.Image))
	}
	if len(final.all("RUN")) > 0 {
		problems = append(problems, "final stage has RUN, but its image has no shell")
	}
	users := final.all("USER")
	if len(users) == 0 {
		problems = append(problems, "final stage has no USER: it would run as root")
	} else {
		user, group, _ := strings.Cut(users[len(users)-1], ":")
		uid, err := strconv.Atoi(user)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("USER %q is not numeric: Kubernetes' runAsNonRoot cannot verify a name", users[len(users)-1]))
		case uid == 0:
			problems = append(problems, "USER is root")
		case uid != k8sUID:
			problems = append(problems, fmt.Sprintf("USER is %d, want %d like the Deployment's runAsUser", uid, k8sUID))
		}
		if _, err := strconv.Atoi(group); group != "" && err != nil {
			problems = append(problems, fmt.Sprintf("USER group %q is not numeric", group))
		}
	}
	entry := final.jsonArgs("ENTRYPOINT")
	if len(entry) != 1 || entry[0] != "/sso-gateway" {
		problems = append(problems, fmt.Sprintf("ENTRYPOINT is %q, want the exec form [\"/sso-gateway\"]", final.all("ENTRYPOINT")))
	}
	copied := false
	for _, c := range final.all("COPY") {
		f := strings.Fields(c)
		copied = copied || len(f) >= 3 && strings.HasPrefix(f[0], "--from=") && f[len(f)-1] == "/sso-gateway"
	}
	if !copied {
		problems = append(problems, "final stage copies no binary to /sso-gateway from another stage")
	}
	if cmd := final.jsonArgs("CMD"); !slices.Contains(cmd, "-config") {
		problems = append(problems, fmt.Sprintf("CMD is %q, want the exec form with -config", final.all("CMD")))
	}
	var exposed []int32
	for _, e := range final.all("EXPOSE") {
		for _, f := range strings.Fields(e) {
			n, err := strconv.Atoi(strings.TrimSuffix(f, "/tcp"))
			if err != nil {
				problems = append(problems, fmt.Sprintf("EXPOSE %q is not a TCP port", f))
			}
			exposed = append(exposed, int32(n))
		}
	}
	slices.Sort(exposed)
	ports = slices.Sorted(slices.Values(ports))
	if !slices.Equal(exposed, ports) {
		problems = append(problems, fmt.Sprintf("EXPOSE %v, want the config's listen and admin_listen ports %v", exposed, ports))
	}
	return problems
}

// k8sGoVersion is the Go release CI uses: GOTOOLCHAIN in .ci/run.
func k8sGoVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(k8sCIRun)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]bool{}
	for _, m := range regexp.MustCompile(`GOTOOLCHAIN=go(\d+\.\d+(?:\.\d+)?)`).FindAllStringSubmatch(string(data), -1) {
		versions[m[1]] = true
	}
	if len(versions) != 1 {
		t.Fatalf("%s: want one GOTOOLCHAIN=goX.Y.Z, found %v", k8sCIRun, versions)
	}
	for v := range versions {
		return v
	}
	return ""
}

func k8sLoadDockerfile(t *testing.T) *k8sDockerfileModel {
	t.Helper()
	data, err := os.ReadFile(k8sDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	d, err := k8sParseDockerfile(string(data))
	if err != nil {
		t.Fatalf("%s: %v", k8sDockerfile, err)
	}
	return d
}

// k8sIgnore is a .dockerignore: patterns in order, the last match wins, a
// leading ! re-includes, and a pattern that matches a folder matches what
// is inside it.
type k8sIgnore struct {
	patterns []*regexp.Regexp
	negate   []bool
}

func k8sParseIgnore(src string) *k8sIgnore {
	ig := &k8sIgnore{}
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		neg := strings.HasPrefix(line, "!")
		line = path.Clean(strings.TrimPrefix(strings.TrimPrefix(line, "!"), "/"))
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		ig.patterns = append(ig.patterns, regexp.MustCompile(re.String()))
		ig.negate = append(ig.negate, neg)
	}
	return ig
}

// excluded reports whether the slash-separated path p, relative to the
// build context, is left out of it.
func (ig *k8sIgnore) excluded(p string) bool {
	out := false
	for i, re := range ig.patterns {
		for q := p; q != "." && q != "/"; q = path.Dir(q) {
			if re.MatchString(q) {
				out = !ig.negate[i]
				break
			}
		}
	}
	return out
}

// k8sBuildInputs lists the files `go build ./cmd/sso-gateway` reads in the
// repository at root: go.mod, go.sum, and the Go files and embedded files
// of every package of the module that the command imports, for linux.
func k8sBuildInputs(root string) ([]string, error) {
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	m := regexp.MustCompile(`(?m)^module\s+(\S+)`).FindSubmatch(gomod)
	if m == nil {
		return nil, errors.New("go.mod names no module")
	}
	module := string(m[1])
	ctx := build.Default
	ctx.GOOS, ctx.CgoEnabled = "linux", false
	files := []string{"go.mod", "go.sum"}
	seen := map[string]bool{}
	var visit func(dir string) error
	visit = func(dir string) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		pkg, err := ctx.ImportDir(filepath.Join(root, filepath.FromSlash(dir)), 0)
		if err != nil {
			return err
		}
		for _, f := range slices.Concat(pkg.GoFiles, pkg.SFiles, pkg.EmbedPatterns) {
			matches, err := filepath.Glob(filepath.Join(pkg.Dir, f))
			if err != nil || len(matches) == 0 {
				return fmt.Errorf("%s: %s matches nothing", dir, f)
			}
			for _, match := range matches {
				err := filepath.WalkDir(match, func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						rel, _ := filepath.Rel(root, p)
						files = append(files, filepath.ToSlash(rel))
					}
					return err
				})
				if err != nil {
					return err
				}
			}
		}
		for _, imp := range pkg.Imports {
			if rest, ok := strings.CutPrefix(imp, module+"/"); ok {
				if err := visit(rest); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return files, visit("cmd/sso-gateway")
}

// k8sCheckIgnore: the context keeps every build input, and leaves out the
// repository's history and the tests.
func k8sCheckIgnore(ig *k8sIgnore, inputs []string) []string {
	var problems []string
	for _, f := range inputs {
		if ig.excluded(f) {
			problems = append(problems, fmt.Sprintf("%s is needed by go build but left out of the build context", f))
		}
	}
	for _, f := range []string{".git/HEAD", "deploy/kubernetes_test.go", "config/config_test.go", "samlsp/testdata/golden/x.xml", "gateway.test"} {
		if !ig.excluded(f) {
			problems = append(problems, fmt.Sprintf("%s is sent in the build context; leave it out", f))
		}
	}
	return problems
}

// k8sCompareRules: the PrometheusRule's groups are exactly alerts.yml's.
func k8sCompareRules(rule *monitoringv1.PrometheusRule, alerts []byte) error {
	var spec monitoringv1.PrometheusRuleSpec
	if err := yaml.UnmarshalStrict(alerts, &spec); err != nil {
		return fmt.Errorf("%s does not decode into a PrometheusRule spec: %w", k8sAlertsFile, err)
	}
	if len(spec.Groups) == 0 {
		return fmt.Errorf("%s has no groups", k8sAlertsFile)
	}
	if reflect.DeepEqual(spec.Groups, rule.Spec.Groups) {
		return nil
	}
	names := func(gs []monitoringv1.RuleGroup) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.Name)
		}
		return out
	}
	if got, want := names(rule.Spec.Groups), names(spec.Groups); !slices.Equal(got, want) {
		return fmt.Errorf("PrometheusRule %s has groups %q, want %q as in %s", rule.Name, got, want, k8sAlertsFile)
	}
	for i, want := range spec.Groups {
		got := rule.Spec.Groups[i]
		if reflect.DeepEqual(got, want) {
			continue
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		return fmt.Errorf("PrometheusRule %s group %q differs from %s:\n got %s\nwant %s", rule.Name, want.Name, k8sAlertsFile, g, w)
	}
	return errors.New("the groups differ")
}

// TestK8sManifestsDecodeStrictly: every manifest file, the Redis
// component's included, decodes into its real API type with no unknown or
// duplicate field.
func TestK8sManifestsDecodeStrictly(t *testing.T) {
	t.Parallel()
	n := 0
	err := filepath.WalkDir(k8sDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".yaml" || d.Name() == "kustomization.yaml" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		docs, err := k8sDocs(data)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		if len(docs) == 0 {
			t.Errorf("%s: no document", p)
		}
		for i, doc := range docs {
			n++
			if _, err := k8sDecode(doc); err != nil {
				t.Errorf("%s document %d: %v", p, i+1, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 14 {
		t.Errorf("decoded %d documents, want the base's 10 and the Redis component's 4 at least", n)
	}
}

// TestK8sStrictDecodingRejects: the decoder the tests rely on refuses what
// the API server would (or what it would silently drop).
func TestK8sStrictDecodingRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 3\n", `unknown field "replica"`},
		{"duplicate field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  type: ClusterIP\n  type: NodePort\n", `key "type" already set`},
		{"wrong type", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: 80\n", "cannot unmarshal"},
		{"unknown kind", "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: x}\n", "unexpected apiVersion"},
		{"operator typo", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec:\n  selector: {}\n  endpoint: []\n", `unknown field "endpoint"`},
		{"rule typo", "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: x}\nspec:\n  groups:\n    - name: g\n      rules:\n        - alert: A\n          expression: up\n", `unknown field "expression"`},
		{"no name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "without metadata.name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := k8sDecode([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestK8sKustomizationBuilds: kustomize builds the base, and it holds
// exactly the objects of the files beside kustomization.yaml, each with the
// common labels.
func TestK8sKustomizationBuilds(t *testing.T) {
	t.Parallel()
	b := k8sBaseBundle(t)
	rendered := map[string]bool{}
	var objs []metav1.Object
	for _, list := range [][]metav1.Object{
		k8sObjects(b.Deployments), k8sObjects(b.Services), k8sObjects(b.ConfigMaps), k8sObjects(b.Secrets),
		k8sObjects(b.PDBs), k8sObjects(b.HPAs), k8sObjects(b.NetworkPolicies), k8sObjects(b.ServiceMonitors),
		k8sObjects(b.PrometheusRules),
	} {
		objs = append(objs, list...)
	}
	for _, o := range objs {
		rendered[fmt.Sprintf("%T/%s", o, o.GetName())] = true
		for _, k := range []string{k8sNameLabel, "app.kubernetes.io/part-of"} {
			if got := o.GetLabels()[k]; got != k8sGateway {
				t.Errorf("%T %s: label %s is %q, want %q", o, o.GetName(), k, got, k8sGateway)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	inFiles := map[string]bool{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := k8sDocs(data)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range docs {
			obj, err := k8sDecode(doc)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			key := fmt.Sprintf("%T/%s", obj, obj.(metav1.Object).GetName())
			inFiles[key] = true
			if !rendered[key] {
				t.Errorf("%s: %s is not in the kustomization's output: list the file in resources", f, key)
			}
		}
	}
	for key := range rendered {
		if !inFiles[key] {
			t.Errorf("the kustomization renders %s, which no file beside it holds", key)
		}
	}
	if d := k8sNamed(b.Deployments, k8sGateway); d != nil {
		if got := d.Spec.Template.Labels["app.kubernetes.io/part-of"]; got != k8sGateway {
			t.Errorf("pod template label app.kubernetes.io/part-of is %q, want %q (labels: includeTemplates)", got, k8sGateway)
		}
	}
}

func k8sObjects[T metav1.Object](objs []T) []metav1.Object {
	out := make([]metav1.Object, len(objs))
	for i, o := range objs {
		out[i] = o
	}
	return out
}

// TestK8sKustomizationBreaks: building a broken copy fails, so a passing
// build means something.
func TestK8sKustomizationBreaks(t *testing.T) {
	t.Parallel()
	base := path.Join(k8sMemRoot, k8sDir)
	for _, tc := range []struct {
		name    string
		breakIt func(filesys.FileSystem) error
		want    string
	}{
		{"missing resource", func(f filesys.FileSystem) error { return f.RemoveAll(path.Join(base, "hpa.yaml")) }, "hpa.yaml"},
		{"unknown kustomization field", func(f filesys.FileSystem) error {
			return k8sEditFile(f, path.Join(base, "kustomization.yaml"), "resources:", "resource:\n  - x.yaml\nresources:")
		}, "resource"},
		{"unknown manifest field", func(f filesys.FileSystem) error {
			return k8sEditFile(f, path.Join(base, "deployment.yaml"), "  revisionHistoryLimit: 5", "  revisionHistoryLimit: 5\n  minReadySecond: 5")
		}, `unknown field "minReadySecond"`},
		{"duplicate object", func(f filesys.FileSystem) error {
			return k8sEditFile(f, path.Join(base, "kustomization.yaml"), "  - hpa.yaml", "  - hpa.yaml\n  - hpa.yaml")
		}, "hpa.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := k8sMemFS(t)
			if err := tc.breakIt(mem); err != nil {
				t.Fatal(err)
			}
			_, err := k8sBuild(mem, base)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// k8sEditFile replaces the first old with new in the file at p.
func k8sEditFile(fsys filesys.FileSystem, p, old, new string) error {
	data, err := fsys.ReadFile(p)
	if err != nil {
		return err
	}
	if !bytes.Contains(data, []byte(old)) {
		return fmt.Errorf("%s has no %q", p, old)
	}
	return fsys.WriteFile(p, bytes.Replace(data, []byte(old), []byte(new), 1))
}

// TestK8sSelectorTransformerTrap: had the kustomization's labels included
// selectors (as commonLabels does), kustomize would rewrite the document
// service's NetworkPolicy to select the gateway instead, leaving the
// upstream open; the checks catch it on the built output.
func TestK8sSelectorTransformerTrap(t *testing.T) {
	t.Parallel()
	mem := k8sMemFS(t)
	base := path.Join(k8sMemRoot, k8sDir)
	if err := k8sEditFile(mem, path.Join(base, "kustomization.yaml"), "includeSelectors: false", "includeSelectors: true"); err != nil {
		t.Fatal(err)
	}
	b, err := k8sBuild(mem, base)
	if err != nil {
		t.Fatal(err)
	}
	problems := k8sProblems(b, k8sLoadDockerfile(t))
	want := "no NetworkPolicy selects the upstream's pods"
	if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
		t.Errorf("got problems %q, want one containing %q", problems, want)
	}
}

// TestK8sInvariants: the built base satisfies every check, and its config
// passes the gateway's own parser.
func TestK8sInvariants(t *testing.T) {
	t.Parallel()
	s, problems := k8sPrepare(k8sBaseBundle(t), k8sLoadDockerfile(t))
	for _, p := range problems {
		t.Error(p)
	}
	if s == nil {
		t.FailNow()
	}
	for _, c := range k8sChecks {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.check(s) {
				t.Error(p)
			}
		})
	}
}

// k8sEditConfig replaces old with new in the gateway's config.yaml.
func k8sEditConfig(t *testing.T, b *k8sBundle, old, new string) {
	t.Helper()
	cm := b.configMap(k8sGateway)
	if !strings.Contains(cm.Data["config.yaml"], old) {
		t.Fatalf("config.yaml has no %q", old)
	}
	cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], old, new, 1)
}

func k8sGatewayPod(b *k8sBundle) *corev1.PodSpec {
	return &k8sNamed(b.Deployments, k8sGateway).Spec.Template.Spec
}

func k8sGatewayContainer(b *k8sBundle) *corev1.Container {
	return &k8sGatewayPod(b).Containers[0]
}

func k8sUpstreamPolicy(b *k8sBundle) *networkingv1.NetworkPolicy {
	return k8sNamed(b.NetworkPolicies, "document-service-only-from-sso-gateway")
}

func k8sPtr[T any](v T) *T { return &v }

// TestK8sInvariantsCanFail breaks one thing at a time in a copy of the
// built base and expects the check that guards it to say so. Cases with an
// empty want are changes that must still pass.
func TestK8sInvariantsCanFail(t *testing.T) {
	t.Parallel()
	docker := k8sLoadDockerfile(t)
	for _, tc := range []struct {
		name   string
		change func(*testing.T, *k8sBundle)
		want   string
	}{
		// The config passes the gateway's parser.
		{"config with an unknown key", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "upstream_timeout: 60s", "upstream_timeout: 60s\nupstream_timout: 60s")
		}, "upstream_timout: unknown key"},
		{"config with a plain-http public_url", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "public_url: https://", "public_url: http://")
		}, "public_url: is http"},

		// Ports.
		{"listen moved", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "listen: 0.0.0.0:8080", "listen: 0.0.0.0:8081")
		}, `container port "http" is 8080, want 8081 from listen`},
		{"admin_listen moved", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "admin_listen: 0.0.0.0:9090", "admin_listen: 0.0.0.0:9091")
		}, "readinessProbe port metrics is container port 9090, want admin_listen's 9091"},
		{"an extra container port", func(t *testing.T, b *k8sBundle) {
			c := k8sGatewayContainer(b)
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: "debug", ContainerPort: 6060})
		}, "container has 3 ports, want 2"},

		// Probes.
		{"readiness on /healthz", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).ReadinessProbe.HTTPGet.Path = "/healthz"
		}, `readinessProbe path is "/healthz", want "/readyz"`},
		{"liveness on the public port", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).LivenessProbe.HTTPGet.Port = intstr.FromString("http")
		}, "livenessProbe port http is container port 8080, want admin_listen's 9090"},
		{"no readiness probe", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).ReadinessProbe = nil
		}, "readinessProbe is missing"},
		{"startup probe over https", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).StartupProbe.HTTPGet.Scheme = corev1.URISchemeHTTPS
		}, "startupProbe scheme is HTTPS"},

		// Service.
		{"service targets a port name the container lacks", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.Services, k8sGateway).Spec.Ports[1].TargetPort = intstr.FromString("admin")
		}, `Service port "metrics" targets admin, which is no container port`},
		{"service metrics port targets the public port", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.Services, k8sGateway).Spec.Ports[1].TargetPort = intstr.FromInt32(8080)
		}, `Service port "metrics" targets container port 8080, want 9090`},
		{"service selects other pods", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.Services, k8sGateway).Spec.Selector = map[string]string{k8sNameLabel: "gateway"}
		}, "Service sso-gateway: selector app.kubernetes.io/name=gateway does not select the gateway's pods"},
		{"service without a metrics port", func(t *testing.T, b *k8sBundle) {
			svc := k8sNamed(b.Services, k8sGateway)
			svc.Spec.Ports = svc.Spec.Ports[:1]
		}, `Service has no port "metrics"`},

		// ServiceMonitor.
		{"servicemonitor selects no service", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.ServiceMonitors, k8sGateway).Spec.Selector.MatchLabels[k8sNameLabel] = "gateway"
		}, "does not select Service sso-gateway's labels"},
		{"servicemonitor scrapes the public port", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.ServiceMonitors, k8sGateway).Spec.Endpoints[0].Port = "http"
		}, `endpoints[0] port "http" leads to container port 8080, want admin_listen's 9090`},
		{"servicemonitor names a missing port", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.ServiceMonitors, k8sGateway).Spec.Endpoints[0].Port = "admin"
		}, `endpoints[0] port "admin" leads to container port 0`},
		{"servicemonitor path", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.ServiceMonitors, k8sGateway).Spec.Endpoints[0].Path = "/metricz"
		}, `endpoints[0] path is "/metricz", want /metrics`},
		{"servicemonitor job from another label", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.Services, k8sGateway).Labels["team"] = "identity"
			k8sNamed(b.ServiceMonitors, k8sGateway).Spec.JobLabel = "team"
		}, `endpoints[0] scrapes as job "identity", want "sso-gateway"`},
		{"servicemonitor job relabeled", func(t *testing.T, b *k8sBundle) {
			ep := &k8sNamed(b.ServiceMonitors, k8sGateway).Spec.Endpoints[0]
			ep.RelabelConfigs = append(ep.RelabelConfigs, monitoringv1.RelabelConfig{TargetLabel: "job", Replacement: k8sPtr("gateway")})
		}, `endpoints[0] scrapes as job "gateway"`},

		// Selectors.
		{"pdb selects other pods", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.PDBs, k8sGateway).Spec.Selector.MatchLabels[k8sNameLabel] = "gateway"
		}, "PodDisruptionBudget: selector"},
		{"pdb without a budget", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.PDBs, k8sGateway).Spec.MaxUnavailable = nil
		}, "sets neither minAvailable nor maxUnavailable"},
		{"hpa scales another deployment", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.HPAs, k8sGateway).Spec.ScaleTargetRef.Name = "gateway"
		}, "HPA scales apps/v1 Deployment/gateway, want apps/v1 Deployment/sso-gateway"},
		{"hpa down to one replica", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.HPAs, k8sGateway).Spec.MinReplicas = k8sPtr(int32(1))
		}, "HPA replicas 1 to 10"},
		{"hpa on cpu without a cpu request", func(t *testing.T, b *k8sBundle) {
			delete(k8sGatewayContainer(b).Resources.Requests, corev1.ResourceCPU)
		}, "the container requests no CPU"},
		{"spread over hosts selects other pods", func(t *testing.T, b *k8sBundle) {
			k8sGatewayPod(b).TopologySpreadConstraints[1].LabelSelector.MatchLabels[k8sNameLabel] = "gateway"
		}, "topologySpreadConstraints kubernetes.io/hostname: selector"},
		{"no spread over zones", func(t *testing.T, b *k8sBundle) {
			k8sGatewayPod(b).TopologySpreadConstraints = k8sGatewayPod(b).TopologySpreadConstraints[1:]
		}, "no topologySpreadConstraint over topology.kubernetes.io/zone"},

		// The gateway's NetworkPolicy.
		{"gateway policy selects other pods", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.NetworkPolicies, k8sGateway).Spec.PodSelector.MatchLabels[k8sNameLabel] = "gateway"
		}, "NetworkPolicy sso-gateway: selector"},
		{"gateway policy rule from anywhere", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.NetworkPolicies, k8sGateway).Spec.Ingress[0].From = nil
		}, "ingress[0] admits every source"},
		{"gateway policy rule on every port", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.NetworkPolicies, k8sGateway).Spec.Ingress[1].Ports = nil
		}, "ingress[1] admits every port"},
		{"gateway policy from every namespace", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.NetworkPolicies, k8sGateway).Spec.Ingress[0].From[0].NamespaceSelector = &metav1.LabelSelector{}
		}, "ingress[0] admits a whole address block or every namespace"},
		{"gateway policy opens the admin port to the ingress", func(t *testing.T, b *k8sBundle) {
			r := &k8sNamed(b.NetworkPolicies, k8sGateway).Spec.Ingress[0]
			r.Ports = append(r.Ports, networkingv1.NetworkPolicyPort{Port: k8sPtr(intstr.FromString("metrics"))})
		}, "the peers that reach the public port 8080 also reach the admin port 9090"},
		{"gateway policy names a missing port", func(t *testing.T, b *k8sBundle) {
			k8sNamed(b.NetworkPolicies, k8sGateway).Spec.Ingress[1].Ports[0].Port = k8sPtr(intstr.FromString("admin"))
		}, "ingress[1] port admin is no container port"},

		// The upstream's NetworkPolicy.
		{"no upstream policy", func(t *testing.T, b *k8sBundle) {
			b.NetworkPolicies = slices.DeleteFunc(b.NetworkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np == k8sUpstreamPolicy(b) })
		}, "no NetworkPolicy selects the upstream's pods map[app.kubernetes.io/name:document-service]"},
		{"upstream policy relabeled by a selector transformer", func(t *testing.T, b *k8sBundle) {
			k8sUpstreamPolicy(b).Spec.PodSelector.MatchLabels[k8sNameLabel] = k8sGateway
		}, "no NetworkPolicy selects the upstream's pods"},
		{"upstream elsewhere", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "upstream: http://document-service:8080", "upstream: http://docs-backend:8080")
		}, "no NetworkPolicy selects the upstream's pods map[app.kubernetes.io/name:docs-backend]"},
		{"upstream open to another namespace", func(t *testing.T, b *k8sBundle) {
			r := &k8sUpstreamPolicy(b).Spec.Ingress[0]
			r.From = append(r.From, networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "ops"}}})
		}, "ingress[0].from[1] admits pods of other namespaces"},
		{"upstream open to every pod", func(t *testing.T, b *k8sBundle) {
			k8sUpstreamPolicy(b).Spec.Ingress[0].From[0].PodSelector = &metav1.LabelSelector{}
		}, "ingress[0].from[0] admits every pod of the namespace"},
		{"upstream open to other pods", func(t *testing.T, b *k8sBundle) {
			k8sUpstreamPolicy(b).Spec.Ingress[0].From[0].PodSelector.MatchLabels[k8sNameLabel] = "frontend"
		}, "ingress[0].from[0]: selector app.kubernetes.io/name=frontend does not select the gateway's pods"},
		{"upstream open to everyone", func(t *testing.T, b *k8sBundle) {
			k8sUpstreamPolicy(b).Spec.Ingress[0].From = nil
		}, "ingress[0] admits every source"},
		{"upstream policy on egress only", func(t *testing.T, b *k8sBundle) {
			k8sUpstreamPolicy(b).Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		}, "does not restrict ingress"},
		{"another policy opens the upstream", func(t *testing.T, b *k8sBundle) {
			np := k8sUpstreamPolicy(b).DeepCopy()
			np.Name = "document-service-lb"
			np.Spec.Ingress[0].From = []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8"}}}
			b.NetworkPolicies = append(b.NetworkPolicies, np)
		}, "NetworkPolicy document-service-lb ingress[0].from[0] admits an address block"},

		// Security context.
		{"runs as root", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).SecurityContext.RunAsUser = k8sPtr(int64(0))
		}, "runAsUser is 0, want 65532"},
		{"runs as another user", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).SecurityContext.RunAsUser = nil
			k8sGatewayPod(b).SecurityContext.RunAsUser = k8sPtr(int64(1000))
		}, "runAsUser is 1000, want 65532"},
		{"runAsNonRoot off", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).SecurityContext.RunAsNonRoot = k8sPtr(false)
		}, "runAsNonRoot is not true"},
		{"writable root", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).SecurityContext.ReadOnlyRootFilesystem = nil
		}, "readOnlyRootFilesystem is not true"},
		{"privilege escalation", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).SecurityContext.AllowPrivilegeEscalation = k8sPtr(true)
		}, "allowPrivilegeEscalation is not false"},
		{"capabilities kept", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
		}, "capabilities do not drop ALL"},
		{"capability added", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).SecurityContext.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
		}, "capabilities do not drop ALL (and add none)"},
		{"no seccomp profile", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).SecurityContext.SeccompProfile = nil
			k8sGatewayPod(b).SecurityContext.SeccompProfile = nil
		}, "seccompProfile is not RuntimeDefault"},
		{"seccomp from the pod is enough", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).SecurityContext.SeccompProfile = nil
		}, ""},
		{"secrets readable by everyone", func(t *testing.T, b *k8sBundle) {
			k8sGatewayPod(b).Volumes[0].Projected.DefaultMode = k8sPtr(int32(0o644))
		}, "defaultMode 0644 makes its secrets readable by every user"},
		{"secrets with the default mode", func(t *testing.T, b *k8sBundle) {
			k8sGatewayPod(b).Volumes[0].Projected.DefaultMode = nil
		}, "defaultMode 0644 makes its secrets readable by every user"},
		{"secrets unreadable without fsGroup", func(t *testing.T, b *k8sBundle) {
			k8sGatewayPod(b).SecurityContext.FSGroup = nil
		}, "the pod sets no fsGroup"},
		{"service account token", func(t *testing.T, b *k8sBundle) {
			k8sGatewayPod(b).AutomountServiceAccountToken = nil
		}, "automountServiceAccountToken is not false"},

		// Grace period.
		{"default grace period", func(t *testing.T, b *k8sBundle) {
			k8sGatewayPod(b).TerminationGracePeriodSeconds = nil
		}, "terminationGracePeriodSeconds is 30, want more than shutdown_delay + shutdown_timeout = 30s"},
		{"longer drain than grace", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "shutdown_timeout: 25s", "shutdown_timeout: 60s")
		}, "terminationGracePeriodSeconds is 45, want more than shutdown_delay + shutdown_timeout = 1m5s"},

		// Files.
		{"secret projected elsewhere", func(t *testing.T, b *k8sBundle) {
			k8sGatewayPod(b).Volumes[0].Projected.Sources[1].Secret.Items[0].Path = "sp/cert.pem"
		}, `volume "config" projects no file sp/sp.crt`},
		{"secret key missing", func(t *testing.T, b *k8sBundle) {
			delete(b.secret(k8sGateway).StringData, "session-block-key")
		}, `Secret "sso-gateway" has no key "session-block-key"`},
		{"secret missing", func(t *testing.T, b *k8sBundle) {
			b.secret(k8sGateway).Name = "sso-gateway-keys"
		}, `/etc/sso-gateway/sp/sp.crt: no Secret "sso-gateway"`},
		{"metadata file missing", func(t *testing.T, b *k8sBundle) {
			delete(b.configMap(k8sGateway).Data, "fabrikam-federationmetadata.xml")
		}, "/etc/sso-gateway/fabrikam-federationmetadata.xml: volume \"config\" projects no file fabrikam-federationmetadata.xml"},
		{"config names a file nobody provides", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "idp_metadata_refresh_interval: 1h", "idp_metadata_refresh_interval: 1h\n    idp_metadata_signing_cert: contoso-signing.pem")
		}, "/etc/sso-gateway/contoso-signing.pem: volume \"config\" projects no file contoso-signing.pem"},
		{"config names a file outside the mount", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "key_file: sp/sp.key", "key_file: /run/secrets/sp.key")
		}, "/run/secrets/sp.key: no volume mount of container sso-gateway covers it"},
		{"writable mount", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).VolumeMounts[0].ReadOnly = false
		}, "volume mount /etc/sso-gateway is not readOnly"},
		{"subPath mount", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).VolumeMounts[0].SubPath = "x"
		}, "uses subPath"},
		{"config file not mounted", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).Args = []string{"-config", "/etc/sso-gateway/gateway.yaml"}
		}, "the config file: /etc/sso-gateway/gateway.yaml: volume \"config\" projects no file gateway.yaml"},
		{"config flag given explicitly", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).Args = []string{"-config=/etc/sso-gateway/config.yaml"}
		}, ""},
		{"no config flag", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).Command = []string{"/sso-gateway"}
		}, "runs without -config"},

		// Environment variables.
		{"config reads an unset variable", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "hash_key_file: session/hash_key", "hash_key_env: SSO_GATEWAY_HASH_KEY")
		}, "the config reads $SSO_GATEWAY_HASH_KEY, which the container does not set"},
		{"variable from a missing secret key", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "hash_key_file: session/hash_key", "hash_key_env: SSO_GATEWAY_HASH_KEY")
			c := k8sGatewayContainer(b)
			c.Env = append(c.Env, corev1.EnvVar{Name: "SSO_GATEWAY_HASH_KEY", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: k8sGateway}, Key: "hash-key"},
			}})
		}, `$SSO_GATEWAY_HASH_KEY comes from Secret "sso-gateway" key "hash-key", which does not exist`},
		{"variable from a secret key", func(t *testing.T, b *k8sBundle) {
			k8sEditConfig(t, b, "hash_key_file: session/hash_key", "hash_key_env: SSO_GATEWAY_HASH_KEY")
			c := k8sGatewayContainer(b)
			c.Env = append(c.Env, corev1.EnvVar{Name: "SSO_GATEWAY_HASH_KEY", ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: k8sGateway}, Key: "session-hash-key"},
			}})
		}, ""},

		// Resources and image.
		{"no memory limit", func(t *testing.T, b *k8sBundle) {
			delete(k8sGatewayContainer(b).Resources.Limits, corev1.ResourceMemory)
		}, "Deployment sso-gateway container sso-gateway has no memory limit"},
		{"latest image", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).Image = "registry.example.com/sso-gateway:latest"
		}, "has no version tag or digest"},
		{"image by digest", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).Image = "registry.example.com:5000/sso-gateway@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		}, ""},
		{"untagged image behind a registry port", func(t *testing.T, b *k8sBundle) {
			k8sGatewayContainer(b).Image = "registry.example.com:5000/sso-gateway"
		}, "has no version tag or digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := k8sBaseBundle(t)
			tc.change(t, b)
			problems := k8sProblems(b, docker)
			if tc.want == "" {
				for _, p := range problems {
					t.Errorf("got problem %q, want none", p)
				}
				return
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("got problems %q, want one containing %q", problems, tc.want)
			}
		})
	}
}

// TestK8sPrometheusRuleMatchesAlerts: the PrometheusRule carries exactly the
// groups of deploy/prometheus/alerts.yml.
func TestK8sPrometheusRuleMatchesAlerts(t *testing.T) {
	t.Parallel()
	alerts, err := os.ReadFile(k8sAlertsFile)
	if err != nil {
		t.Fatal(err)
	}
	rule := k8sNamed(k8sBaseBundle(t).PrometheusRules, k8sGateway)
	if rule == nil {
		t.Fatal("no PrometheusRule " + k8sGateway)
	}
	if err := k8sCompareRules(rule, alerts); err != nil {
		t.Errorf("%v\nCopy %s's groups into %s.", err, k8sAlertsFile, filepath.Join(k8sDir, "prometheusrule.yaml"))
	}
}

// TestK8sPrometheusRuleComparisonCanFail: any difference is one.
func TestK8sPrometheusRuleComparisonCanFail(t *testing.T) {
	t.Parallel()
	alerts, err := os.ReadFile(k8sAlertsFile)
	if err != nil {
		t.Fatal(err)
	}
	rule := k8sNamed(k8sBaseBundle(t).PrometheusRules, k8sGateway)
	for _, tc := range []struct{ name, old, new, want string }{
		{"for", "for: 5m", "for: 10m", "group"},
		{"expression", "> 0.25", "> 0.3", "group"},
		{"label", "\n          severity: critical\n", "\n          severity: page\n", "group"},
		{"extra group", "groups:\n", "groups:\n  - name: extra\n    rules: []\n", `want ["extra"`},
		{"unknown field", "    rules:\n", "    rulez:\n", "unknown field"},
		{"no groups", "groups:\n", "groups: []\nold_groups:\n", "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !bytes.Contains(alerts, []byte(tc.old)) {
				t.Fatalf("%s has no %q", k8sAlertsFile, tc.old)
			}
			changed := bytes.Replace(alerts, []byte(tc.old), []byte(tc.new), 1)
			err := k8sCompareRules(rule, changed)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := k8sCompareRules(rule, []byte("groups: []\n")); err == nil || !strings.Contains(err.Error(), "no groups") {
		t.Errorf("empty alerts: got %v, want an error about no groups", err)
	}
}

// TestK8sDockerfile: the image is built by the Go of CI, static, and runs
// as the Deployment expects.
func TestK8sDockerfile(t *testing.T) {
	t.Parallel()
	goVersion := k8sGoVersion(t)
	d := k8sLoadDockerfile(t)
	s, problems := k8sPrepare(k8sBaseBundle(t), d)
	if s == nil {
		t.Fatal(problems)
	}
	for _, p := range k8sCheckDockerfile(d, goVersion, []int32{s.listenPort(), s.adminPort()}) {
		t.Error(p)
	}
	if got, want := strings.Join(d.final().jsonArgs("CMD"), " "), "-config /etc/sso-gateway/config.yaml"; got != want {
		t.Errorf("CMD is %q, want %q (the Deployment mounts its config there)", got, want)
	}
}

// TestK8sDockerfileCanFail breaks a copy of the Dockerfile one way at a
// time.
func TestK8sDockerfileCanFail(t *testing.T) {
	t.Parallel()
	goVersion := k8sGoVersion(t)
	data, err := os.ReadFile(k8sDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	const final = "FROM gcr.io/distroless/static-debian12:nonroot"
	ports := []int32{8080, 9090}
	for _, tc := range []struct{ name, old, new, want string }{
		{"healthcheck", "USER 65532:65532", "USER 65532:65532\nHEALTHCHECK CMD [\"/sso-gateway\", \"version\"]", "HEALTHCHECK"},
		{"no user", "USER 65532:65532", "", "no USER"},
		{"named user", "USER 65532:65532", "USER nonroot:nonroot", "not numeric"},
		{"root", "USER 65532:65532", "USER 0:0", "USER is root"},
		{"other user", "USER 65532:65532", "USER 1000", "USER is 1000, want 65532"},
		{"cgo", "CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"older go", "golang:" + goVersion + "-bookworm", "golang:1.26-bookworm", "builder image is \"golang:1.26-bookworm\""},
		{"no trimpath", "go build -trimpath", "go build", `lacks "-trimpath"`},
		{"no version", "-X main.version=${VERSION}", "", `lacks "-X main.version="`},
		{"shell entrypoint", `ENTRYPOINT ["/sso-gateway"]`, "ENTRYPOINT /sso-gateway", "exec form"},
		{"entrypoint elsewhere", `ENTRYPOINT ["/sso-gateway"]`, `ENTRYPOINT ["/usr/local/bin/sso-gateway"]`, "ENTRYPOINT"},
		{"no cmd", `CMD ["-config", "/etc/sso-gateway/config.yaml"]`, "", "CMD"},
		{"binary not copied", "COPY --from=build /out/sso-gateway /sso-gateway", "", "copies no binary"},
		{"one port", "EXPOSE 8080 9090", "EXPOSE 8080", "EXPOSE [8080], want"},
		{"alpine with a shell", final, "FROM alpine:3.20\nRUN apk add --no-cache ca-certificates", "final stage has RUN"},
		{"toolchain shipped", final, "FROM golang:" + goVersion + "-bookworm", "ship the binary without the toolchain"},
		{"one stage", final, "", "stage(s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(src, tc.old) {
				t.Fatalf("%s has no %q", k8sDockerfile, tc.old)
			}
			d, err := k8sParseDockerfile(strings.Replace(src, tc.old, tc.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			problems := k8sCheckDockerfile(d, goVersion, ports)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("got problems %q, want one containing %q", problems, tc.want)
			}
		})
	}
	if problems := k8sCheckDockerfile(&k8sDockerfileModel{Stages: []*k8sStage{{Image: "golang:" + goVersion}}}, goVersion, ports); len(problems) != 1 || !strings.Contains(problems[0], "1 stage(s)") {
		t.Errorf("one stage: got %q, want a problem about stages", problems)
	}
}

// TestK8sDockerignore: the build context has every file go build needs,
// and not the history or the tests.
func TestK8sDockerignore(t *testing.T) {
	t.Parallel()
	inputs, err := k8sBuildInputs("..")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(inputs, "cmd/sso-gateway/main.go") || !slices.ContainsFunc(inputs, func(f string) bool { return strings.HasPrefix(f, "internal/page/templates/") }) {
		t.Fatalf("build inputs %q lack the command or the embedded templates", inputs)
	}
	data, err := os.ReadFile(k8sIgnoreFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range k8sCheckIgnore(k8sParseIgnore(string(data)), inputs) {
		t.Error(p)
	}

	for _, tc := range []struct{ name, edit, want string }{
		{"templates left out", string(data) + "internal/page/templates\n", "internal/page/templates/"},
		{"sources left out", string(data) + "**/*.go\n", "cmd/sso-gateway/main.go is needed"},
		{"go.sum left out", string(data) + "go.sum\n", "go.sum is needed"},
		{"history sent", strings.Replace(string(data), "\n.git\n", "\n", 1), ".git/HEAD is sent"},
		{"tests sent", string(data) + "!**/*_test.go\n", "deploy/kubernetes_test.go is sent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			problems := k8sCheckIgnore(k8sParseIgnore(tc.edit), inputs)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("got problems %q, want one containing %q", problems, tc.want)
			}
		})
	}
}

// k8sMaterialize writes the files the gateway's container sees, under
// root, as the kubelet would: every file of every volume at its mount.
func k8sMaterialize(t *testing.T, s *k8sSetup, root string) {
	t.Helper()
	for _, m := range s.ctr.VolumeMounts {
		var vol *corev1.Volume
		for i := range s.pod.Volumes {
			if s.pod.Volumes[i].Name == m.Name {
				vol = &s.pod.Volumes[i]
			}
		}
		if vol == nil {
			t.Fatalf("no volume %q", m.Name)
		}
		for _, f := range k8sVolumeFiles(s.b, vol) {
			if f.err != nil {
				t.Fatalf("volume %q file %s: %v", vol.Name, f.path, f.err)
			}
			p := filepath.Join(root, filepath.FromSlash(m.MountPath), filepath.FromSlash(f.path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, f.data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// k8sParseMaterialized parses the config the way the gateway in the pod
// would, from the materialized volumes under root.
func k8sParseMaterialized(t *testing.T, s *k8sSetup, root string) (*config.Config, []*config.Problem) {
	t.Helper()
	k8sMaterialize(t, s, root)
	p := filepath.Join(root, filepath.FromSlash(s.configPath))
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(data, filepath.Dir(p), func(string) (string, bool) { return "", false })
	return cfg, config.Problems(err)
}

// TestK8sPlaceholdersFailClosed: with the base's placeholder Secret every
// file the config names is there, yet the gateway refuses the keys, so a
// forgotten placeholder never runs.
func TestK8sPlaceholdersFailClosed(t *testing.T) {
	t.Parallel()
	s, problems := k8sPrepare(k8sBaseBundle(t), k8sLoadDockerfile(t))
	if s == nil {
		t.Fatal(problems)
	}
	_, got := k8sParseMaterialized(t, s, t.TempDir())
	paths := map[string]bool{}
	for _, p := range got {
		paths[p.Path] = true
		if strings.Contains(p.Msg, "does not exist") || strings.Contains(p.Msg, "is not set") {
			t.Errorf("got %q: the pod would lack a file the config names", p)
		}
	}
	for _, want := range []string{"sp.cert_file", "session.keys[0].hash_key_file", "session.keys[0].block_key_file"} {
		if !paths[want] {
			t.Errorf("got problems %q, want one at %s: the placeholder must be refused", got, want)
		}
	}
}

// k8sRedisOverlay is an overlay as secret.yaml and redis/kustomization.yaml
// tell operators to write: the base, the Redis component, and the real
// Secret from files through a secretGenerator.
const k8sRedisOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../kubernetes
components:
  - ../kubernetes/redis
secretGenerator:
  - name: sso-gateway
    behavior: replace
    files:
      - sp.crt=secrets/sp.crt
      - sp.key=secrets/sp.key
      - session-hash-key=secrets/hash_key
      - session-block-key=secrets/block_key
      - redis-url=secrets/redis_url
    options:
      disableNameSuffixHash: true
`

// k8sWriteSecrets writes real secrets for the overlay, as the commands in
// secret.yaml make them.
func k8sWriteSecrets(t *testing.T, fsys filesys.FileSystem, dir string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cloudimanage.example.com"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return []byte(base64.StdEncoding.EncodeToString(b) + "\n")
	}
	for name, data := range map[string][]byte{
		"sp.crt":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"sp.key":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"hash_key":  random(64),
		"block_key": random(32),
		"redis_url": []byte("redis://:s3cret@sso-gateway-redis:6379/0"),
	} {
		if err := fsys.WriteFile(path.Join(dir, "secrets", name), data); err != nil {
			t.Fatal(err)
		}
	}
}

// TestK8sRedisComponent builds the overlay with the optional Redis
// component and real secrets: every check still holds, Redis admits only
// the gateway, the gateway's redis-url names Redis' Service, and the config
// the pod would see passes the gateway's parser without a single problem.
func TestK8sRedisComponent(t *testing.T) {
	t.Parallel()
	mem := k8sMemFS(t)
	overlay := path.Join(k8sMemRoot, "overlay")
	if err := mem.WriteFile(path.Join(overlay, "kustomization.yaml"), []byte(k8sRedisOverlay)); err != nil {
		t.Fatal(err)
	}
	k8sWriteSecrets(t, mem, overlay)
	b, err := k8sBuild(mem, overlay)
	if err != nil {
		t.Fatal(err)
	}
	docker := k8sLoadDockerfile(t)
	for _, p := range k8sProblems(b, docker) {
		t.Error(p)
	}
	s, problems := k8sPrepare(b, docker)
	if s == nil {
		t.Fatal(problems)
	}
	for _, p := range k8sCheckRedis(s) {
		t.Error(p)
	}
	redis := k8sNamed(b.Deployments, "sso-gateway-redis")
	if redis != nil && redis.Spec.Template.Labels[k8sNameLabel] == k8sGateway {
		t.Errorf("Redis' pods carry %s=%s: the gateway's selectors would take them in", k8sNameLabel, k8sGateway)
	}
	if sec := b.secret(k8sGateway); sec == nil || len(sec.StringData) != 0 || len(sec.Data) != 5 {
		t.Errorf("the secretGenerator did not replace the placeholder Secret: %v", sec)
	}

	cfg, got := k8sParseMaterialized(t, s, t.TempDir())
	for _, p := range got {
		t.Errorf("the config in the pod: %s", p)
	}
	if cfg != nil && cfg.ReplayCache.RedisURL == "" {
		t.Error("the config in the pod has no Redis URL")
	}

	// The Redis checks can fail.
	for _, tc := range []struct {
		name   string
		change func(*k8sBundle)
		want   string
	}{
		{"no redis policy", func(b *k8sBundle) {
			b.NetworkPolicies = slices.DeleteFunc(b.NetworkPolicies, func(np *networkingv1.NetworkPolicy) bool { return np.Name == "sso-gateway-redis" })
		}, "no NetworkPolicy selects Redis' pods"},
		{"redis open to a namespace", func(b *k8sBundle) {
			r := &k8sNamed(b.NetworkPolicies, "sso-gateway-redis").Spec.Ingress[0]
			r.From = append(r.From, networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}})
		}, "admits pods of other namespaces"},
		{"redis-url names another host", func(b *k8sBundle) {
			b.secret(k8sGateway).Data["redis-url"] = []byte("redis://:s3cret@redis:6379/0")
		}, `redis-url host "redis" is not Service sso-gateway-redis`},
		{"redis-url names another port", func(b *k8sBundle) {
			b.secret(k8sGateway).Data["redis-url"] = []byte("redis://:s3cret@sso-gateway-redis:6380/0")
		}, "port 6380 is no port of Service sso-gateway-redis"},
		{"redis runs as root", func(b *k8sBundle) {
			k8sNamed(b.Deployments, "sso-gateway-redis").Spec.Template.Spec.Containers[0].SecurityContext.RunAsUser = k8sPtr(int64(0))
		}, "runAsUser is 0, want non-zero"},
		{"redis pods look like the gateway", func(b *k8sBundle) {
			k8sNamed(b.Deployments, "sso-gateway-redis").Spec.Template.Labels[k8sNameLabel] = k8sGateway
		}, "also selects Deployment sso-gateway-redis's pods"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := b.clone()
			tc.change(b)
			problems := k8sProblems(b, docker)
			if s, _ := k8sPrepare(b, docker); s != nil {
				problems = append(problems, k8sCheckRedis(s)...)
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("got problems %q, want one containing %q", problems, tc.want)
			}
		})
	}
}

// k8sCheckRedis: Redis admits only the gateway, and the gateway's
// redis_url_file names Redis' Service and a port of it that leads to Redis.
func k8sCheckRedis(s *k8sSetup) []string {
	const name = "sso-gateway-redis"
	redis := k8sNamed(s.b.Deployments, name)
	svc := k8sNamed(s.b.Services, name)
	if redis == nil || svc == nil {
		return []string{"no Deployment and Service " + name}
	}
	var problems []string
	found := false
	for _, np := range s.b.NetworkPolicies {
		if k8sSelects(&np.Spec.PodSelector, redis.Spec.Template.Labels) {
			found = true
			problems = append(problems, s.onlyFromGateway("NetworkPolicy "+np.Name, np)...)
		}
	}
	if !found {
		problems = append(problems, "no NetworkPolicy selects Redis' pods")
	}

	var raw struct {
		ReplayCache struct {
			RedisURLFile string `json:"redis_url_file"`
		} `json:"replay_cache"`
	}
	src, err := k8sFileAt(s.b, s.pod, s.ctr, s.configPath)
	if err != nil {
		return append(problems, err.Error())
	}
	if err := yaml.Unmarshal(src.data, &raw); err != nil || raw.ReplayCache.RedisURLFile == "" {
		return append(problems, "the config has no replay_cache.redis_url_file")
	}
	p := raw.ReplayCache.RedisURLFile
	if !path.IsAbs(p) {
		p = path.Join(path.Dir(s.configPath), p)
	}
	f, err := k8sFileAt(s.b, s.pod, s.ctr, p)
	if err != nil {
		return append(problems, err.Error())
	}
	u, err := url.Parse(strings.TrimSpace(string(f.data)))
	if err != nil {
		return append(problems, fmt.Sprintf("%s: not a URL", f.from))
	}
	if host := strings.SplitN(u.Hostname(), ".", 2)[0]; host != svc.Name {
		problems = append(problems, fmt.Sprintf("%s: redis-url host %q is not Service %s", f.from, u.Hostname(), svc.Name))
	}
	port, _ := strconv.Atoi(cmp.Or(u.Port(), "6379"))
	ok := false
	for _, sp := range svc.Spec.Ports {
		if sp.Port == int32(port) {
			ok = true
			if !k8sSelects(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, redis.Spec.Template.Labels) {
				problems = append(problems, fmt.Sprintf("Service %s does not select Redis' pods", svc.Name))
			}
			if k8sPort(&redis.Spec.Template.Spec.Containers[0], sp.TargetPort) == 0 {
				problems = append(problems, fmt.Sprintf("Service %s port %d targets no Redis port", svc.Name, port))
			}
		}
	}
	if !ok {
		problems = append(problems, fmt.Sprintf("%s: port %d is no port of Service %s", f.from, port, svc.Name))
	}
	return problems
}

// TestK8sMetadataPlaceholder: the ConfigMap's metadata files are XML
// EntityDescriptors, so the placeholder has the shape of what replaces it.
func TestK8sMetadataPlaceholder(t *testing.T) {
	t.Parallel()
	s, problems := k8sPrepare(k8sBaseBundle(t), k8sLoadDockerfile(t))
	if s == nil {
		t.Fatal(problems)
	}
	cfg, _ := k8sParseMaterialized(t, s, t.TempDir())
	n := 0
	for _, tenant := range cfg.Tenants {
		if tenant.MetadataFile == "" {
			continue
		}
		n++
		data, err := os.ReadFile(tenant.MetadataFile)
		if err != nil {
			t.Fatal(err)
		}
		var root struct{ XMLName xml.Name }
		if err := xml.Unmarshal(data, &root); err != nil {
			t.Errorf("tenant %s: %v", tenant.ID, err)
		}
		if root.XMLName.Local != "EntityDescriptor" || root.XMLName.Space != "urn:oasis:names:tc:SAML:2.0:metadata" {
			t.Errorf("tenant %s: root element is %v, want a SAML metadata EntityDescriptor", tenant.ID, root.XMLName)
		}
	}
	if n == 0 {
		t.Error("no tenant reads its metadata from a file")
	}
}
