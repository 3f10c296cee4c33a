package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/stream"
)

// errGoexit is the failure recorded for a handler that called
// runtime.Goexit (as t.FailNow does).
var errGoexit = errors.New("handler called runtime.Goexit")

// dispatchAll queues for the workers the deliveries this consumer does not
// hold already, one credit each (taken by the caller), and returns how
// many it queued. A delivery whose key is held waiting for a retry takes
// that hold's place (a reclaimer or a reader got it first); one held in any
// other state is dropped: it runs, or ran, here already.
func (e *Engine) dispatchAll(ds []*Delivery) int {
	if len(ds) == 0 {
		return 0
	}
	var size int64
	for _, d := range ds {
		if d.Size == 0 { // counted here, not under the lock
			for k, v := range d.Msg.Values {
				d.Size += len(k) + len(v)
			}
		}
	}
	now := time.Now()
	n := 0
	e.mu.Lock()
	for _, d := range ds {
		if old, ok := e.holds[d.Key]; ok {
			if old.state != awaitRetry {
				continue
			}
			e.forgetLocked(old)
		}
		e.seq++
		d.seq = e.seq
		d.state = queued
		d.kept = now
		e.holds[d.Key] = d
		e.heldBytes += int64(d.Size)
		size += int64(d.Size)
		ds[n] = d
		n++
	}
	e.mu.Unlock()
	if n > 0 {
		observe(&e.sizeAvg, size/int64(n))
	}
	e.c.delivered.Add(uint64(n))
	for _, d := range ds[:n] {
		e.queue <- d // never blocks: the queue has room for every credit
	}
	return n
}

// forgetLocked drops d from the holds; e.mu must be held.
func (e *Engine) forgetLocked(d *Delivery) {
	if d.state == gone {
		return
	}
	if d.state == awaitRetry {
		e.retries--
	}
	d.state = gone
	if e.holds[d.Key] == d {
		delete(e.holds, d.Key)
	}
	e.heldBytes -= int64(d.Size)
	e.signalFreedLocked()
}

// signalFreedLocked wakes a fetcher waiting for room in MaxBytes, when
// there is some; e.mu must be held.
func (e *Engine) signalFreedLocked() {
	if e.heldBytes+e.reserved < e.cfg.MaxBytes {
		select {
		case e.freed <- struct{}{}:
		default:
		}
	}
}

func (e *Engine) forget(d *Delivery) {
	e.mu.Lock()
	e.forgetLocked(d)
	e.mu.Unlock()
}

// worker runs queued deliveries through the handler until the queue is
// closed. The credit of each is given back as soon as its handler returns:
// a worker that kept credits to give them back in groups would keep them
// through its next handler call, however long, and starve the fetchers.
func (e *Engine) worker() {
	w := new(workerState)
	n := 0
	for d := range e.queue {
		if !e.stopping.Load() {
			n++
			e.processGuarded(d, w, e.cfg.adaptive && n%sampleEvery == 1)
		}
		// Stopping: the drain hands back what is still queued.
		e.credits.Give(1)
	}
}

// processGuarded is process for a worker. A handler that calls
// runtime.Goexit ends the worker's goroutine where no recover can stop it:
// the delivery then counts as failed (errGoexit) and goes through the
// failure policy like any other failure, its credit is given back, and a
// new worker takes the place of the old one.
func (e *Engine) processGuarded(d *Delivery, w *workerState, timed bool) {
	finished := false
	defer func() {
		if finished {
			return
		}
		e.log.Error("handler called runtime.Goexit; counted as a failed delivery", "id", d.Msg.ID)
		e.finish(d, w, errGoexit)
		e.credits.Give(1)
		e.handlers.Go(e.worker)
	}()
	e.process(d, w, timed)
	finished = true
}

// workerState is what a worker reuses from one job to the next, so that
// handing a job to the handler allocates nothing: the Message the handler
// gets, and the handler context, made again only once something cancelled
// it (a lost lease, the drain's deadline). Handlers must not keep either
// past their return (docs/semantics.md).
type workerState struct {
	msg    stream.Message
	ctx    context.Context
	cancel context.CancelCauseFunc

	// With a Hook: whether the hook's End is owed for the job in hand
	// (Start was called), the message and context of that Start, and
	// when the handler started.
	hooked bool
	hmsg   hook.Message
	hctx   context.Context
	hstart time.Time
}

// process runs d through the handler and acts on the outcome. The handler
// gets the worker's own Message set to a copy of d.Msg, and the worker's
// context (see workerState).
func (e *Engine) process(d *Delivery, w *workerState, timed bool) {
	ctx, ok := e.begin(d, w)
	if !ok {
		return
	}
	if ctx == nil { // malformed, or delivered too often: dead-lettered unhandled
		reason := d.Bad
		if reason == "" {
			reason = fmt.Sprintf("delivered %d times, more than MaxDeliveries (%d), without finishing: the handler crashed or stalled", d.Msg.Deliveries, e.cfg.MaxDeliveries)
		}
		if h := e.cfg.Hook; h != nil {
			m := hookMessage(d)
			hctx := cmp.Or(h.Start(e.base, m), e.base)
			out := e.deadLetter(d, reason)
			h.End(hctx, m, hook.Result{Outcome: out, Err: errors.New(reason)})
			return
		}
		e.deadLetter(d, reason)
		return
	}
	w.msg = d.Msg
	if h := e.cfg.Hook; h != nil {
		// Start wraps the worker's context for this job only.
		w.hmsg = hookMessage(d)
		w.hctx = cmp.Or(h.Start(ctx, w.hmsg), ctx)
		w.hooked = true
		w.hstart = time.Now()
		ctx = w.hctx
	}
	var start time.Time
	if timed {
		start = time.Now()
	}
	err := e.call(ctx, &w.msg)
	if timed {
		observe(&e.handlerNs, int64(time.Since(start)))
	}
	e.finish(d, w, err)
}

// hookMessage is what the hook sees of d.
func hookMessage(d *Delivery) hook.Message {
	return hook.Message{ID: d.Msg.ID, Name: d.Msg.Stream, Values: d.Msg.Values, Deliveries: d.Msg.Deliveries}
}

// begin moves d from queued to inHandler, giving it a context of its own
// unless it is to be dead-lettered unhandled (Bad, or more than
// MaxDeliveries: read here, under e.mu, as the drain's hand-back changes
// the count of queued deliveries). It reports false when d is no longer
// held (the drain handed it back, or another consumer took it).
func (e *Engine) begin(d *Delivery, w *workerState) (ctx context.Context, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d.state != queued {
		return nil, false
	}
	d.state = inHandler
	if d.Bad == "" && d.Msg.Deliveries <= e.cfg.MaxDeliveries {
		if w.ctx == nil || w.ctx.Err() != nil {
			w.ctx, w.cancel = context.WithCancelCause(e.base)
		}
		d.cancel = w.cancel
		ctx = w.ctx
	}
	return ctx, true
}

// call runs the handler, turning a panic into a *handler.PanicError.
func (e *Engine) call(ctx context.Context, msg *stream.Message) (err error) {
	e.running.Add(1)
	defer func() {
		e.running.Add(-1) // also when the handler calls runtime.Goexit
		e.finished.Add(1)
		if v := recover(); v != nil {
			err = &handler.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return e.cfg.Handler.Handle(ctx, msg)
}

// finish acts on a handler's result (see decide), then tells the hook,
// when Start was called for d, what became of it.
func (e *Engine) finish(d *Delivery, w *workerState, err error) {
	if !w.hooked {
		e.decide(d, err)
		return
	}
	took := time.Since(w.hstart)
	out := e.decide(d, err)
	hctx, m := w.hctx, w.hmsg
	w.hooked, w.hctx, w.hmsg = false, nil, hook.Message{}
	e.cfg.Hook.End(hctx, m, hook.Result{Outcome: out, Err: err, Duration: took, Handled: true})
}

// decide acts on a handler's result: settle on success; on failure
// dead-letter a permanent error or the last allowed delivery, else retry
// after a backoff. A delivery another consumer took over meanwhile, or one
// the drain gave up on, is left alone (Abandoned).
func (e *Engine) decide(d *Delivery, err error) hook.Outcome {
	e.mu.Lock()
	d.cancel = nil // the worker's: it stays for the worker's next job
	lost := d.state != inHandler || e.abandoned.Load()
	if !lost && err == nil {
		e.settleLocked(d)
	}
	e.mu.Unlock()
	if lost {
		return hook.Abandoned
	}
	if err == nil {
		return hook.Acked
	}
	e.c.failed.Add(1)
	n := max(d.Msg.Deliveries, 1)
	e.report(fmt.Errorf("%s: handler failed on %s %s (delivery %d): %w", e.cfg.Prefix, e.cfg.Noun, d.Msg.ID, n, err))
	switch {
	case errors.Is(err, handler.ErrPermanent), errors.Is(err, stream.ErrDecode):
		e.log.Warn("handler failed permanently", "id", d.Msg.ID, "deliveries", n, "err", err)
		return e.deadLetter(d, err.Error())
	case n >= e.cfg.MaxDeliveries:
		e.log.Warn("handler failed on the last allowed delivery", "id", d.Msg.ID, "deliveries", n, "err", err)
		return e.deadLetter(d, err.Error())
	default:
		delay := e.retryBackoff.Delay(int(n - 1))
		e.log.Info("handler failed; will retry", "id", d.Msg.ID, "deliveries", n, "retry_in", delay, "err", err)
		return e.scheduleRetry(d, delay)
	}
}

// deadLetter moves d to the dead-letter stream or list. When that fails, d
// stays held (and kept alive) and the move is tried again after a backoff,
// whatever the error but a repair (the group vanished with the entry's
// pending state): a dead-letter key of another type or a missing
// permission is reported each time, until an operator fixes it. At
// shutdown d is handed back with its delivery count. It returns
// DeadLettered, or Abandoned when d was found no longer this consumer's.
func (e *Engine) deadLetter(d *Delivery, reason string) hook.Outcome {
	if len(reason) > maxErrorText {
		reason = strings.ToValidUTF8(reason[:maxErrorText], "") + "…"
	}
	ctx, cancel := e.settleCtx()
	defer cancel()
	ok, err := e.src.DeadLetter(ctx, d, reason)
	if err == nil {
		e.forget(d)
		if ok {
			e.c.deadLettered.Add(1)
			e.log.Warn(e.cfg.Noun+" dead-lettered", "id", d.Msg.ID, "reason", reason)
			return hook.DeadLettered
		}
		e.log.Info(e.cfg.Noun+" no longer owned by this consumer; not dead-lettered", "id", d.Msg.ID)
		return hook.Abandoned
	}
	act, perr := e.src.Classify("dead-letter", err)
	if act == Repair { // the group is gone, and the entry's pending state with it
		e.forget(d)
		return hook.Abandoned
	}
	if act == Stop {
		err = perr // names the key or the permission
	}
	// Even an error waiting cannot fix is waited out here: an operator
	// fixes the dead-letter key or the ACL, and the job moves then. The
	// consumer goes on with other jobs meanwhile.
	e.report(fmt.Errorf("%s: dead-letter %s %s: %w", e.cfg.Prefix, e.cfg.Noun, d.Msg.ID, err))
	e.log.Error("dead-lettering failed; will try again", "id", d.Msg.ID, "err", err)
	e.mu.Lock()
	defer e.mu.Unlock()
	if d.state == gone {
		return hook.Abandoned
	}
	d.tries++
	d.reason = reason
	d.state = awaitDead
	e.pushLocked(d, time.Now().Add(e.transientBackoff.Delay(d.tries-1)))
	return hook.DeadLettered
}

// maxRetries bounds the failed deliveries held for a retry.
func (e *Engine) maxRetries() int { return 10 * (e.cfg.Concurrency + e.cfg.Prefetch) }

// scheduleRetry holds a failed delivery (kept alive) until its retry is
// due. At most maxRetries are held so: past that, it is handed back at
// once, behind the waiting work (Release without now), so memory stays
// bounded through a flood of failures and MaxDeliveries still holds. It
// returns Retried, or Abandoned when d was lost meanwhile.
func (e *Engine) scheduleRetry(d *Delivery, delay time.Duration) hook.Outcome {
	e.c.retried.Add(1)
	e.mu.Lock()
	if d.state != inHandler {
		e.mu.Unlock()
		return hook.Abandoned
	}
	if e.retries < e.maxRetries() {
		d.state = awaitRetry
		e.retries++
		e.pushLocked(d, time.Now().Add(delay))
		e.mu.Unlock()
		return hook.Retried
	}
	e.mu.Unlock()
	ctx, cancel := e.settleCtx()
	defer cancel()
	if _, err := e.src.Release(ctx, []*Delivery{d}, false); err != nil {
		e.log.Warn("could not hand back a failed "+e.cfg.Noun+" with too many retries waiting; it stays held by this consumer until the drain", "id", d.Msg.ID, "err", err)
		e.mu.Lock()
		d.state = awaitRetry
		e.retries++
		e.pushLocked(d, time.Now().Add(delay))
		e.mu.Unlock()
		return hook.Retried
	}
	e.forget(d)
	return hook.Retried
}
