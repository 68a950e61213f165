package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sso-gateway/sso-gateway/config"
)

// reloadDebounce gathers the several events an editor or a Kubernetes
// ConfigMap update makes into one reload.
const reloadDebounce = 300 * time.Millisecond

// Reload applies cfg: tenants, session keys, SP keys, upstream and TLS
// certificate. On a global problem nothing changes and the old
// configuration keeps serving. A tenant problem does not stop the rest
// from applying: that tenant keeps its last good metadata, or is not
// ready, and the problem is logged and reported. Requests already in
// flight finish with the state they started with; logins started before
// complete after it, because tracked requests live in the browser's
// cookies and the replay cache is kept.
func (g *Gateway) Reload(ctx context.Context, cfg *config.Config) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	old := g.Config()
	logWarnings(ctx, g.log, cfg)
	if err := g.apply(ctx, cfg); err != nil {
		g.reloadFailed(ctx, err)
		return err
	}
	g.metrics.reloads.WithLabelValues("success").Inc()
	g.metrics.lastSuccess.Set(float64(g.clock.Now().Unix()))
	g.metrics.lastOK.Set(1)
	if cfg.Listen != old.Listen || cfg.AdminListen != old.AdminListen || (cfg.TLS == nil) != (old.TLS == nil) ||
		cfg.ReplayCache != old.ReplayCache || cfg.GC != old.GC {
		g.log.Warn("configuration reloaded, but listen, admin_listen, replay_cache, gc and turning tls on or off take effect only after a restart")
	}
	for _, c := range IdentifierChanges(old, cfg) {
		g.log.LogAttrs(ctx, slog.LevelWarn, "tenant's Entra set-up values changed: update its enterprise application in Entra ID at the same time, or its logins fail",
			slog.String("tenant", c.Tenant), slog.String("change", c.String()))
	}
	problems := 0
	for _, l := range g.state.Load().loads {
		if len(l.problems) > 0 {
			problems++
		}
	}
	g.log.Info("configuration reloaded", slog.Int("tenants", len(cfg.Tenants)), slog.Int("tenants_with_problems", problems))
	return nil
}

// ReloadFile reads the configuration file again and applies it, unless it
// has a global problem.
func (g *Gateway) ReloadFile(ctx context.Context) error {
	g.reloadMu.Lock()
	path := g.Config().Path
	g.reloadMu.Unlock()
	if path == "" {
		return errors.New("gateway: the configuration was not read from a file")
	}
	cfg, err := config.Load(path, g.deps.lookupEnv())
	if err := config.Global(err); err != nil {
		g.reloadFailed(ctx, err)
		return err
	}
	return g.Reload(ctx, cfg)
}

// reloadFailed logs every problem of a refused configuration.
func (g *Gateway) reloadFailed(ctx context.Context, err error) {
	g.metrics.reloads.WithLabelValues("failure").Inc()
	g.metrics.lastOK.Set(0)
	problems := config.Problems(err)
	for _, p := range problems {
		g.log.LogAttrs(ctx, slog.LevelError, "configuration problem", slog.String("problem", p.Error()))
	}
	g.log.LogAttrs(ctx, slog.LevelError, "configuration reload refused; the previous configuration keeps serving",
		slog.Int("problems", len(problems)))
}

// Watch reloads the configuration on every value from hup (SIGHUP) and
// whenever the configuration file, or a file it names, changes, until ctx
// ends. It watches folders, not files, because editors and Kubernetes
// replace files rather than write them in place.
func (g *Gateway) Watch(ctx context.Context, hup <-chan os.Signal) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("gateway: watch config: %w", err)
	}
	defer w.Close()
	watched := map[string]bool{}
	watch := func() {
		for _, dir := range g.watchedDirs() {
			if watched[dir] {
				continue
			}
			if err := w.Add(dir); err != nil {
				g.log.Warn("cannot watch a configuration folder; use SIGHUP to reload", slog.String("dir", dir), slog.String("error", err.Error()))
				continue
			}
			watched[dir] = true
		}
	}
	watch()

	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			g.log.Info("SIGHUP: reloading the configuration")
			_ = g.ReloadFile(ctx)
			watch()
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if g.relevant(ev.Name) {
				pending = g.clock.After(reloadDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			g.log.Warn("configuration watch error", slog.String("error", err.Error()))
		case <-pending:
			pending = nil
			g.log.Info("configuration files changed: reloading")
			_ = g.ReloadFile(ctx)
			watch()
		}
	}
}

// watchedDirs are the folders of the configuration file and of every file
// it names.
func (g *Gateway) watchedDirs() []string {
	cfg := g.Config()
	seen := map[string]bool{}
	var dirs []string
	for _, f := range append([]string{cfg.Path}, cfg.Files...) {
		if f == "" {
			continue
		}
		d := filepath.Dir(f)
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// relevant reports whether a changed path is the configuration file, a file
// it names, or Kubernetes' "..data" link that swaps a mounted ConfigMap or
// Secret in one step.
func (g *Gateway) relevant(name string) bool {
	cfg := g.Config()
	if filepath.Base(name) == "..data" {
		return true
	}
	for _, f := range append([]string{cfg.Path}, cfg.Files...) {
		if f != "" && filepath.Clean(name) == filepath.Clean(f) {
			return true
		}
	}
	return false
}

func (d Deps) lookupEnv() config.LookupEnv {
	if d.LookupEnv != nil {
		return d.LookupEnv
	}
	return os.LookupEnv
}
