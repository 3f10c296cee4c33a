// Package flush runs the batching loop shared by the stream consumer's
// acknowledgements (XACK) and the list queue's removals (LREM): work is
// queued by the caller, and flushed when a batch is full, or an interval
// after the first item was queued, with a backoff after failures.
package flush

import (
	"context"
	"time"

	"github.com/streamgroup/streamgroup/internal/backoff"
)

// Loop calls flush until ctx ends: when woken (wake) with at least batch
// items pending, or interval after items were first left pending. After a
// failed flush it waits for the next delay of retry before flushing again
// (waking does not hurry it) and reports the error to failed. A flush that
// fails because ctx ended is not reported: the caller's final flush, after
// Loop returns, takes over.
//
// pending returns how many items are queued; flush sends them.
func Loop(ctx context.Context, wake <-chan struct{}, batch int, interval time.Duration, retry backoff.Policy,
	pending func() int, flush func(context.Context) error, failed func(error)) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	attempt := 0
	var notBefore time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			n := pending()
			if n < batch || time.Now().Before(notBefore) {
				if !armed && n > 0 {
					timer.Reset(max(interval, time.Until(notBefore)))
					armed = true
				}
				continue
			}
		case <-timer.C:
			armed = false
		}
		if err := flush(ctx); err != nil {
			if ctx.Err() != nil {
				continue // the final flush retries
			}
			d := retry.Delay(attempt)
			attempt++
			notBefore = time.Now().Add(d)
			failed(err)
			if !armed {
				timer.Reset(d)
				armed = true
			}
			continue
		}
		attempt = 0
		if pending() > 0 && !armed {
			timer.Reset(interval)
			armed = true
		}
	}
}
