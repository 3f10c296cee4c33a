package main

import (
	"context"
	"fmt"
	"time"
)

// progress is what the drain waits for and the monitor logs. It is
// comparable: the drain compares two reads.
type progress struct {
	handled int64    // distinct jobs in the ledger
	dead    int      // distinct poison jobs dead-lettered
	left    leftover // what is in flight; nil when it could not be read
}

// progress reads how far t is: the jobs in its ledger, the poison jobs in
// its dead letters and what it has in flight.
func (e *env) progress(ctx context.Context, t target) (progress, error) {
	var p progress
	var err error
	if p.handled, err = e.admin.HLen(ctx, t.ledger()).Result(); err != nil {
		return p, err
	}
	if p.left, err = t.left(ctx); err != nil {
		return p, err
	}
	letters, err := t.deadLetters(ctx)
	if err != nil {
		return p, err
	}
	dead := make(map[string]bool, len(letters))
	for _, d := range letters {
		if d.bad == "" {
			dead[d.key] = true
		}
	}
	for _, j := range e.jobs {
		if j.kind != kindOK && dead[j.key] {
			p.dead++
		}
	}
	return p, nil
}

// attrs are the drain's log attributes of what is in flight.
func (p progress) attrs() []any {
	if p.left == nil {
		return nil
	}
	return p.left.attrs()
}

// kinds counts the jobs that are not poison and the poison ones.
func (e *env) kinds() (ok, poison int64) {
	for _, j := range e.jobs {
		if j.kind == kindOK {
			ok++
		} else {
			poison++
		}
	}
	return ok, poison
}

// drain waits until t has nothing in flight (streams: the group has been
// delivered every entry and nothing is pending; lists: the queues and
// processing lists are empty), every job that is not poison is in its
// ledger and every poison job is dead-lettered, for at most
// cfg.drainTimeout.
func (e *env) drain(ctx context.Context, t target) (time.Duration, error) {
	start := time.Now()
	ok, poison := e.kinds()
	deadline := start.Add(e.cfg.drainTimeout)
	lastLog := start
	var last, prev progress
	var lastErr error
	settled := 0 // polls in a row with nothing left that could change the outcome
	for {
		prev = last
		last, lastErr = e.progress(ctx, t)
		idle := lastErr == nil && last.left.idle()
		if idle && last.handled >= ok && int64(last.dead) == poison {
			d := time.Since(start)
			e.log.Info("drained", "target", t.name(), "in", d.Round(time.Millisecond))
			return d, nil
		}
		// Nothing in flight: what is missing now stays missing. Three polls
		// in a row, because the progress is not read atomically.
		if idle && last == prev {
			settled++
		} else {
			settled = 0
		}
		if settled >= 3 {
			return time.Since(start), fmt.Errorf("%s: drain settled with nothing in flight (%v), but only %d/%d jobs handled and %d/%d poison jobs dead-lettered",
				t.name(), last.left, last.handled, ok, last.dead, poison)
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("%s: drain timed out after %v: handled %d/%d, dead %d/%d, %v (last error: %v)",
				t.name(), e.cfg.drainTimeout, last.handled, ok, last.dead, poison, last.left, lastErr)
		}
		if time.Since(lastLog) >= 2*time.Second {
			lastLog = time.Now()
			attrs := append([]any{"target", t.name(), "handled", last.handled, "of", ok, "dead", last.dead, "of", poison}, last.attrs()...)
			e.log.Info("draining", append(attrs, "err", lastErr)...)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return time.Since(start), err
		}
	}
}
