package loadtest

import (
	"context"
	"time"
)

// loginWarmup is how many logins each login target posts before any
// clock starts: the first ones pay for connections, lazy initialisation
// and the heap's growth to its working size, which would otherwise weigh
// on the first target measured.
func loginWarmup(logins int) int { return max(8*loginPosters, logins/8) }

// loginTarget is one server whose logins are measured.
type loginTarget struct {
	id, name            string
	server, extra       *process // extra: Redis, whose CPU is reported apart
	acs, host, cookie   string
	perSec, cpu, extras []float64 // per round
}

// loginRows measures logins per second: the gateway with the in-memory
// replay cache, with the Redis one, and mellon. Every response is signed
// before the clock of its round starts, every target is warmed up, and then the
// targets take turns for Options.Rounds rounds, so that a busy moment of
// the shared machine does not fall on one of them; medians are reported.
func (r *runner) loginRows(ctx context.Context, rep *Report) error {
	rounds := max(r.o.Rounds, 1)
	var targets []*loginTarget
	if r.o.runs(rowLoginMemory) {
		gw, err := startGateway(ctx, r.sup, r.gatewayBin, "gateway-"+rowLoginMemory, r.files, r.upstreamAddr, "")
		if err != nil {
			return err
		}
		defer gw.kill()
		targets = append(targets, &loginTarget{id: rowLoginMemory, name: "gateway, in-memory replay cache",
			server: gw.process, acs: "http://" + gw.addr + gatewayACSPath, host: gatewayHost, cookie: gatewayCookie})
	}
	if r.o.runs(rowLoginRedis) {
		redis, url, err := startRedis(ctx, r.sup, r.tools.redis)
		if err != nil {
			return err
		}
		defer redis.kill()
		gw, err := startGateway(ctx, r.sup, r.gatewayBin, "gateway-"+rowLoginRedis, r.files, r.upstreamAddr, url)
		if err != nil {
			return err
		}
		defer gw.kill()
		targets = append(targets, &loginTarget{id: rowLoginRedis, name: "gateway, Redis replay cache",
			server: gw.process, extra: redis, acs: "http://" + gw.addr + gatewayACSPath, host: gatewayHost, cookie: gatewayCookie})
	}
	if r.o.runs(rowLoginMellon) && r.tools.apacheModules != "" {
		if err := r.startMellon(ctx); err != nil {
			return err
		}
		targets = append(targets, &loginTarget{id: rowLoginMellon, name: "Apache + mod_auth_mellon",
			server: r.mellon.process, acs: r.mellon.acs(), host: r.mellon.host(), cookie: mellonCookie})
	}
	// Each batch is signed just before it is posted, outside every clock:
	// signed all at once, the last rounds' responses would be older than
	// the gateway accepts (their IssueInstant) on a slow machine.
	sign := func(t *loginTarget, n int) ([]string, error) {
		r.logf("signing %d responses for %s", n, t.name)
		if t.id == rowLoginMellon {
			return r.mellonForms(ctx, n, referenceGroups)
		}
		return r.gatewayForms(ctx, n, referenceGroups)
	}
	for _, t := range targets {
		forms, err := sign(t, loginWarmup(r.o.Logins))
		if err != nil {
			return err
		}
		if _, err := loginAll(ctx, r.browser, t.acs, t.host, t.cookie, forms); err != nil {
			return t.server.failed(err)
		}
	}
	for round := range rounds {
		for _, t := range targets {
			forms, err := sign(t, r.o.Logins)
			if err != nil {
				return err
			}
			r.logf("logins: round %d/%d: %s", round+1, rounds, t.name)
			if err := r.loginRound(ctx, t, forms); err != nil {
				return err
			}
		}
	}
	var rows []LoginRow
	for _, t := range targets {
		row := LoginRow{ID: t.id, Name: t.name, Logins: r.o.Logins,
			LoginsPerSec: median(t.perSec), CPUPerLoginMs: median(t.cpu)}
		if t.extra != nil {
			row.RedisCPUPerLoginMs = median(t.extras)
		}
		r.logf("logins: %-38s %5.0f logins/s, CPU/login %.2f ms (median of %d)", t.name, row.LoginsPerSec, row.CPUPerLoginMs, rounds)
		rows = append(rows, row)
	}
	fillLoginRatios(rows)
	rep.Logins = append(rep.Logins, rows...)
	return nil
}

// loginRound posts forms to t's ACS, loginPosters at a time; each must sign
// a user in. It records the logins per second and the server's CPU per
// login (and extra's, apart).
func (r *runner) loginRound(ctx context.Context, t *loginTarget, forms []string) error {
	pids := []int{t.server.pid()}
	if t.extra != nil {
		pids = append(pids, t.extra.pid())
	}
	wall, cpu, err := r.elapsed(pids, func() error {
		_, err := loginAll(ctx, r.browser, t.acs, t.host, t.cookie, forms)
		return err
	})
	if err != nil {
		return t.server.failed(err)
	}
	t.server.clearLog()
	n := len(forms)
	t.perSec = append(t.perSec, float64(n)/wall.Seconds())
	t.cpu = append(t.cpu, perLoginMs(cpu[0], n))
	if t.extra != nil {
		t.extras = append(t.extras, perLoginMs(cpu[1], n))
	}
	return nil
}

func perLoginMs(cpu time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(cpu) / float64(time.Millisecond) / float64(n)
}

// fillLoginRatios sets each row's ratios to mellon's and to the in-memory
// gateway's rows, when they are there.
func fillLoginRatios(rows []LoginRow) {
	var mellon, memory float64
	for _, l := range rows {
		switch l.ID {
		case rowLoginMellon:
			mellon = l.LoginsPerSec
		case rowLoginMemory:
			memory = l.LoginsPerSec
		}
	}
	for i := range rows {
		rows[i].VsMellon = ratio(rows[i].LoginsPerSec, mellon)
		rows[i].VsMemory = ratio(rows[i].LoginsPerSec, memory)
	}
}
