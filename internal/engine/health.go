package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamgroup/streamgroup/health"
)

// healthState is what Health reports from. It is written with atomics once
// per fetch, sweep or settling call (never per job), and under mu only on
// the rarer events: an error waited out, a repair, Run's end.
//
// Times are kept as nanoseconds since base plus one (zero: never), so that
// they are monotonic: a step of the wall clock neither wedges a loop nor
// unwedges it.
type healthState struct {
	base time.Time

	run       atomic.Int64 // Run called
	started   atomic.Int64 // the source's Start succeeded
	lastFetch atomic.Int64 // a fetch or sweep succeeded
	downSince atomic.Int64 // first error waited out since the last success
	missing   atomic.Bool  // a repair (NOGROUP) is under way or failed
	stopped   atomic.Bool  // Run returned

	mu     sync.Mutex
	err    error       // latest error waited out, while down or missing
	runErr error       // Run's result
	calls  []*loopCall // one per fetch or sweep loop
}

// loopCall is the Redis call of one loop in flight: since is zero between
// calls.
type loopCall struct {
	op    string
	since atomic.Int64
}

func (h *healthState) stamp(t time.Time) int64 { return int64(t.Sub(h.base)) + 1 }

func (h *healthState) at(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return h.base.Add(time.Duration(ns - 1))
}

// loop registers a loop that makes calls of kind op ("fetch", "sweep").
func (h *healthState) loop(op string) *loopCall {
	c := &loopCall{op: op}
	h.mu.Lock()
	h.calls = append(h.calls, c)
	h.mu.Unlock()
	return c
}

func (c *loopCall) begin(stamp int64) { c.since.Store(stamp) }
func (c *loopCall) end()              { c.since.Store(0) }

// ok records a call to Redis that succeeded at stamp; fetched says it was
// a fetch or a sweep.
func (h *healthState) ok(stamp int64, fetched bool) {
	if fetched {
		h.lastFetch.Store(stamp)
	}
	if h.downSince.Load() != 0 {
		h.mu.Lock()
		h.downSince.Store(0)
		if !h.missing.Load() {
			h.err = nil
		}
		h.mu.Unlock()
	}
}

// okNow records a call to Redis, other than a fetch or a sweep, that
// succeeded now.
func (h *healthState) okNow() { h.ok(h.stamp(time.Now()), false) }

// failed records an error the consumer waits out. An error that only says a
// stop cut the call short is not Redis's doing.
func (h *healthState) failed(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h.mu.Lock()
	h.downSince.CompareAndSwap(0, h.stamp(time.Now()))
	h.err = err
	h.mu.Unlock()
}

// groupMissing records a repair under way (err, its cause) or done.
func (h *healthState) groupMissing(err error) {
	h.mu.Lock()
	h.missing.Store(err != nil)
	if err != nil {
		h.err = err
	} else if h.downSince.Load() == 0 {
		h.err = nil
	}
	h.mu.Unlock()
}

// stop records Run's end with its result.
func (h *healthState) stop(err error) {
	h.mu.Lock()
	h.runErr = err
	h.stopped.Store(true)
	h.mu.Unlock()
}

// Health returns the consumer's health now (see package health). It is
// safe for concurrent use, before, during and after Run.
func (e *Engine) Health() health.Status {
	h := &e.hs
	now := time.Now()
	s := health.Status{
		Name:             e.cfg.Name,
		Started:          h.at(h.started.Load()),
		LastFetch:        h.at(h.lastFetch.Load()),
		UnreachableSince: h.at(h.downSince.Load()),
		GroupMissing:     h.missing.Load(),
		Stopped:          h.stopped.Load(),
	}
	running := h.run.Load() != 0 && !s.Stopped
	s.Draining = running && e.stopping.Load()

	limit := e.cfg.FetchWait + health.WedgedAfter
	var stuckOp string
	var stuckFor time.Duration
	h.mu.Lock()
	waited, runErr := h.err, h.runErr
	for _, c := range h.calls {
		if since := c.since.Load(); since != 0 {
			if d := now.Sub(h.at(since)); d > limit && d > stuckFor {
				stuckOp, stuckFor = c.op, d
			}
		}
	}
	h.mu.Unlock()
	s.Wedged = running && stuckOp != ""

	switch {
	case s.Stopped:
		s.Err = runErr
	case !s.UnreachableSince.IsZero() || s.GroupMissing:
		s.Err = waited
	}
	s.Live = !(s.Stopped && runErr != nil) && !s.Wedged

	var why []string
	switch {
	case s.Stopped && runErr != nil:
		why = append(why, "stopped: "+runErr.Error())
	case s.Stopped:
		why = append(why, "stopped")
	case h.run.Load() == 0:
		why = append(why, "not running: Run not called")
	case s.Started.IsZero():
		why = append(why, "starting")
	}
	if !s.Stopped {
		if s.Draining {
			why = append(why, "draining")
		}
		if s.Wedged {
			why = append(why, fmt.Sprintf("wedged: a %s has been in flight for %v (limit %v)", stuckOp, stuckFor.Round(time.Second), limit))
		}
		if s.GroupMissing {
			why = append(why, "consumer group missing: creating it again")
		}
		if !s.UnreachableSince.IsZero() {
			r := fmt.Sprintf("redis unavailable for %v (since %s)", now.Sub(s.UnreachableSince).Round(time.Millisecond), s.UnreachableSince.UTC().Format(time.RFC3339))
			if waited != nil {
				r += ": " + waited.Error()
			}
			why = append(why, r)
		}
	}
	s.Ready = len(why) == 0
	s.Reason = strings.Join(why, "; ")
	return s
}
