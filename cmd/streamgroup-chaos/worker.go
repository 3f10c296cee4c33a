package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// workerCommand is the hidden subcommand that runs one worker process.
const workerCommand = "worker"

// Consumer settings of the workers, scaled down so that reclaims, leases
// and retries happen many times in a run.
const (
	workerConcurrency = 8
	maxDeliveries     = 30 // MaxDeliveries (streams and lists): far above what faults can add to a healthy job
	workerDrain       = 10 * time.Second
)

// Exit codes of a worker. Killed by SIGKILL, it has none of them.
const (
	workerExitOK           = 0 // Run returned nil after SIGTERM
	workerExitBadArgs      = 2
	workerExitParentGone   = 3 // the parent died; Run returned after a drain
	workerExitDrainTimeout = 4 // Run returned ErrDrainTimeout (nothing lost, entries stay pending)
	workerExitRunError     = 5 // Run returned another error: a problem
)

// errPoison is the failure of every poison job.
var errPoison = errors.New("poison job")

// workerMain runs one worker: a group.Consumer (target streams) and/or a
// reliable queue.Consumer (target lists) named -name, reaching Redis at
// -addr (the fault proxy), until SIGTERM or SIGINT (graceful drain) or until
// its parent is gone.
func workerMain(args []string) int {
	fs := flag.NewFlagSet(workerCommand, flag.ContinueOnError)
	var w workerArgs
	fs.StringVar(&w.addr, "addr", "", "Redis host:port (the fault proxy)")
	fs.StringVar(&w.name, "name", "", "consumer name")
	fs.StringVar(&w.target, "target", targetStreams, "what to consume: streams, lists or both")
	fs.DurationVar(&w.minIdle, "min-idle", time.Second, "MinIdle")
	fs.BoolVar(&w.verbose, "v", false, "log the library's own logs")
	t0 := fs.Int64("t0", 0, "the parent's start time (Unix ns), so that log times line up")
	fs.StringVar(&w.skip, "skip-job", "", "acknowledge this job without counting it in the ledger (checks the checker)")
	if err := fs.Parse(args); err != nil || w.addr == "" || w.name == "" || !validTarget(w.target) {
		fmt.Fprintln(os.Stderr, "worker: need -addr, -name and a valid -target:", err)
		return workerExitBadArgs
	}
	start := time.Now()
	if *t0 != 0 {
		start = time.Unix(0, *t0)
	}
	log := newLogger(os.Stderr, w.name, w.verbose, start)
	// go-redis logs every failed dial; the consumers report what matters
	// through OnError.
	redis.SetLogger(quietRedis{})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	code, err := runWorker(ctx, log, w)
	if err != nil {
		log.Error("worker stopped", "err", err, "exit", code)
	}
	return code
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// workerArgs are a worker's flags.
type workerArgs struct {
	addr, name, target string
	minIdle            time.Duration
	verbose            bool
	skip               string
}

// workerClient returns a client through the proxy for one consumer.
func workerClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:        addr,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		PoolSize: 4 * workerConcurrency,
	})
}

// odd reports whether the worker's number is odd. Odd-numbered workers use
// a fixed Prefetch, even-numbered ones the default (adaptive for streams, a
// small one for lists), so that a run covers both.
func (w workerArgs) odd() bool { return (w.name[len(w.name)-1]-'0')%2 == 1 }

func runWorker(ctx context.Context, log *slog.Logger, w workerArgs) (int, error) {
	errs := newErrorLog()
	var lib *slog.Logger // the library's own logs
	if w.verbose {
		lib = log.With("lib", true)
	}
	targets := newTargets(w.target, nil)
	consumers := make([]workerConsumer, len(targets))
	for i, t := range targets {
		rdb := workerClient(w.addr)
		defer rdb.Close()
		c, err := t.consumer(rdb, w, chaosHandler(rdb, t.ledger(), w.skip), errs.add, lib)
		if err != nil {
			return workerExitRunError, err
		}
		consumers[i] = c
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var parentGone bool
	var g errgroup.Group
	g.Go(func() error {
		parentGone = watchParent(runCtx)
		cancel()
		return nil
	})
	g.Go(func() error {
		errs.report(runCtx, log, 5*time.Second)
		return nil
	})
	// The reporters stop after the consumers, so that they see their last
	// counts.
	repCtx, stopReporters := context.WithCancel(context.WithoutCancel(ctx))
	var reporters sync.WaitGroup
	for _, c := range consumers {
		if c.report != nil {
			reporters.Go(func() { c.report(repCtx) })
		}
	}
	log.Info("started", "pid", os.Getpid(), "target", w.target)
	runErrs := make([]error, len(consumers))
	var runs sync.WaitGroup
	for i, c := range consumers {
		runs.Go(func() {
			runErrs[i] = c.run(runCtx)
			// One consumer stopping (an error it cannot ride out) stops
			// the worker.
			cancel()
		})
	}
	runs.Wait()
	cancel()
	stopReporters()
	reporters.Wait()
	_ = g.Wait()
	errs.flush(log)
	for i, c := range consumers {
		log.Info("stopped", append([]any{"target", targets[i].name(), "run", runErrs[i]}, c.stats()...)...)
	}
	runErr := errors.Join(runErrs...)
	drainTimeout := false
	for _, err := range runErrs {
		switch {
		case err == nil:
		case errors.Is(err, group.ErrDrainTimeout) || errors.Is(err, queue.ErrDrainTimeout):
			drainTimeout = true
		default:
			return workerExitRunError, runErr
		}
	}
	switch {
	case drainTimeout:
		return workerExitDrainTimeout, runErr
	case parentGone:
		return workerExitParentGone, errors.New("the parent process is gone")
	default:
		return workerExitOK, nil
	}
}

// chaosHandler is the workers' handler, counting handlings in ledger; it
// acknowledges the job skip without counting it (-sabotage).
func chaosHandler(rdb *redis.Client, ledger, skip string) handler.Handler {
	return handler.Func(func(ctx context.Context, m *stream.Message) error {
		if skip != "" && m.Values[jobField] == skip {
			return nil // a handler that loses a job, on purpose
		}
		return handle(ctx, rdb, ledger, m)
	})
}

// handle is the workers' handler: sleep if asked, fail for poison jobs,
// else count the handling in the ledger. A failed ledger write fails the
// handling, so the ledger never counts a handling that did not happen (a
// write that reached Redis but whose reply was lost is counted, and the
// retry counts again: a duplicate, which at-least-once allows).
func handle(ctx context.Context, rdb *redis.Client, ledger string, m *stream.Message) error {
	job := m.Values[jobField]
	if job == "" {
		return handler.Permanent(fmt.Errorf("entry %s has no %q field", m.ID, jobField))
	}
	if ms, _ := strconv.Atoi(m.Values[sleepField]); ms > 0 {
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	switch m.Values[kindField] {
	case kindPoison:
		return fmt.Errorf("job %s: %w", job, errPoison)
	case kindPermanent:
		return handler.Permanent(fmt.Errorf("job %s: %w", job, errPoison))
	}
	return rdb.HIncrBy(ctx, ledger, job, 1).Err()
}

// watchParent returns when ctx is done (false) or when this process's
// parent has changed, that is, the parent died (true). On Linux the parent's
// death also SIGKILLs the worker (Pdeathsig); this covers the rest.
func watchParent(ctx context.Context) bool {
	ppid := os.Getppid()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
			if os.Getppid() != ppid {
				return true
			}
		}
	}
}

// errorLog counts the errors a consumer reports through OnError and logs a
// summary now and then, so that an outage makes a few lines, not thousands.
type errorLog struct {
	mu     sync.Mutex
	n      int   // errors other than poison failures since the last report
	total  int   // all of them
	poison int   // poison failures, expected
	last   error // the last error other than a poison failure
}

func newErrorLog() *errorLog { return &errorLog{} }

func (e *errorLog) add(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if errors.Is(err, errPoison) {
		e.poison++
		return
	}
	e.n++
	e.total++
	e.last = err
}

func (e *errorLog) report(ctx context.Context, log *slog.Logger, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			e.flush(log)
		}
	}
}

func (e *errorLog) flush(log *slog.Logger) {
	e.mu.Lock()
	n, total, poison, last := e.n, e.total, e.poison, e.last
	e.n = 0
	e.mu.Unlock()
	if n > 0 {
		log.Info("consumer errors", "since_last", n, "total", total, "poison_failures", poison, "last", oneLine(last))
	}
}
