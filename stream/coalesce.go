package stream

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"time"
)

// DefaultMaxInFlight is how many pipelines of single adds a [Producer] has
// in flight at once when [ProducerOptions.MaxInFlight] is zero.
const DefaultMaxInFlight = 2

// DefaultMaxBatch is the most single adds one pipeline carries when
// [ProducerOptions.MaxBatch] is zero.
const DefaultMaxBatch = 512

// errAbandoned is the error of the adds of a pipeline whose sending
// panicked (in a go-redis hook, say): their outcome is unknown.
var errAbandoned = errors.New("the pipeline carrying the entry panicked; it may or may not have been added")

// Single adds are coalesced by group commit, with no goroutine of the
// producer's own: a caller that finds no pipeline in flight sends its entry
// at once, alone. One that finds some, but fewer than MaxInFlight, takes a
// slot, yields the processor once (runtime.Gosched) so that the goroutines
// about to add queue their entries, and leads them all in one pipeline:
// without that, under load, many pipelines carried a single entry for a
// whole round trip (docs/performance.md). Otherwise it queues. Whoever finishes a
// pipeline hands its slot to the oldest queued call, the leader, which
// wakes, takes itself and up to MaxBatch-1 more queued calls, sends them in
// one pipeline and gives each caller its own result. So a queue is
// never left without a pipeline in flight that will empty it: calls queue
// only when all MaxInFlight slots are busy, and a slot is given up only
// when the queue holds no live call. A queued call whose ctx ends is
// withdrawn (lazily: take skips it); so is a leader whose ctx has ended by
// the time it wakes, which passes the slot on.

// coalescer is the group-commit state of a Producer.
type coalescer struct {
	mu       sync.Mutex
	inFlight int     // pipelines of single adds in flight, ≤ MaxInFlight
	queue    []*call // waiting calls, oldest first; may hold withdrawn ones
	calls    sync.Pool
}

// call is one single add.
type call struct {
	args     []any     // of its XADD
	deadline time.Time // of the caller's ctx; zero when it has none

	// ready receives exactly one value: when the call is given a slot and
	// is to lead the next batch (lead is set), or when its result is in
	// (id, err).
	ready chan struct{}
	lead  bool

	queued bool // guarded by coalescer.mu: in the queue, not yet taken

	id  string
	err error
}

// add sends args, alone at once or coalesced with other waiting adds, and
// returns the entry's ID. ctx must not be done yet.
func (p *Producer) add(ctx context.Context, args []any) (string, error) {
	co := &p.co
	c, _ := co.calls.Get().(*call)
	if c == nil {
		c = &call{ready: make(chan struct{}, 1)}
	}
	c.args = args
	c.deadline, _ = ctx.Deadline()

	co.mu.Lock()
	if co.inFlight < p.opts.MaxInFlight {
		co.inFlight++
		alone := co.inFlight == 1
		co.mu.Unlock()
		batch := []*call{c}
		if !alone && p.opts.MaxBatch > 1 {
			// Other pipelines are in flight, so adds are being made:
			// yield once, letting the goroutines about to add queue
			// theirs, and send them all in this pipeline rather than
			// one entry in it.
			runtime.Gosched()
			batch = p.takeBatch(c)
		}
		p.lead(ctx, batch)
		return p.result(c)
	}
	c.queued = true
	co.queue = append(co.queue, c)
	co.mu.Unlock()

	select {
	case <-c.ready:
	case <-ctx.Done():
		co.mu.Lock()
		withdrawn := c.queued
		c.queued = false // take skips it; the next hand-off drops it
		co.mu.Unlock()
		if withdrawn {
			// Not pooled: the queue may still point to it.
			return "", p.wrap(ctx.Err())
		}
		// Taken already: wait for the slot or the outcome.
		<-c.ready
	}
	if c.lead {
		if err := ctx.Err(); err != nil { // not sent: withdraw, pass the slot on
			p.handOff()
			return "", p.wrap(err)
		}
		p.lead(ctx, p.takeBatch(c))
	}
	return p.result(c)
}

// takeBatch returns the batch c leads: c, then up to MaxBatch-1 queued
// calls.
func (p *Producer) takeBatch(c *call) []*call {
	co := &p.co
	co.mu.Lock()
	batch := co.take(make([]*call, 1, min(p.opts.MaxBatch, 1+len(co.queue))), p.opts.MaxBatch)
	co.mu.Unlock()
	batch[0] = c
	return batch
}

// result returns c's outcome and recycles c, which nothing refers to any
// more.
func (p *Producer) result(c *call) (string, error) {
	id, err := c.id, c.err
	*c = call{ready: c.ready}
	p.co.calls.Put(c)
	return id, err
}

// lead sends batch (whose first call is the caller's) in one pipeline,
// hands its slot on, and wakes the other callers with their results.
//
// The pipeline runs with ctx's values but not its cancellation: the other
// callers' entries ride in it too. Its deadline is the latest of the
// callers' deadlines, none if one of them has none; the client's own
// timeouts bound it as well.
func (p *Producer) lead(ctx context.Context, batch []*call) {
	done := false
	defer func() {
		if !done { // panicking: fail every caller rather than strand them
			for _, c := range batch {
				c.id, c.err = "", p.wrap(errAbandoned)
			}
		}
		for _, c := range batch[1:] {
			c.ready <- struct{}{}
		}
		// The slot last: the Go scheduler runs the goroutine woken last
		// first, so the next leader sends its pipeline right after this
		// one's callers are woken, instead of after all of them have run.
		p.handOff()
	}()

	pctx := context.WithoutCancel(ctx)
	if d, ok := latestDeadline(batch); ok {
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(pctx, d)
		defer cancel()
	}
	args := make([][]any, len(batch))
	for i, c := range batch {
		args[i] = c.args
	}
	ids, errs := p.send(pctx, args)
	for i, c := range batch {
		c.id, c.err = ids[i], errs[i]
	}
	done = true
}

// handOff gives the caller's slot to the oldest queued call, which leads
// the next batch, or frees it when none is waiting.
func (p *Producer) handOff() {
	co := &p.co
	co.mu.Lock()
	var one [1]*call
	next := co.take(one[:0], 1)
	if len(next) == 0 {
		co.inFlight--
	} else {
		next[0].lead = true
	}
	co.mu.Unlock()
	if len(next) > 0 {
		next[0].ready <- struct{}{}
	}
}

// take moves live calls from the front of the queue to batch until it
// holds n, dropping the withdrawn calls among them, and returns batch.
// co.mu must be held.
func (co *coalescer) take(batch []*call, n int) []*call {
	i := 0
	for ; i < len(co.queue) && len(batch) < n; i++ {
		c := co.queue[i]
		co.queue[i] = nil
		if c.queued {
			c.queued = false
			batch = append(batch, c)
		}
	}
	if i == len(co.queue) {
		co.queue = co.queue[:0]
	} else {
		co.queue = co.queue[i:]
	}
	return batch
}

// latestDeadline returns the latest deadline of the calls, and false when
// one of them has none.
func latestDeadline(calls []*call) (time.Time, bool) {
	var latest time.Time
	for _, c := range calls {
		if c.deadline.IsZero() {
			return time.Time{}, false
		}
		if c.deadline.After(latest) {
			latest = c.deadline
		}
	}
	return latest, true
}
