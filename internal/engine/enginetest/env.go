package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/stream"
)

// env is one scenario's queue, its consumers and what their handlers saw.
type env struct {
	t       *testing.T
	h       Harness
	q       Queue
	timeout time.Duration

	gate     chan struct{} // closed by open: blocked handlers go on
	gateOnce sync.Once

	mu    sync.Mutex
	calls []call
	ends  []ending // what the consumers' hooks saw End, in order
}

// call is one handler call.
type call struct {
	consumer   string
	n          string // the job's "n" field
	deliveries int64
	cause      error // context.Cause of the handler's ctx when it returned
	hooked     bool  // the handler's ctx is one the hook's Start returned
}

func newEnv(t *testing.T, h Harness) *env {
	return &env{t: t, h: h, q: h.NewQueue(t), timeout: h.Timeout, gate: make(chan struct{})}
}

// open lets every handler blocked on the gate go on.
func (e *env) open() { e.gateOnce.Do(func() { close(e.gate) }) }

// publish publishes jobs whose "n" fields are ns.
func (e *env) publish(ns ...string) {
	jobs := make([]map[string]string, len(ns))
	for i, n := range ns {
		jobs[i] = map[string]string{"n": n}
	}
	e.q.Publish(e.t, jobs...)
}

// numbers returns "0" to "n-1".
func numbers(n int) []string {
	ns := make([]string, n)
	for i := range ns {
		ns[i] = strconv.Itoa(i)
	}
	return ns
}

// record notes a handler call; the handler's ctx is read when it returns.
func (e *env) record(ctx context.Context, consumer string, msg *stream.Message) {
	e.mu.Lock()
	e.calls = append(e.calls, call{consumer: consumer, n: msg.Values["n"], deliveries: msg.Deliveries,
		cause: context.Cause(ctx), hooked: hookStarted(ctx)})
	e.mu.Unlock()
}

// recordEnd notes a hook's End.
func (e *env) recordEnd(x ending) {
	e.mu.Lock()
	e.ends = append(e.ends, x)
	e.mu.Unlock()
}

// outcomes returns the outcomes the hooks' Ends gave job n, in order, by
// any consumer when consumer is "".
func (e *env) outcomes(n, consumer string) []hook.Outcome {
	e.mu.Lock()
	defer e.mu.Unlock()
	var os []hook.Outcome
	for _, x := range e.ends {
		if x.n == n && (consumer == "" || x.consumer == consumer) {
			os = append(os, x.r.Outcome)
		}
	}
	return os
}

// endsOf returns the hooks' Ends of job n.
func (e *env) endsOf(n string) []ending {
	e.mu.Lock()
	defer e.mu.Unlock()
	var xs []ending
	for _, x := range e.ends {
		if x.n == n {
			xs = append(xs, x)
		}
	}
	return xs
}

// callsOf returns the calls on job n, by any consumer when consumer is "".
func (e *env) callsOf(n, consumer string) []call {
	e.mu.Lock()
	defer e.mu.Unlock()
	var cs []call
	for _, c := range e.calls {
		if (n == "" || c.n == n) && (consumer == "" || c.consumer == consumer) {
			cs = append(cs, c)
		}
	}
	return cs
}

// await polls cond until it holds, failing the test after the timeout.
func (e *env) await(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(e.timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s", e.timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// deadLetters awaits n dead letters and returns them.
func (e *env) deadLetters(n int) []DeadLetter {
	e.t.Helper()
	var dl []DeadLetter
	e.await(fmt.Sprintf("%d dead letters", n), func() bool { dl = e.q.DeadLetters(e.t); return len(dl) >= n })
	if len(dl) != n {
		e.t.Fatalf("dead letters = %+v; want %d", dl, n)
	}
	return dl
}

// running is a consumer whose Run runs in a goroutine.
type running struct {
	e      *env
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	label  string
	hooks  *hookCheck
}

var runs atomic.Uint64

// start runs a new consumer named name. Its goroutines carry a pprof label
// of their own, so that wait can check none is left once Run returned. It
// is stopped by the test's cleanup if the scenario does not stop it.
func (e *env) start(name string, h handler.Handler, o Options) *running {
	e.t.Helper()
	hooks := newHookCheck(e, name)
	o.Hook = hooks
	c := e.q.NewConsumer(e.t, name, h, o)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{e: e, name: name, cancel: cancel, done: make(chan struct{}),
		label: fmt.Sprintf("%s#%d", name, runs.Add(1)), hooks: hooks}
	go pprof.Do(ctx, pprof.Labels(labelKey, r.label), func(ctx context.Context) {
		defer close(r.done)
		r.err = c.Run(ctx)
	})
	e.t.Cleanup(func() {
		e.open()
		cancel()
		select {
		case <-r.done:
		case <-time.After(e.timeout):
			e.t.Errorf("%s: Run did not return within %v of the end of the test", name, e.timeout)
		}
	})
	return r
}

const labelKey = "enginetest"

// returned reports whether Run returned.
func (r *running) returned() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// stop cancels Run's ctx and waits for Run; see wait.
func (r *running) stop() error {
	r.e.t.Helper()
	r.cancel()
	return r.wait()
}

// wait waits for Run to return, checks that nothing the consumer started is
// left running, and returns Run's error.
func (r *running) wait() error {
	r.e.t.Helper()
	r.e.await(r.name+"'s Run to return", r.returned)
	var left string
	r.e.await("nothing left running after "+r.name+"'s Run returned", func() bool {
		left = r.leftRunning()
		return left == ""
	})
	if left != "" {
		r.e.t.Fatalf("goroutines left running after %s's Run returned:\n%s", r.name, left)
	}
	r.checkHook()
	return r.err
}

// checkHook checks, once Run returned, that the consumer's hook saw a
// Start and exactly one End per handler call, and that each handler got
// the context its Start returned.
func (r *running) checkHook() {
	r.e.t.Helper()
	for _, p := range r.hooks.check() {
		r.e.t.Errorf("%s's hook: %s", r.name, p)
	}
	calls := r.e.callsOf("", r.name)
	for _, c := range calls {
		if !c.hooked {
			r.e.t.Errorf("%s: handler call %v did not get the context the hook's Start returned", r.name, c)
		}
	}
	handled := 0
	r.e.mu.Lock()
	for _, x := range r.e.ends {
		if x.consumer == r.name && x.r.Handled {
			handled++
		}
	}
	r.e.mu.Unlock()
	if handled != len(calls) {
		r.e.t.Errorf("%s's hook saw %d Ends of handler calls; the handler was called %d times", r.name, handled, len(calls))
	}
}

// leftRunning returns the stacks of this run's goroutines (those with its
// label) that run code of this module: Run's own goroutine, its loops, its
// workers and its handlers. Goroutines of a client library that outlive a
// call (a connection pool's) do not count.
func (r *running) leftRunning() string {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		r.e.t.Fatalf("goroutine profile: %v", err)
	}
	want := fmt.Sprintf("%q:%q", labelKey, r.label)
	var left []string
	for rec := range strings.SplitSeq(b.String(), "\n\n") {
		if strings.Contains(rec, "# labels: ") && strings.Contains(rec, want) &&
			strings.Contains(rec, "github.com/streamgroup/streamgroup/") {
			left = append(left, rec)
		}
	}
	return strings.Join(left, "\n\n")
}

func (c call) String() string {
	return fmt.Sprintf("{%s: job %s, delivery %d, ctx cause %v}", c.consumer, c.n, c.deliveries, c.cause)
}
