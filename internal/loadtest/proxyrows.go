package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Groups in the benchmark's sessions: the reference session, and
// the most Entra sends in a token before it sends a link instead.
const (
	referenceGroups = 20
	maxGroups       = 150
)

// proxySubject is one proxying row: what the client sends, and whose CPU
// is measured.
type proxySubject struct {
	id, name string
	target   target
	server   *process
	gateway  *gatewayProc // for the check that every request was proxied
}

// proxyMeasure is one round of one row.
type proxyMeasure struct {
	res loadResult
	cpu time.Duration
}

// proxyRows starts the servers, signs in, runs the rounds and adds the
// rows' medians to rep.
func (r *runner) proxyRows(ctx context.Context, rep *Report) error {
	subjects, err := r.proxySubjects(ctx)
	if err != nil {
		return err
	}
	measures := make([][]proxyMeasure, len(subjects))
	for round := 1; round <= r.o.Rounds; round++ {
		for i, s := range subjects {
			m, err := r.measure(ctx, s)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			r.logf("proxy round %d/%d: %-38s %7.0f req/s, p99 %v, CPU/req %v", round, r.o.Rounds, s.name, m.res.rate(),
				m.res.P99, (m.cpu / time.Duration(max(m.res.Requests, 1))).Round(time.Microsecond/10))
			measures[i] = append(measures[i], m)
		}
	}
	rows := make([]ProxyRow, len(subjects))
	for i, s := range subjects {
		rows[i] = proxyRow(s.id, s.name, measures[i])
	}
	fillProxyRatios(rows)
	rep.Proxy = append(rep.Proxy, rows...)
	return nil
}

// proxyRow reduces a row's rounds to their medians, each metric apart.
func proxyRow(id, name string, ms []proxyMeasure) ProxyRow {
	var rate, p50, p99, cpu []float64
	var requests int64
	for _, m := range ms {
		requests += m.res.Requests
		rate = append(rate, m.res.rate())
		p50 = append(p50, float64(m.res.P50)/float64(time.Microsecond))
		p99 = append(p99, float64(m.res.P99)/float64(time.Microsecond))
		if m.res.Requests > 0 {
			cpu = append(cpu, float64(m.cpu)/float64(time.Microsecond)/float64(m.res.Requests))
		}
	}
	return ProxyRow{
		ID: id, Name: name, Requests: requests,
		ReqPerSec: median(rate), P50us: median(p50), P99us: median(p99), CPUPerReqUs: median(cpu),
	}
}

// fillProxyRatios sets every row's ratios to the bare proxy's and mellon's
// rows, when they are there. The 150-group gateway row is held against
// the bare proxy sent the same 150-group cookie and mellon with a
// 150-group session, when those rows ran: a 5 KB cookie, and 5 KB of
// groups sent upstream, cost any proxy.
func fillProxyRatios(rows []ProxyRow) {
	var bare, bare150, mellon, mellon150 *ProxyRow
	for i := range rows {
		switch rows[i].ID {
		case rowBare:
			bare = &rows[i]
		case rowBare150:
			bare150 = &rows[i]
		case rowMellon:
			mellon = &rows[i]
		case rowMellon150:
			mellon150 = &rows[i]
		}
	}
	for i := range rows {
		p := &rows[i]
		base, mellon := bare, mellon
		if p.ID == rowGateway150 {
			if bare150 != nil {
				base = bare150
			}
			if mellon150 != nil {
				mellon = mellon150
			}
		}
		if base != nil {
			p.VsBare = Ratios{ratio(p.ReqPerSec, base.ReqPerSec), ratio(p.P99us, base.P99us), ratio(p.CPUPerReqUs, base.CPUPerReqUs)}
		}
		if mellon != nil {
			p.VsMellon = Ratios{ratio(p.ReqPerSec, mellon.ReqPerSec), ratio(p.P99us, mellon.P99us), ratio(p.CPUPerReqUs, mellon.CPUPerReqUs)}
		}
	}
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// proxySubjects starts the servers of the selected rows and signs in to
// those that need a session. Every row sends the same request head: the
// rows without sessions of their own carry the gateway's 20-group session
// cookie, as a browser would, so that each server parses the same bytes;
// the bare proxy also runs with the 150-group one, the baseline of the
// 150-group gateway row.
func (r *runner) proxySubjects(ctx context.Context) ([]proxySubject, error) {
	var gw *gatewayProc
	var ref, big string
	var rotation []string
	if r.o.runsAny(rowDirect, rowBare, rowBare150, rowNginx, rowGateway, rowGateway150, rowGatewayRotation, rowAuthGateway, rowAuthTrivial, rowAuthReplay) {
		var err error
		if gw, err = startGateway(ctx, r.sup, r.gatewayBin, "gateway", r.files, r.upstreamAddr, ""); err != nil {
			return nil, err
		}
		n := 1
		if r.o.runsAny(rowGateway150, rowBare150) {
			n++
		}
		r.logf("signing in to the gateway: %d session(s)", n)
		sessions, err := r.gatewaySessions(ctx, gw, 1, referenceGroups)
		if err != nil {
			return nil, err
		}
		ref = sessions[0]
		if r.o.runsAny(rowGateway150, rowBare150) {
			s, err := r.gatewaySessions(ctx, gw, 1, maxGroups)
			if err != nil {
				return nil, err
			}
			big = s[0]
		}
		if r.o.runs(rowGatewayRotation) {
			r.logf("signing in to the gateway: %d sessions for the rotation", r.o.Sessions)
			if rotation, err = r.gatewaySessions(ctx, gw, r.o.Sessions, referenceGroups); err != nil {
				return nil, err
			}
		}
	}
	var subjects []proxySubject
	add := func(id, name, addr string, server *process, g *gatewayProc, cookies ...string) {
		subjects = append(subjects, proxySubject{id: id, name: name, server: server, gateway: g,
			target: target{addr: addr, host: gatewayHost, path: pagePath, cookies: cookies}})
	}
	if r.o.runs(rowDirect) {
		add(rowDirect, "upstream direct (no proxy)", r.upstreamAddr, r.upstream, nil, ref)
	}
	if r.o.runs(rowBare) {
		if err := r.startBare(ctx); err != nil {
			return nil, err
		}
		add(rowBare, "bare httputil.ReverseProxy", r.bareAddr, r.bare, nil, ref)
	}
	if r.o.runs(rowBare150) {
		if err := r.startBare(ctx); err != nil {
			return nil, err
		}
		add(rowBare150, "bare httputil.ReverseProxy, 150-group cookie", r.bareAddr, r.bare, nil, big)
	}
	if r.o.runs(rowNginx) && r.tools.nginx != "" {
		if err := r.startNginx(ctx); err != nil {
			return nil, err
		}
		add(rowNginx, "nginx proxy_pass", r.nginxAddr, r.nginx, nil, ref)
	}
	for _, m := range []struct {
		id, name string
		groups   int
	}{
		{rowMellon, "Apache + mod_auth_mellon, 20 groups", referenceGroups},
		{rowMellon150, "Apache + mod_auth_mellon, 150 groups", maxGroups},
	} {
		if !r.o.runs(m.id) || r.tools.apacheModules == "" {
			continue
		}
		if err := r.startMellon(ctx); err != nil {
			return nil, err
		}
		forms, err := r.mellonForms(ctx, 1, m.groups)
		if err != nil {
			return nil, err
		}
		cookie, err := postLogin(ctx, r.browser, r.mellon.acs(), r.mellon.host(), forms[0], mellonCookie)
		if err != nil {
			return nil, r.mellon.failed(fmt.Errorf("mellon: %w", err))
		}
		if err := checkPage(ctx, r.browser, r.mellon.addr, r.mellon.host(), cookie); err != nil {
			return nil, r.mellon.failed(fmt.Errorf("mellon: %w", err))
		}
		subjects = append(subjects, proxySubject{id: m.id, name: m.name, server: r.mellon.process,
			target: target{addr: r.mellon.addr, host: r.mellon.host(), path: pagePath, cookies: []string{cookie}}})
	}
	if r.tools.nginx != "" && r.o.runsAny(rowAuthTrivial, rowAuthReplay, rowAuthGateway) {
		// Forward auth: nginx asks the gateway's verify endpoint, or a
		// trivial handler, before each request; the CPU counted is the
		// one asked's.
		authRow := func(id, name string, server *process, serverAddr, path string) error {
			_, addr, err := startNginx(ctx, r.sup, r.tools.nginx, "nginx-"+id, r.upstreamAddr, serverAddr, path)
			if err != nil {
				return err
			}
			add(id, name, addr, server, nil, ref)
			return nil
		}
		if r.o.runs(rowAuthTrivial) {
			yes, yesAddr, err := r.sup.startRole(ctx, r.self, roleYes)
			if err != nil {
				return nil, err
			}
			if err := authRow(rowAuthTrivial, "nginx auth_request, a trivial 200 handler", yes, yesAddr, "/"); err != nil {
				return nil, err
			}
		}
		if r.o.runs(rowAuthReplay) {
			file, err := r.verifyAnswer(ctx, gw, ref)
			if err != nil {
				return nil, err
			}
			replay, replayAddr, err := r.sup.startRole(ctx, r.self, roleReplay, "-headers", file)
			if err != nil {
				return nil, err
			}
			if err := authRow(rowAuthReplay, "nginx auth_request, a trivial handler replaying the gateway's answer", replay, replayAddr, "/"); err != nil {
				return nil, err
			}
		}
		if r.o.runs(rowAuthGateway) {
			if err := authRow(rowAuthGateway, "nginx auth_request, gateway verify", gw.process, gw.addr, verifyPath); err != nil {
				return nil, err
			}
		}
	}
	if r.o.runs(rowGateway) {
		add(rowGateway, "gateway, 20 groups", gw.addr, gw.process, gw, ref)
	}
	if r.o.runs(rowGateway150) {
		add(rowGateway150, "gateway, 150 groups", gw.addr, gw.process, gw, big)
	}
	if r.o.runs(rowGatewayRotation) {
		add(rowGatewayRotation, fmt.Sprintf("gateway, %d sessions in rotation", len(rotation)), gw.addr, gw.process, gw, rotation...)
	}
	return subjects, nil
}

// gatewaySessions signs n users in to gw, each in groups groups, and
// checks that each session reaches the upstream.
func (r *runner) gatewaySessions(ctx context.Context, gw *gatewayProc, n, groups int) ([]string, error) {
	forms, err := r.gatewayForms(ctx, n, groups)
	if err != nil {
		return nil, err
	}
	acs := "http://" + gw.addr + gatewayACSPath
	cookies, err := loginAll(ctx, r.browser, acs, gatewayHost, gatewayCookie, forms)
	if err != nil {
		return nil, gw.failed(err)
	}
	err = parallel(ctx, loginPosters, len(cookies), func(i int) error {
		return checkPage(ctx, r.browser, gw.addr, gatewayHost, cookies[i])
	})
	if err != nil {
		return nil, gw.failed(err)
	}
	return cookies, nil
}

// measure runs one round of s: a warm-up, then the measurement, with the
// server's CPU read before and after. A row where any request failed, or
// where the gateway answered anything but the upstream's page, is an
// error.
func (r *runner) measure(ctx context.Context, s proxySubject) (proxyMeasure, error) {
	var m proxyMeasure
	if _, err := r.client.run(ctx, s.target, r.o.Warmup); err != nil {
		return m, err
	}
	var before map[string]float64
	if s.gateway != nil {
		var err error
		if before, err = s.gateway.outcomes(ctx); err != nil {
			return m, err
		}
	}
	_, cpu, err := r.elapsed([]int{s.server.pid()}, func() error {
		var err error
		m.res, err = r.client.run(ctx, s.target, r.o.Duration)
		return err
	})
	if err != nil {
		return m, s.server.failed(err)
	}
	m.cpu = cpu[0]
	if s.gateway != nil {
		after, err := s.gateway.outcomes(ctx)
		if err != nil {
			return m, err
		}
		if err := checkOutcomes(before, after, r.o.Connections); err != nil {
			return m, s.server.failed(err)
		}
	}
	if err := checkLoad(m.res); err != nil {
		return m, s.server.failed(err)
	}
	s.server.clearLog()
	return m, nil
}

// checkLoad returns an error if a run had responses with an error status,
// more than one request in a thousand that failed on the socket, or
// responses too short to be the upstream's page (redirects to sign in,
// error pages). A rare socket error is let pass: on a machine that the
// load generator, every server and, in CI, other tests share, a
// connection can time out with no fault of the server measured. The
// gateway's correctness is its tests' business; this is a benchmark.
func checkLoad(res loadResult) error {
	switch {
	case res.Requests == 0:
		return fmt.Errorf("no request completed")
	case res.Errors*1000 > res.Requests || res.StatusErrors > 0:
		return fmt.Errorf("%d requests failed and %d had an error status, of %d", res.Errors, res.StatusErrors, res.Requests)
	case res.Bytes/res.Requests < bodySize:
		return fmt.Errorf("responses averaged %d bytes, less than the upstream's %d-byte page: the server answered itself", res.Bytes/res.Requests, bodySize)
	}
	return nil
}

// verifyAnswer asks the gateway's forward-auth endpoint about the page
// with cookie, as nginx's subrequest does, and writes the answer's header
// fields, but those net/http sets itself, to a JSON file for the replay
// role. It returns the file's path.
func (r *runner) verifyAnswer(ctx context.Context, gw *gatewayProc, cookie string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+gw.addr+verifyPath, nil)
	if err != nil {
		return "", err
	}
	req.Host = gatewayHost
	req.Header.Set("Cookie", cookie)
	req.Header.Set("X-Original-URI", pagePath)
	req.Header.Set("X-Original-Method", http.MethodGet)
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := r.browser.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Remote-User") == "" {
		return "", fmt.Errorf("GET %s for %s: got %s, X-Remote-User %q; want 200 with the identity", verifyPath, pagePath, resp.Status, resp.Header.Get("X-Remote-User"))
	}
	h := resp.Header.Clone()
	h.Del("Date")
	h.Del("Content-Length")
	b, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	file := filepath.Join(r.sup.dir, "verify-answer.json")
	return file, os.WriteFile(file, b, 0o644)
}
