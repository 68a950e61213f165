package loadtest

import (
	"context"
	"time"
)

// loginWarmup is how many logins each login row posts before its clock
// starts: the first ones pay for connections and lazy initialisation.
const loginWarmup = 2 * loginPosters

// loginRows measures logins per second: the gateway with the in-memory
// replay cache, with the Redis one, and mellon. Each gateway is fresh.
// Every response is signed before the clock starts.
func (r *runner) loginRows(ctx context.Context, rep *Report) error {
	var rows []LoginRow
	if r.o.runs(rowLoginMemory) {
		row, err := r.gatewayLogins(ctx, rowLoginMemory, "gateway, in-memory replay cache", "")
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	if r.o.runs(rowLoginRedis) {
		redis, url, err := startRedis(ctx, r.sup, r.tools.redis)
		if err != nil {
			return err
		}
		row, err := r.gatewayLogins(ctx, rowLoginRedis, "gateway, Redis replay cache", url, redis)
		if err != nil {
			return err
		}
		redis.kill()
		rows = append(rows, row)
	}
	if r.o.runs(rowLoginMellon) && r.tools.apacheModules != "" {
		if err := r.startMellon(ctx); err != nil {
			return err
		}
		r.logf("signing %d responses for mellon", r.o.Logins+loginWarmup)
		forms, err := r.mellonForms(ctx, r.o.Logins+loginWarmup, referenceGroups)
		if err != nil {
			return err
		}
		row, err := r.loginRow(ctx, rowLoginMellon, "Apache + mod_auth_mellon", r.mellon.process, nil,
			r.mellon.acs(), r.mellon.host(), mellonCookie, forms)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	fillLoginRatios(rows)
	rep.Logins = append(rep.Logins, rows...)
	return nil
}

// gatewayLogins starts a gateway (with the Redis replay cache at redisURL,
// if not ""), and measures its logins; redis, if given, is the Redis
// server whose CPU is reported apart.
func (r *runner) gatewayLogins(ctx context.Context, id, name, redisURL string, redis ...*process) (LoginRow, error) {
	gw, err := startGateway(ctx, r.sup, r.gatewayBin, "gateway-"+id, r.files, r.upstreamAddr, redisURL)
	if err != nil {
		return LoginRow{}, err
	}
	defer gw.kill()
	r.logf("signing %d responses for %s", r.o.Logins+loginWarmup, name)
	forms, err := r.gatewayForms(ctx, r.o.Logins+loginWarmup, referenceGroups)
	if err != nil {
		return LoginRow{}, err
	}
	var extra *process
	if len(redis) > 0 {
		extra = redis[0]
	}
	return r.loginRow(ctx, id, name, gw.process, extra, "http://"+gw.addr+gatewayACSPath, gatewayHost, gatewayCookie, forms)
}

// loginRow posts forms (the first loginWarmup before the clock starts) to
// the ACS at acs, loginPosters at a time; each must sign a user in. It
// reports the logins per second and server's CPU per login (and extra's,
// if not nil, apart).
func (r *runner) loginRow(ctx context.Context, id, name string, server, extra *process, acs, host, cookie string, forms []string) (LoginRow, error) {
	warm, forms := forms[:loginWarmup], forms[loginWarmup:]
	if _, err := loginAll(ctx, r.browser, acs, host, cookie, warm); err != nil {
		return LoginRow{}, server.failed(err)
	}
	pids := []int{server.pid()}
	if extra != nil {
		pids = append(pids, extra.pid())
	}
	wall, cpu, err := r.elapsed(pids, func() error {
		_, err := loginAll(ctx, r.browser, acs, host, cookie, forms)
		return err
	})
	if err != nil {
		return LoginRow{}, server.failed(err)
	}
	server.clearLog()
	n := len(forms)
	row := LoginRow{
		ID: id, Name: name, Logins: n,
		LoginsPerSec:  float64(n) / wall.Seconds(),
		CPUPerLoginMs: perLoginMs(cpu[0], n),
	}
	if extra != nil {
		row.RedisCPUPerLoginMs = perLoginMs(cpu[1], n)
	}
	r.logf("logins: %-38s %5.0f logins/s, CPU/login %.2f ms", name, row.LoginsPerSec, row.CPUPerLoginMs)
	return row, nil
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
