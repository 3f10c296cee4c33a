package engine

import (
	"context"

	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/redischeck"
)

// checkEviction checks the server's maxmemory-policy once, at the start
// of Run (see redischeck.EvictionPolicy: a policy other than noeviction is
// logged at Warn, a refused CONFIG GET at Info, once per client). Transient
// errors are retried with backoff, like the group's creation, until ctx
// ends; nothing it finds stops the consumer.
func (e *Engine) checkEviction(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		err := redischeck.EvictionPolicy(ctx, e.cfg.Client, e.cfg.warnLog)
		if err == nil || ctx.Err() != nil {
			return
		}
		e.transient("check maxmemory-policy", err)
		if !backoff.Sleep(ctx, e.transientBackoff.Delay(attempt)) {
			return
		}
	}
}
