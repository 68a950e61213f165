package loadtest

import "fmt"

// The targets.
const (
	targetVsBare         = 1.0  // gateway req/s ÷ bare httputil.ReverseProxy req/s, at least
	targetVsMellon       = 1.0  // gateway req/s ÷ Apache + mod_auth_mellon req/s, at least
	targetCPUPerReqUs    = 100  // gateway CPU per request, at most
	targetP99VsBare      = 1.0  // gateway p99 ÷ bare p99, at most
	targetLoginsVsMellon = 2.5  // gateway logins/s ÷ mellon logins/s, at least
	targetCPUPerLoginMs  = 1.5  // gateway CPU per login (in-memory replay cache), at most
	targetRedisVsMemory  = 0.9  // logins/s with Redis ÷ in memory, at least
	targetStreamVsNginx  = 1.2  // gateway MB/s ÷ nginx MB/s, at least
	targetPeakRSSMiB     = 32.0 // gateway peak RSS while streaming, at most
	// targetVerifyOverTrivialUs is what the gateway's forward-auth answer
	// may cost over a trivial handler giving the same answer (the replay
	// row: the same identity header fields, decided by nothing), behind
	// the same nginx auth_request: the session check (a decode-cache
	// hit, under a microsecond in BenchmarkAuthenticate) and the duties
	// every request of the gateway has (the request-smuggling guard, the
	// correlation ID, the client's address, the access-log line, the
	// metrics). What the answer's kilobyte of identity costs to send is
	// the replay row's, over the empty 200's.
	targetVerifyOverTrivialUs = 10
)

// gatewayProxyRows are the proxying rows the targets apply to.
var gatewayProxyRows = []string{rowGateway, rowGateway150, rowGatewayRotation}

// targets checks the goals against the rows r has; a goal whose
// rows are missing is left out.
func (r *Report) targets() []Target {
	var out []Target
	add := func(row, what, got string, met bool) {
		out = append(out, Target{Row: row, What: what, Got: got, Met: met})
	}
	proxy := map[string]ProxyRow{}
	for _, p := range r.Proxy {
		proxy[p.ID] = p
	}
	for _, id := range gatewayProxyRows {
		g, ok := proxy[id]
		if !ok {
			continue
		}
		if g.VsBare.ReqPerSec != 0 {
			add(g.Name, fmt.Sprintf("req/s ≥ %.1f× bare proxy%s", targetVsBare, sameCookie(g.ID)), g.VsBare.ReqPerSec.String(), float64(g.VsBare.ReqPerSec) >= targetVsBare)
		}
		if g.VsMellon.ReqPerSec != 0 {
			add(g.Name, fmt.Sprintf("req/s ≥ %.1f× mellon%s", targetVsMellon, sameGroups(g.ID)), g.VsMellon.ReqPerSec.String(), float64(g.VsMellon.ReqPerSec) >= targetVsMellon)
		}
		add(g.Name, fmt.Sprintf("CPU/req ≤ %d µs", targetCPUPerReqUs), micros(g.CPUPerReqUs), g.CPUPerReqUs <= targetCPUPerReqUs)
		if g.VsBare.P99 != 0 {
			add(g.Name, "p99 ≤ bare proxy's"+sameCookie(g.ID), g.VsBare.P99.String(), float64(g.VsBare.P99) <= targetP99VsBare)
		}
	}
	if v, ok := proxy[rowAuthGateway]; ok {
		// Against the handler that gives the same answer; without that
		// row, against the empty 200, which the target then also
		// charges with sending the identity.
		base, what := rowAuthReplay, "the same answer's"
		if _, ok := proxy[base]; !ok {
			base, what = rowAuthTrivial, "an empty 200's"
		}
		if y, ok := proxy[base]; ok {
			over := v.CPUPerReqUs - y.CPUPerReqUs
			add(v.Name, fmt.Sprintf("CPU/req ≤ %s from a trivial handler + %d µs", what, targetVerifyOverTrivialUs), "+"+micros(over), over <= targetVerifyOverTrivialUs)
		}
	}
	logins := map[string]LoginRow{}
	for _, l := range r.Logins {
		logins[l.ID] = l
	}
	if m, ok := logins[rowLoginMemory]; ok {
		if m.VsMellon != 0 {
			add(m.Name, fmt.Sprintf("logins/s ≥ %.1f× mellon", targetLoginsVsMellon), m.VsMellon.String(), float64(m.VsMellon) >= targetLoginsVsMellon)
		}
		add(m.Name, fmt.Sprintf("CPU/login ≤ %.1f ms", targetCPUPerLoginMs), fmt.Sprintf("%.2f ms", m.CPUPerLoginMs), m.CPUPerLoginMs <= targetCPUPerLoginMs)
	}
	if rd, ok := logins[rowLoginRedis]; ok && rd.VsMemory != 0 {
		add(rd.Name, fmt.Sprintf("logins/s ≥ %.1f× in-memory", targetRedisVsMemory), rd.VsMemory.String(), float64(rd.VsMemory) >= targetRedisVsMemory)
	}
	for _, s := range r.Streams {
		if s.ID != rowDownloadGateway && s.ID != rowUploadGateway {
			continue
		}
		if s.VsNginx != 0 {
			add(s.Name, fmt.Sprintf("MB/s ≥ %.1f× nginx", targetStreamVsNginx), s.VsNginx.String(), float64(s.VsNginx) >= targetStreamVsNginx)
		}
		add(s.Name, fmt.Sprintf("peak RSS ≤ %.0f MiB", targetPeakRSSMiB), fmt.Sprintf("%.1f MiB", s.PeakRSSMiB), s.PeakRSSMiB <= targetPeakRSSMiB)
	}
	return out
}

// sameCookie notes, for the 150-group gateway row, that its baseline is
// the bare proxy sent the same cookie.
func sameCookie(id string) string {
	if id == rowGateway150 {
		return " (same cookie)"
	}
	return ""
}

// sameGroups notes, for the 150-group gateway row, that its mellon
// baseline has a 150-group session too.
func sameGroups(id string) string {
	if id == rowGateway150 {
		return " (150 groups)"
	}
	return ""
}
