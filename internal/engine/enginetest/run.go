package enginetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/stream"
)

// Run runs every scenario against h, each as a subtest on a queue of its
// own. A scenario that needs what h lacks is skipped with the reason.
func Run(t *testing.T, h Harness) {
	if h.NewQueue == nil {
		t.Fatal("enginetest.Run: Harness.NewQueue is nil")
	}
	h.Timeout = cmp.Or(h.Timeout, 10*time.Second)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for _, c := range sc.needs {
				if why, ok := h.Lacks[c]; ok {
					t.Skipf("the source lacks %s: %s", c, why)
				}
			}
			if h.Bubble == nil {
				sc.run(newEnv(t, h))
				return
			}
			h.Bubble(t, func(t *testing.T) { sc.run(newEnv(t, h)) })
		})
	}
}

type scenario struct {
	name  string
	needs []Capability
	run   func(e *env)
}

var scenarios = []scenario{
	{"FIFOWithOneWorker", nil, fifo},
	{"LoadSharing", nil, loadSharing},
	{"RetryThenDeadLetter", nil, retryThenDeadLetter},
	{"PermanentError", nil, permanent},
	{"Panic", nil, panics},
	{"Goexit", nil, goexit},
	{"GracefulDrain", nil, gracefulDrain},
	{"DrainTimeout", nil, drainTimeout},
	{"HandBack", nil, func(e *env) { handBack(e, false) }},
	{"HandBackKeepsCounts", []Capability{CountKept}, func(e *env) { handBack(e, true) }},
	{"LostLease", []Capability{Takeover}, lostLease},
	{"KeepAlive", nil, keepAlive},
	{"MemoryBound", nil, memoryBound},
}

// Each scenario checks, when a consumer's Run returns, that none of its
// goroutines is left running (running.wait).

// recorder is a handler that runs f (nil: succeed) and records the call.
func (e *env) recorder(consumer string, f func(ctx context.Context, msg *stream.Message) error) handler.Handler {
	return handler.Func(func(ctx context.Context, msg *stream.Message) error {
		// Deferred, so that a call that panics or calls runtime.Goexit is
		// recorded too; the ctx's cause is read as the call ends.
		defer e.record(ctx, consumer, msg)
		if f == nil {
			return nil
		}
		return f(ctx, msg)
	})
}

// handledAll awaits a call on each of ns.
func (e *env) handledAll(consumer string, ns ...string) {
	e.t.Helper()
	e.await(fmt.Sprintf("%s to handle %v", cmp.Or(consumer, "the consumers"), ns), func() bool {
		for _, n := range ns {
			if len(e.callsOf(n, consumer)) == 0 {
				return false
			}
		}
		return true
	})
}

// empty checks that nothing is left in Redis and nothing was dead-lettered.
func (e *env) empty() {
	e.t.Helper()
	if c := e.q.Counts(e.t); c.Left() != 0 {
		e.t.Errorf("left in Redis: %+v; want nothing", c)
	}
	if dl := e.q.DeadLetters(e.t); len(dl) != 0 {
		e.t.Errorf("dead letters = %+v; want none", dl)
	}
}

func mustStop(e *env, rs ...*running) {
	e.t.Helper()
	for _, r := range rs {
		if err := r.stop(); err != nil {
			e.t.Errorf("%s: Run = %v; want nil after a stop", r.name, err)
		}
	}
}

// fifo: one worker handles jobs in the order they were published.
func fifo(e *env) {
	ns := numbers(30)
	e.publish(ns...)
	r := e.start("c1", e.recorder("c1", nil), Options{Concurrency: 1})
	e.handledAll("c1", ns...)
	mustStop(e, r)
	var got []string
	for _, c := range e.callsOf("", "") {
		got = append(got, c.n)
	}
	if !slices.Equal(got, ns) {
		e.t.Errorf("handled in order %v; want %v", got, ns)
	}
	if n := r.hooks.count(hook.Delivered) + r.hooks.count(hook.Reclaimed); n != len(ns) {
		e.t.Errorf("the hook's Delivered and Reclaimed events count %d jobs; want %d", n, len(ns))
	}
	for _, n := range ns {
		e.wantOutcomes(n, hook.Acked)
	}
	e.empty()
}

// wantOutcomes checks the outcomes the hooks' Ends gave job n.
func (e *env) wantOutcomes(n string, want ...hook.Outcome) {
	e.t.Helper()
	if got := e.outcomes(n, ""); !slices.Equal(got, want) {
		e.t.Errorf("the hook's End outcomes of job %s = %v; want %v", n, got, want)
	}
}

// loadSharing: two consumers of slow jobs each take a fair share, and
// every job runs once.
func loadSharing(e *env) {
	const jobs = 40
	ns := numbers(jobs)
	e.publish(ns...)
	slow := func(ctx context.Context, _ *stream.Message) error {
		backoff.Sleep(ctx, 10*time.Millisecond)
		return nil
	}
	o := Options{Concurrency: 2}
	a := e.start("a", e.recorder("a", slow), o)
	b := e.start("b", e.recorder("b", slow), o)
	e.handledAll("", ns...)
	mustStop(e, a, b)
	for _, n := range ns {
		if cs := e.callsOf(n, ""); len(cs) != 1 {
			e.t.Errorf("job %s handled %d times; want once", n, len(cs))
		}
	}
	for _, name := range []string{"a", "b"} {
		if got := len(e.callsOf("", name)); got < jobs/4 {
			e.t.Errorf("%s handled %d of %d jobs; want at least %d", name, got, jobs, jobs/4)
		}
	}
	e.empty()
}

// retryThenDeadLetter: a failing job is delivered MaxDeliveries times
// (Msg.Deliveries 1..N) then dead-lettered; a job that fails once is
// retried and succeeds.
func retryThenDeadLetter(e *env) {
	const max = 3
	e.publish("bad", "flaky")
	h := e.recorder("c1", func(_ context.Context, msg *stream.Message) error {
		if msg.Values["n"] == "bad" || msg.Deliveries < 2 {
			return fmt.Errorf("boom on %s", msg.Values["n"])
		}
		return nil
	})
	r := e.start("c1", h, Options{Concurrency: 2, MaxDeliveries: max, RetryBackoff: 10 * time.Millisecond})
	dl := e.deadLetters(1)
	e.await("flaky to succeed", func() bool { return len(e.callsOf("flaky", "")) >= 2 })
	mustStop(e, r)

	var seen []int64
	for _, c := range e.callsOf("bad", "") {
		seen = append(seen, c.deliveries)
	}
	if want := []int64{1, 2, 3}; !slices.Equal(seen, want) {
		e.t.Errorf("bad job seen with Msg.Deliveries %v; want %v", seen, want)
	}
	d := dl[0]
	if d.Values["n"] != "bad" || !strings.Contains(d.Reason, "boom on bad") || d.Deliveries != max {
		e.t.Errorf("dead letter = %+v; want job bad, a reason with the handler's error, %d deliveries", d, max)
	}
	if cs := e.callsOf("flaky", ""); len(cs) != 2 {
		e.t.Errorf("flaky job handled %d times; want 2 (one failure, one success)", len(cs))
	}
	e.wantOutcomes("bad", hook.Retried, hook.Retried, hook.DeadLettered)
	e.wantOutcomes("flaky", hook.Retried, hook.Acked)
	for _, x := range e.endsOf("bad") {
		if x.r.Err == nil || !strings.Contains(x.r.Err.Error(), "boom on bad") || !x.r.Handled {
			e.t.Errorf("the hook's End of job bad: %+v; want the handler's error, handled", x.r)
		}
	}
	if c := e.q.Counts(e.t); c.Left() != 0 {
		e.t.Errorf("left in Redis: %+v; want nothing", c)
	}
}

// permanent: an error wrapping handler.ErrPermanent dead-letters at once.
func permanent(e *env) {
	e.publish("p")
	h := e.recorder("c1", func(context.Context, *stream.Message) error {
		return handler.Permanent(errors.New("malformed p"))
	})
	r := e.start("c1", h, Options{MaxDeliveries: 5, RetryBackoff: 10 * time.Millisecond})
	dl := e.deadLetters(1)
	mustStop(e, r)
	if n := len(e.callsOf("p", "")); n != 1 {
		e.t.Errorf("permanent failure handled %d times; want 1", n)
	}
	e.wantOutcomes("p", hook.DeadLettered)
	if xs := e.endsOf("p"); len(xs) == 1 && !errors.Is(xs[0].r.Err, handler.ErrPermanent) {
		e.t.Errorf("the hook's End of job p has Err %v; want the handler's, wrapping handler.ErrPermanent", xs[0].r.Err)
	}
	if d := dl[0]; !strings.Contains(d.Reason, "malformed p") || (d.Deliveries != 1 && d.Deliveries != 0) {
		e.t.Errorf("dead letter = %+v; want the handler's error after 1 delivery", d)
	}
	if c := e.q.Counts(e.t); c.Left() != 0 {
		e.t.Errorf("left in Redis: %+v; want nothing", c)
	}
}

// errorLog collects the errors a consumer reports.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) { l.mu.Lock(); l.errs = append(l.errs, err); l.mu.Unlock() }
func (l *errorLog) all() []error  { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.errs) }

// panics: a panic is a failure (a *handler.PanicError with the value and
// stack), retried, then dead-lettered.
func panics(e *env) {
	e.publish("always", "once")
	h := e.recorder("c1", func(_ context.Context, msg *stream.Message) error {
		if msg.Values["n"] == "always" || msg.Deliveries < 2 {
			panic("kaboom " + msg.Values["n"])
		}
		return nil
	})
	var errs errorLog
	r := e.start("c1", h, Options{MaxDeliveries: 2, RetryBackoff: 10 * time.Millisecond, OnError: errs.add})
	dl := e.deadLetters(1)
	e.await("the job that panicked once to succeed", func() bool { return len(e.callsOf("once", "")) >= 2 })
	mustStop(e, r)
	if n := len(e.callsOf("always", "")); n != 2 {
		e.t.Errorf("panicking job handled %d times; want 2 (retried, then dead-lettered)", n)
	}
	if d := dl[0]; d.Values["n"] != "always" || !strings.Contains(d.Reason, "kaboom always") {
		e.t.Errorf("dead letter = %+v; want job always, a reason naming the panic", d)
	}
	var pe *handler.PanicError
	for _, err := range errs.all() {
		if p, ok := errors.AsType[*handler.PanicError](err); ok && p.Value == "kaboom always" {
			pe = p
		}
	}
	if pe == nil || len(pe.Stack) == 0 {
		e.t.Errorf("OnError got %v; want a *handler.PanicError of \"kaboom always\" with its stack", errs.all())
	}
	e.wantOutcomes("always", hook.Retried, hook.DeadLettered)
	e.wantOutcomes("once", hook.Retried, hook.Acked)
	for _, x := range e.endsOf("always") {
		if p, ok := errors.AsType[*handler.PanicError](x.r.Err); !ok || p.Value != "kaboom always" {
			e.t.Errorf("the hook's End of job always has Err %v; want the *handler.PanicError", x.r.Err)
		}
	}
	// The hook's Error events are OnError's errors.
	hookErrs := r.hooks.eventsOf(hook.Error)
	if len(hookErrs) != len(errs.all()) {
		e.t.Errorf("the hook saw %d Error events; OnError got %d errors", len(hookErrs), len(errs.all()))
	}
	found := false
	for _, ev := range hookErrs {
		if p, ok := errors.AsType[*handler.PanicError](ev.Err); ok && p.Value == "kaboom always" {
			found = true
		}
	}
	if !found {
		e.t.Errorf("the hook's Error events %v; want the *handler.PanicError of \"kaboom always\" among them", hookErrs)
	}
}

// goexit: a handler that calls runtime.Goexit fails its delivery (retried,
// then dead-lettered), and the consumer's one worker goes on.
func goexit(e *env) {
	e.publish("exit", "0", "1", "2")
	h := e.recorder("c1", func(_ context.Context, msg *stream.Message) error {
		if msg.Values["n"] == "exit" {
			runtime.Goexit()
		}
		return nil
	})
	r := e.start("c1", h, Options{Concurrency: 1, MaxDeliveries: 2, RetryBackoff: 10 * time.Millisecond})
	dl := e.deadLetters(1)
	e.handledAll("c1", "0", "1", "2")
	mustStop(e, r)
	if n := len(e.callsOf("exit", "")); n != 2 {
		e.t.Errorf("job calling Goexit handled %d times; want 2 (retried, then dead-lettered)", n)
	}
	if d := dl[0]; d.Values["n"] != "exit" || !strings.Contains(d.Reason, "Goexit") {
		e.t.Errorf("dead letter = %+v; want job exit, a reason naming Goexit", d)
	}
	e.wantOutcomes("exit", hook.Retried, hook.DeadLettered)
	for _, x := range e.endsOf("exit") {
		if x.r.Err == nil || !strings.Contains(x.r.Err.Error(), "Goexit") || !x.r.Handled {
			e.t.Errorf("the hook's End of job exit: %+v; want an error naming Goexit, handled", x.r)
		}
	}
	for _, n := range []string{"0", "1", "2"} {
		e.wantOutcomes(n, hook.Acked)
	}
	if c := e.q.Counts(e.t); c.Left() != 0 {
		e.t.Errorf("left in Redis: %+v; want nothing", c)
	}
}

// blocking returns a handler body that blocks until the gate opens (or ctx
// ends), and counts the handlers running.
func (e *env) blocking(running *int64Counter) func(ctx context.Context, msg *stream.Message) error {
	return func(ctx context.Context, _ *stream.Message) error {
		running.add(1)
		defer running.add(-1)
		select {
		case <-e.gate:
		case <-ctx.Done():
		}
		return nil
	}
}

type int64Counter struct {
	mu      sync.Mutex
	n, peak int64
}

func (c *int64Counter) add(d int64) {
	c.mu.Lock()
	c.n += d
	c.peak = max(c.peak, c.n)
	c.mu.Unlock()
}
func (c *int64Counter) set(v int64) {
	c.mu.Lock()
	c.n = v
	c.peak = max(c.peak, v)
	c.mu.Unlock()
}
func (c *int64Counter) get() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.n }
func (c *int64Counter) max() int64 { c.mu.Lock(); defer c.mu.Unlock(); return c.peak }

// gracefulDrain: after a stop, Run waits for the running handlers (their
// ctx not cancelled), settles their jobs, hands back the jobs fetched but
// not started at once (an idle consumer takes them), and returns nil.
func gracefulDrain(e *env) {
	const conc = 3
	ns := numbers(2 * conc)
	var runningA int64Counter
	long := Options{Concurrency: conc, Prefetch: conc, KeepAlive: time.Minute}
	a := e.start("a", e.recorder("a", e.blocking(&runningA)), long)
	e.publish(ns...)
	e.await("a to start 3 handlers and fetch the rest", func() bool {
		return runningA.get() == conc && e.q.Counts(e.t).Waiting == 0
	})
	e.handOver(a, long, func() {
		e.await("b to handle the jobs a fetched and did not start", func() bool { return len(e.callsOf("", "b")) >= conc })
	})
	for _, c := range e.callsOf("", "a") {
		if c.cause != nil {
			e.t.Errorf("a's handler of job %s saw its ctx cancelled (%v) during a graceful drain", c.n, c.cause)
		}
	}
	if n := a.hooks.count(hook.Released); n != conc {
		e.t.Errorf("a's hook counted %d jobs Released; want the %d it fetched and did not start", n, conc)
	}
	for _, n := range ns {
		if cs := e.callsOf(n, ""); len(cs) != 1 {
			e.t.Errorf("job %s handled %d times (%+v); want once", n, len(cs), cs)
		}
	}
	e.empty()
}

// handOver stops a while its handlers block on the gate, with an idle
// consumer b (options o) running: it runs took (which awaits what b must
// take from a during a's drain), checks that a's Run still waits for its
// handlers, opens the gate, and checks that a and b stop with nil.
func (e *env) handOver(a *running, o Options, took func()) {
	e.t.Helper()
	b := e.start("b", e.recorder("b", nil), o)
	a.cancel()
	took()
	if a.returned() {
		e.t.Fatalf("a's Run returned (%v) while its handlers still ran", a.err)
	}
	e.open()
	if err := a.wait(); err != nil {
		e.t.Errorf("a: Run = %v; want nil", err)
	}
	mustStop(e, b)
}

// drainTimeout: handlers that outlive DrainTimeout have their ctx
// cancelled with cause engine.ErrDrainTimeout; Run returns an error
// wrapping it; the job is handed back, not lost.
func drainTimeout(e *env) {
	const drain = 100 * time.Millisecond
	e.publish("slow")
	var running int64Counter
	h := e.recorder("a", func(ctx context.Context, _ *stream.Message) error {
		running.add(1)
		<-ctx.Done()
		return context.Cause(ctx)
	})
	a := e.start("a", h, Options{Concurrency: 1, DrainTimeout: drain, RetryBackoff: time.Hour, KeepAlive: time.Minute})
	e.await("the handler to start", func() bool { return running.get() == 1 })
	stopped := time.Now()
	a.cancel()
	err := a.wait()
	if !errors.Is(err, engine.ErrDrainTimeout) {
		e.t.Errorf("Run = %v; want an error wrapping engine.ErrDrainTimeout", err)
	}
	if took := time.Since(stopped); took < drain {
		e.t.Errorf("Run returned %v after the stop; want at least DrainTimeout (%v)", took, drain)
	}
	if cs := e.callsOf("slow", "a"); len(cs) != 1 || !errors.Is(cs[0].cause, engine.ErrDrainTimeout) {
		e.t.Errorf("calls = %+v; want one whose ctx cause is engine.ErrDrainTimeout", cs)
	}
	b := e.start("b", e.recorder("b", nil), Options{KeepAlive: time.Minute})
	e.handledAll("b", "slow")
	mustStop(e, b)
	e.empty()
}

// handBack: at a stop, jobs fetched but not started and jobs waiting for a
// retry are handed back at once, with their delivery counts, so that an
// idle consumer takes them during the drain (long before any KeepAlive).
// With counts, it also checks that the delivery counts go on.
func handBack(e *env, counts bool) {
	var running int64Counter
	block := e.blocking(&running)
	h := e.recorder("a", func(ctx context.Context, msg *stream.Message) error {
		switch msg.Values["n"] {
		case "fail":
			return errors.New("fail once")
		case "block":
			return block(ctx, msg)
		}
		return nil
	})
	long := Options{Concurrency: 1, Prefetch: 2, RetryBackoff: time.Hour, MaxDeliveries: 5, KeepAlive: time.Minute}
	a := e.start("a", h, long)
	e.publish("fail", "block", "q1", "q2")
	e.await("a to fail one job, block on the next and fetch the rest", func() bool {
		return len(e.callsOf("fail", "a")) == 1 && running.get() == 1 && e.q.Counts(e.t).Waiting == 0
	})
	e.handOver(a, long, func() { e.handledAll("b", "fail", "q1", "q2") })
	if cs := e.callsOf("", "a"); len(cs) != 2 {
		e.t.Errorf("a handled %+v; want only fail and block", cs)
	}
	if cs := e.callsOf("block", ""); len(cs) != 1 {
		e.t.Errorf("job block handled %d times; want once", len(cs))
	}
	if n := a.hooks.count(hook.Released); n != 3 {
		e.t.Errorf("a's hook counted %d jobs Released; want 3 (fail, q1, q2)", n)
	}
	e.wantOutcomes("fail", hook.Retried, hook.Acked)
	e.wantOutcomes("block", hook.Acked)
	e.empty()
	if !counts {
		return
	}
	for n, want := range map[string]int64{"fail": 2, "q1": 1, "q2": 1} {
		if cs := e.callsOf(n, "b"); len(cs) != 1 || cs[0].deliveries != want {
			e.t.Errorf("b's calls on %s = %+v; want one with Msg.Deliveries %d", n, cs, want)
		}
	}
}

// lostLease: a job another consumer takes while its handler runs has the
// handler's ctx cancelled with cause engine.ErrLeaseLost, and its result
// is not settled.
func lostLease(e *env) {
	const keep = 200 * time.Millisecond
	msgs := make(chan stream.Message, 1)
	h := e.recorder("a", func(ctx context.Context, msg *stream.Message) error {
		msgs <- *msg
		backoff.Sleep(ctx, time.Minute)
		return nil // as if it finished: the result must not be settled
	})
	a := e.start("a", h, Options{Concurrency: 1, KeepAlive: keep})
	e.publish("j")
	var msg stream.Message
	select {
	case msg = <-msgs:
	case <-time.After(e.timeout):
		e.t.Fatal("timed out waiting for the handler to start")
	}
	e.q.Take(e.t, "a", &msg)
	e.handledAll("a", "j")
	mustStop(e, a)
	cs := e.callsOf("j", "")
	if len(cs) != 1 || !errors.Is(cs[0].cause, engine.ErrLeaseLost) {
		e.t.Errorf("calls = %+v; want one whose ctx cause is engine.ErrLeaseLost", cs)
	}
	if c := e.q.Counts(e.t); c.Left() != 1 {
		e.t.Errorf("left in Redis: %+v; want the taken job (its result not settled)", c)
	}
	e.wantOutcomes("j", hook.Abandoned)
	if evs := a.hooks.eventsOf(hook.LeaseLost); len(evs) != 1 || evs[0].ID != msg.ID {
		e.t.Errorf("the hook's LeaseLost events = %+v; want one, of %s", evs, msg.ID)
	}
	if dl := e.q.DeadLetters(e.t); len(dl) != 0 {
		e.t.Errorf("dead letters = %+v; want none", dl)
	}
}

// keepAlive: a handler running many KeepAlives keeps its job: no other
// consumer takes it, and its ctx is not cancelled.
func keepAlive(e *env) {
	const keep = 200 * time.Millisecond
	var running int64Counter
	long := func(ctx context.Context, _ *stream.Message) error {
		running.add(1)
		backoff.Sleep(ctx, 8*keep)
		return nil
	}
	o := Options{Concurrency: 1, KeepAlive: keep}
	a := e.start("a", e.recorder("a", long), o)
	e.publish("long")
	e.await("the handler to start", func() bool { return running.get() == 1 })
	b := e.start("b", e.recorder("b", long), o)
	e.handledAll("", "long")
	mustStop(e, a, b)
	cs := e.callsOf("long", "")
	if len(cs) != 1 || cs[0].cause != nil || running.get() != 1 {
		e.t.Errorf("calls = %+v, %d started; want one, its ctx not cancelled", cs, running.get())
	}
	e.empty()
}

// memoryBound: with jobs of 256 KiB and MaxBytes of four of them, no more
// than about four are held (running or fetched) at once, although
// Concurrency and Prefetch allow sixteen.
func memoryBound(e *env) {
	const size, fit, jobs = 256 << 10, 4, 24
	pad := strings.Repeat("x", size)
	batch := make([]map[string]string, jobs)
	for i := range batch {
		batch[i] = map[string]string{"n": fmt.Sprint(i), "pad": pad}
	}
	e.q.Publish(e.t, batch...)
	var running, held int64Counter
	h := e.recorder("a", func(ctx context.Context, _ *stream.Message) error {
		running.add(1)
		defer running.add(-1)
		if c := e.q.Counts(e.t); c.Held >= 0 {
			held.set(int64(c.Held))
		}
		backoff.Sleep(ctx, 5*time.Millisecond)
		return nil
	})
	a := e.start("a", h, Options{Concurrency: 8, Prefetch: 8, MaxBytes: fit * size})
	e.handledAll("a", numbers(jobs)...)
	mustStop(e, a)
	// One job more than fits: a fetch goes out while any room is left.
	if got := running.max(); got > fit+1 {
		e.t.Errorf("up to %d handlers ran at once; want at most %d (MaxBytes holds %d jobs)", got, fit+1, fit)
	}
	if got := held.max(); got > fit+1 {
		e.t.Errorf("up to %d jobs held in Redis at once; want at most %d (MaxBytes holds %d jobs)", got, fit+1, fit)
	}
	e.empty()
}
