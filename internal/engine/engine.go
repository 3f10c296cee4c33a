package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/credit"
)

// Stats are the engine's counters. Each source keeps counters of its own
// for what only it knows (entries deleted while pending, jobs recovered).
type Stats struct {
	Delivered    uint64 // jobs handed to the handler (or dead-lettered unhandled)
	Acked        uint64 // jobs settled after the handler returned nil
	Failed       uint64 // handler calls that returned an error, panicked or called runtime.Goexit
	Retried      uint64 // failures scheduled for another delivery
	DeadLettered uint64 // jobs moved to the dead-letter stream or list
	Swept        uint64 // jobs taken over from consumers that died (Sweeper)
	Kept         uint64 // keep-alives of held jobs (Keeper)
	LeaseLost    uint64 // held jobs another consumer took over
	Released     uint64 // jobs handed back unstarted (or waiting for a retry)
}

type counters struct {
	delivered, acked, failed, retried, deadLettered, swept, kept, leaseLost, released atomic.Uint64
}

// state is where a held job is.
type state uint8

const (
	queued      state = iota // dispatched, waiting for a worker
	inHandler                // a handler is running on it
	awaitRetry               // its handler failed; redelivered at due
	awaitDead                // its dead-lettering failed; tried again at due
	awaitSettle              // its handler succeeded; its settling is queued
	releasing                // taken from the queue to be handed back (watch)
	gone                     // no longer held (settled, handed back, lost)
)

// Engine runs one consumer: it fetches from a Source within credits, runs
// the handler on a bounded pool of workers, and settles, retries,
// dead-letters, keeps alive and hands back through the Source. It is
// single-use.
type Engine struct {
	src     Source
	cfg     Config
	log     *slog.Logger
	credits *credit.Pool
	queue   chan *Delivery // dispatched, waiting for a worker

	// stopping is set when the drain starts: workers then skip what is
	// still queued (the drain hands it back).
	stopping  atomic.Bool
	abandoned atomic.Bool // the drain timed out: late handler results are dropped
	used      atomic.Bool
	c         counters

	transientBackoff backoff.Policy
	retryBackoff     backoff.Policy

	mu        sync.Mutex
	holds     map[string]*Delivery
	seq       uint64 // deliveries dispatched
	retries   int    // holds in awaitRetry
	heldBytes int64
	reserved  int64         // bytes fitBytes reserved for fetches on their way
	schedule  dueHeap       // awaitRetry and awaitDead, by due time
	settleBuf []*Delivery   // awaitSettle, in order
	freed     chan struct{} // signalled when bytes are freed below MaxBytes

	settleWake chan struct{}
	retryWake  chan struct{}

	// fail stops the loops with an error waiting cannot fix, found outside
	// them (settling, keep-alive, housekeeping).
	fail context.CancelCauseFunc

	// The adaptive prefetch's measurements (EWMA, in nanoseconds), and the
	// average size of a job in bytes.
	handlerNs atomic.Int64
	fetchNs   atomic.Int64
	sizeAvg   atomic.Int64
	running   atomic.Int64  // handlers running
	finished  atomic.Uint64 // handler calls returned

	base     context.Context // handler contexts derive from it: Run's values, never cancelled with Run
	handlers sync.WaitGroup

	hs healthState // what Health reports (health.go)
}

// New returns an Engine running src under a normalized cfg.
func New(src Source, cfg Config) *Engine {
	e := &Engine{
		src:              src,
		cfg:              cfg,
		log:              cfg.Logger,
		credits:          credit.New(cfg.Concurrency + initialPrefetch(cfg)),
		queue:            make(chan *Delivery, cfg.Concurrency+cfg.Prefetch),
		holds:            make(map[string]*Delivery),
		freed:            make(chan struct{}, 1),
		settleWake:       make(chan struct{}, 1),
		retryWake:        make(chan struct{}, 1),
		transientBackoff: backoff.Policy{Base: 50 * time.Millisecond, Max: 5 * time.Second},
		retryBackoff:     backoff.Policy{Base: cfg.RetryBackoff, Max: cfg.MaxRetryBackoff},
		base:             context.Background(),
		hs:               healthState{base: time.Now()},
	}
	if p, ok := src.(Paced); ok {
		p.SetPace(e)
	}
	return e
}

// Stats returns a snapshot of the counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Delivered:    e.c.delivered.Load(),
		Acked:        e.c.acked.Load(),
		Failed:       e.c.failed.Load(),
		Retried:      e.c.retried.Load(),
		DeadLettered: e.c.deadLettered.Load(),
		Swept:        e.c.swept.Load(),
		Kept:         e.c.kept.Load(),
		LeaseLost:    e.c.leaseLost.Load(),
		Released:     e.c.released.Load(),
	}
}

// Run runs the consumer until ctx ends or an error that waiting cannot fix
// occurs, then drains: it stops fetching, hands back at once what no
// handler runs, waits up to DrainTimeout for the handlers, hands back what
// failed meanwhile, settles what finished, and stops the source. It returns
// nil after a stop by ctx, an error wrapping ErrDrainTimeout when handlers
// outlived DrainTimeout, and the permanent error otherwise.
func (e *Engine) Run(ctx context.Context) (err error) {
	if !e.used.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	e.hs.run.Store(e.hs.stamp(time.Now()))
	defer func() { e.hs.stop(err) }()
	stopSrc := func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SettleTimeout)
		defer cancel()
		e.src.Stop(sctx)
	}
	if err := e.start(ctx); err != nil || ctx.Err() != nil {
		stopSrc()
		return err
	}
	e.base = context.WithoutCancel(ctx)
	loopCtx, stopLoops := context.WithCancelCause(ctx)
	defer stopLoops(nil)
	e.fail = stopLoops

	// Housekeeping outlives the loops: held jobs are kept alive while
	// handlers drain, and settling is flushed last.
	houseCtx, stopHouse := context.WithCancel(e.base)
	var house errgroup.Group
	house.Go(func() error { e.settleLoop(houseCtx); return nil })
	if k, ok := e.src.(Keeper); ok {
		house.Go(func() error { e.keepLoop(houseCtx, k); return nil })
	}
	if h, ok := e.src.(Housekeeper); ok {
		house.Go(func() error { h.Housekeep(houseCtx, func(err error) { e.fail(err) }); return nil })
	}

	for range e.cfg.Concurrency {
		e.handlers.Go(e.worker)
	}

	loops, lctx := errgroup.WithContext(loopCtx)
	for _, f := range e.src.Fetchers() {
		loops.Go(func() error { defer f.Close(); return e.fetchLoop(lctx, f) })
	}
	if s, ok := e.src.(Sweeper); ok && s.SweepInterval() > 0 {
		loops.Go(func() error { return e.sweepLoop(lctx, s) })
	}
	loops.Go(func() error { return e.retryLoop(lctx) })
	if e.cfg.adaptive {
		loops.Go(func() error { return e.watchLoop(lctx) })
	}
	loopErr := loops.Wait()
	if cause := context.Cause(loopCtx); loopErr == nil && ctx.Err() == nil && cause != nil {
		loopErr = cause // settling or housekeeping hit an error that waiting cannot fix
	}
	if loopErr != nil {
		e.log.Error("consumer stopping on a permanent error", "err", loopErr)
	}

	drainErr := e.drain()
	stopHouse()
	_ = house.Wait()
	stopSrc()
	return errors.Join(loopErr, drainErr)
}

// start runs the source's Start until it succeeds, waiting out errors that
// waiting can fix, or ctx ends (then nil).
func (e *Engine) start(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := e.src.Start(ctx)
		if err == nil {
			now := e.hs.stamp(time.Now())
			e.hs.started.Store(now)
			e.hs.ok(now, false)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if act, perr := e.src.Classify("start", err); act == Stop {
			e.log.Error("consumer cannot start", "err", perr)
			return perr
		}
		e.transient("start", err)
		if !backoff.Sleep(ctx, e.transientBackoff.Delay(attempt)) {
			return nil
		}
	}
}

// errStop ends a loop without an error.
var errStop = errors.New("stop")

func stopped(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// handleErr decides what a loop does about a source's error: nil to carry
// on (after a repair, or a backoff pause), errStop when ctx ended, or the
// permanent error that stops the consumer.
func (e *Engine) handleErr(ctx context.Context, op string, err error, attempt *int) error {
	if ctx.Err() != nil {
		return errStop
	}
	act, perr := e.src.Classify(op, err)
	if act == Repair {
		r, ok := e.src.(Repairer)
		if !ok {
			return fmt.Errorf("%s: %s: %w", e.cfg.Prefix, op, err)
		}
		e.hs.groupMissing(err)
		rerr := r.Repair(ctx, err)
		if rerr == nil {
			e.hs.groupMissing(nil)
			e.hs.okNow()
			*attempt = 0
			return nil
		}
		err = rerr
		act, perr = e.src.Classify("repair", rerr)
	}
	if act == Stop {
		return perr
	}
	e.transient(op, err)
	d := e.transientBackoff.Delay(*attempt)
	*attempt++
	if !backoff.Sleep(ctx, d) {
		return errStop
	}
	return nil
}

// transient logs and reports an error that waiting can fix.
func (e *Engine) transient(op string, err error) {
	e.hs.failed(err)
	e.log.Warn("redis unavailable; retrying", "op", op, "err", err)
	e.report(fmt.Errorf("%s: %s: %w", e.cfg.Prefix, op, err))
}

// report hands an error the consumer handles by itself to the hook and to
// OnError.
func (e *Engine) report(err error) {
	if e.cfg.Hook != nil {
		e.cfg.Hook.Event(hook.Event{Kind: hook.Error, Err: err})
	}
	if e.cfg.OnError != nil {
		e.cfg.OnError(err)
	}
}

// event tells the hook, if any, that n jobs were delivered, reclaimed or
// released (none: nothing to tell).
func (e *Engine) event(kind hook.EventKind, n int) {
	if e.cfg.Hook != nil && n > 0 {
		e.cfg.Hook.Event(hook.Event{Kind: kind, N: n})
	}
}

// nouns is the plural of Config.Noun: "entries", "jobs".
func (e *Engine) nouns() string {
	if n, ok := strings.CutSuffix(e.cfg.Noun, "y"); ok {
		return n + "ies"
	}
	return e.cfg.Noun + "s"
}

// settleCtx bounds one settling call made outside the loops' contexts.
func (e *Engine) settleCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.base, SettleTimeout)
}

// isStopped reports whether err only says that ctx ended.
func isStopped(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
