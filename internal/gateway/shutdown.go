package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// shutdown stops both servers once the gateway is told to stop (ctx is
// done) or a listener failed: it marks the gateway not ready, keeps
// serving for shutdown_delay so that load balancers take it out of
// rotation, then drains in-flight requests for up to shutdown_timeout and
// cuts off what is left.
func (g *Gateway) shutdown(ctx context.Context, publicSrv, adminSrv *http.Server) error {
	g.draining.Store(true)
	cfg := g.Config()
	drain := cfg.ShutdownTimeout
	g.log.Info("shutting down", slog.Float64("delay_seconds", cfg.ShutdownDelay.Seconds()), slog.Float64("drain_seconds", drain.Seconds()))
	if ctx.Err() != nil && cfg.ShutdownDelay > 0 {
		// Not ready, still serving: load balancers stop sending new
		// requests before the listener closes, so none is refused.
		// (Skipped when a listener failed: nothing is being served.)
		t := time.NewTimer(cfg.ShutdownDelay)
		<-t.C
	}
	// A fresh context: ctx is already done, and in-flight requests
	// deserve the whole drain period.
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := publicSrv.Shutdown(shutdownCtx)
	if err2 := adminSrv.Shutdown(shutdownCtx); err == nil {
		err = err2
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// Shutdown leaves what did not finish open; close it here, so
		// that the cut is the gateway's decision, logged, and not a
		// side effect of the process exiting.
		_ = publicSrv.Close()
		_ = adminSrv.Close()
		g.log.Warn("shutdown_timeout reached: requests still in flight were cut off", slog.Float64("drain_seconds", drain.Seconds()))
		return fmt.Errorf("gateway: requests still in flight after shutdown_timeout (%s) were cut off", drain)
	}
	return err
}
