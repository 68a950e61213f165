// The tests of package deploy_test check the files in deploy/ that operators
// run rather than compile; deploy/ holds no Go besides them. This file
// covers what SREs watch and are paged by:
//
//   - prometheus/alerts.yml is valid (promtool check rules) and its unit
//     tests pass (promtool test rules prometheus/alerts_test.yml); every
//     alert has for, a severity, a summary, a description, a runbook_url
//     that points at its own section of prometheus/RUNBOOKS.md, and unit
//     tests that see it fire and see it stay quiet.
//   - grafana/sso-gateway.json is a valid dashboard: unique panel IDs, a
//     datasource and a query on every panel, the datasource, job, instance
//     and tenant variables, and PromQL that parses.
//   - Every metric the dashboard and the rules use is exported by a real
//     gateway, built in-process from a config file and exercised (logins,
//     a failed login, an SP-initiated login, a proxied request, a logout, a
//     reload) until every family has samples, including the refresh metrics
//     of an idp_metadata_url tenant and sso_gateway_replay_store_up, which
//     exists only with replay_cache and so needs a real redis-server
//     (internal/redistest). The label names and values the queries match on
//     must exist too, so that a typo cannot make a panel or an alert
//     silently empty.
//   - Each of these checks rejects a broken input (TestObsChecksCanFail).
//
// promtool comes from $PROMTOOL or PATH (Debian: apt-get install -y
// prometheus). Without it the tests fail; they never skip. Every top-level
// name here starts with obs, so as not to collide with the other files of
// the package.

package deploy_test

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/sso-gateway/sso-gateway/config"
	"github.com/sso-gateway/sso-gateway/internal/gateway"
	"github.com/sso-gateway/sso-gateway/internal/selfsigned"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/redistest"
	"github.com/sso-gateway/sso-gateway/internal/testsupport/samltest"
	"github.com/sso-gateway/sso-gateway/samlsp"
)

// Paths relative to deploy/, where go test runs.
const (
	obsAlertsFile     = "prometheus/alerts.yml"
	obsAlertTestsFile = "prometheus/alerts_test.yml"
	obsRunbookFile    = "prometheus/RUNBOOKS.md"
	obsDashboardFile  = "grafana/sso-gateway.json"
)

// obsRunbookBase is where every alert's runbook_url points, followed by the
// alert's name in lower case: the anchor GitHub gives its "### Name"
// heading in the runbooks.
const obsRunbookBase = "https://github.com/sso-gateway/sso-gateway/blob/main/deploy/prometheus/RUNBOOKS.md#"

// obsSeverities are the severities alerts may have: critical pages, warning
// is a ticket.
var obsSeverities = []string{"critical", "warning"}

// obsPromtoolMissing is the whole failure message when promtool is missing.
const obsPromtoolMissing = "promtool not found; install it with: apt-get install -y prometheus"

// obsPromtool returns the path of promtool: $PROMTOOL, else promtool in
// PATH. It fails the test, never skips it, when there is none.
func obsPromtool(t *testing.T) string {
	t.Helper()
	name := os.Getenv("PROMTOOL")
	if name == "" {
		name = "promtool"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s (%v)", obsPromtoolMissing, err)
	}
	return path
}

// obsRunPromtool runs promtool with args and returns its combined output
// and whether it succeeded.
func obsRunPromtool(t *testing.T, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), obsPromtool(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("promtool %s: %v", strings.Join(args, " "), err)
		}
		return string(out), false
	}
	return string(out), true
}

func TestObsPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	if out, ok := obsRunPromtool(t, "check", "rules", obsAlertsFile); !ok {
		t.Fatalf("promtool check rules %s failed:\n%s", obsAlertsFile, out)
	}
}

func TestObsPromtoolTestRules(t *testing.T) {
	t.Parallel()
	if out, ok := obsRunPromtool(t, "test", "rules", obsAlertTestsFile); !ok {
		t.Fatalf("promtool test rules %s failed:\n%s", obsAlertTestsFile, out)
	}
}

// ---------------------------------------------------------------------------
// The alerting rules.

type obsRuleFile struct {
	Groups []struct {
		Name  string    `yaml:"name"`
		Rules []obsRule `yaml:"rules"`
	} `yaml:"groups"`
}

type obsRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// obsRuleTests is the part of a promtool test file the checks read.
type obsRuleTests struct {
	Tests []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func obsReadYAML(t *testing.T, name string, out any) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func obsAlertRules(t *testing.T) []obsRule {
	t.Helper()
	var f obsRuleFile
	obsReadYAML(t, obsAlertsFile, &f)
	var rules []obsRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", obsAlertsFile)
	}
	return rules
}

var obsAlertName = regexp.MustCompile(`^SSOGateway[A-Z][A-Za-z0-9]*$`)

// obsRunbookHeading starts the runbooks' section of alerts, one "### Name"
// heading per alert; it ends at the next heading of its level or above.
const obsRunbookHeading = "## Alerts"

// obsReadRunbook returns the section of alerts of the runbooks.
func obsReadRunbook(t *testing.T) string {
	t.Helper()
	runbooks, err := os.ReadFile(obsRunbookFile)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(runbooks), "\n"+obsRunbookHeading+"\n")
	if !ok {
		t.Fatalf("%s has no %q section", obsRunbookFile, obsRunbookHeading)
	}
	for _, end := range []string{"\n# ", "\n## "} {
		section, _, _ = strings.Cut(section, end)
	}
	return section
}

// obsRunbookHeadings returns the names of the runbook's "### Name"
// headings.
func obsRunbookHeadings(runbook string) []string {
	var names []string
	for _, line := range strings.Split(runbook, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimRight(line, " \r"), "### "); ok {
			names = append(names, strings.TrimSpace(name))
		}
	}
	return names
}

// obsAlertProblems checks the conventions every alert follows: a CamelCase
// name with the SSOGateway prefix, used once; for; a known severity; a
// summary, a description and the runbook_url of its section; a section in
// the runbook; and unit tests in which it fires, with its labels and
// annotations checked, and in which it does not.
func obsAlertProblems(rules []obsRule, runbook string, tests obsRuleTests) []string {
	var problems []string
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) == 0 {
				quiet[at.Alertname] = true
				continue
			}
			fires[at.Alertname] = true
			for _, exp := range at.ExpAlerts {
				if exp.ExpLabels["severity"] == "" || exp.ExpAnnotations["summary"] == "" ||
					exp.ExpAnnotations["description"] == "" || exp.ExpAnnotations["runbook_url"] == "" {
					problems = append(problems, fmt.Sprintf("test %q, %s at %s: exp_alerts must check the severity and every annotation",
						tc.Name, at.Alertname, at.EvalTime))
				}
			}
		}
	}
	headings := obsRunbookHeadings(runbook)
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Alert == "" {
			problems = append(problems, fmt.Sprintf("rule %q: not an alert (recording rules belong elsewhere)", r.Record))
			continue
		}
		name := r.Alert
		if !obsAlertName.MatchString(name) {
			problems = append(problems, fmt.Sprintf("%s: want a CamelCase name starting with SSOGateway", name))
		}
		if seen[name] {
			problems = append(problems, fmt.Sprintf("%s: defined twice", name))
		}
		seen[name] = true
		if r.For == "" {
			problems = append(problems, fmt.Sprintf("%s: no for:", name))
		}
		if !slices.Contains(obsSeverities, r.Labels["severity"]) {
			problems = append(problems, fmt.Sprintf("%s: severity %q, want one of %q", name, r.Labels["severity"], obsSeverities))
		}
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				problems = append(problems, fmt.Sprintf("%s: no %s annotation", name, a))
			}
		}
		if got, want := r.Annotations["runbook_url"], obsRunbookBase+strings.ToLower(name); got != want {
			problems = append(problems, fmt.Sprintf("%s: runbook_url %q, want %q", name, got, want))
		}
		if !slices.Contains(headings, name) {
			problems = append(problems, fmt.Sprintf("%s: no \"### %s\" section in %s", name, name, obsRunbookFile))
		}
		if !fires[name] {
			problems = append(problems, fmt.Sprintf("%s: no unit test in which it fires", name))
		}
		if !quiet[name] {
			problems = append(problems, fmt.Sprintf("%s: no unit test in which it must not fire", name))
		}
	}
	for _, h := range headings {
		if !seen[h] {
			problems = append(problems, fmt.Sprintf("%s: runbook section for an alert that does not exist", h))
		}
	}
	for name := range fires {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("%s: unit tests for an alert that does not exist", name))
		}
	}
	sort.Strings(problems)
	return problems
}

func TestObsAlertConventions(t *testing.T) {
	t.Parallel()
	runbook := obsReadRunbook(t)
	var tests obsRuleTests
	obsReadYAML(t, obsAlertTestsFile, &tests)
	for _, p := range obsAlertProblems(obsAlertRules(t), runbook, tests) {
		t.Error(p)
	}
}

// ---------------------------------------------------------------------------
// The dashboard.

type obsDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type obsTarget struct {
	Datasource *obsDatasource `json:"datasource"`
	Expr       string         `json:"expr"`
	RefID      string         `json:"refId"`
}

type obsGridPos struct {
	H, W, X, Y int
}

type obsPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *obsDatasource `json:"datasource"`
	Targets    []obsTarget    `json:"targets"`
	GridPos    obsGridPos     `json:"gridPos"`
	// Panels are a collapsed row's panels.
	Panels []obsPanel `json:"panels"`
}

type obsVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *obsDatasource  `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

// query returns the variable's query, which Grafana stores as a string or
// (Prometheus query editor, Grafana 10 and later) as {"query": ...}.
func (v obsVariable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil {
		return o.Query
	}
	return ""
}

type obsDashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []obsVariable `json:"list"`
	} `json:"templating"`
	Panels []obsPanel `json:"panels"`
}

// obsPanels returns every panel, those of collapsed rows included.
func (d *obsDashboard) obsPanels() []obsPanel {
	var all []obsPanel
	var walk func([]obsPanel)
	walk = func(ps []obsPanel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return all
}

func (d *obsDashboard) variable(name string) (obsVariable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return obsVariable{}, false
}

func obsReadDashboard(t *testing.T) *obsDashboard {
	t.Helper()
	data, err := os.ReadFile(obsDashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d obsDashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: not valid JSON: %v", obsDashboardFile, err)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value", obsDashboardFile)
	}
	return &d
}

// obsDatasourceUID is what every panel and query names: the datasource
// variable, so the dashboard imports into any Grafana.
const obsDatasourceUID = "${datasource}"

// obsTenantQuery is the tenant variable's query.
const obsTenantQuery = "label_values(sso_gateway_tenant_ready, tenant)"

// obsBuiltinVars are Grafana's own variables that queries may use.
var obsBuiltinVars = []string{"__rate_interval", "__range", "__interval"}

var obsVarRef = regexp.MustCompile(`\$\{?(\w+)`)

// obsDashboardProblems checks the dashboard's model: schemaVersion, the
// variables, unique panel IDs, panels that do not overlap, a datasource and
// at least one query on every panel but rows, and variables that exist.
func obsDashboardProblems(d *obsDashboard) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if d.Title == "" || d.UID == "" {
		add("dashboard: title %q and uid %q must be set", d.Title, d.UID)
	}
	if d.SchemaVersion < 39 {
		add("schemaVersion %d, want 39 or later", d.SchemaVersion)
	}
	if v, ok := d.variable("datasource"); !ok || v.Type != "datasource" || v.query() != "prometheus" {
		add("want a variable datasource of type datasource for prometheus, got %+v", v)
	}
	for _, name := range []string{"job", "instance", "tenant"} {
		v, ok := d.variable(name)
		switch {
		case !ok:
			add("no %s variable", name)
		case v.Type != "query" || v.Datasource == nil || v.Datasource.UID != obsDatasourceUID || !v.Multi || !v.IncludeAll:
			add("variable %s: want a multi-value query variable with All, on %s", name, obsDatasourceUID)
		}
	}
	if v, _ := d.variable("tenant"); v.query() != obsTenantQuery {
		add("variable tenant: query %q, want %q", v.query(), obsTenantQuery)
	}
	vars := slices.Clone(obsBuiltinVars)
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	ids := map[int]string{}
	for _, p := range d.obsPanels() {
		what := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			add("%s: no id", what)
		} else if other, dup := ids[p.ID]; dup {
			add("%s: id also used by %q", what, other)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != obsDatasourceUID {
			add("%s: datasource %+v, want prometheus %s", what, p.Datasource, obsDatasourceUID)
		}
		if len(p.Targets) == 0 {
			add("%s: no query", what)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				add("%s, query %s: empty expr", what, tg.RefID)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				add("%s: refId %q missing or repeated", what, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != obsDatasourceUID {
				add("%s, query %s: datasource %+v, want %s", what, tg.RefID, tg.Datasource, obsDatasourceUID)
			}
			for _, m := range obsVarRef.FindAllStringSubmatch(tg.Expr, -1) {
				if !slices.Contains(vars, m[1]) {
					add("%s, query %s: unknown variable $%s", what, tg.RefID, m[1])
				}
			}
		}
	}
	// Panels of the top level (and of expanded rows) share one grid.
	for i, a := range d.Panels {
		if a.GridPos.W <= 0 || a.GridPos.H <= 0 || a.GridPos.X < 0 || a.GridPos.X+a.GridPos.W > 24 {
			add("panel %d %q: gridPos %+v outside the 24-column grid", a.ID, a.Title, a.GridPos)
		}
		for _, b := range d.Panels[i+1:] {
			if a.GridPos.X < b.GridPos.X+b.GridPos.W && b.GridPos.X < a.GridPos.X+a.GridPos.W &&
				a.GridPos.Y < b.GridPos.Y+b.GridPos.H && b.GridPos.Y < a.GridPos.Y+a.GridPos.H {
				add("panels %d %q and %d %q overlap", a.ID, a.Title, b.ID, b.Title)
			}
		}
	}
	return problems
}

func TestObsDashboard(t *testing.T) {
	t.Parallel()
	for _, p := range obsDashboardProblems(obsReadDashboard(t)) {
		t.Error(p)
	}
}

// obsGrafanaValues stand in for Grafana's variables so that promtool can
// parse the dashboard's queries.
var obsGrafanaValues = strings.NewReplacer(
	"${datasource}", "x",
	"$__rate_interval", "2m",
	"$__range", "6h",
	"$__interval", "30s",
	"$job", ".*",
	"$instance", ".*",
	"$tenant", ".*",
)

// TestObsDashboardQueriesParse: every dashboard query is valid PromQL.
// promtool has no offline expression parser, so the queries become
// recording rules of a scratch rule file for promtool check rules.
func TestObsDashboardQueriesParse(t *testing.T) {
	t.Parallel()
	d := obsReadDashboard(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range d.obsPanels() {
		for _, tg := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("obs:panel_%d_%s", p.ID, tg.RefID), Expr: obsGrafanaValues.Replace(tg.Expr)})
		}
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "dashboard_rules.yml")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, ok := obsRunPromtool(t, "check", "rules", name); !ok {
		t.Fatalf("a dashboard query is not valid PromQL (rule obs:panel_<id>_<refId>):\n%s", out)
	}
}

// ---------------------------------------------------------------------------
// Metrics used against metrics exported.

// obsQuery is one PromQL expression and where it is used.
type obsQuery struct {
	where, expr string
}

// obsQueries returns every PromQL expression of the dashboard (its queries
// and its query variables) and of the alerting rules.
func obsQueries(t *testing.T) []obsQuery {
	t.Helper()
	var qs []obsQuery
	d := obsReadDashboard(t)
	for _, p := range d.obsPanels() {
		for _, tg := range p.Targets {
			qs = append(qs, obsQuery{fmt.Sprintf("dashboard panel %d %q, query %s", p.ID, p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			qs = append(qs, obsQuery{"dashboard variable " + v.Name, v.query()})
		}
	}
	for _, r := range obsAlertRules(t) {
		qs = append(qs, obsQuery{"alert " + r.Alert, r.Expr})
	}
	return qs
}

var (
	obsString     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	obsMetricName = regexp.MustCompile(`\b(?:sso_gateway|go|process)_\w+`)
	obsSelector   = regexp.MustCompile(`\b((?:sso_gateway|go|process)_\w+)\s*\{([^}]*)\}`)
	obsMatcher    = regexp.MustCompile(`(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	obsGrouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	obsLiteralAlt = regexp.MustCompile(`^\w+(?:\|\w+)*$`)
)

// obsTargetLabels are added by Prometheus when it scrapes, not by the
// gateway.
var obsTargetLabels = []string{"job", "instance"}

// obsMetricNames returns the gateway's, Go's and the process's metric
// names in expr (up and the like are not the gateway's).
func obsMetricNames(expr string) []string {
	return obsMetricName.FindAllString(obsString.ReplaceAllString(expr, `""`), -1)
}

// obsExposition is what /metrics said: each family's type, and the label
// values each family's samples carry.
type obsExposition struct {
	types  map[string]string                     // family → counter, gauge, histogram, summary, untyped
	labels map[string]map[string]map[string]bool // family → label → values
	counts map[string]int                        // family → samples
}

var (
	obsSampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+`)
	obsLabelPair  = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)
)

// obsParseExposition reads the Prometheus text format (version 0.0.4).
func obsParseExposition(text string) *obsExposition {
	e := &obsExposition{types: map[string]string{}, labels: map[string]map[string]map[string]bool{}, counts: map[string]int{}}
	var samples [][2]string
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if f := strings.Fields(rest); len(f) == 2 {
				e.types[f[0]] = f[1]
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := obsSampleLine.FindStringSubmatch(line); m != nil {
			samples = append(samples, [2]string{m[1], m[2]})
		}
	}
	for _, s := range samples {
		family, ok := e.family(s[0])
		if !ok {
			continue
		}
		e.counts[family]++
		if e.labels[family] == nil {
			e.labels[family] = map[string]map[string]bool{}
		}
		for _, m := range obsLabelPair.FindAllStringSubmatch(s[1], -1) {
			if e.labels[family][m[1]] == nil {
				e.labels[family][m[1]] = map[string]bool{}
			}
			e.labels[family][m[1]][m[2]] = true
		}
	}
	return e
}

// family maps a sample or series name to its family: itself, or for a
// histogram's or summary's _bucket, _sum and _count series, the histogram
// or summary.
func (e *obsExposition) family(name string) (string, bool) {
	if _, ok := e.types[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch e.types[base] {
		case "histogram":
			return base, true
		case "summary":
			if suffix != "_bucket" {
				return base, true
			}
		}
	}
	return "", false
}

// obsExportProblems returns every metric, label and label value the
// queries use that the exposition lacks.
func obsExportProblems(qs []obsQuery, e *obsExposition) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	allLabels := map[string]bool{}
	for _, ls := range e.labels {
		for l := range ls {
			allLabels[l] = true
		}
	}
	for _, q := range qs {
		for _, name := range obsMetricNames(q.expr) {
			family, ok := e.family(name)
			if !ok || e.counts[family] == 0 {
				add("%s: %s is not exported by the gateway", q.where, name)
			}
		}
		for _, m := range obsSelector.FindAllStringSubmatch(q.expr, -1) {
			family, ok := e.family(m[1])
			if !ok {
				continue // reported above
			}
			for _, mm := range obsMatcher.FindAllStringSubmatch(m[2], -1) {
				label, op, value := mm[1], mm[2], mm[3]
				if slices.Contains(obsTargetLabels, label) {
					continue
				}
				values, ok := e.labels[family][label]
				if !ok {
					add("%s: %s has no label %s", q.where, m[1], label)
					continue
				}
				// Negative matchers and variables may name anything;
				// literal values and alternatives of literals must exist.
				if strings.Contains(value, "$") || op == "!=" || op == "!~" {
					continue
				}
				if op == "=~" && !obsLiteralAlt.MatchString(value) {
					continue
				}
				for _, v := range strings.Split(value, "|") {
					if !values[v] {
						add("%s: %s{%s=%q}: the gateway exports no such %s", q.where, m[1], label, v, label)
					}
				}
			}
		}
		for _, m := range obsGrouping.FindAllStringSubmatch(obsString.ReplaceAllString(q.expr, `""`), -1) {
			for _, l := range strings.Split(m[1], ",") {
				l = strings.TrimSpace(l)
				if l != "" && !slices.Contains(obsTargetLabels, l) && !allLabels[l] {
					add("%s: grouping by %s, a label no gateway metric has", q.where, l)
				}
			}
		}
	}
	return problems
}

// TestObsMetricsExported: every metric the dashboard and the rules use,
// with the labels and values they match on, is exported by a real gateway
// that has done what production does.
func TestObsMetricsExported(t *testing.T) {
	t.Parallel()
	g := obsNewGateway(t)
	g.exercise(t)
	e := obsParseExposition(g.metrics(t))
	qs := obsQueries(t)
	for _, p := range obsExportProblems(qs, e) {
		t.Error(p)
	}
	used := map[string]bool{}
	for _, q := range qs {
		for _, name := range obsMetricNames(q.expr) {
			if family, ok := e.family(name); ok {
				used[family] = true
			}
		}
	}
	t.Logf("%d queries use %d metric families", len(qs), len(used))
	// The exercise did reach every family it was meant to.
	for _, want := range []string{"sso_gateway_login_flow_duration_seconds", "sso_gateway_logouts_total", "sso_gateway_idp_metadata_refresh_total", "sso_gateway_replay_store_up"} {
		if e.counts[want] == 0 {
			t.Errorf("/metrics has no samples of %s", want)
		}
	}
}

// ---------------------------------------------------------------------------
// A gateway to exercise.

// obsGateway is a gateway built from a config file, in front of an
// httptest upstream, with two tenants: acme (idp_metadata_file) and globex
// (idp_metadata_url, served by an httptest server), and a Redis replay
// store.
type obsGateway struct {
	gw      *gateway.Gateway
	cfgYAML []byte
	dir     string
	acmeIDP *samltest.IDP
}

const obsSessionCookie = "__Host-ssogw_session"

func obsNewGateway(t *testing.T) *obsGateway {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "document "+r.Header.Get("X-Remote-User"))
	}))
	t.Cleanup(upstream.Close)
	acme, globex := samltest.NewIDP(t), samltest.NewIDP(t)
	metadataServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(globex.MetadataXML())
	}))
	t.Cleanup(metadataServer.Close)
	redis := redistest.Start(t)

	dir := t.TempDir()
	sp, err := selfsigned.New(selfsigned.Options{CommonName: "sso-gateway observability test SP"})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"acme.xml": acme.MetadataXML(),
		"sp.crt":   sp.CertPEM(),
		"sp.key":   sp.KeyPEM(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'k'}, 32))
	cfgYAML := fmt.Appendf(nil, `public_url: https://docs.example.com
upstream: %s
shutdown_delay: 0s
sp: {cert_file: sp.crt, key_file: sp.key}
session:
  keys: [{hash_key: %s, block_key: %s}]
replay_cache: {redis_url: %q}
tenants:
  - id: acme
    idp_metadata_file: acme.xml
  - id: globex
    idp_metadata_url: %s/federationmetadata.xml
`, upstream.URL, key, key, redis.URL(), metadataServer.URL)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), cfgYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	g := &obsGateway{cfgYAML: cfgYAML, dir: dir, acmeIDP: acme}
	gw, err := gateway.Build(t.Context(), g.config(t), gateway.Deps{
		Registry:       prometheus.NewRegistry(),
		Version:        "test",
		MetadataClient: metadataServer.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	g.gw = gw
	return g
}

func (g *obsGateway) config(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse(g.cfgYAML, g.dir, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (g *obsGateway) tenant(t *testing.T, id string) *samlsp.Tenant {
	t.Helper()
	tn, ok := g.gw.Provider().CurrentTenants().Get(id)
	if !ok {
		t.Fatalf("no tenant %s", id)
	}
	return tn
}

// serve sends r through the public handler, for public_url's host (the
// gateway refuses others), with cookies.
func (g *obsGateway) serve(r *http.Request, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r.Host = "docs.example.com"
	for _, c := range cookies {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	g.gw.PublicHandler().ServeHTTP(rec, r)
	return rec
}

func (g *obsGateway) get(target string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("Accept", "text/html")
	return g.serve(r, cookies...)
}

func (g *obsGateway) postACS(tenant string, form url.Values, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, samlsp.LoginPath+tenant, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return g.serve(r, cookies...)
}

func obsSession(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == obsSessionCookie && c.Value != "" {
			return c
		}
	}
	return nil
}

// obsAuthnRequestID returns the ID of the deflated, base64-encoded
// AuthnRequest of an HTTP-Redirect binding.
func obsAuthnRequestID(t *testing.T, samlRequest string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(samlRequest)
	if err != nil {
		t.Fatalf("SAMLRequest: %v", err)
	}
	doc, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("SAMLRequest: %v", err)
	}
	var req struct {
		ID string `xml:"ID,attr"`
	}
	if err := xml.Unmarshal(doc, &req); err != nil || req.ID == "" {
		t.Fatalf("AuthnRequest without an ID (%v): %s", err, doc)
	}
	return req.ID
}

// exercise does what production traffic does, so that every metric family
// has samples: logins of both flows, a failed login, a proxied request, a
// logout and a configuration reload.
func (g *obsGateway) exercise(t *testing.T) {
	t.Helper()
	acme := g.tenant(t, "acme")
	response := func(inResponseTo string) samltest.Response {
		return samltest.Response{Destination: acme.ACSURL.String(), Audience: acme.EntityID, InResponseTo: inResponseTo}
	}

	// IdP-initiated login (My Apps).
	rec := g.postACS("acme", g.acmeIDP.PostForm(t, response(""), ""))
	session := obsSession(rec)
	if session == nil {
		t.Fatalf("IdP-initiated login: got %d: %s", rec.Code, rec.Body)
	}

	// A failed login: the response is for another application.
	wrong := response("")
	wrong.Audience = "https://elsewhere.example.com/"
	if rec := g.postACS("acme", g.acmeIDP.PostForm(t, wrong, "")); rec.Code < 400 || obsSession(rec) != nil {
		t.Fatalf("login with a wrong audience: got %d, want it refused", rec.Code)
	}

	// An SP-initiated login, started and completed.
	start := g.get(samlsp.LoginPath + "acme")
	if start.Code != http.StatusFound {
		t.Fatalf("start SP-initiated login: got %d, want 302", start.Code)
	}
	loc, err := url.Parse(start.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	id := obsAuthnRequestID(t, loc.Query().Get("SAMLRequest"))
	rec = g.postACS("acme", g.acmeIDP.PostForm(t, response(id), loc.Query().Get("RelayState")), start.Result().Cookies()...)
	if obsSession(rec) == nil {
		t.Fatalf("SP-initiated login: got %d: %s", rec.Code, rec.Body)
	}

	// A proxied request with the session.
	if rec := g.get("/documents", session); rec.Code != http.StatusOK || !strings.HasPrefix(rec.Body.String(), "document ") {
		t.Fatalf("proxied request: got %d %q, want the upstream's 200", rec.Code, rec.Body)
	}

	// Single logout started at the IdP.
	logout := g.acmeIDP.LogoutRequestURL(t, samltest.LogoutRequest{Destination: acme.SLOURL.String()})
	if rec := g.get(logout.RequestURI(), session); rec.Code >= 500 {
		t.Fatalf("IdP-initiated logout: got %d: %s", rec.Code, rec.Body)
	}

	// A configuration reload.
	if err := g.gw.Reload(t.Context(), g.config(t)); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// metrics returns the admin listener's /metrics.
func (g *obsGateway) metrics(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	g.gw.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: got %d", rec.Code)
	}
	return rec.Body.String()
}

// ---------------------------------------------------------------------------
// The checks can fail.

// TestObsChecksCanFail: each check above rejects a broken input, so that
// its passing means something.
func TestObsChecksCanFail(t *testing.T) {
	t.Parallel()

	t.Run("metric not exported", func(t *testing.T) {
		t.Parallel()
		e := obsParseExposition(`# TYPE sso_gateway_logins_total counter
sso_gateway_logins_total{result="success",tenant="acme"} 1
# TYPE sso_gateway_login_duration_seconds histogram
sso_gateway_login_duration_seconds_bucket{tenant="acme",le="+Inf"} 1
sso_gateway_login_duration_seconds_sum{tenant="acme"} 0.01
sso_gateway_login_duration_seconds_count{tenant="acme"} 1
# TYPE sso_gateway_login_flow_duration_seconds histogram
`)
		for _, tc := range []struct {
			expr string
			want string // a part of the one problem; empty: none
		}{
			{`sum(rate(sso_gateway_logins_total{result="success"}[5m]))`, ""},
			{`histogram_quantile(0.99, sum by (le, tenant) (rate(sso_gateway_login_duration_seconds_bucket[5m])))`, ""},
			{`rate(sso_gateway_login_duration_seconds_sum[5m]) / rate(sso_gateway_login_duration_seconds_count[5m])`, ""},
			{`sso_gateway_no_such_metric_total`, "sso_gateway_no_such_metric_total is not exported"},
			{`rate(sso_gateway_logins_total_bucket[5m])`, "sso_gateway_logins_total_bucket is not exported"},
			{`histogram_quantile(0.5, rate(sso_gateway_login_flow_duration_seconds_bucket[5m]))`, "sso_gateway_login_flow_duration_seconds_bucket is not exported"},
			{`sso_gateway_logins_total{result="sucess"}`, `no such result`},
			{`sso_gateway_logins_total{rezult="success"}`, `has no label rezult`},
			{`sso_gateway_logins_total{result=~"success|failur"}`, `{result="failur"}`},
			{`sum by (tenat) (sso_gateway_logins_total)`, `grouping by tenat`},
			{`sso_gateway_logins_total{result!="nonsense", job=~"$job"}`, ""},
			{`up{job="sso-gateway"} == 0`, ""},
		} {
			got := obsExportProblems([]obsQuery{{"q", tc.expr}}, e)
			if tc.want == "" && len(got) != 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
				t.Errorf("%s: got %q, want a problem containing %q", tc.expr, got, tc.want)
			}
		}
	})

	t.Run("dashboard", func(t *testing.T) {
		t.Parallel()
		good := obsReadDashboard(t)
		if got := obsDashboardProblems(good); len(got) != 0 {
			t.Fatalf("the real dashboard: %q", got)
		}
		for _, tc := range []struct {
			name   string
			mutate func(d *obsDashboard)
			want   string
		}{
			{"old schema", func(d *obsDashboard) { d.SchemaVersion = 38 }, "schemaVersion"},
			{"no tenant variable", func(d *obsDashboard) {
				d.Templating.List = slices.DeleteFunc(d.Templating.List, func(v obsVariable) bool { return v.Name == "tenant" })
			}, "no tenant variable"},
			{"duplicate id", func(d *obsDashboard) { d.Panels[2].ID = d.Panels[1].ID }, "id also used by"},
			{"no datasource", func(d *obsDashboard) { d.Panels[1].Datasource = nil }, "datasource"},
			{"no query", func(d *obsDashboard) { d.Panels[1].Targets = nil }, "no query"},
			{"empty expr", func(d *obsDashboard) { d.Panels[1].Targets[0].Expr = " " }, "empty expr"},
			{"unknown variable", func(d *obsDashboard) { d.Panels[1].Targets[0].Expr += ` + on() vector($tennant)` }, "unknown variable $tennant"},
			{"overlap", func(d *obsDashboard) { d.Panels[2].GridPos = d.Panels[1].GridPos }, "overlap"},
		} {
			d := obsReadDashboard(t)
			tc.mutate(d)
			got := obsDashboardProblems(d)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("%s: got %q, want a problem containing %q", tc.name, got, tc.want)
			}
		}
	})

	t.Run("alert conventions", func(t *testing.T) {
		t.Parallel()
		runbook := obsReadRunbook(t)
		var tests obsRuleTests
		obsReadYAML(t, obsAlertTestsFile, &tests)
		rules := obsAlertRules(t)
		if got := obsAlertProblems(rules, runbook, tests); len(got) != 0 {
			t.Fatalf("the real rules: %q", got)
		}
		for _, tc := range []struct {
			name   string
			mutate func(rs []obsRule) []obsRule
			book   string
			want   string
		}{
			{"no for", func(rs []obsRule) []obsRule { rs[0].For = ""; return rs }, "", "no for:"},
			{"bad severity", func(rs []obsRule) []obsRule { rs[0].Labels = map[string]string{"severity": "page"}; return rs }, "", "severity"},
			{"wrong runbook", func(rs []obsRule) []obsRule {
				rs[0].Annotations = map[string]string{"summary": "s", "description": "d", "runbook_url": obsRunbookBase + "elsewhere"}
				return rs
			}, "", "runbook_url"},
			{"untested alert", func(rs []obsRule) []obsRule {
				return append(rs, obsRule{Alert: "SSOGatewayNew", Expr: "vector(1)", For: "1m", Labels: rs[0].Labels,
					Annotations: map[string]string{"summary": "s", "description": "d", "runbook_url": obsRunbookBase + "ssogatewaynew"}})
			}, "\n### SSOGatewayNew\n", "SSOGatewayNew: no unit test in which it fires"},
			{"no runbook section", func(rs []obsRule) []obsRule { return rs }, "no sections", "section in"},
		} {
			rs := tc.mutate(slices.Clone(rules))
			book := runbook + tc.book
			if tc.book == "no sections" {
				book = ""
			}
			got := obsAlertProblems(rs, book, tests)
			if !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("%s: got %q, want a problem containing %q", tc.name, got, tc.want)
			}
		}
	})

	t.Run("promtool", func(t *testing.T) {
		t.Parallel()
		alerts, err := os.ReadFile(obsAlertsFile)
		if err != nil {
			t.Fatal(err)
		}
		// Only the replay store's tests, which evaluate for minutes, not
		// the week the no-successful-logins tests need.
		var tests map[string]any
		obsReadYAML(t, obsAlertTestsFile, &tests)
		var kept []any
		for _, tc := range tests["tests"].([]any) {
			if tc.(map[string]any)["name"] == "replay store down" {
				kept = append(kept, tc)
			}
		}
		if len(kept) != 1 {
			t.Fatalf("%s: no test named %q", obsAlertTestsFile, "replay store down")
		}
		tests["tests"] = kept
		testYAML, err := yaml.Marshal(tests)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, old, new, command string
		}{
			{"wrong threshold", "sso_gateway_replay_store_up == 0", "sso_gateway_replay_store_up == 2", "test"},
			{"broken PromQL", "sso_gateway_replay_store_up == 0", "sso_gateway_replay_store_up == = 0", "check"},
		} {
			if !bytes.Contains(alerts, []byte(tc.old)) {
				t.Fatalf("%s: %s lacks %q", tc.name, obsAlertsFile, tc.old)
			}
			dir := t.TempDir()
			broken := bytes.Replace(alerts, []byte(tc.old), []byte(tc.new), 1)
			if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), broken, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "alerts_test.yml"), testYAML, 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"check", "rules", filepath.Join(dir, "alerts.yml")}
			if tc.command == "test" {
				args = []string{"test", "rules", filepath.Join(dir, "alerts_test.yml")}
			}
			if out, ok := obsRunPromtool(t, args...); ok {
				t.Errorf("%s: promtool %s passed:\n%s", tc.name, strings.Join(args, " "), out)
			}
		}
	})
}
