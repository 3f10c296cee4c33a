package engine

import (
	"container/heap"
	"context"
	"time"
)

// dueHeap is the one schedule of held deliveries waiting for a time:
// failed ones waiting for their retry (awaitRetry), and dead-letterings
// that failed, waiting to be tried again (awaitDead). An entry whose
// delivery moved on meanwhile (handed back, lost, rescheduled) is skipped
// when it comes due.
type dueHeap []dueItem

type dueItem struct {
	due time.Time
	d   *Delivery
}

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = dueItem{}
	*h = old[:len(old)-1]
	return it
}

// pushLocked schedules d (in state awaitRetry or awaitDead) at due; e.mu
// must be held.
func (e *Engine) pushLocked(d *Delivery, due time.Time) {
	d.due = due
	heap.Push(&e.schedule, dueItem{due: due, d: d})
	select {
	case e.retryWake <- struct{}{}:
	default:
	}
}

// popDue returns the deliveries due now that are in state want, up to max,
// oldest first, and when the next one falls due.
func (e *Engine) popDue(want state, max int) (due []*Delivery, next time.Time) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for e.schedule.Len() > 0 && len(due) < max {
		it := e.schedule[0]
		if it.d.due != it.due || (it.d.state != awaitRetry && it.d.state != awaitDead) {
			heap.Pop(&e.schedule) // stale
			continue
		}
		if it.due.After(now) {
			return due, it.due
		}
		if it.d.state != want {
			break
		}
		heap.Pop(&e.schedule)
		due = append(due, it.d)
	}
	if e.schedule.Len() > 0 {
		next = e.schedule[0].due
	}
	return due, next
}

// retryLoop runs scheduled work when due: redeliveries of failed
// deliveries (through the source, within credits), and dead-letterings
// that failed before.
func (e *Engine) retryLoop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	attempt := 0
	for {
		if dead, _ := e.popDue(awaitDead, 1); len(dead) > 0 {
			e.retryDeadLetter(dead[0])
			continue
		}
		due, next := e.popDue(awaitRetry, batchMax)
		if len(due) == 0 {
			wait := time.Hour
			if !next.IsZero() {
				wait = max(time.Until(next), 0)
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-e.retryWake:
			case <-timer.C:
			}
			continue
		}
		n := e.credits.Take(ctx, 1, len(due))
		if n == 0 {
			e.reschedule(due, time.Now())
			return nil
		}
		e.reschedule(due[n:], time.Now())
		due = due[:n]
		again, err := e.src.Redeliver(ctx, due)
		if err != nil {
			e.credits.Give(n)
			e.reschedule(due, time.Now().Add(e.transientBackoff.Delay(attempt)))
			if err := e.handleErr(ctx, "retry", err, &attempt); err != nil {
				return stopped(err)
			}
			continue
		}
		attempt = 0
		kept := make(map[*Delivery]bool, len(again))
		for _, d := range again {
			kept[d] = true
		}
		now := time.Now()
		e.mu.Lock()
		ready := again[:0]
		for _, d := range due {
			switch {
			case d.state != awaitRetry: // taken over meanwhile (reclaimed, lost, handed back)
			case kept[d]:
				e.retries--
				d.state = queued
				d.kept = now
				ready = append(ready, d)
			default: // no longer ours, or deleted
				e.forgetLocked(d)
			}
		}
		e.mu.Unlock()
		e.c.delivered.Add(uint64(len(ready)))
		for _, d := range ready {
			e.queue <- d
		}
		e.credits.Give(n - len(ready))
	}
}

// reschedule puts deliveries popped from the schedule back, at due.
func (e *Engine) reschedule(ds []*Delivery, due time.Time) {
	if len(ds) == 0 {
		return
	}
	e.mu.Lock()
	for _, d := range ds {
		if d.state == awaitRetry || d.state == awaitDead {
			e.pushLocked(d, due)
		}
	}
	e.mu.Unlock()
}

// retryDeadLetter tries a failed dead-lettering again.
func (e *Engine) retryDeadLetter(d *Delivery) {
	e.mu.Lock()
	if d.state != awaitDead {
		e.mu.Unlock()
		return
	}
	d.state = inHandler // held while the write runs, as a handler would
	reason := d.reason
	e.mu.Unlock()
	e.deadLetter(d, reason)
}
