package engine

import (
	"context"
	"runtime"
	"time"

	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/backoff"
)

// fetchLoop runs one of the source's fetchers. It fetches once at least
// half of the prefetch fits in the free credits, asking for as many jobs as
// there are free credits (within the memory bound): fetches are batches,
// and the workers have jobs queued while the next batch is on its way.
//
// A fetcher whose last fetch was not full (idle: no backlog) asks for half
// the prefetch only. Its fetch will most likely wait for work, holding the
// credits it took, and credits held so are credits the other fetchers, the
// retrier and the sweeper cannot have.
func (e *Engine) fetchLoop(ctx context.Context, f Fetcher) error {
	if g, ok := f.(Gated); ok {
		select {
		case <-g.Ready():
		case <-ctx.Done():
			return nil
		}
	}
	call := e.hs.loop("fetch")
	attempt, idle, carry := 0, false, 0
	for ctx.Err() == nil {
		n := carry
		carry = 0
		if n == 0 {
			p := e.prefetch()
			lo, hi := (p+1)/2, e.cfg.Concurrency+p
			if idle {
				hi = lo
			}
			if n = e.credits.Take(ctx, lo, hi); n == 0 {
				return nil
			}
		}
		probe := e.sizeAvg.Load() == 0
		want, res, ok := e.fitBytes(ctx, n)
		if !ok {
			e.credits.Give(n)
			return nil
		}
		start := time.Now()
		call.begin(e.hs.stamp(start))
		ds, err := f.Fetch(ctx, want)
		call.end()
		if err != nil {
			e.credits.Give(n)
			e.unreserve(res)
			if err := e.handleErr(ctx, "fetch", err, &attempt); err != nil {
				return stopped(err)
			}
			continue
		}
		attempt = 0
		now := time.Now()
		e.hs.ok(e.hs.stamp(now), true)
		if len(ds) == want {
			observe(&e.fetchNs, int64(now.Sub(start))) // a fetch that did not wait
		}
		idle = len(ds) < want
		used := e.dispatchAll(ds)
		e.unreserve(res)
		e.event(hook.Delivered, used)
		if probe && !idle && used == want && want < n {
			// The first job told the size of jobs: fetch what fits of
			// the other credits now, as the fetch would have.
			carry = n - used
		} else {
			e.credits.Give(n - used)
		}
		if used > 0 {
			// Let a worker start on this processor now, before this
			// fetcher sends its next fetch: handlers start about 20µs
			// sooner at the median (docs/performance.md).
			runtime.Gosched()
		}
	}
	return nil
}

// fitBytes bounds a fetch of n jobs (the credits taken) by the memory
// bound: it waits while the jobs held and the fetches on their way fill
// MaxBytes, then returns how many fit at the average job size seen so far
// (one while no size is known: the first job tells it), and reserves those
// bytes (res) for the fetch, so that fetchers running at once do not each
// fill the same room. The caller gives res back with unreserve once the
// fetch is dispatched. It reports false when ctx ended.
func (e *Engine) fitBytes(ctx context.Context, n int) (want int, res int64, ok bool) {
	for {
		e.mu.Lock()
		if room := e.cfg.MaxBytes - e.heldBytes - e.reserved; room > 0 {
			avg := e.sizeAvg.Load()
			want = 1
			if avg > 0 {
				want = max(1, min(n, int(room/avg)))
			}
			res = min(int64(want)*avg, room)
			e.reserved += res
			e.mu.Unlock()
			return want, res, true
		}
		e.mu.Unlock()
		select {
		case <-ctx.Done():
			return 0, 0, false
		case <-e.freed:
		}
	}
}

// unreserve gives back bytes fitBytes reserved.
func (e *Engine) unreserve(res int64) {
	if res == 0 {
		return
	}
	e.mu.Lock()
	e.reserved -= res
	e.signalFreedLocked()
	e.mu.Unlock()
}

// sweepLoop runs the source's sweeps: one at start, then one every
// SweepInterval (with jitter). A sweep that has more to look at goes on at
// once, within credits.
func (e *Engine) sweepLoop(ctx context.Context, s Sweeper) error {
	call := e.hs.loop("sweep")
	attempt := 0
	for {
		if err := e.sweep(ctx, s, call, &attempt); err != nil {
			return stopped(err)
		}
		if !backoff.Sleep(ctx, backoff.Jitter(s.SweepInterval(), 0.2)) {
			return nil
		}
	}
}

func (e *Engine) sweep(ctx context.Context, s Sweeper, call *loopCall, attempt *int) error {
	for {
		// Like a fetcher, sweep once half of the prefetch fits (or
		// Concurrency, what idle fetchers leave free).
		p := e.prefetch()
		n := e.credits.Take(ctx, min((p+1)/2, e.cfg.Concurrency), e.cfg.Concurrency+p)
		if n == 0 {
			return errStop
		}
		want, res, ok := e.fitBytes(ctx, n)
		if !ok {
			e.credits.Give(n)
			return errStop
		}
		start := time.Now()
		call.begin(e.hs.stamp(start))
		ds, more, err := s.Sweep(ctx, want)
		call.end()
		if err != nil {
			e.credits.Give(n)
			e.unreserve(res)
			return e.handleErr(ctx, "sweep", err, attempt) // then the next interval
		}
		*attempt = 0
		now := time.Now()
		e.hs.ok(e.hs.stamp(now), true)
		if len(ds) == want {
			observe(&e.fetchNs, int64(now.Sub(start)))
		}
		used := e.dispatchAll(ds)
		e.unreserve(res)
		e.c.swept.Add(uint64(used))
		e.event(hook.Reclaimed, used)
		e.credits.Give(n - used)
		if !more {
			return nil
		}
	}
}
