package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// recHook is a hook.Hook that records what producers and consumers tell
// it, and checks the pairing contract as the calls come: each Publish
// followed by one Published with the context Publish returned, each Start
// by exactly one End with the context Start returned. Its Publish sets
// x-hook ("hook") and x-pub (the publish's number) on every entry.
type recHook struct {
	mu        sync.Mutex
	producers []hook.Target
	consumers []hook.Target
	seq       int
	pubs      []pubRec
	open      map[*startTok]bool
	ends      []endRec
	events    []hook.Event
	problems  []string
}

type (
	pubKey   struct{}
	startKey struct{}
	pubTok   struct{ seq int }
	startTok struct{ id string }
)

// pubRec is one Published.
type pubRec struct {
	seq   int
	count int
	ids   []string
	err   error
}

// endRec is one End.
type endRec struct {
	id, n string // the job's ID and "n" field
	r     hook.Result
}

func newRecHook() *recHook { return &recHook{open: map[*startTok]bool{}} }

func (h *recHook) Producer(t hook.Target) hook.Producer {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.producers = append(h.producers, t)
	return h
}

func (h *recHook) Consumer(t hook.Target) hook.Consumer {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.consumers = append(h.consumers, t)
	return h
}

func (h *recHook) Publish(ctx context.Context, p *hook.Publish) context.Context {
	h.mu.Lock()
	h.seq++
	seq := h.seq
	h.mu.Unlock()
	p.Set("x-hook", "hook")
	p.Set("x-pub", "set twice: the last value wins")
	p.Set("x-pub", strconv.Itoa(seq))
	return context.WithValue(ctx, pubKey{}, &pubTok{seq})
}

func (h *recHook) Published(ctx context.Context, p *hook.Publish) {
	tok, _ := ctx.Value(pubKey{}).(*pubTok)
	h.mu.Lock()
	defer h.mu.Unlock()
	if tok == nil {
		h.problems = append(h.problems, fmt.Sprintf("Published %+v without the context Publish returned", p))
		return
	}
	h.pubs = append(h.pubs, pubRec{seq: tok.seq, count: p.Count, ids: slices.Clone(p.IDs), err: p.Err})
}

func (h *recHook) Start(ctx context.Context, m hook.Message) context.Context {
	tok := &startTok{id: m.ID}
	h.mu.Lock()
	h.open[tok] = true
	h.mu.Unlock()
	return context.WithValue(ctx, startKey{}, tok)
}

func (h *recHook) End(ctx context.Context, m hook.Message, r hook.Result) {
	tok, _ := ctx.Value(startKey{}).(*startTok)
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case tok == nil || tok.id != m.ID:
		h.problems = append(h.problems, fmt.Sprintf("End of %s without the context its Start returned", m.ID))
	case !h.open[tok]:
		h.problems = append(h.problems, fmt.Sprintf("a second End of %s", m.ID))
	}
	delete(h.open, tok)
	h.ends = append(h.ends, endRec{id: m.ID, n: m.Values["n"], r: r})
}

func (h *recHook) Event(ev hook.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

// started reports whether ctx is the one the hook's Start returned for the
// job id: what a handler must get.
func started(ctx context.Context, id string) bool {
	tok, _ := ctx.Value(startKey{}).(*startTok)
	return tok != nil && tok.id == id
}

// check fails t with the broken contracts: problems seen, Starts without
// an End (call it once the consumers stopped).
func (h *recHook) check(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.problems {
		t.Error(p)
	}
	for tok := range h.open {
		t.Errorf("Start of %s never ended", tok.id)
	}
}

// outcomes returns the outcomes of the Ends of job n, in order.
func (h *recHook) outcomes(n string) []hook.Outcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	var os []hook.Outcome
	for _, e := range h.ends {
		if e.n == n {
			os = append(os, e.r.Outcome)
		}
	}
	return os
}

// endsWhere returns the Ends f accepts.
func (h *recHook) endsWhere(f func(endRec) bool) []endRec {
	h.mu.Lock()
	defer h.mu.Unlock()
	var es []endRec
	for _, e := range h.ends {
		if f(e) {
			es = append(es, e)
		}
	}
	return es
}

// count sums N over the events of kind.
func (h *recHook) count(kind hook.EventKind) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		if ev.Kind == kind {
			n += ev.N
		}
	}
	return n
}

// eventsOf returns the events of kind.
func (h *recHook) eventsOf(kind hook.EventKind) []hook.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var evs []hook.Event
	for _, ev := range h.events {
		if ev.Kind == kind {
			evs = append(evs, ev)
		}
	}
	return evs
}

func (h *recHook) published() []pubRec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.pubs)
}

// hookKind is one consumer kind the hook tests run on, on keys of its own.
type hookKind struct {
	name string
	kind hook.Kind
	// publish publishes jobs through a producer with hk, where the
	// consumer takes them (for a reclaimer: left pending by a consumer
	// that died).
	publish func(t *testing.T, hk hook.Hook, jobs ...map[string]any)
	// unhandled puts a job the consumer dead-letters without a handler
	// call, as it is delivered more often than MaxDeliveries; reason is
	// in its dead-lettering's error.
	unhandled func(t *testing.T, maxDeliveries int64)
	reason    string
	consume   func(t *testing.T, h handler.Handler, o hookOpts) *running
	// maxDeliveries is the MaxDeliveries that gives a job failing every
	// time two handler calls: 3 for a reclaimer, whose first call is a
	// job's second delivery.
	maxDeliveries int64
	target        hook.Target // what the consumer's Hook.Consumer must be told
	// deadValues returns the fields of the dead letters.
	deadValues func(t *testing.T) []map[string]string
}

// hookOpts are the consumer options the hook tests set.
type hookOpts struct {
	hook          hook.Hook
	maxDeliveries int64
	concurrency   int
	prefetch      int
	onError       func(error)
}

const consumerName = "w"

func hookKinds(t *testing.T, rdb *redis.Client) []hookKind {
	return []hookKind{streamKind(t, rdb, false), streamKind(t, rdb, true), listKind(t, rdb, true), listKind(t, rdb, false)}
}

func streamKind(t *testing.T, rdb *redis.Client, reclaimer bool) hookKind {
	key, grp := redistest.Names(t)
	key += map[bool]string{false: ":group", true: ":claim"}[reclaimer]
	dead := stream.DeadLetterKey(key)
	t.Cleanup(func() { rdb.Del(context.Background(), key, dead) })
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}
	k := hookKind{
		name:          "group.Consumer",
		kind:          hook.Stream,
		maxDeliveries: 2,
		reason:        "more than MaxDeliveries",
		target:        hook.Target{Kind: hook.Stream, Name: key, Group: grp, Consumer: consumerName, DeadLetter: dead, Client: rdb},
		publish: func(t *testing.T, hk hook.Hook, jobs ...map[string]any) {
			t.Helper()
			p, err := stream.NewProducer(rdb, key, &stream.ProducerOptions{Hook: hk})
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				if _, err := p.Add(ctx, j); err != nil {
					t.Fatal(err)
				}
			}
			if reclaimer {
				abandon(t, rdb, key, grp, "gone", 0)
			}
		},
		deadValues: func(t *testing.T) []map[string]string {
			var vs []map[string]string
			for _, d := range deadLetters(t, rdb, dead) {
				vs = append(vs, d.Values)
			}
			return vs
		},
	}
	// The unhandled entry: pending with a delivery count at MaxDeliveries,
	// for the consumer's own name (read back at its start) or, for a
	// reclaimer, for a consumer that died.
	owner := consumerName
	if reclaimer {
		owner = "gone"
	}
	k.unhandled = func(t *testing.T, maxDeliveries int64) {
		t.Helper()
		id := publish(t, rdb, key, 1, map[string]any{"n": "over"})[0]
		abandon(t, rdb, key, grp, owner, 1)
		if err := rdb.Do(ctx, "XCLAIM", key, grp, owner, 0, id, "RETRYCOUNT", maxDeliveries).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if !reclaimer {
		k.consume = func(t *testing.T, h handler.Handler, o hookOpts) *running {
			opts := fastOptions()
			opts.Hook, opts.MaxDeliveries, opts.OnError = o.hook, o.maxDeliveries, o.onError
			opts.Concurrency, opts.Prefetch = max(o.concurrency, 1), o.prefetch
			return start(t, newConsumer(t, rdb, key, grp, consumerName, h, opts).Run)
		}
		return k
	}
	k.name, k.maxDeliveries = "claim.Reclaimer", 3
	k.consume = func(t *testing.T, h handler.Handler, o hookOpts) *running {
		opts := reclaimerOptions(fastOptions())
		opts.MinIdle = 50 * time.Millisecond
		opts.Hook, opts.MaxDeliveries, opts.OnError = o.hook, o.maxDeliveries, o.onError
		opts.Concurrency = max(o.concurrency, 1)
		r, err := claim.NewReclaimer(rdb, key, grp, consumerName, h, opts)
		if err != nil {
			t.Fatal(err)
		}
		return start(t, r.Run)
	}
	return k
}

func listKind(t *testing.T, rdb *redis.Client, reliable bool) hookKind {
	key, _ := redistest.Names(t)
	q := key + map[bool]string{true: ":reliable", false: ":simple"}[reliable]
	dead := queue.DeadLetterKey(q)
	name := ""
	if reliable {
		name = consumerName
	}
	t.Cleanup(func() { rdb.Del(context.Background(), q, dead, queue.ProcessingKey(q, consumerName)) })
	ctx := context.Background()
	return hookKind{
		name:          map[bool]string{true: "reliable queue.Consumer", false: "simple queue.Consumer"}[reliable],
		kind:          hook.List,
		maxDeliveries: 2,
		reason:        "more than MaxDeliveries",
		target: hook.Target{Kind: hook.List, Name: q, Consumer: name, DeadLetter: dead, Client: rdb,
			Queues: []string{q}, DeadLetters: []string{dead}},
		publish: func(t *testing.T, hk hook.Hook, jobs ...map[string]any) {
			t.Helper()
			p, err := queue.NewProducer(rdb, q, &queue.ProducerOptions{Hook: hk})
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range jobs {
				if _, err := p.Push(ctx, j); err != nil {
					t.Fatal(err)
				}
			}
		},
		// An envelope that was delivered MaxDeliveries times already, as
		// a dead letter's element pushed back is.
		unhandled: func(t *testing.T, maxDeliveries int64) {
			t.Helper()
			env := fmt.Sprintf(`{"sg":1,"n":%d,"id":"over-1","v":{"n":"over"}}`, maxDeliveries)
			if err := rdb.LPush(ctx, q, env).Err(); err != nil {
				t.Fatal(err)
			}
		},
		consume: func(t *testing.T, h handler.Handler, o hookOpts) *running {
			opts := &queue.Options{Hook: o.hook, MaxDeliveries: o.maxDeliveries, OnError: o.onError,
				Concurrency: max(o.concurrency, 1), Prefetch: o.prefetch,
				PollInterval: 100 * time.Millisecond, RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 100 * time.Millisecond}
			var c *queue.Consumer
			var err error
			if reliable {
				c, err = queue.NewReliableConsumer(rdb, []string{q}, consumerName, h, opts)
			} else {
				c, err = queue.NewSimpleConsumer(rdb, []string{q}, h, opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			return start(t, c.Run)
		},
		deadValues: func(t *testing.T) []map[string]string {
			xs, err := rdb.LRange(ctx, dead, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			var vs []map[string]string
			for _, x := range xs {
				d, err := queue.ParseDeadLetter(x)
				if err != nil {
					t.Fatal(err)
				}
				vs = append(vs, d.Values)
			}
			return vs
		},
	}
}

// TestHookConsumerOutcomes runs, on every consumer kind, jobs published
// through a producer with a hook, whose handler acks, fails once, fails
// permanently, fails every time, panics once and calls runtime.Goexit
// once, and a job delivered more often than MaxDeliveries. It checks the
// hook's End outcomes job by job, that the handler got the context Start
// returned, that the fields the producer's hook set reach the handler (a
// field the caller set keeping its value) and the dead letters, and the
// consumer's target and events.
func TestHookConsumerOutcomes(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	for _, k := range hookKinds(t, rdb) {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			testHookOutcomes(t, k)
		})
	}
}

func testHookOutcomes(t *testing.T, k hookKind) {
	maxDeliveries := k.maxDeliveries
	hk := newRecHook()
	var (
		mu       sync.Mutex
		values   = map[string]map[string]string{} // by "n", last call
		calls    = map[string]int{}               // by "n"
		badCtx   []string
		onErrors int
	)
	h := handler.Func(func(ctx context.Context, m *stream.Message) error {
		n := m.Values["n"]
		mu.Lock()
		values[n] = maps.Clone(m.Values)
		if !started(ctx, m.ID) {
			badCtx = append(badCtx, n)
		}
		calls[n]++
		first := calls[n] == 1
		mu.Unlock()
		switch {
		case n == "ok":
			return nil
		case n == "flaky" && first:
			return errors.New("flaky fails once")
		case n == "perm":
			return handler.Permanent(errors.New("perm is malformed"))
		case n == "last":
			return errors.New("last fails every time")
		case n == "panic" && first:
			panic("panic panics once")
		case n == "goexit" && first:
			runtime.Goexit()
		}
		return nil
	})
	k.unhandled(t, maxDeliveries)
	caller := map[string]any{"n": "ok", "x-hook": "caller"}
	k.publish(t, hk, caller,
		map[string]any{"n": "flaky"}, map[string]any{"n": "perm"}, map[string]any{"n": "last"},
		map[string]any{"n": "panic"}, map[string]any{"n": "goexit"})
	if len(caller) != 2 {
		t.Errorf("the caller's map after the add: %v; want it untouched", caller)
	}
	r := k.consume(t, h, hookOpts{hook: hk, maxDeliveries: maxDeliveries, concurrency: 4,
		onError: func(error) { mu.Lock(); onErrors++; mu.Unlock() }})

	want := map[string][]hook.Outcome{
		"ok":     {hook.Acked},
		"flaky":  {hook.Retried, hook.Acked},
		"perm":   {hook.DeadLettered},
		"last":   {hook.Retried, hook.DeadLettered},
		"panic":  {hook.Retried, hook.Acked},
		"goexit": {hook.Retried, hook.Acked},
		"over":   {hook.DeadLettered},
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range hk.endsWhere(func(endRec) bool { return true }) {
				t.Logf("End %s %s: %+v", e.id, e.n, e.r)
			}
		}
	})
	eventually(t, 20*time.Second, "every job's last outcome", func() bool {
		for n, w := range want {
			if len(hk.outcomes(n)) < len(w) {
				return false
			}
		}
		return true
	})
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	hk.check(t)
	for n, w := range want {
		if got := hk.outcomes(n); !slices.Equal(got, w) {
			t.Errorf("End outcomes of job %s = %v; want %v", n, got, w)
		}
	}

	// The Ends' results.
	for _, e := range hk.endsWhere(func(endRec) bool { return true }) {
		if e.n == "over" {
			if e.r.Handled || e.r.Duration != 0 || e.r.Err == nil || !strings.Contains(e.r.Err.Error(), k.reason) {
				t.Errorf("End of the job delivered too often: %+v; want Handled false, no duration, an error saying %q", e.r, k.reason)
			}
			continue
		}
		if !e.r.Handled || e.r.Duration <= 0 {
			t.Errorf("End of job %s: %+v; want Handled, a duration", e.n, e.r)
		}
		if (e.r.Outcome == hook.Acked) != (e.r.Err == nil) {
			t.Errorf("End of job %s: %+v; want an error exactly when not acked", e.n, e.r)
		}
	}
	errOf := func(n string, i int) error {
		es := hk.endsWhere(func(e endRec) bool { return e.n == n })
		if i >= len(es) {
			return nil
		}
		return es[i].r.Err
	}
	if err := errOf("perm", 0); !errors.Is(err, handler.ErrPermanent) {
		t.Errorf("End of perm: Err %v; want the handler's, wrapping handler.ErrPermanent", err)
	}
	if p, ok := errors.AsType[*handler.PanicError](errOf("panic", 0)); !ok || p.Value != "panic panics once" {
		t.Errorf("first End of panic: Err %v; want a *handler.PanicError of the value", errOf("panic", 0))
	}
	if err := errOf("goexit", 0); err == nil || !strings.Contains(err.Error(), "Goexit") {
		t.Errorf("first End of goexit: Err %v; want one naming runtime.Goexit", err)
	}

	// The handler's context and the hook's fields.
	mu.Lock()
	if len(badCtx) > 0 {
		t.Errorf("handler calls on %v did not get the context the hook's Start returned", badCtx)
	}
	for n, v := range values {
		wantHook := "hook"
		if n == "ok" {
			wantHook = "caller"
		}
		if v["x-hook"] != wantHook || v["x-pub"] == "" {
			t.Errorf("job %s reached the handler with %v; want x-hook %q and x-pub set", n, v, wantHook)
		}
	}
	if _, ok := values["over"]; ok {
		t.Error("the job delivered too often reached the handler")
	}
	mu.Unlock()
	dead := map[string]map[string]string{}
	for _, v := range k.deadValues(t) {
		dead[v["n"]] = v
	}
	for _, n := range []string{"perm", "last"} {
		if v := dead[n]; v["x-hook"] != "hook" || v["x-pub"] == "" {
			t.Errorf("dead letter of %s has fields %v; want the hook's among them", n, v)
		}
	}

	// The target and the events.
	hk.mu.Lock()
	if len(hk.consumers) != 1 || !sameTarget(hk.consumers[0], k.target) {
		t.Errorf("Hook.Consumer got %+v; want once %+v", hk.consumers, k.target)
	}
	if len(hk.producers) == 0 || hk.producers[0].Kind != k.kind || hk.producers[0].Name != k.target.Name || hk.producers[0].Client == nil {
		t.Errorf("Hook.Producer got %+v; want the %v %s", hk.producers, k.kind, k.target.Name)
	}
	hk.mu.Unlock()
	kind := hook.Delivered
	if k.name == "claim.Reclaimer" {
		kind = hook.Reclaimed
	}
	if n := hk.count(kind); n < len(want) {
		t.Errorf("%v events count %d jobs; want at least the %d jobs", kind, n, len(want))
	}
	mu.Lock()
	defer mu.Unlock()
	if n := len(hk.eventsOf(hook.Error)); n != onErrors || n < 5 {
		t.Errorf("%d Error events, %d errors to OnError; want the same, at least the 5 handler failures", n, onErrors)
	}
}

func sameTarget(a, b hook.Target) bool {
	return a.Kind == b.Kind && a.Name == b.Name && a.Group == b.Group && a.Consumer == b.Consumer &&
		a.DeadLetter == b.DeadLetter && a.Client == b.Client &&
		slices.Equal(a.Queues, b.Queues) && slices.Equal(a.DeadLetters, b.DeadLetters)
}

// TestHookReleased: at a stop, the jobs fetched and not started are
// handed back, and the hook is told how many (Released).
func TestHookReleased(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	for _, k := range hookKinds(t, rdb) {
		if k.name == "claim.Reclaimer" {
			continue // no prefetch: it takes what its workers start
		}
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			hk := newRecHook()
			gate := make(chan struct{})
			var once sync.Once
			openGate := func() { once.Do(func() { close(gate) }) }
			t.Cleanup(openGate)
			running := make(chan string, 10)
			h := handler.Func(func(ctx context.Context, m *stream.Message) error {
				running <- m.Values["n"]
				<-gate
				return nil
			})
			r := k.consume(t, h, hookOpts{hook: hk, concurrency: 1, prefetch: 2})
			k.publish(t, nil, map[string]any{"n": "0"}, map[string]any{"n": "1"}, map[string]any{"n": "2"})
			select {
			case <-running:
			case <-time.After(10 * time.Second):
				t.Fatal("no handler started")
			}
			eventually(t, 10*time.Second, "the other two jobs fetched", func() bool { return hk.count(hook.Delivered) == 3 })
			r.Cancel()
			eventually(t, 10*time.Second, "two jobs Released", func() bool { return hk.count(hook.Released) == 2 })
			openGate()
			if err := r.Stop(); err != nil {
				t.Fatalf("Run = %v; want nil", err)
			}
			hk.check(t)
			if got := hk.endsWhere(func(endRec) bool { return true }); len(got) != 1 || got[0].r.Outcome != hook.Acked {
				t.Errorf("Ends = %+v; want one, acked (the job whose handler ran)", got)
			}
		})
	}
}

// TestHookStreamEvents: a consumer that creates its group tells the hook
// (GroupCreated), and again with an Error when the group vanished while
// it ran; a held entry another consumer takes over is LeaseLost, its
// End Abandoned.
func TestHookStreamEvents(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	ctx := context.Background()
	hk := newRecHook()
	taken := make(chan *stream.Message, 1)
	h := handler.Func(func(ctx context.Context, m *stream.Message) error {
		if m.Values["n"] == "held" {
			c := *m
			taken <- &c
			<-ctx.Done() // until the lease is lost
		}
		return nil
	})
	opts := fastOptions()
	opts.Hook = hk
	opts.MinIdle = 300 * time.Millisecond
	r := start(t, newConsumer(t, rdb, key, grp, "w", h, opts).Run)
	eventually(t, 10*time.Second, "GroupCreated", func() bool { return len(hk.eventsOf(hook.GroupCreated)) == 1 })

	// The group vanishes: created again, with an Error.
	if err := rdb.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "GroupCreated again", func() bool { return len(hk.eventsOf(hook.GroupCreated)) == 2 })
	vanished := false
	for _, ev := range hk.eventsOf(hook.Error) {
		if strings.Contains(ev.Err.Error(), "vanished") {
			vanished = true
		}
	}
	if !vanished {
		t.Errorf("Error events %v; want one saying the group vanished", hk.eventsOf(hook.Error))
	}

	// A lost lease.
	publish(t, rdb, key, 1, map[string]any{"n": "held"})
	var m *stream.Message
	select {
	case m = <-taken:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not start")
	}
	stop := make(chan struct{})
	defer close(stop)
	steal := func() error {
		return rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: key, Group: grp, Consumer: "thief", Messages: []string{m.ID}}).Err()
	}
	if err := steal(); err != nil {
		t.Fatal(err)
	}
	go func() { // keeps it from the consumer's reclaimer
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = steal()
			}
		}
	}()
	eventually(t, 10*time.Second, "LeaseLost", func() bool { return len(hk.eventsOf(hook.LeaseLost)) == 1 })
	if ev := hk.eventsOf(hook.LeaseLost)[0]; ev.ID != m.ID {
		t.Errorf("LeaseLost of %q; want %s", ev.ID, m.ID)
	}
	eventually(t, 10*time.Second, "the End of the lost entry", func() bool { return len(hk.outcomes("held")) == 1 })
	if got := hk.outcomes("held"); got[0] != hook.Abandoned {
		t.Errorf("End outcomes of the lost entry = %v; want [abandoned]", got)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	hk.check(t)
}

// TestHookPublish checks the producers' hook calls: one Publish and one
// Published per call (per batch for AddBatch and PushBatch), Count, IDs
// and Err as the call returned them, and the hook's fields on every entry
// written (a field the entry has keeping its value).
func TestHookPublish(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	key, _ := redistest.Names(t)
	wrong := key + ":string"
	t.Cleanup(func() { rdb.Del(ctx, key, key+":q", wrong) })
	if err := rdb.Set(ctx, wrong, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// read returns the fields of the entries or jobs with ids.
	readStream := func(t *testing.T, ids []string) map[string]map[string]string {
		xs, err := rdb.XRange(ctx, key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]string{}
		for _, x := range xs {
			if slices.Contains(ids, x.ID) {
				m, _ := stream.FromXMessage(key, x)
				out[x.ID] = m.Values
			}
		}
		return out
	}
	readList := func(t *testing.T, ids []string) map[string]map[string]string {
		xs, err := rdb.LRange(ctx, key+":q", 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]string{}
		for _, x := range xs {
			id, values := decodeJob(t, x)
			if slices.Contains(ids, id) {
				out[id] = values
			}
		}
		return out
	}
	type call func(t *testing.T, hk hook.Hook) ([]string, error)
	sp := func(t *testing.T, hk hook.Hook, k string) *stream.Producer {
		p, err := stream.NewProducer(rdb, k, &stream.ProducerOptions{Hook: hk})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	qp := func(t *testing.T, hk hook.Hook, k string) *queue.Producer {
		p, err := queue.NewProducer(rdb, k, &queue.ProducerOptions{Hook: hk})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	one := func(id string, err error) ([]string, error) { return []string{id}, err }
	for _, tc := range []struct {
		name    string
		list    bool
		call    call
		count   int      // Count of the one Publish
		wantErr error    // matched with errors.Is; nil: none
		caller  []string // "n" of the entries whose own x-hook wins
	}{
		{"stream Add", false, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return one(sp(t, hk, key).Add(ctx, map[string]any{"n": 1, "x-hook": "caller"}))
		}, 1, nil, []string{"1"}},
		{"stream AddPayload", false, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return one(sp(t, hk, key).AddPayload(ctx, map[string]int{"n": 1}))
		}, 1, nil, nil},
		{"stream AddPayload unencodable", false, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return one(sp(t, hk, key).AddPayload(ctx, make(chan int)))
		}, 1, errAny, nil},
		{"stream AddEntry empty", false, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return one(sp(t, hk, key).AddEntry(ctx, stream.Entry{}))
		}, 1, stream.ErrEmptyEntry, nil},
		{"stream Add wrong type", false, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return one(sp(t, hk, wrong).Add(ctx, map[string]any{"n": 1}))
		}, 1, errAny, nil},
		{"stream AddBatch", false, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return sp(t, hk, key).AddBatch(ctx, []stream.Entry{
				{Values: map[string]any{"n": 1}}, {}, {Values: map[string]any{"n": 3, "x-hook": "caller"}}})
		}, 3, stream.ErrEmptyEntry, []string{"3"}},
		{"queue Push", true, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return one(qp(t, hk, key+":q").Push(ctx, map[string]any{"n": 1, "x-hook": "caller"}))
		}, 1, nil, []string{"1"}},
		{"queue PushPayload", true, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return one(qp(t, hk, key+":q").PushPayload(ctx, map[string]int{"n": 1}))
		}, 1, nil, nil},
		{"queue PushPayload unencodable", true, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return one(qp(t, hk, key+":q").PushPayload(ctx, make(chan int)))
		}, 1, errAny, nil},
		{"queue Push wrong type", true, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return one(qp(t, hk, wrong).Push(ctx, map[string]any{"n": 1}))
		}, 1, errAny, nil},
		{"queue PushBatch", true, func(t *testing.T, hk hook.Hook) ([]string, error) {
			return qp(t, hk, key+":q").PushBatch(ctx, []map[string]any{
				{"n": 1}, {"bad": make(chan int)}, {"n": 3, "x-hook": "caller"}})
		}, 3, errAny, []string{"3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hk := newRecHook()
			ids, err := tc.call(t, hk)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("err = %v; want nil", err)
			case tc.wantErr != nil && err == nil:
				t.Fatal("err = nil; want an error")
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("err = %v; want one wrapping %v", err, tc.wantErr)
			}
			hk.check(t)
			pubs := hk.published()
			if len(pubs) != 1 {
				t.Fatalf("Published %d times: %+v; want once", len(pubs), pubs)
			}
			p := pubs[0]
			if p.count != tc.count || !slices.Equal(p.ids, ids) || p.err != err {
				t.Errorf("Published {Count %d, IDs %v, Err %v}; want {%d, %v, %v}", p.count, p.ids, p.err, tc.count, ids, err)
			}
			var written []string
			for _, id := range ids {
				if id != "" {
					written = append(written, id)
				}
			}
			read := readStream
			if tc.list {
				read = readList
			}
			got := read(t, written)
			if len(got) != len(written) {
				t.Fatalf("found %d of the entries %v", len(got), written)
			}
			for id, v := range got {
				want := "hook"
				if slices.Contains(tc.caller, v["n"]) {
					want = "caller"
				}
				if v["x-hook"] != want || v["x-pub"] != strconv.Itoa(p.seq) {
					t.Errorf("entry %s has %v; want x-hook %q, x-pub %d", id, v, want, p.seq)
				}
			}
		})
	}
}

// errAny stands for any error in TestHookPublish's table.
var errAny = errors.New("any error")

// decodeJob returns a list job's ID and fields, read from its envelope
// (docs/wire-format.md).
func decodeJob(t *testing.T, element string) (string, map[string]string) {
	t.Helper()
	var env struct {
		ID string            `json:"id"`
		V  map[string]string `json:"v"`
	}
	if err := json.Unmarshal([]byte(element), &env); err != nil {
		t.Fatalf("job %s: %v", element, err)
	}
	return env.ID, env.V
}

// TestHookPublishCoalesced: concurrent single adds coalesced into
// pipelines each get their own Publish and Published, and the fields of
// their own Publish.
func TestHookPublishCoalesced(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, _ := redistest.Names(t)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	var pipes xaddCounter
	rdb.AddHook(&pipes)
	hk := newRecHook()
	p, err := stream.NewProducer(rdb, key, &stream.ProducerOptions{Hook: hk, MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	const adds = 64
	var wg sync.WaitGroup
	ids := make([]string, adds)
	release := make(chan struct{})
	for i := range adds {
		wg.Go(func() {
			<-release
			id, err := p.Add(context.Background(), map[string]any{"n": i})
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
	}
	close(release)
	wg.Wait()
	hk.check(t)
	pubs := hk.published()
	if len(pubs) != adds {
		t.Fatalf("Published %d times; want %d", len(pubs), adds)
	}
	seqOf := map[string]int{}
	for _, pr := range pubs {
		if pr.count != 1 || len(pr.ids) != 1 || pr.err != nil {
			t.Errorf("Published %+v; want Count 1, one ID, no error", pr)
			continue
		}
		seqOf[pr.ids[0]] = pr.seq
	}
	xs, err := rdb.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		if got, want := x.Values["x-pub"], strconv.Itoa(seqOf[x.ID]); got != want {
			t.Errorf("entry %s has x-pub %v; want %s, its own publish's", x.ID, got, want)
		}
	}
	if len(xs) != adds {
		t.Errorf("%d entries written; want %d", len(xs), adds)
	}
	if n := pipes.pipelines.Load(); n == 0 || pipes.cmds.Load() <= n {
		t.Errorf("%d pipelines carried %d adds; want adds coalesced (more adds than pipelines)", n, pipes.cmds.Load())
	}
}

// xaddCounter is a go-redis hook counting the round trips that carry
// XADDs (a pipeline, or a command alone) and the XADDs.
type xaddCounter struct{ pipelines, cmds atomic.Int64 }

func (*xaddCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *xaddCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.count([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}

func (c *xaddCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.count(cmds)
		return next(ctx, cmds)
	}
}

func (c *xaddCounter) count(cmds []redis.Cmder) {
	n := 0
	for _, cmd := range cmds {
		if cmd.Name() == "xadd" {
			n++
		}
	}
	if n > 0 {
		c.pipelines.Add(1)
		c.cmds.Add(int64(n))
	}
}
