package queue

import (
	"context"

	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/redischeck"
)

// checkEviction checks the server's maxmemory-policy once, at the start
// of Run (see redischeck.EvictionPolicy: a policy other than noeviction is
// logged at Warn, a refused CONFIG GET at Info, once per client).
// Transient errors are retried with backoff until ctx ends; nothing it
// finds stops the consumer.
func (c *Consumer) checkEviction(ctx context.Context) {
	for attempt := 0; ; attempt++ {
		err := redischeck.EvictionPolicy(ctx, c.rdb, c.cfg.warnLog)
		if err == nil || ctx.Err() != nil {
			return
		}
		c.transient("check maxmemory-policy", err)
		if !backoff.Sleep(ctx, c.transientBackoff.Delay(attempt)) {
			return
		}
	}
}
