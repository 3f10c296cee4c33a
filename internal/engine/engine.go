package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/credit"
	"github.com/streamgroup/streamgroup/internal/redischeck"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

// Stats are the engine's counters.
type Stats struct {
	Delivered     uint64
	Acked         uint64
	Failed        uint64
	Retried       uint64
	DeadLettered  uint64
	Reclaimed     uint64
	DeletedInPEL  uint64
	LeaseRenewals uint64
	GroupsCreated uint64
	Released      uint64
}

type counters struct {
	delivered, acked, failed, retried, deadLettered, reclaimed, deletedInPEL, leaseRenewals, groupsCreated, released atomic.Uint64
}

// state is where a held entry is.
type state uint8

const (
	inHandler  state = iota // a handler is running on it
	awaitRetry              // its handler failed; re-delivered at due
	awaitAck                // its handler succeeded; its XACK is queued
)

// held is an entry this consumer owns and keeps a lease on, from delivery
// until its XACK is sent (or it is dead-lettered, or lost to another
// consumer). Holding it while the XACK is queued keeps this consumer's own
// reclaimer from handing a finished entry to a handler again.
type held struct {
	renewed time.Time // last claim or lease renewal
	state   state
	due     time.Time // when awaitRetry: when to re-deliver
}

// unstarted is an entry fetched but never handed to a handler, with the
// delivery count it had before that fetch.
type unstarted struct {
	id    string
	count int64
}

// Engine runs one consumer's machinery. It is single-use.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	credits *credit.Pool
	queue   chan stream.Message // fetched entries waiting for a worker
	// stopping is set when the drain starts: workers then leave the
	// entries still queued pending instead of starting them.
	stopping atomic.Bool
	used     atomic.Bool
	c        counters

	transientBackoff backoff.Policy
	retryBackoff     backoff.Policy

	mu        sync.Mutex
	holds     map[string]held
	retries   int // holds in state awaitRetry
	ackBuf    []string
	abandoned atomic.Bool // the drain timed out: late handler results are dropped
	unstarted []unstarted // fetched, never started when Run stopped

	ackWake   chan struct{}
	retryWake chan struct{}

	// fail stops the loops with an error waiting cannot fix, found outside
	// them (by the acker).
	fail context.CancelCauseFunc

	// The adaptive prefetch's measurements (EWMA, in nanoseconds).
	handlerNs atomic.Int64 // time in the handler
	fetchNs   atomic.Int64 // round trip of a read that did not block

	liveKey string // the consumer name's liveness key
	token   string // this run's value of it

	handlers sync.WaitGroup
	hctx     context.Context
	hcancel  context.CancelFunc
}

// New returns an Engine for a normalized config.
func New(cfg Config) *Engine {
	e := &Engine{
		cfg:              cfg,
		log:              cfg.Logger,
		credits:          credit.New(cfg.Concurrency + initialPrefetch(cfg)),
		queue:            make(chan stream.Message, cfg.Concurrency+cfg.Prefetch),
		holds:            make(map[string]held),
		ackWake:          make(chan struct{}, 1),
		retryWake:        make(chan struct{}, 1),
		transientBackoff: backoff.Policy{Base: 50 * time.Millisecond, Max: 5 * time.Second},
		retryBackoff:     backoff.Policy{Base: cfg.RetryBackoff, Max: cfg.MaxRetryBackoff},
		liveKey:          LiveKey(cfg.Stream, cfg.Group, cfg.Consumer),
		token:            newToken(),
	}
	return e
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Delivered:     e.c.delivered.Load(),
		Acked:         e.c.acked.Load(),
		Failed:        e.c.failed.Load(),
		Retried:       e.c.retried.Load(),
		DeadLettered:  e.c.deadLettered.Load(),
		Reclaimed:     e.c.reclaimed.Load(),
		DeletedInPEL:  e.c.deletedInPEL.Load(),
		LeaseRenewals: e.c.leaseRenewals.Load(),
		GroupsCreated: e.c.groupsCreated.Load(),
		Released:      e.c.released.Load(),
	}
}

// Mode selects the loops Run starts.
type Mode struct {
	Read    bool // XREADGROUP: own pending entries first, then new ones
	Reclaim bool // XAUTOCLAIM loop
}

// Run runs the engine until ctx ends or a permanent error occurs, then
// drains. See group.Consumer.Run for the contract.
func (e *Engine) Run(ctx context.Context, mode Mode) error {
	if !e.used.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	// A policy other than noeviction is logged at Warn, a refused CONFIG
	// GET at Info, once per client (see redischeck.EvictionPolicy).
	redischeck.AtStart(ctx, e.cfg.Client, e.cfg.warnLog, e.transientBackoff, func(err error) {
		e.transient("check maxmemory-policy", err)
	})
	if err := e.ensureGroupAtStart(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := e.claimName(ctx); err != nil || ctx.Err() != nil {
		return err
	}
	e.hctx, e.hcancel = context.WithCancel(context.WithoutCancel(ctx))
	defer e.hcancel()
	loopCtx, stopLoops := context.WithCancelCause(ctx)
	defer stopLoops(nil)
	e.fail = stopLoops

	// Housekeeping outlives the loops: leases and the consumer name's
	// liveness key must go on while in-flight handlers drain, and acks are
	// flushed last.
	houseCtx, stopHouse := context.WithCancel(context.WithoutCancel(ctx))
	var house errgroup.Group
	house.Go(func() error { e.leaseLoop(houseCtx); return nil })
	house.Go(func() error { e.ackLoop(houseCtx); return nil })
	house.Go(func() error { e.liveLoop(houseCtx); return nil })

	for range e.cfg.Concurrency {
		e.handlers.Go(e.worker)
	}

	loops, lctx := errgroup.WithContext(loopCtx)
	if mode.Read {
		loops.Go(func() error { return e.readLoop(lctx) })
	}
	if mode.Reclaim {
		loops.Go(func() error { return e.reclaimLoop(lctx) })
	}
	loops.Go(func() error { return e.retryLoop(lctx) })
	loopErr := loops.Wait()
	if cause := context.Cause(loopCtx); loopErr == nil && ctx.Err() == nil && cause != nil {
		loopErr = cause // the acker or the name's renewal hit an error that waiting cannot fix
	}
	if loopErr != nil {
		e.log.Error("consumer stopping on a permanent error", "err", loopErr)
	}

	drainErr := e.drain()
	e.release()
	stopHouse()
	_ = house.Wait()
	return errors.Join(loopErr, drainErr)
}

func (e *Engine) ensureGroupAtStart(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := e.ensureGroup(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if !waitable(err) {
			return e.permanent("create group", err)
		}
		e.transient("create group", err)
		if !backoff.Sleep(ctx, e.transientBackoff.Delay(attempt)) {
			return nil
		}
	}
}

// ensureGroup creates the group (and the stream) unless it exists.
//
// A Redis at maxmemory with the noeviction policy refuses XGROUP CREATE
// MKSTREAM with OOM before it can answer BUSYGROUP. A group that exists
// then needs nothing (reading and acknowledging are not refused, so the
// consumer can drain the full server): XPENDING, a read, tells. A group
// that does not exist cannot be made until memory is freed: the OOM error
// is returned, and the callers wait it out like an outage.
func (e *Engine) ensureGroup(ctx context.Context) error {
	err := e.cfg.Client.XGroupCreateMkStream(ctx, e.cfg.Stream, e.cfg.Group, e.cfg.GroupStart).Err()
	if rediserr.IsBusyGroup(err) {
		return nil
	}
	if rediserr.IsOOM(err) && e.cfg.Client.XPending(ctx, e.cfg.Stream, e.cfg.Group).Err() == nil {
		return nil
	}
	if err == nil {
		e.c.groupsCreated.Add(1)
		e.log.Info("consumer group created", "start", e.cfg.GroupStart)
	}
	return err
}

// recreateGroup answers NOGROUP: the group or the stream vanished (deleted,
// or the server lost its data). It creates the group again from
// GroupStart, so entries still in the stream are delivered again rather than
// skipped. An entry this consumer still holds (in a handler, or waiting for
// its XACK) and reads again in the new group is not dispatched twice; its
// XACK acknowledges it in the new group if it arrives after the re-read, and
// otherwise a reclaimer delivers it again after MinIdle.
func (e *Engine) recreateGroup(ctx context.Context, cause error) error {
	e.log.Warn("consumer group missing; creating it again", "err", cause)
	e.report(fmt.Errorf("group: group %q on stream %q vanished: %w", e.cfg.Group, e.cfg.Stream, cause))
	return e.ensureGroup(ctx)
}

// permanent wraps an error that stops the consumer, naming the key.
func (e *Engine) permanent(op string, err error) error {
	if rediserr.IsWrongType(err) {
		return fmt.Errorf("%w: %s: key %q holds another type: %w", ErrNotStream, op, e.cfg.Stream, err)
	}
	return fmt.Errorf("group: %s on stream %q (group %q): %w", op, e.cfg.Stream, e.cfg.Group, err)
}

func (e *Engine) report(err error) {
	if e.cfg.OnError != nil {
		e.cfg.OnError(err)
	}
}

// waitable reports whether waiting can fix err: Redis is unreachable,
// restarting or failing over (rediserr.IsTransient), or out of memory
// (OOM: full until memory is freed or maxmemory raised).
func waitable(err error) bool { return rediserr.IsTransient(err) || rediserr.IsOOM(err) }

func (e *Engine) transient(op string, err error) {
	if rediserr.IsOOM(err) {
		e.log.Warn("redis is out of memory (maxmemory with noeviction); retrying until memory is freed", "op", op, "err", err)
		e.report(fmt.Errorf("group: %s: %w", op, err))
		return
	}
	e.log.Warn("redis unavailable; retrying", "op", op, "err", err)
	e.report(fmt.Errorf("group: %s: %w", op, err))
}

// dispatch queues msg for a worker, using one credit the caller took. It
// reports false (and the caller keeps the credit) when this consumer holds
// the entry already: in a handler, queued, or waiting for its XACK.
func (e *Engine) dispatch(msg stream.Message) bool {
	return e.dispatchAll([]stream.Message{msg}) == 1
}

// dispatchAll is dispatch for a batch, under one lock: it queues the
// entries this consumer does not hold already, compacting ms to them, and
// returns how many it queued (the credits it used).
func (e *Engine) dispatchAll(ms []stream.Message) int {
	now := time.Now()
	n := 0
	e.mu.Lock()
	for _, m := range ms {
		if h, ok := e.holds[m.ID]; ok {
			if h.state != awaitRetry {
				continue
			}
			e.retries--
		}
		e.holds[m.ID] = held{renewed: now}
		ms[n] = m
		n++
	}
	e.mu.Unlock()
	e.c.delivered.Add(uint64(n))
	for _, m := range ms[:n] {
		e.queue <- m // never blocks: the queue has room for every credit
	}
	return n
}

// worker runs queued entries through the handler until the queue is closed.
//
// One Message per worker is reused for every entry (handlers must not keep
// it), so that handing it to the handler costs no allocation. The credit
// of each entry is given back as soon as it is done: a worker that kept
// credits to give them back in groups would keep them through its next
// handler call, however long, and starve the readers.
func (e *Engine) worker() {
	msg := new(stream.Message)
	n := 0
	for *msg = range e.queue {
		if e.stopping.Load() {
			e.letGo(msg) // not started: it stays pending in Redis
		} else {
			n++
			e.processGuarded(msg, e.cfg.AdaptivePrefetch && n%sampleEvery == 1)
		}
		e.credits.Give(1)
	}
}

// processGuarded is process for a worker. A handler that calls
// runtime.Goexit (as t.FailNow does) ends the worker's goroutine
// where no recover can stop it: the entry is then let go, still pending (it
// is delivered again after MinIdle), its credit is given back, and a new
// worker takes the place of the old one.
func (e *Engine) processGuarded(msg *stream.Message, timed bool) {
	finished := false
	defer func() {
		if finished {
			return
		}
		e.log.Error("handler called runtime.Goexit; the entry stays pending", "id", msg.ID)
		e.report(fmt.Errorf("group: handler called runtime.Goexit on entry %s", msg.ID))
		e.unhold(msg.ID)
		e.credits.Give(1)
		e.handlers.Go(e.worker)
	}()
	e.process(msg, timed)
	finished = true
}

// process runs msg through the handler and acts on the outcome. When timed
// it also measures the handler for the adaptive prefetch.
func (e *Engine) process(msg *stream.Message, timed bool) {
	if msg.Deliveries > e.cfg.MaxDeliveries {
		reason := fmt.Sprintf("delivered %d times, more than MaxDeliveries (%d), without finishing: the handler crashed or stalled", msg.Deliveries, e.cfg.MaxDeliveries)
		e.deadLetter(msg, reason)
		return
	}
	var start time.Time
	if timed {
		start = time.Now()
	}
	err := e.call(msg)
	if timed {
		observe(&e.handlerNs, time.Since(start))
	}
	if e.isAbandoned() {
		return // the drain gave up on us; the entry stays pending
	}
	if err == nil {
		e.ack(msg.ID)
		return
	}
	e.c.failed.Add(1)
	d := max(msg.Deliveries, 1)
	e.report(fmt.Errorf("group: handler failed on entry %s (delivery %d): %w", msg.ID, d, err))
	switch {
	case errors.Is(err, handler.ErrPermanent), errors.Is(err, stream.ErrDecode):
		e.log.Warn("handler failed permanently", "id", msg.ID, "deliveries", d, "err", err)
		e.deadLetter(msg, err.Error())
	case d >= e.cfg.MaxDeliveries:
		e.log.Warn("handler failed on the last allowed delivery", "id", msg.ID, "deliveries", d, "err", err)
		e.deadLetter(msg, err.Error())
	default:
		delay := e.retryBackoff.Delay(int(d - 1))
		e.log.Info("handler failed; will retry", "id", msg.ID, "deliveries", d, "retry_in", delay, "err", err)
		e.scheduleRetry(msg.ID, delay)
	}
}

// call runs the handler, turning a panic into a *handler.PanicError.
func (e *Engine) call(msg *stream.Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &handler.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return e.cfg.Handler.Handle(e.hctx, msg)
}

func (e *Engine) isAbandoned() bool { return e.abandoned.Load() }

// maxRetries bounds the failed entries held for a retry.
func (e *Engine) maxRetries() int { return 10 * (e.cfg.Concurrency + e.cfg.Prefetch) }

// dropHold forgets id; e.mu must be held.
func (e *Engine) dropHold(id string) {
	if old, ok := e.holds[id]; ok {
		if old.state == awaitRetry {
			e.retries--
		}
		delete(e.holds, id)
	}
}

func (e *Engine) unhold(id string) {
	e.mu.Lock()
	e.dropHold(id)
	e.mu.Unlock()
}

// scheduleRetry keeps a failed entry (and its lease) until its retry is
// due. At most maxRetries entries are kept so: past that, the entry is let
// go, still pending, and a reclaimer (this one or another's) delivers it
// again once it has been idle for MinIdle. Memory stays bounded through a
// flood of failures, and the delivery limit still holds.
func (e *Engine) scheduleRetry(id string, delay time.Duration) {
	e.mu.Lock()
	if e.retries >= e.maxRetries() {
		e.dropHold(id)
		e.mu.Unlock()
		e.c.retried.Add(1)
		return
	}
	if h, ok := e.holds[id]; ok {
		h.state = awaitRetry
		h.due = time.Now().Add(delay)
		e.holds[id] = h
		e.retries++
	}
	e.mu.Unlock()
	e.c.retried.Add(1)
	select {
	case e.retryWake <- struct{}{}:
	default:
	}
}

// deadLetter moves msg to the dead-letter stream with its metadata,
// atomically with its XACK. If that fails the entry stays pending: the
// reclaimer delivers it again and it comes back here.
func (e *Engine) deadLetter(msg *stream.Message, reason string) {
	log := e.log.With("id", msg.ID)
	defer e.unhold(msg.ID)
	if len(reason) > maxErrorText {
		reason = strings.ToValidUTF8(reason[:maxErrorText], "") + "…"
	}
	// The message's fields are used only when the entry is gone from the
	// stream: both paths copy the entry's own field list (see
	// deadLetterScript).
	orig := make([]any, 0, 2*len(msg.Values))
	for k, v := range msg.Values {
		orig = append(orig, k, v)
	}
	meta := []any{
		stream.DeadIDField, msg.ID,
		stream.DeadStreamField, e.cfg.Stream,
		stream.DeadGroupField, e.cfg.Group,
		stream.DeadConsumerField, e.cfg.Consumer,
		stream.DeadDeliveriesField, strconv.FormatInt(max(msg.Deliveries, 1), 10),
		stream.DeadErrorField, reason,
		stream.DeadTimeField, strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
	args := make([]any, 0, 4+len(orig)+len(meta))
	args = append(args, e.cfg.Group, e.cfg.Consumer, msg.ID, len(orig))
	args = append(args, orig...)
	args = append(args, meta...)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.hctx), e.cfg.AckTimeout)
	defer cancel()
	var res any
	var err error
	if len(args) <= maxScriptArgs {
		res, err = deadLetterScript.Run(ctx, e.cfg.Client, []string{e.cfg.Stream, e.cfg.DeadLetterStream}, args...).Result()
	} else {
		res, err = e.deadLetterLarge(ctx, msg.ID, orig, meta)
	}
	switch {
	case errors.Is(err, redis.Nil):
		log.Info("entry no longer owned by this consumer; not dead-lettered")
	case err != nil:
		log.Error("dead-lettering failed; the entry stays pending", "err", err)
		e.report(fmt.Errorf("group: dead-letter entry %s to %q: %w", msg.ID, e.cfg.DeadLetterStream, err))
	default:
		e.c.deadLettered.Add(1)
		log.Warn("entry dead-lettered", "dead_letter_stream", e.cfg.DeadLetterStream, "dead_letter_id", res, "reason", reason)
	}
}

// maxScriptArgs bounds the arguments of the dead-letter script: Lua's
// unpack stops at about 8000 values.
const maxScriptArgs = 7000

// deadLetterLarge dead-letters an entry too large for the script (thousands
// of fields) in three steps: check that this consumer owns it, XADD, XACK.
// The XACK still follows only a successful XADD; between the check and the
// XACK another consumer may take the entry over, which can make one more
// dead letter for it, never none. Like the script, it copies the entry's own
// field list (orig, the message's fields, only when the entry is gone), then
// the dead-letter fields meta.
func (e *Engine) deadLetterLarge(ctx context.Context, id string, orig, meta []any) (any, error) {
	ps, err := e.cfg.Client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: e.cfg.Stream, Group: e.cfg.Group, Start: id, End: id, Count: 1,
	}).Result()
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 || ps[0].Consumer != e.cfg.Consumer {
		return nil, redis.Nil
	}
	entries, err := e.cfg.Client.Do(ctx, "XRANGE", e.cfg.Stream, id, id).Slice()
	if err != nil {
		return nil, err
	}
	if len(entries) == 1 {
		if entry, _ := entries[0].([]any); len(entry) == 2 {
			if raw, _ := entry[1].([]any); len(raw) > 0 {
				orig = raw
			}
		}
	}
	fields := append(slices.Clip(orig), meta...)
	deadID, err := e.cfg.Client.XAdd(ctx, &redis.XAddArgs{Stream: e.cfg.DeadLetterStream, Values: fields}).Result()
	if err != nil {
		return nil, err
	}
	return deadID, e.cfg.Client.XAck(ctx, e.cfg.Stream, e.cfg.Group, id).Err()
}

// drain waits for in-flight handlers up to DrainTimeout. Entries fetched
// but not yet started are left pending. It must run after the loops that
// dispatch have returned.
func (e *Engine) drain() error {
	e.stopping.Store(true)
	e.log.Info("draining: waiting for running handlers; entries not started stay pending")
	close(e.queue)
	done := make(chan struct{})
	go func() { e.handlers.Wait(); close(done) }()
	t := time.NewTimer(e.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	}
	// Past the deadline: cancel handler contexts and give handlers that
	// watch them a moment to return.
	e.hcancel()
	grace := time.NewTimer(min(time.Second, e.cfg.DrainTimeout))
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
	}
	e.abandoned.Store(true)
	e.mu.Lock()
	n := 0
	for _, h := range e.holds {
		if h.state == inHandler {
			n++
		}
	}
	e.mu.Unlock()
	if n == 0 {
		<-done
		return fmt.Errorf("%w (%v): handlers returned only after their context was cancelled", ErrDrainTimeout, e.cfg.DrainTimeout)
	}
	e.log.Error("drain timeout: handlers still running; their entries stay pending for the reclaimer", "running", n)
	return fmt.Errorf("%w (%v): %d handlers still running; their entries stay pending", ErrDrainTimeout, e.cfg.DrainTimeout, n)
}

// letGo forgets an entry a worker took from the queue after the drain
// began, and keeps it for release.
func (e *Engine) letGo(msg *stream.Message) {
	e.mu.Lock()
	e.dropHold(msg.ID)
	if msg.Deliveries > 0 {
		e.unstarted = append(e.unstarted, unstarted{id: msg.ID, count: msg.Deliveries - 1})
	}
	e.mu.Unlock()
}

// release gives the entries fetched but never started back to the group:
// their delivery counters go back to what they were before the unused
// fetch, and their idle time to MinIdle, so that another consumer's
// reclaimer can take them at once. If that fails they stay pending as they
// are and are delivered again later: nothing is lost either way.
func (e *Engine) release() {
	e.mu.Lock()
	us := e.unstarted
	e.unstarted = nil
	e.mu.Unlock()
	if len(us) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.AckTimeout)
	defer cancel()
	released := int64(0)
	for start := 0; start < len(us); start += scriptBatch {
		batch := us[start:min(start+scriptBatch, len(us))]
		args := make([]any, 0, 3+2*len(batch))
		args = append(args, e.cfg.Group, e.cfg.Consumer, e.cfg.MinIdle.Milliseconds())
		for _, u := range batch {
			args = append(args, u.id, u.count)
		}
		n, err := releaseScript.Run(ctx, e.cfg.Client, []string{e.cfg.Stream}, args...).Int64()
		if err != nil {
			e.log.Warn("could not release fetched entries that were never started; they stay pending and will be delivered again", "count", len(us)-start, "err", err)
			e.report(fmt.Errorf("group: release %d unstarted entries: %w", len(us)-start, err))
			break
		}
		released += n
	}
	e.c.released.Add(uint64(released))
	e.log.Info("released fetched entries that were never started", "count", released)
}
