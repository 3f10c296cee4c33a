package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/blockconn"
	"github.com/streamgroup/streamgroup/internal/credit"
	"github.com/streamgroup/streamgroup/internal/redischeck"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

// Consumer handles the jobs of one or more Redis lists with a
// [handler.Handler] on a bounded pool of goroutines, in one of two modes:
// reliable ([NewReliableConsumer]) or simple ([NewSimpleConsumer]). See the
// package documentation for what each mode guarantees.
//
// A Consumer is single-use: create it with a constructor, call
// [Consumer.Run] once. Its methods are safe for concurrent use. The zero
// value is not usable.
type Consumer struct {
	cfg     config
	rdb     redis.UniversalClient
	h       handler.Handler
	s       scripts
	log     *slog.Logger
	credits *credit.Pool
	queue   chan *job // fetched jobs waiting for a worker

	stopping  atomic.Bool // the drain started: queued jobs are handed back
	used      atomic.Bool
	abandoned atomic.Bool // the drain timed out: late handler results are dropped
	c         counters

	transientBackoff backoff.Policy
	retryBackoff     backoff.Policy

	mu        sync.Mutex
	held      map[string]int // reliable: elements known to be in this consumer's processing lists
	removed   map[string]int // during a resync: elements forgotten since it began
	ackBuf    []*job
	pend      pendHeap
	unstarted []*job

	// Owned by the fetcher goroutine.
	needResync bool
	lastResync time.Time
	sinceFair  int

	ackWake   chan struct{}
	retryWake chan struct{}
	fail      context.CancelCauseFunc

	handlers sync.WaitGroup
	hctx     context.Context
	hcancel  context.CancelFunc
}

type counters struct {
	delivered, acked, failed, retried, requeued, deadLettered, malformed, recovered, released atomic.Uint64
}

// job is one job held by the consumer.
type job struct {
	q     int    // index of its queue
	elem  string // reliable: the element in the processing list now; simple: as popped
	msg   stream.Message
	bad   string // non-empty: a malformed envelope, and why
	plain bool   // simple: a plain string, not rewritten
	acked bool   // a removal was tried before (a 0 result is then no news)
}

// NewReliableConsumer returns a consumer named consumer that moves jobs
// from queues (in priority order, the first queue first) into processing
// lists of its own before handling them, so that no job is lost when the
// process dies (see the package documentation). The name must be unique
// among the queues' consumers and stable across restarts (a host or pod
// name): on start, a consumer first hands back the jobs its name left in
// its processing lists. opts may be nil for defaults.
//
// Invalid arguments (a nil client or handler, no queues, empty names,
// negative or inconsistent options) give an error wrapping
// [ErrInvalidOptions]. The consumer never closes rdb.
func NewReliableConsumer(rdb redis.UniversalClient, queues []string, consumer string, h handler.Handler, opts *Options) (*Consumer, error) {
	return newConsumer(modeReliable, rdb, queues, consumer, h, opts)
}

// NewSimpleConsumer returns a consumer that pops jobs from queues (BRPOP,
// in priority order, the first queue first) and handles them. Delivery is
// at most once: a job is out of Redis while its handler runs, so a crash
// loses it (see the package documentation). opts may be nil for defaults;
// the options marked "reliable mode" are ignored.
//
// Invalid arguments give an error wrapping [ErrInvalidOptions]. The
// consumer never closes rdb.
func NewSimpleConsumer(rdb redis.UniversalClient, queues []string, h handler.Handler, opts *Options) (*Consumer, error) {
	return newConsumer(modeSimple, rdb, queues, "", h, opts)
}

func newConsumer(m mode, rdb redis.UniversalClient, queues []string, name string, h handler.Handler, opts *Options) (*Consumer, error) {
	if rdb == nil {
		return nil, invalid("nil redis client")
	}
	if h == nil {
		return nil, invalid("nil handler")
	}
	cfg, err := normalize(m, queues, name, opts)
	if err != nil {
		return nil, err
	}
	if _, ok := rdb.(*redis.ClusterClient); ok {
		if err := cfg.checkSlots(); err != nil {
			return nil, err
		}
	}
	slots := cfg.Concurrency + cfg.Prefetch
	return &Consumer{
		cfg:              cfg,
		rdb:              rdb,
		h:                h,
		s:                newScripts(),
		log:              cfg.Logger,
		credits:          credit.New(slots),
		queue:            make(chan *job, slots),
		held:             make(map[string]int),
		ackWake:          make(chan struct{}, 1),
		retryWake:        make(chan struct{}, 1),
		transientBackoff: backoff.Policy{Base: 50 * time.Millisecond, Max: 5 * time.Second},
		retryBackoff:     backoff.Policy{Base: cfg.RetryBackoff, Max: cfg.MaxRetryBackoff},
	}, nil
}

// Stats returns a snapshot of the consumer's counters.
func (c *Consumer) Stats() Stats {
	return Stats{
		Delivered:    c.c.delivered.Load(),
		Acked:        c.c.acked.Load(),
		Failed:       c.c.failed.Load(),
		Retried:      c.c.retried.Load(),
		Requeued:     c.c.requeued.Load(),
		DeadLettered: c.c.deadLettered.Load(),
		Malformed:    c.c.malformed.Load(),
		Recovered:    c.c.recovered.Load(),
		Released:     c.c.released.Load(),
	}
}

func (c *Consumer) reliable() bool { return c.cfg.mode == modeReliable }

// Run consumes until ctx is cancelled, then shuts down gracefully.
//
// It first checks Redis's maxmemory-policy: a policy other than noeviction
// is logged at Warn (Redis may evict jobs), once per client (see
// docs/reliability.md). In reliable mode it then checks the keys' types, registers the
// consumer (heartbeat), hands back to the queues the jobs its name left in
// its processing lists, and recovers those of consumers whose heartbeat
// expired; then it fetches jobs into its processing lists (as many as there
// are free handler slots per round trip), removes each finished job, retries
// failed ones with backoff, dead-letters those that fail permanently or too
// often, renews its heartbeat and sweeps for dead consumers every
// SweepInterval. In simple mode it pops and handles.
//
// When ctx is cancelled Run stops fetching, hands the fetched jobs that no
// handler started back to the front of their queues, waits up to
// DrainTimeout for in-flight handlers (their contexts are not cancelled
// until then), flushes removals, deregisters (reliable mode, when its
// processing lists are empty) and returns nil. Past DrainTimeout it returns
// an error wrapping [ErrDrainTimeout]. Redis outages, and a Redis at
// maxmemory that refuses writes with OOM (policy noeviction), are ridden
// out with capped, jittered backoff; Run returns early with an error only for
// problems that waiting cannot fix, such as a key of the wrong type (an
// error wrapping [ErrNotList], naming the key) or a missing permission. A
// second call returns [ErrAlreadyRun].
func (c *Consumer) Run(ctx context.Context) error {
	if !c.used.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	// A policy other than noeviction is logged at Warn, a refused CONFIG
	// GET at Info, once per client (see redischeck.EvictionPolicy).
	redischeck.AtStart(ctx, c.rdb, c.cfg.warnLog, c.transientBackoff, func(err error) {
		c.transient("check maxmemory-policy", err)
	})
	if err := c.startup(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		c.leave()
		return nil
	}
	c.hctx, c.hcancel = context.WithCancel(context.WithoutCancel(ctx))
	defer c.hcancel()

	// Housekeeping outlives the loops: the heartbeat must go on while
	// in-flight handlers drain, and removals are flushed last.
	ackCtx, stopAck := context.WithCancel(context.WithoutCancel(ctx))
	beatCtx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAck()
	defer stopBeat()
	var acker, beater sync.WaitGroup
	if c.reliable() {
		acker.Go(func() { c.ackLoop(ackCtx) })
		beater.Go(func() { c.heartbeatLoop(beatCtx) })
	}

	for range c.cfg.Concurrency {
		c.handlers.Go(c.worker)
	}

	loopCtx, stopLoops := context.WithCancelCause(ctx)
	defer stopLoops(nil)
	c.fail = stopLoops
	loops, lctx := errgroup.WithContext(loopCtx)
	loops.Go(func() error { return c.fetchLoop(lctx) })
	loops.Go(func() error { c.retryLoop(lctx); return nil })
	if c.reliable() {
		loops.Go(func() error { c.sweepLoop(lctx); return nil })
	}
	loopErr := loops.Wait()
	if cause := context.Cause(loopCtx); loopErr == nil && ctx.Err() == nil && cause != nil {
		loopErr = cause // a worker hit an error that waiting cannot fix
	}
	if loopErr != nil {
		c.log.Error("consumer stopping on a permanent error", "err", loopErr)
	}

	drainErr := c.drain()
	stopAck()
	acker.Wait()
	stopBeat()
	beater.Wait()
	c.leave()
	return errors.Join(loopErr, drainErr)
}

// startup runs start until it succeeds, retrying transient errors, or ctx
// ends (then it returns nil and Run returns nil).
func (c *Consumer) startup(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := c.start(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrNotList) || !waitable(err) {
			err = c.permanent(ctx, "start", err)
			c.log.Error("consumer cannot start", "err", err)
			return err
		}
		c.transient("start", err)
		if !backoff.Sleep(ctx, c.transientBackoff.Delay(attempt)) {
			return nil
		}
	}
}

func (c *Consumer) start(ctx context.Context) error {
	if err := c.checkTypes(ctx); err != nil {
		return err
	}
	if !c.reliable() {
		return nil
	}
	if err := c.beat(ctx); err != nil {
		return err
	}
	for _, q := range c.cfg.queues {
		n, err := c.s.recover.Run(ctx, c.rdb,
			[]string{q, ProcessingKey(q, c.cfg.consumer), HeartbeatKey(q, c.cfg.consumer), ConsumersKey(q)},
			c.cfg.consumer, "1").Int64()
		if err != nil {
			return err
		}
		if n > 0 {
			c.c.recovered.Add(uint64(n))
			c.log.Info("handed back jobs this consumer's name left in its processing list", "queue", q, "count", n)
		}
	}
	return c.sweep(ctx)
}

// keys returns every list the consumer uses.
func (c *Consumer) keys() []string {
	keys := append([]string(nil), c.cfg.queues...)
	keys = append(keys, c.cfg.dead...)
	if c.reliable() {
		for _, q := range c.cfg.queues {
			keys = append(keys, ProcessingKey(q, c.cfg.consumer))
		}
	}
	return keys
}

// checkTypes returns an error wrapping ErrNotList, naming the key, when a
// list the consumer uses holds another type.
func (c *Consumer) checkTypes(ctx context.Context) error {
	keys := c.keys()
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Type(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for i, cmd := range cmds {
		if t := cmd.Val(); t != "list" && t != "none" {
			return notList(keys[i], t)
		}
	}
	return nil
}

func notList(key, typ string) error {
	if typ == "" {
		return fmt.Errorf("%w: key %q holds another type", ErrNotList, key)
	}
	return fmt.Errorf("%w: key %q holds a %s", ErrNotList, key, typ)
}

// permanent wraps an error that stops the consumer. A WRONGTYPE reply is
// turned into an error wrapping ErrNotList that names the key.
func (c *Consumer) permanent(ctx context.Context, op string, err error) error {
	if errors.Is(err, ErrNotList) {
		return fmt.Errorf("queue: %s: %w", op, err)
	}
	if rediserr.IsWrongType(err) {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.AckTimeout)
		defer cancel()
		if terr := c.checkTypes(tctx); errors.Is(terr, ErrNotList) {
			return fmt.Errorf("queue: %s: %w", op, terr)
		}
		return fmt.Errorf("queue: %s: %w: %w", op, ErrNotList, err)
	}
	return fmt.Errorf("queue: %s on %q: %w", op, c.cfg.queues, err)
}

func (c *Consumer) report(err error) {
	if c.cfg.OnError != nil {
		c.cfg.OnError(err)
	}
}

// waitable reports whether waiting can fix err: Redis is unreachable,
// restarting or failing over (rediserr.IsTransient), or out of memory
// (OOM: at maxmemory with the noeviction policy, Redis refuses the
// heartbeat, the fetch and the pushes until memory is freed or maxmemory
// raised).
func waitable(err error) bool { return rediserr.IsTransient(err) || rediserr.IsOOM(err) }

func (c *Consumer) transient(op string, err error) {
	if rediserr.IsOOM(err) {
		c.log.Warn("redis is out of memory (maxmemory with noeviction); retrying until memory is freed", "op", op, "err", err)
	} else {
		c.log.Warn("redis unavailable; retrying", "op", op, "err", err)
	}
	c.report(fmt.Errorf("queue: %s: %w", op, err))
}

// errStop ends a loop without an error.
var errStop = errors.New("stop")

// handleErr decides what a loop does about a Redis error: nil to carry on
// after a backoff pause, errStop when ctx ended, or a permanent error.
func (c *Consumer) handleErr(ctx context.Context, op string, err error, attempt *int) error {
	if ctx.Err() != nil {
		return errStop
	}
	if errors.Is(err, ErrNotList) || !waitable(err) {
		return c.permanent(ctx, op, err)
	}
	c.transient(op, err)
	d := c.transientBackoff.Delay(*attempt)
	*attempt++
	if !backoff.Sleep(ctx, d) {
		return errStop
	}
	return nil
}

// fetchLoop fetches jobs once at least Prefetch handler slots are free,
// as many as there are free slots, and waits (a bounded blocking command)
// when the queues are empty.
//
// The waits block on a connection of their own (see package blockconn),
// not on the shared client, whose pool the producers, removals and
// heartbeats need; it is closed when fetchLoop returns. When ctx ends, a
// blocked wait is woken with CLIENT UNBLOCK, and returns having taken
// nothing. If that is refused or fails, a reliable consumer closes the
// connection instead: its BLMOVE moves a job from the queue to the same
// place in the same queue, so a reply lost with the connection loses
// nothing. A simple consumer never closes it with a BRPOP in flight (the
// job popped is in the reply and nowhere else): its stop then waits for the
// BRPOP to end, up to PollInterval.
func (c *Consumer) fetchLoop(ctx context.Context) error {
	wake := blockconn.UnblockOnly
	if c.reliable() {
		wake = blockconn.UnblockOrClose
	}
	wc := blockconn.New(c.rdb, wake)
	defer wc.Close()
	attempt := 0
	total := c.cfg.Concurrency + c.cfg.Prefetch
	c.lastResync = time.Now()
	for {
		n := c.credits.Take(ctx, c.cfg.Prefetch, total)
		if n == 0 {
			return nil
		}
		if c.reliable() && (c.needResync || time.Since(c.lastResync) >= c.cfg.SweepInterval) {
			c.lastResync = time.Now()
			jobs, err := c.resync(ctx, n)
			if err != nil {
				c.credits.Give(n)
				if err := c.handleErr(ctx, "resync", err, &attempt); err != nil {
					return stopped(err)
				}
				continue
			}
			for _, j := range jobs {
				c.dispatch(j)
			}
			c.credits.Give(n - len(jobs))
			continue
		}
		fair := !c.cfg.StrictPriority && len(c.cfg.queues) > 1 && c.sinceFair >= c.cfg.StarvationLimit
		var jobs []*job
		var err error
		if c.reliable() {
			jobs, err = c.fetchReliable(ctx, n, fair)
		} else {
			jobs, err = c.fetchSimple(ctx, wc, n, fair)
		}
		if err != nil {
			c.credits.Give(n)
			if err := c.handleErr(ctx, "fetch", err, &attempt); err != nil {
				return stopped(err)
			}
			continue
		}
		attempt = 0
		if fair {
			c.sinceFair = 0
		} else {
			c.sinceFair += len(jobs)
		}
		for _, j := range jobs {
			c.dispatch(j)
		}
		c.credits.Give(n - len(jobs))
		if len(jobs) < n && c.reliable() {
			if err := c.wait(ctx, wc); err != nil && !rediserr.IsNil(err) {
				if err := c.handleErr(ctx, "BLMOVE", err, &attempt); err != nil {
					return stopped(err)
				}
			}
		}
	}
}

func stopped(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// dispatch queues j for a worker, using one credit the caller took.
func (c *Consumer) dispatch(j *job) {
	c.c.delivered.Add(1)
	c.queue <- j // never blocks: the queue has room for every credit
}

// worker runs queued jobs through the handler until the queue is closed.
func (c *Consumer) worker() {
	for j := range c.queue {
		if c.stopping.Load() {
			c.mu.Lock()
			c.unstarted = append(c.unstarted, j)
			c.mu.Unlock()
		} else {
			c.processGuarded(j)
		}
		c.credits.Give(1)
	}
}

// processGuarded is process for a worker. A handler that calls
// runtime.Goexit (as t.FailNow does) ends the worker's goroutine where no
// recover can stop it: the job is then scheduled for a retry, its credit is
// given back, and a new worker takes the place of the old one.
func (c *Consumer) processGuarded(j *job) {
	finished := false
	defer func() {
		if finished {
			return
		}
		c.log.Error("handler called runtime.Goexit; the job will be retried", "queue", c.cfg.queues[j.q], "id", j.msg.ID)
		c.report(fmt.Errorf("queue: handler called runtime.Goexit on job %s", j.msg.ID))
		c.c.failed.Add(1)
		c.scheduleRetry(j, c.retryBackoff.Delay(int(j.msg.Deliveries-1)))
		c.credits.Give(1)
		c.handlers.Go(c.worker)
	}()
	c.process(j)
	finished = true
}

func (c *Consumer) process(j *job) {
	q := c.cfg.queues[j.q]
	if j.bad != "" {
		c.c.malformed.Add(1)
		c.report(fmt.Errorf("queue: malformed envelope in %q: %s", q, j.bad))
		c.deadLetter(j, "malformed envelope: "+j.bad)
		return
	}
	d := j.msg.Deliveries
	if d > c.cfg.MaxAttempts {
		c.deadLetter(j, fmt.Sprintf("delivered %d times, more than MaxAttempts (%d), without finishing: the handler crashed or stalled", d, c.cfg.MaxAttempts))
		return
	}
	err := c.call(j)
	if c.abandoned.Load() {
		return // the drain gave up on us; the job stays in the processing list
	}
	if err == nil {
		c.done(j)
		return
	}
	c.c.failed.Add(1)
	c.report(fmt.Errorf("queue: handler failed on job %s from %q (attempt %d): %w", j.msg.ID, q, d, err))
	switch {
	case errors.Is(err, handler.ErrPermanent), errors.Is(err, stream.ErrDecode):
		c.log.Warn("handler failed permanently", "queue", q, "id", j.msg.ID, "attempts", d, "err", err)
		c.deadLetter(j, err.Error())
	case d >= c.cfg.MaxAttempts:
		c.log.Warn("handler failed on the last allowed attempt", "queue", q, "id", j.msg.ID, "attempts", d, "err", err)
		c.deadLetter(j, err.Error())
	default:
		delay := c.retryBackoff.Delay(int(d - 1))
		c.log.Info("handler failed; will retry", "queue", q, "id", j.msg.ID, "attempts", d, "retry_in", delay, "err", err)
		c.scheduleRetry(j, delay)
	}
}

// call runs the handler on a copy of the message, turning a panic into a
// *handler.PanicError.
func (c *Consumer) call(j *job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &handler.PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	msg := j.msg
	msg.Values = maps.Clone(j.msg.Values)
	return c.h.Handle(c.hctx, &msg)
}

// done records a success: in reliable mode the job's removal from the
// processing list is queued for the acker.
func (c *Consumer) done(j *job) {
	if !c.reliable() {
		c.c.acked.Add(1)
		return
	}
	c.mu.Lock()
	c.ackBuf = append(c.ackBuf, j)
	c.mu.Unlock()
	select {
	case c.ackWake <- struct{}{}:
	default:
	}
}

// settleCtx bounds one settling operation (dead letter, requeue) with
// AckTimeout, outliving the Run context.
func (c *Consumer) settleCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(c.hctx), c.cfg.AckTimeout)
}

// deadLetter moves j to the dead-letter list with reason, atomically with
// its removal from the processing list (reliable mode). When that fails,
// the job stays where it is and the move is tried again later.
func (c *Consumer) deadLetter(j *job, reason string) {
	ctx, cancel := c.settleCtx()
	defer cancel()
	if err := c.tryDeadLetter(ctx, j, reason); err != nil {
		c.schedule(&pending{kind: kindDead, j: j, reason: reason, due: time.Now().Add(c.transientBackoff.Delay(0)), tries: 1})
	}
}

func (c *Consumer) tryDeadLetter(ctx context.Context, j *job, reason string) error {
	q := c.cfg.queues[j.q]
	dead := c.cfg.dead[j.q]
	jobText := j.elem
	if !c.reliable() {
		jobText = c.simpleElem(j, j.msg.Deliveries)
	}
	rec := encodeDead(q, c.cfg.consumer, j.msg.ID, j.msg.Deliveries, reason, jobText)
	moved, err := c.moveOut(ctx, j.q, dead, "L", []*job{j}, []string{rec})
	if err != nil {
		c.log.Error("dead-lettering failed; will try again", "queue", q, "id", j.msg.ID, "err", err)
		c.report(fmt.Errorf("queue: dead-letter job %s to %q: %w", j.msg.ID, dead, err))
		if rediserr.IsWrongType(err) && c.fail != nil {
			c.fail(c.permanent(ctx, "dead-letter", err))
		}
		return err
	}
	if moved[0] {
		c.c.deadLettered.Add(1)
		c.log.Warn("job dead-lettered", "queue", q, "id", j.msg.ID, "dead_letter_list", dead, "reason", reason)
	} else {
		c.log.Info("job no longer in the processing list (recovered by another consumer); not dead-lettered", "queue", q, "id", j.msg.ID)
	}
	return nil
}

// moveOut moves jobs of queue qi to the list dest, pushing pushed[i] for
// jobs[i] ("L": LPUSH, "R": RPUSH, in order). In reliable mode each job
// moves only if its element is still in the processing list, atomically
// with its removal (one script); the result says which moved. In simple
// mode the elements are pushed.
func (c *Consumer) moveOut(ctx context.Context, qi int, dest, dir string, jobs []*job, pushed []string) ([]bool, error) {
	moved := make([]bool, len(jobs))
	if len(jobs) == 0 {
		return moved, nil
	}
	if !c.reliable() {
		args := make([]any, len(pushed))
		for i, p := range pushed {
			args[i] = p
		}
		var err error
		if dir == "R" {
			err = c.rdb.RPush(ctx, dest, args...).Err()
		} else {
			err = c.rdb.LPush(ctx, dest, args...).Err()
		}
		if err != nil {
			return nil, err
		}
		for i := range moved {
			moved[i] = true
		}
		return moved, nil
	}
	args := make([]any, 0, 1+2*len(jobs))
	args = append(args, dir)
	for i, j := range jobs {
		args = append(args, j.elem, pushed[i])
	}
	proc := ProcessingKey(c.cfg.queues[qi], c.cfg.consumer)
	res, err := c.s.move.Run(ctx, c.rdb, []string{proc, dest}, args...).Int64Slice()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	for i, j := range jobs {
		moved[i] = i < len(res) && res[i] == 1
		c.forgetLocked(j.elem)
	}
	c.mu.Unlock()
	return moved, nil
}

// forgetLocked drops one element from held; c.mu must be held.
func (c *Consumer) forgetLocked(elem string) {
	if n := c.held[elem]; n > 1 {
		c.held[elem] = n - 1
	} else {
		delete(c.held, elem)
	}
	if c.removed != nil {
		c.removed[elem]++
	}
}

// maxPending bounds the failed jobs held for a retry.
func (c *Consumer) maxPending() int { return 10 * (c.cfg.Concurrency + c.cfg.Prefetch) }

// scheduleRetry keeps a failed job (in reliable mode, in the processing
// list) until its retry is due. At most maxPending jobs are kept so: past
// that, the job goes back to the end of its queue at once (Requeued), so
// memory stays bounded through a flood of failures and MaxAttempts still
// holds.
func (c *Consumer) scheduleRetry(j *job, delay time.Duration) {
	c.mu.Lock()
	full := len(c.pend) >= c.maxPending()
	c.mu.Unlock()
	c.c.retried.Add(1)
	if full {
		ctx, cancel := c.settleCtx()
		defer cancel()
		if err := c.tryRequeue(ctx, j); err != nil {
			c.schedule(&pending{kind: kindRequeue, j: j, due: time.Now().Add(c.transientBackoff.Delay(0)), tries: 1})
		}
		return
	}
	c.schedule(&pending{kind: kindRedeliver, j: j, due: time.Now().Add(delay)})
}

func (c *Consumer) tryRequeue(ctx context.Context, j *job) error {
	q := c.cfg.queues[j.q]
	pushed := j.elem
	if !c.reliable() {
		pushed = c.simpleElem(j, j.msg.Deliveries)
	}
	moved, err := c.moveOut(ctx, j.q, q, "L", []*job{j}, []string{pushed})
	if err != nil {
		c.log.Error("requeueing a failed job failed; will try again", "queue", q, "id", j.msg.ID, "err", err)
		c.report(fmt.Errorf("queue: requeue job %s to %q: %w", j.msg.ID, q, err))
		return err
	}
	if moved[0] {
		c.c.requeued.Add(1)
		c.log.Info("too many retries waiting; failed job pushed back to the end of its queue", "queue", q, "id", j.msg.ID)
	}
	return nil
}

func (c *Consumer) schedule(p *pending) {
	c.mu.Lock()
	c.pend.push(p)
	c.mu.Unlock()
	select {
	case c.retryWake <- struct{}{}:
	default:
	}
}

// retryLoop runs pending work when due: re-deliveries of failed jobs, and
// dead-letterings and requeues that failed earlier.
func (c *Consumer) retryLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		var p *pending
		wait := time.Hour
		if len(c.pend) > 0 {
			if d := time.Until(c.pend[0].due); d > 0 {
				wait = d
			} else {
				p = c.pend.pop()
			}
		}
		c.mu.Unlock()
		if p == nil {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-c.retryWake:
			case <-timer.C:
			}
			continue
		}
		if !c.runPending(ctx, p) {
			c.schedule(p) // ctx ended: the drain hands it back
			return
		}
	}
}

// runPending runs p, or schedules it again after a failure. It reports
// false, leaving p to the caller, when ctx ended first.
func (c *Consumer) runPending(ctx context.Context, p *pending) bool {
	var err error
	switch p.kind {
	case kindRedeliver:
		if c.credits.Take(ctx, 1, 1) == 0 {
			return false
		}
		var ok bool
		ok, err = c.bump(ctx, p.j, p.again)
		switch {
		case err != nil:
			c.credits.Give(1)
			p.again = true
			c.transient("retry", err)
		case !ok:
			c.credits.Give(1)
			c.log.Info("failed job no longer in the processing list (recovered by another consumer); not retried", "queue", c.cfg.queues[p.j.q], "id", p.j.msg.ID)
		default:
			c.dispatch(p.j)
		}
	case kindDead:
		sctx, cancel := c.settleCtx()
		err = c.tryDeadLetter(sctx, p.j, p.reason)
		cancel()
	case kindRequeue:
		sctx, cancel := c.settleCtx()
		err = c.tryRequeue(sctx, p.j)
		cancel()
	}
	if err != nil {
		p.due = time.Now().Add(c.transientBackoff.Delay(p.tries))
		p.tries++
		c.schedule(p)
	}
	return true
}

// bump prepares a failed job for its next delivery: in reliable mode its
// element in the processing list is rewritten in place with the attempt
// count incremented (one script), in simple mode only the count in memory
// changes. It reports false when the job is no longer in the processing
// list.
func (c *Consumer) bump(ctx context.Context, j *job, again bool) (bool, error) {
	if !c.reliable() {
		j.msg.Deliveries++
		return true, nil
	}
	next := withAttempts(j.elem, j.msg.Deliveries+1)
	if !again {
		c.mu.Lock()
		c.held[next]++ // before the rewrite, so a resync never adopts it
		c.mu.Unlock()
	}
	proc := ProcessingKey(c.cfg.queues[j.q], c.cfg.consumer)
	n, err := c.s.bump.Run(ctx, c.rdb, []string{proc}, j.elem, next).Int64()
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.forgetLocked(j.elem)
	if n == 0 {
		c.forgetLocked(next)
	}
	c.mu.Unlock()
	if n == 0 {
		return false, nil
	}
	j.elem = next
	j.msg.Deliveries++
	return true, nil
}

// withAttempts returns the canonical envelope elem with its attempt count
// set to n. elem must be canonical (see checkCanonical).
func withAttempts(elem string, n int64) string {
	rest := elem[len(canonicalPrefix):]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	return fmt.Sprintf("%s%d%s", canonicalPrefix, n, rest[i:])
}

// simpleElem returns the element that stands for j (simple mode) with
// attempt count n: the original text for a plain string never delivered
// (n == 0) or a malformed envelope, else an envelope.
func (c *Consumer) simpleElem(j *job, n int64) string {
	if j.bad != "" || (j.plain && n == 0) {
		return j.elem
	}
	env := envelope{SG: 1, N: n, ID: j.msg.ID, V: j.msg.Values}
	return env.encode()
}

// drain stops the workers: fetched jobs no handler started, and failed
// jobs waiting for a retry, go back to the front of their queues; in-flight
// handlers get up to DrainTimeout. It must run after the loops that
// dispatch have returned.
func (c *Consumer) drain() error {
	c.stopping.Store(true)
	close(c.queue)
	var unstarted []*job
	for j := range c.queue {
		unstarted = append(unstarted, j)
		c.credits.Give(1)
	}
	c.mu.Lock()
	unstarted = append(unstarted, c.unstarted...)
	c.unstarted = nil
	pend := c.pend
	c.pend = nil
	c.mu.Unlock()
	c.handBack(unstarted, pend)

	done := make(chan struct{})
	go func() { c.handlers.Wait(); close(done) }()
	t := time.NewTimer(c.cfg.DrainTimeout)
	defer t.Stop()
	var err error
	select {
	case <-done:
	case <-t.C:
		err = c.abandon(done)
	}
	c.mu.Lock()
	late := c.unstarted
	c.unstarted = nil
	c.mu.Unlock()
	c.handBack(late, nil)
	return err
}

// abandon runs past the drain deadline: it cancels handler contexts and
// gives handlers that watch them a moment to return.
func (c *Consumer) abandon(done chan struct{}) error {
	c.hcancel()
	grace := time.NewTimer(min(time.Second, c.cfg.DrainTimeout))
	defer grace.Stop()
	select {
	case <-done:
		return fmt.Errorf("%w (%v): handlers returned only after their context was cancelled", ErrDrainTimeout, c.cfg.DrainTimeout)
	case <-grace.C:
	}
	c.abandoned.Store(true)
	what := "their jobs stay in the processing list until the heartbeat expires"
	if !c.reliable() {
		what = "their jobs are lost (simple mode)"
	}
	c.log.Error("drain timeout: handlers still running; " + what)
	return fmt.Errorf("%w (%v): handlers still running; %s", ErrDrainTimeout, c.cfg.DrainTimeout, what)
}

// handBack returns jobs to the front of their queues at shutdown:
// unstarted ones with their attempt count as before the fetch, failed ones
// waiting for a retry with the failed attempt counted. Dead-letterings and
// requeues still pending are tried once more. In reliable mode, jobs whose
// hand-back fails stay in the processing list and are recovered once the
// heartbeat expires.
func (c *Consumer) handBack(unstarted []*job, pend pendHeap) {
	if len(unstarted) == 0 && len(pend) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.AckTimeout)
	defer cancel()
	type item struct {
		j      *job
		pushed string
	}
	byQueue := make([][]item, len(c.cfg.queues))
	for _, p := range pend {
		switch p.kind {
		case kindDead:
			_ = c.tryDeadLetter(ctx, p.j, p.reason)
		case kindRequeue:
			_ = c.tryRequeue(ctx, p.j)
		case kindRedeliver:
			pushed := p.j.elem
			if !c.reliable() {
				pushed = c.simpleElem(p.j, p.j.msg.Deliveries)
			}
			byQueue[p.j.q] = append(byQueue[p.j.q], item{p.j, pushed})
		}
	}
	for _, j := range unstarted {
		var pushed string
		switch {
		case !c.reliable():
			pushed = c.simpleElem(j, j.msg.Deliveries-1)
		case j.bad != "" || checkCanonical(j.elem) != "":
			pushed = j.elem
		default:
			pushed = withAttempts(j.elem, j.msg.Deliveries-1)
		}
		byQueue[j.q] = append(byQueue[j.q], item{j, pushed})
	}
	for qi, items := range byQueue {
		if len(items) == 0 {
			continue
		}
		// RPUSH in reverse, so the first item (fetched first) ends up at
		// the very front.
		jobs := make([]*job, len(items))
		pushed := make([]string, len(items))
		for i, it := range items {
			jobs[len(items)-1-i] = it.j
			pushed[len(items)-1-i] = it.pushed
		}
		q := c.cfg.queues[qi]
		moved, err := c.moveOut(ctx, qi, q, "R", jobs, pushed)
		if err != nil {
			c.log.Error("handing back unstarted jobs failed", "queue", q, "count", len(jobs), "err", err)
			c.report(fmt.Errorf("queue: hand back %d jobs to %q: %w", len(jobs), q, err))
			continue
		}
		n := 0
		for _, m := range moved {
			if m {
				n++
			}
		}
		c.c.released.Add(uint64(n))
		c.log.Info("handed unstarted jobs back to their queue", "queue", q, "count", n)
	}
}
