package engine

import (
	"context"
	"fmt"

	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/flush"
)

// settleLocked queues d, whose handler succeeded, for a batched Settle. It stays
// held (and kept alive) until then, so that this consumer's own sweeper
// does not hand a finished job to a handler again.
// e.mu must be held.
func (e *Engine) settleLocked(d *Delivery) {
	d.state = awaitSettle
	e.settleBuf = append(e.settleBuf, d)
	if n := len(e.settleBuf); n == 1 || n >= settleBatch {
		select {
		case e.settleWake <- struct{}{}:
		default:
		}
	}
}

// settleLoop flushes settled jobs in batches: when settleBatch are queued,
// else settleInterval after the first one, and a last time when ctx ends,
// with a context of its own (SettleTimeout), so finished work is settled
// even during shutdown.
func (e *Engine) settleLoop(ctx context.Context) {
	flush.Loop(ctx, e.settleWake, settleBatch, settleInterval, e.transientBackoff,
		e.settlePending, e.flushSettled, func(err error) { e.transient("settle", err) })
	e.finalFlush()
}

func (e *Engine) settlePending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.settleBuf)
}

func (e *Engine) finalFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), SettleTimeout)
	defer cancel()
	for attempt := 0; e.settlePending() > 0; attempt++ {
		err := e.flushSettled(ctx)
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			n := e.settlePending()
			e.log.Error("could not settle finished jobs before the settle timeout; they stay held in Redis and will run again", "count", n, "err", err)
			e.report(fmt.Errorf("%s: final settle of %d %s: %w", e.cfg.Prefix, n, e.nouns(), err))
			return
		}
		e.transient("final settle", err)
		backoff.Sleep(ctx, e.transientBackoff.Delay(attempt))
	}
}

// flushSettled settles every queued job, in one Settle call (the source
// splits it into commands). After an error that
// waiting can fix (or that only says ctx ended: a stop cancelled the
// flush in flight), the jobs go back to the queue, for the next flush or
// the final one. After a repair error (the group is gone, with its pending
// entries) they are forgotten: they are delivered again. After an error
// nothing will fix, the consumer stops; the jobs stay held in Redis and
// run again later.
func (e *Engine) flushSettled(ctx context.Context) error {
	e.mu.Lock()
	batch := e.settleBuf
	n := len(batch)
	e.settleBuf = nil
	e.mu.Unlock()
	if n == 0 {
		return nil
	}
	err := e.src.Settle(ctx, batch)
	if err == nil {
		e.c.acked.Add(uint64(n))
		e.hs.okNow()
		e.forgetAll(batch)
		return nil
	}
	act, perr := Wait, error(nil)
	if !isStopped(err) {
		act, perr = e.src.Classify("settle", err)
	}
	switch act {
	case Wait:
		e.mu.Lock()
		e.settleBuf = append(batch, e.settleBuf...)
		e.mu.Unlock()
		return err
	case Repair:
		e.forgetAll(batch)
		e.log.Warn("settling found the consumer group gone; its jobs will be delivered again", "count", n, "err", err)
		e.report(fmt.Errorf("%s: settle %d %s: %w", e.cfg.Prefix, n, e.nouns(), err))
		return nil
	}
	e.forgetAll(batch)
	e.log.Error("settling failed; stopping", "count", n, "err", perr)
	e.report(perr)
	if e.fail != nil {
		e.fail(perr)
	}
	return nil
}

func (e *Engine) forgetAll(ds []*Delivery) {
	e.mu.Lock()
	for _, d := range ds {
		if d.state == awaitSettle {
			e.forgetLocked(d)
		}
	}
	e.mu.Unlock()
}
