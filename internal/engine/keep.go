package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/streamgroup/streamgroup/hook"
)

// keepLoop keeps held jobs alive through the source (lease renewal,
// heartbeat) every third of KeepInterval, passing those not kept for a
// third of it: each is kept again within two thirds of the interval, well
// before another consumer may take it. A job the source reports taken by another consumer is no
// longer this consumer's: a handler running on it has its context
// cancelled with cause ErrLeaseLost, and its result is not settled (the
// other consumer runs it); a job waiting for a retry or its settling is
// dropped.
func (e *Engine) keepLoop(ctx context.Context, k Keeper) {
	every := max(k.KeepInterval()/3, time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		stale := e.stale(every)
		lost, err := k.Keep(ctx, stale)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			act, perr := e.src.Classify("keep-alive", err)
			if act == Stop {
				e.report(perr)
				if e.fail != nil {
					e.fail(perr)
				}
				continue
			}
			if act == Wait {
				e.hs.failed(err)
			}
			e.log.Warn("keep-alive failed", "err", err)
			e.report(fmt.Errorf("%s: keep-alive: %w", e.cfg.Prefix, err))
			continue
		}
		if len(stale) > 0 { // a keep of nothing may not reach Redis
			e.hs.okNow()
		}
		e.kept(stale, lost)
	}
}

// stale returns the held jobs not kept for every.
func (e *Engine) stale(every time.Duration) []*Delivery {
	limit := time.Now().Add(-every)
	e.mu.Lock()
	defer e.mu.Unlock()
	var ds []*Delivery
	for _, d := range e.holds {
		if d.kept.Before(limit) {
			ds = append(ds, d)
		}
	}
	return ds
}

// kept records a keep-alive of ds, of which lost were found taken.
func (e *Engine) kept(ds, lost []*Delivery) {
	now := time.Now()
	isLost := make(map[*Delivery]bool, len(lost))
	for _, d := range lost {
		isLost[d] = true
	}
	running := 0
	var ids []string // of the jobs lost, for the hook
	e.mu.Lock()
	for _, d := range ds {
		if !isLost[d] {
			d.kept = now
			continue
		}
		if d.state == gone {
			continue
		}
		if d.state == inHandler && d.cancel != nil {
			d.cancel(ErrLeaseLost)
			running++
		}
		e.forgetLocked(d)
		if e.cfg.Hook != nil {
			ids = append(ids, d.Msg.ID)
		}
	}
	e.mu.Unlock()
	for _, id := range ids {
		e.cfg.Hook.Event(hook.Event{Kind: hook.LeaseLost, ID: id})
	}
	e.c.kept.Add(uint64(len(ds) - len(lost)))
	if len(lost) > 0 {
		e.c.leaseLost.Add(uint64(len(lost)))
		e.log.Warn("lost held "+e.nouns()+" to another consumer (or they were settled meanwhile)", "count", len(lost), "running_handlers_cancelled", running)
	}
}
