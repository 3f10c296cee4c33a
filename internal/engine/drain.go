package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/streamgroup/streamgroup/hook"
)

// drain stops the workers once the loops that dispatch have returned.
// What no handler runs is handed back at once (fetched and not started,
// waiting for a retry, waiting to be dead-lettered again), so other
// consumers can take it during the drain; running handlers get up to
// DrainTimeout, and what they failed meanwhile is handed back after them.
// Past DrainTimeout the handlers' contexts are cancelled (cause
// ErrDrainTimeout); those that still run after a short grace are
// abandoned: their jobs stay held in Redis, for another consumer once the
// keep-alive stops.
func (e *Engine) drain() error {
	e.stopping.Store(true)
	close(e.queue)
	e.log.Info("draining: handing back what no handler runs; waiting for running handlers")
	e.handBack()
	done := make(chan struct{})
	go func() { e.handlers.Wait(); close(done) }()
	t := time.NewTimer(e.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-done:
		e.handBack()
		return nil
	case <-t.C:
	}
	e.mu.Lock()
	for _, d := range e.holds {
		if d.state == inHandler && d.cancel != nil {
			d.cancel(ErrDrainTimeout)
		}
	}
	e.mu.Unlock()
	grace := time.NewTimer(min(time.Second, e.cfg.DrainTimeout))
	defer grace.Stop()
	select {
	case <-done:
		e.handBack()
		return fmt.Errorf("%w (%v): handlers returned only after their context was cancelled", ErrDrainTimeout, e.cfg.DrainTimeout)
	case <-grace.C:
	}
	e.abandoned.Store(true)
	e.handBack()
	e.mu.Lock()
	n := 0
	for _, d := range e.holds {
		if d.state == inHandler {
			n++
		}
	}
	e.mu.Unlock()
	e.log.Error("drain timeout: handlers still running; their "+e.nouns()+" stay held in Redis until another consumer takes them over", "running", n)
	return fmt.Errorf("%w (%v): %d handlers still running; their %s stay held in Redis and run again", ErrDrainTimeout, e.cfg.DrainTimeout, n, e.nouns())
}

// handBack releases, through the source, every held job that no handler
// runs and that is not waiting for its settling: queued ones with the
// delivery count they had before this delivery, the others with it. Jobs
// whose release fails stay held in Redis and are delivered again later
// (after MinIdle, or once the heartbeat expires): nothing is lost.
func (e *Engine) handBack() {
	var ds []*Delivery
	e.mu.Lock()
	for _, d := range e.holds {
		switch d.state {
		case queued:
			if d.Msg.Deliveries > 0 {
				d.Msg.Deliveries--
			}
		case awaitRetry, awaitDead:
		default:
			continue
		}
		e.forgetLocked(d)
		ds = append(ds, d)
	}
	e.mu.Unlock()
	if len(ds) == 0 {
		return
	}
	// In the order they were fetched, so that a list source puts them back
	// in queue order. Each Release puts its batch first in line, so the
	// batches go last first.
	slices.SortFunc(ds, func(a, b *Delivery) int { return cmp.Compare(a.seq, b.seq) })
	ctx, cancel := context.WithTimeout(context.Background(), SettleTimeout)
	defer cancel()
	released := 0
	for end := len(ds); end > 0; end -= batchMax {
		batch := ds[max(end-batchMax, 0):end]
		n, err := e.src.Release(ctx, batch, true)
		if err != nil {
			e.log.Warn("could not hand back "+e.nouns()+" no handler runs; they stay held in Redis and run again later", "count", end, "err", err)
			e.report(fmt.Errorf("%s: hand back %d %s: %w", e.cfg.Prefix, end, e.nouns(), err))
			break
		}
		released += n
	}
	e.c.released.Add(uint64(released))
	e.event(hook.Released, released)
	e.log.Info("handed back "+e.nouns()+" no handler ran", "count", released)
}
