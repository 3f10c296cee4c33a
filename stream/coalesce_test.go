package stream_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// gate is a go-redis hook that records the pipelines of XADDs a client
// sends (the XADDs and EVALs in each) and can hold chosen pipelines before they go
// out. It also owns the goroutines of the adds a test starts (goAdd).
type gate struct {
	mu    sync.Mutex
	sizes []int         // XADDs per pipeline, in order
	evals int           // EVALs (safe trims) in all pipelines
	holds map[int]*hold // by pipeline number (of those with XADDs), from 1

	adds sync.WaitGroup
}

// hold is one held pipeline.
type hold struct {
	entered chan struct{} // closed when the pipeline reaches the hook
	release chan struct{} // closed by let
	once    sync.Once
	ctxErr  error // the pipeline context's Err after release
}

// let lets the held pipeline go.
func (h *hold) let() { h.once.Do(func() { close(h.release) }) }

// gated returns a client of its own to the shared Redis, with a gate.
func gated(t *testing.T) (*redis.Client, *gate) {
	t.Helper()
	rdb := redistest.Client(t)
	return rdb, newGate(t, rdb)
}

// newGate adds a gate to rdb. When t ends (its ctx is cancelled first, so
// queued adds withdraw) every hold is let go and the adds are waited for,
// up to 30s.
func newGate(t *testing.T, rdb *redis.Client) *gate {
	g := &gate{holds: map[int]*hold{}}
	rdb.AddHook(g)
	t.Cleanup(func() {
		g.mu.Lock()
		for _, h := range g.holds {
			h.let()
		}
		g.mu.Unlock()
		done := make(chan struct{})
		go func() { g.adds.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second): // report a hang rather than hang
			t.Error("adds still running 30s after the test ended")
		}
	})
	return g
}

// hold makes pipeline n wait until the returned hold is let go.
func (g *gate) hold(n int) *hold {
	h := &hold{entered: make(chan struct{}), release: make(chan struct{})}
	g.mu.Lock()
	g.holds[n] = h
	g.mu.Unlock()
	return h
}

func (g *gate) pipelines() ([]int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sizes), g.evals
}

func (*gate) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook gates a command sent alone, as an uncontended add is: a
// pipeline of one, as far as the gate is concerned.
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return g.pass(ctx, []redis.Cmder{cmd}, func(ctx context.Context) error { return next(ctx, cmd) })
	}
}

func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		return g.pass(ctx, cmds, func(ctx context.Context) error { return next(ctx, cmds) })
	}
}

// pass counts the XADDs and EVALs of cmds and, if they are the held
// pipeline, waits for its release before sending them.
func (g *gate) pass(ctx context.Context, cmds []redis.Cmder, send func(context.Context) error) error {
	xadds, evals := 0, 0
	for _, c := range cmds {
		switch c.Name() {
		case "xadd":
			xadds++
		case "eval":
			evals++
		}
	}
	if xadds == 0 { // go-redis's own, such as the HELLO of a new connection
		return send(ctx)
	}
	g.mu.Lock()
	g.sizes = append(g.sizes, xadds)
	g.evals += evals
	h := g.holds[len(g.sizes)]
	g.mu.Unlock()
	if h != nil {
		close(h.entered)
		<-h.release
		h.ctxErr = ctx.Err()
	}
	return send(ctx)
}

// waitEntered waits until h's pipeline reaches the hook.
func waitEntered(t *testing.T, h *hold) {
	t.Helper()
	select {
	case <-h.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the held pipeline was not sent within 10s")
	}
}

// waitQueued waits until n adds of p wait for a pipeline slot.
func waitQueued(t *testing.T, p *stream.Producer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.Queued() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Queued() = %d after 10s; want %d", p.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// result is the outcome of one add.
type result struct {
	id  string
	err error
}

// goAdd runs add in a goroutine owned by g and returns its outcome's
// channel.
func (g *gate) goAdd(add func() (string, error)) <-chan result {
	ch := make(chan result, 1)
	g.adds.Go(func() {
		id, err := add()
		ch <- result{id, err}
	})
	return ch
}

// await returns the outcome of an add started with goAdd, failing t if it
// takes more than 30s.
func await(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("an add did not return within 30s")
		return result{}
	}
}

func TestProducerCoalescesWaitingAdds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		maxBatch int
		want     []int // XADDs per pipeline
	}{
		{0, []int{1, 25}}, // DefaultMaxBatch: all waiting adds in one pipeline
		{10, []int{1, 10, 10, 5}},
		{1, slices.Repeat([]int{1}, 26)}, // no coalescing
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("MaxBatch=%d", tt.maxBatch), func(t *testing.T) {
			t.Parallel()
			rdb, key, _ := setup(t)
			client, g := gated(t)
			ctx := t.Context()
			p := newProducer(t, client, key, &stream.ProducerOptions{MaxInFlight: 1, MaxBatch: tt.maxBatch})
			first := g.hold(1)
			results := []<-chan result{g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"i": 0}) })}
			waitEntered(t, first)
			for i := 1; i <= 25; i++ {
				results = append(results, g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"i": i}) }))
			}
			// The only slot is taken by the held pipeline: every other add waits.
			waitQueued(t, p, 25)
			first.let()
			seen := map[string]bool{}
			for i, ch := range results {
				r := await(t, ch)
				if r.err != nil || seen[r.id] {
					t.Fatalf("add %d = %q, %v; want a new ID", i, r.id, r.err)
				}
				seen[r.id] = true
			}
			if got, _ := g.pipelines(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("XADDs per pipeline = %v; want %v", got, tt.want)
			}
			if n := rdb.XLen(ctx, key).Val(); n != 26 {
				t.Errorf("XLEN = %d; want 26", n)
			}
		})
	}
}

func TestProducerConcurrentAddsEachGetTheirID(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	client, g := gated(t)
	ctx := t.Context()
	p := newProducer(t, client, key, nil)
	const goroutines, each = 64, 40
	got := make([][]string, goroutines) // IDs by goroutine, in call order
	var wg sync.WaitGroup
	for gr := range goroutines {
		wg.Go(func() {
			for i := range each {
				var id string
				var err error
				switch i % 3 { // the three single-add methods
				case 0:
					id, err = p.Add(ctx, map[string]any{"g": gr, "i": i})
				case 1:
					id, err = p.AddEntry(ctx, stream.Entry{Values: map[string]any{"g": gr, "i": i}})
				default:
					id, err = p.AddPayload(ctx, map[string]int{"g": gr, "i": i})
				}
				if err != nil {
					t.Errorf("goroutine %d add %d = %v; want nil", gr, i, err)
					return
				}
				got[gr] = append(got[gr], id)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	msgs, err := rdb.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != goroutines*each {
		t.Fatalf("stream holds %d entries; want %d", len(msgs), goroutines*each)
	}
	byID := map[string]map[string]any{}
	for _, m := range msgs {
		byID[m.ID] = m.Values
	}
	for gr, idList := range got {
		for i, id := range idList {
			values, ok := byID[id]
			if !ok {
				t.Fatalf("goroutine %d add %d returned %s, which the stream does not hold (or another add returned it too)", gr, i, id)
			}
			delete(byID, id) // a second add returning the same ID is caught above
			want := map[string]any{"g": itoa(gr), "i": itoa(i)}
			if i%3 == 2 {
				want = map[string]any{
					stream.PayloadField:     fmt.Sprintf(`{"g":%d,"i":%d}`, gr, i),
					stream.ContentTypeField: "application/json",
				}
			}
			if !reflect.DeepEqual(values, want) {
				t.Errorf("entry %s of goroutine %d add %d = %v; want %v", id, gr, i, values, want)
			}
			if i > 0 {
				prev, _ := stream.ParseID(idList[i-1])
				if cur, _ := stream.ParseID(id); cur.Compare(prev) <= 0 {
					t.Errorf("goroutine %d: add %d got %s, not after add %d's %s", gr, i, id, i-1, idList[i-1])
				}
			}
		}
	}
	sizes, _ := g.pipelines()
	t.Logf("%d adds in %d pipelines", goroutines*each, len(sizes))
}

func TestProducerCoalescedErrorsStayWithTheirAdd(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	client, g := gated(t)
	ctx := t.Context()
	p := newProducer(t, client, key, &stream.ProducerOptions{MaxInFlight: 1})
	first := g.hold(1)
	top := g.goAdd(func() (string, error) {
		return p.AddEntry(ctx, stream.Entry{ID: "1000-0", Values: map[string]any{"f": "top"}})
	})
	waitEntered(t, first)

	var valid []<-chan result
	for i := range 3 {
		valid = append(valid, g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"i": i}) }))
	}
	// Below the top: Redis refuses this one command of the pipeline.
	low := g.goAdd(func() (string, error) {
		return p.AddEntry(ctx, stream.Entry{ID: "5-0", Values: map[string]any{"f": "low"}})
	})
	for i := 3; i < 6; i++ {
		valid = append(valid, g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"i": i}) }))
	}
	// Refused before it is queued, while the only slot is still held.
	if id, err := p.Add(ctx, map[string]any{"f": make(chan int)}); err == nil || id != "" {
		t.Errorf("Add(unwritable value) = %q, %v; want an error at once", id, err)
	}
	waitQueued(t, p, 7)
	first.let()

	if r := await(t, top); r.err != nil || r.id != "1000-0" {
		t.Fatalf("AddEntry(1000-0) = %q, %v; want 1000-0, nil", r.id, r.err)
	}
	r := await(t, low)
	var re redis.Error
	if !errors.As(r.err, &re) || r.id != "" || !strings.Contains(r.err.Error(), key) {
		t.Errorf("AddEntry(5-0) below the top = %q, %v; want a Redis error reply naming %q", r.id, r.err, key)
	}
	want := []string{"1000-0"}
	for i, ch := range valid {
		r := await(t, ch)
		if r.err != nil || r.id == "" {
			t.Errorf("valid add %d, coalesced with a failing one = %q, %v; want an ID, nil", i, r.id, r.err)
		}
		want = append(want, r.id)
	}
	slices.SortFunc(want, func(a, b string) int {
		x, _ := stream.ParseID(a)
		y, _ := stream.ParseID(b)
		return x.Compare(y)
	})
	if got := ids(t, rdb, key); !reflect.DeepEqual(got, want) {
		t.Errorf("stream IDs = %v; want %v", got, want)
	}
	if sizes, _ := g.pipelines(); !reflect.DeepEqual(sizes, []int{1, 7}) {
		t.Errorf("XADDs per pipeline = %v; want [1 7] (the failing entry rode with six valid ones)", sizes)
	}
}

func TestProducerQueuedAddCancelled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ctx  func(context.Context) (context.Context, context.CancelFunc)
		end  bool // cancel once queued
		want error
	}{
		{"cancelled", context.WithCancel, true, context.Canceled},
		{"deadline", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, time.Second)
		}, false, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, key, _ := setup(t)
			client, g := gated(t)
			ctx := t.Context()
			p := newProducer(t, client, key, &stream.ProducerOptions{MaxInFlight: 1})
			first := g.hold(1)
			a := g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"who": "a"}) })
			waitEntered(t, first)
			c := g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"who": "c"}) })
			waitQueued(t, p, 1)
			bctx, cancel := tt.ctx(ctx)
			defer cancel()
			b := g.goAdd(func() (string, error) { return p.Add(bctx, map[string]any{"who": "b"}) })
			waitQueued(t, p, 2)
			if tt.end {
				cancel()
			}
			// b returns while the only slot is still held: it was never sent.
			if r := await(t, b); !errors.Is(r.err, tt.want) || r.id != "" {
				t.Errorf("queued Add whose ctx ended = %q, %v; want \"\", %v", r.id, r.err, tt.want)
			}
			if n := p.Queued(); n != 1 {
				t.Errorf("Queued() after a queued add withdrew = %d; want 1", n)
			}
			first.let()
			ra, rc := await(t, a), await(t, c)
			if ra.err != nil || rc.err != nil {
				t.Fatalf("the other adds = %v, %v; want nil, nil", ra.err, rc.err)
			}
			if got := ids(t, rdb, key); !reflect.DeepEqual(got, []string{ra.id, rc.id}) {
				t.Errorf("stream IDs = %v; want only a's and c's %v (b's entry not added)", got, []string{ra.id, rc.id})
			}
			if sizes, _ := g.pipelines(); !reflect.DeepEqual(sizes, []int{1, 1}) {
				t.Errorf("XADDs per pipeline = %v; want [1 1]", sizes)
			}
		})
	}
}

func TestProducerSentAddOutlivesItsCtx(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	client, g := gated(t)
	ctx := t.Context()
	p := newProducer(t, client, key, &stream.ProducerOptions{MaxInFlight: 1})
	first, second := g.hold(1), g.hold(2)
	a := g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"who": "a"}) })
	waitEntered(t, first)
	// b leads the second pipeline, c rides in it; both get cancelled once
	// it is on its way.
	var cancels []context.CancelFunc
	var waiting []<-chan result
	for i, who := range []string{"b", "c", "d"} {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		cancels = append(cancels, cancel)
		waiting = append(waiting, g.goAdd(func() (string, error) { return p.Add(cctx, map[string]any{"who": who}) }))
		waitQueued(t, p, i+1)
	}
	first.let()
	waitEntered(t, second)
	cancels[0]() // the leader's
	cancels[1]()
	second.let()

	want := []string{await(t, a).id}
	for i, ch := range waiting {
		r := await(t, ch)
		if r.err != nil || r.id == "" {
			t.Errorf("add %d, cancelled after it was sent = %q, %v; want its ID, nil", i, r.id, r.err)
		}
		want = append(want, r.id)
	}
	if second.ctxErr != nil {
		t.Errorf("the pipeline's ctx after its leader's was cancelled: Err() = %v; want nil", second.ctxErr)
	}
	if got := ids(t, rdb, key); len(got) != 4 || !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Errorf("stream IDs = %v; want %v", got, want)
	}
	if sizes, _ := g.pipelines(); !reflect.DeepEqual(sizes, []int{1, 3}) {
		t.Errorf("XADDs per pipeline = %v; want [1 3]", sizes)
	}
}

func TestProducerConnectionLostFailsEveryWaitingAdd(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t, nil)
	// No retries: each failed pipeline returns at once, which keeps the
	// test short; with retries each batch fails in turn, only later.
	client := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { client.Close() })
	g := newGate(t, client)
	key, _ := redistest.Names(t)
	ctx := t.Context()
	p := newProducer(t, client, key, &stream.ProducerOptions{MaxInFlight: 1, MaxBatch: 8})
	if _, err := p.Add(ctx, map[string]any{"f": "before"}); err != nil {
		t.Fatalf("Add before the server stops = %v; want nil", err)
	}
	held := g.hold(2)
	results := []<-chan result{g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"i": 0}) })}
	waitEntered(t, held)
	for i := 1; i <= 20; i++ {
		results = append(results, g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"i": i}) }))
	}
	waitQueued(t, p, 20)
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	held.let()
	for i, ch := range results {
		if r := await(t, ch); r.err == nil || r.id != "" {
			t.Errorf("add %d after the server stopped = %q, %v; want an error", i, r.id, r.err)
		}
	}
	if n := p.Queued(); n != 0 {
		t.Errorf("Queued() = %d; want 0", n)
	}
	// The slot was handed back: a later add fails promptly too, not hangs.
	if r := await(t, g.goAdd(func() (string, error) { return p.Add(ctx, map[string]any{"f": "after"}) })); r.err == nil {
		t.Errorf("Add with the server down = %q, nil; want an error", r.id)
	}
}

func TestProducerTrimsUnderConcurrentAdds(t *testing.T) {
	t.Parallel()
	const goroutines, each, maxLen, interval = 64, 20, 10, 10
	const adds = goroutines * each
	tests := []struct {
		name       string
		group      bool // a group created at 0 that reads nothing: safe trims remove nothing
		minN, maxN int64
	}{
		// After the trim that the last add makes due, only the one other
		// pipeline in flight (at most one entry per goroutine) can land.
		{"no group", false, maxLen, maxLen + goroutines},
		{"group holds everything", true, adds, adds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, key, _ := setup(t)
			client, g := gated(t)
			ctx := t.Context()
			if tt.group {
				if err := rdb.XGroupCreateMkStream(ctx, key, "g", "0").Err(); err != nil {
					t.Fatal(err)
				}
			}
			p := newProducer(t, client, key, &stream.ProducerOptions{MaxLen: maxLen, ExactTrim: true, TrimInterval: interval, MaxInFlight: 2})
			var wg sync.WaitGroup
			for gr := range goroutines {
				wg.Go(func() {
					for i := range each {
						if _, err := p.Add(ctx, map[string]any{"g": gr, "i": i}); err != nil {
							t.Errorf("Add = %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			if n := rdb.XLen(ctx, key).Val(); n < tt.minN || n > tt.maxN {
				t.Errorf("XLEN after %d adds, MaxLen %d = %d; want %d..%d", adds, maxLen, n, tt.minN, tt.maxN)
			}
			// One trim per pipeline that crosses a multiple of the interval:
			// at most adds/interval, and at least that many divided by the
			// most multiples one pipeline (≤ 64 adds) can cross.
			sizes, evals := g.pipelines()
			if most := adds / interval; evals < most/7 || evals > most {
				t.Errorf("%d trims for %d adds in %d pipelines, TrimInterval %d; want %d..%d", evals, adds, len(sizes), interval, most/7, most)
			}
		})
	}
}
