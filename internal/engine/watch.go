package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/streamgroup/streamgroup/hook"
)

// The adaptive prefetch sizes what is fetched ahead from the handler time
// it measured. When handler times jump (20,000 instant jobs, then a burst
// of slow ones) the estimate is stale, and the fetch just made may hold far
// more than this consumer's workers will start soon, while other consumers
// idle: one consumer took 62 of a burst of 64 jobs of 100ms, the other 2.
// The watch notices the jump before the first slow handler returns: every
// watchEvery, with every worker busy and work queued, the completions it
// saw bound the handler time from below (Concurrency × the time since the
// last look / completions). A bound above the estimate replaces it, and
// the queued jobs beyond the prefetch at that handler time are handed back
// at once (Release with now), where idle consumers take them. In a steady
// state nothing is queued beyond the prefetch (the credits stop it), so
// only a jump hands anything back.
const watchEvery = 10 * time.Millisecond

func (e *Engine) watchLoop(ctx context.Context) error {
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	last, lastAt := e.finished.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		done, now := e.finished.Load(), time.Now()
		n, window := done-last, now.Sub(lastAt)
		last, lastAt = done, now
		queued := len(e.queue)
		if queued == 0 || int(e.running.Load()) < e.cfg.Concurrency {
			continue
		}
		bound := time.Duration(e.cfg.Concurrency) * window / time.Duration(max(n, 1))
		if int64(bound) > e.handlerNs.Load() {
			e.handlerNs.Store(int64(bound))
		}
		if surplus := queued - e.prefetch(); surplus >= e.cfg.Concurrency {
			e.shed(surplus)
		}
	}
}

// shed hands back up to n queued jobs, taken from the queue before a
// worker starts them. If that fails they go back to the queue: they are
// still this consumer's.
func (e *Engine) shed(n int) {
	var ds []*Delivery
	e.mu.Lock()
	for len(ds) < n && len(e.queue) > 0 {
		d := <-e.queue
		if d.state != queued {
			e.credits.Give(1) // gone meanwhile: it would not reach a handler
			continue
		}
		d.state = releasing
		ds = append(ds, d)
	}
	e.mu.Unlock()
	if len(ds) == 0 {
		return
	}
	for _, d := range ds {
		if d.Msg.Deliveries > 0 {
			d.Msg.Deliveries-- // the count before this unused delivery
		}
	}
	ctx, cancel := e.settleCtx()
	defer cancel()
	released, err := e.src.Release(ctx, ds, true)
	if err != nil {
		e.log.Warn("could not hand back queued "+e.nouns()+" after handler times jumped; keeping them", "count", len(ds), "err", err)
		e.report(fmt.Errorf("%s: hand back %d %s: %w", e.cfg.Prefix, len(ds), e.nouns(), err))
		e.mu.Lock()
		for _, d := range ds {
			if d.Msg.Deliveries > 0 {
				d.Msg.Deliveries++
			}
			d.state = queued
		}
		e.mu.Unlock()
		for _, d := range ds {
			e.queue <- d // never blocks: each still holds its credit
		}
		return
	}
	e.mu.Lock()
	for _, d := range ds {
		e.forgetLocked(d)
	}
	e.mu.Unlock()
	e.credits.Give(len(ds))
	e.c.released.Add(uint64(released))
	e.event(hook.Released, released)
	e.log.Info("handler times jumped: handed back "+e.nouns()+" queued beyond what the workers start soon", "count", released, "handler_time", time.Duration(e.handlerNs.Load()))
}

// Room implements Pace: idle workers, plus the prefetch at the handler
// time h (if above the estimate, it becomes the estimate), minus what is
// queued already.
func (e *Engine) Room(h time.Duration) int {
	if h > 0 && int64(h) > e.handlerNs.Load() {
		e.handlerNs.Store(int64(h))
	}
	room := e.cfg.Concurrency - int(e.running.Load()) + e.prefetch() - len(e.queue)
	return max(room, 0)
}

// HandlerTime implements Pace.
func (e *Engine) HandlerTime() time.Duration { return time.Duration(e.handlerNs.Load()) }
