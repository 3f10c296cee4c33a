package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// Jobs are handled in the order they were pushed (one handler, so the
// call order is the fetch order).
func TestQueueFIFO(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			q := names(t, rdb)
			ids := push(t, rdb, q, 30)
			rec := newRecorder(nil)
			opts := fastOptions()
			opts.Concurrency, opts.Prefetch = 1, 3
			c := m.new(t, rdb, []string{q}, rec, opts)
			run := start(t, c.Run)
			// More jobs pushed while it runs keep their place too.
			ids = append(ids, push(t, rdb, q, 20)...)
			eventually(t, 20*time.Second, "every job handled", func() bool { return rec.calls() >= len(ids) })
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			order, deliv, msgs := rec.snapshot()
			if !slices.Equal(order, ids) {
				t.Errorf("handled order = %v; want the push order %v", order, ids)
			}
			for i, id := range ids {
				if got := msgs[id]; got.Values["n"] != strconv.Itoa(i%30) || got.Stream != q || !slices.Equal(deliv[id], []int64{1}) {
					t.Errorf("job %d = %+v with deliveries %v; want n=%d from %s, deliveries [1]", i, got, deliv[id], i%30, q)
				}
			}
			if n := llen(t, rdb, q); n != 0 {
				t.Errorf("LLEN %s = %d; want 0", q, n)
			}
			if n := llen(t, rdb, queue.ProcessingKey(q, "worker-1")); n != 0 {
				t.Errorf("processing list length = %d; want 0", n)
			}
			if st := c.Stats(); st.Delivered != uint64(len(ids)) || st.Acked != uint64(len(ids)) {
				t.Errorf("Stats = %+v; want Delivered = Acked = %d", st, len(ids))
			}
		})
	}
}

// The first queue comes first, but the second gets a job after every 20
// jobs fetched (plus at most one fetch of slack), and each queue is FIFO.
func TestQueuePriority(t *testing.T) {
	t.Parallel()
	const limit = 20 // the fixed fairness rule
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			base := names(t, rdb)
			high, low := base+":high", base+":low"
			highIDs := push(t, rdb, high, 120)
			lowIDs := push(t, rdb, low, 5)
			rec := newRecorder(nil)
			opts := fastOptions()
			opts.Concurrency, opts.Prefetch = 1, 1
			c := m.new(t, rdb, []string{high, low}, rec, opts)
			run := start(t, c.Run)
			eventually(t, 20*time.Second, "every job handled", func() bool { return rec.calls() >= 125 })
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			order, _, msgs := rec.snapshot()
			var queues strings.Builder
			for _, id := range order {
				queues.WriteString(map[bool]string{true: "H", false: "L"}[msgs[id].Stream == high])
			}
			got := queues.String()
			t.Logf("queues in handling order: %s", got)
			// Each L follows at most limit+slots H (the fair fetch comes
			// after limit jobs; a fetch takes up to 2).
			runs := strings.Split(strings.TrimRight(got, "L"), "L")
			for i, r := range runs[:min(len(runs), 5)] {
				if len(r) > limit+2 {
					t.Errorf("queues in handling order = %s: run %d of %d H before an L; want at most %d", got, i, len(r), limit+2)
				}
			}
			if n := strings.Count(got[:min(len(got), 5*(limit+3))], "L"); n < 5 {
				t.Errorf("queues in handling order = %s; want all 5 L within the first %d jobs, got %d", got, 5*(limit+3), n)
			}
			if !strings.HasPrefix(got, strings.Repeat("H", limit)) {
				t.Errorf("queues in handling order = %s; want the first %d from the first queue", got, limit)
			}
			// Within each queue, FIFO.
			var hs, ls []string
			for _, id := range order {
				if msgs[id].Stream == high {
					hs = append(hs, id)
				} else {
					ls = append(ls, id)
				}
			}
			if !slices.Equal(hs, highIDs) || !slices.Equal(ls, lowIDs) {
				t.Errorf("per-queue order = %v, %v; want %v, %v", hs, ls, highIDs, lowIDs)
			}
		})
	}
}

// A job that always fails is tried MaxDeliveries times, then lands in the
// dead-letter list with the reason; one whose handler returns
// handler.ErrPermanent (or panics with it) goes there at once.
func TestQueuePoisonJobDeadLettered(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			q := names(t, rdb)
			p, _ := queue.NewProducer(rdb, q, nil)
			ctx := context.Background()
			poison, _ := p.Push(ctx, map[string]any{"kind": "poison"})
			panicky, _ := p.Push(ctx, map[string]any{"kind": "panic"})
			perm, _ := p.Push(ctx, map[string]any{"kind": "permanent"})
			good, _ := p.Push(ctx, map[string]any{"kind": "good"})
			rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
				switch m.Values["kind"] {
				case "poison":
					return errors.New("smtp: 550 mailbox unavailable")
				case "panic":
					panic("boom")
				case "permanent":
					return fmt.Errorf("bad address: %w", handler.ErrPermanent)
				}
				return nil
			})
			opts := fastOptions()
			opts.MaxDeliveries = 3
			var reported atomic.Int64
			opts.OnError = func(error) { reported.Add(1) }
			c := m.new(t, rdb, []string{q}, rec, opts)
			run := start(t, c.Run)
			eventually(t, 20*time.Second, "three dead letters", func() bool { return llen(t, rdb, queue.DeadLetterKey(q)) == 3 })
			eventually(t, 5*time.Second, "the good job acknowledged", func() bool { return c.Stats().Acked == 1 })
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			_, deliv, _ := rec.snapshot()
			want := map[string][]int64{poison: {1, 2, 3}, panicky: {1, 2, 3}, perm: {1}, good: {1}}
			for id, w := range want {
				if !slices.Equal(deliv[id], w) {
					t.Errorf("job %s deliveries = %v; want %v", id, deliv[id], w)
				}
			}
			dls := deadLetters(t, rdb, queue.DeadLetterKey(q))
			byID := map[string]stream.DeadLetter{}
			for _, d := range dls {
				byID[d.OriginalID] = d
			}
			for _, tc := range []struct {
				id, kind, err string
				attempts      int64
			}{{poison, "poison", "smtp: 550 mailbox unavailable", 3}, {panicky, "panic", "handler: panic: boom", 3}, {perm, "permanent", "bad address", 1}} {
				d, ok := byID[tc.id]
				if !ok {
					t.Errorf("no dead letter for job %s; have %+v", tc.id, dls)
					continue
				}
				if !strings.Contains(d.Error, tc.err) || d.Deliveries != tc.attempts || d.Stream != q || d.At.IsZero() {
					t.Errorf("dead letter of %s = %+v; want error containing %q, %d attempts, queue %s", tc.id, d, tc.err, tc.attempts, q)
				}
				if m.name == "reliable" && d.Consumer != "worker-1" {
					t.Errorf("dead letter consumer = %q; want worker-1", d.Consumer)
				}
				if d.Values["kind"] != tc.kind || len(d.Values) != 1 {
					t.Errorf("dead letter of %s Values = %v; want the job's fields, kind=%s", tc.id, d.Values, tc.kind)
				}
			}
			st := c.Stats()
			if st.DeadLettered != 3 || st.Failed != 7 || st.Retried != 4 || st.Acked != 1 {
				t.Errorf("Stats = %+v; want DeadLettered 3, Failed 7, Retried 4, Acked 1", st)
			}
			if reported.Load() < 7 {
				t.Errorf("OnError called %d times; want at least 7 (one per failure)", reported.Load())
			}
			if n := llen(t, rdb, q) + llen(t, rdb, queue.ProcessingKey(q, "worker-1")); n != 0 {
				t.Errorf("jobs left in the queue and processing list = %d; want 0", n)
			}
		})
	}
}

// A stopped consumer leaves nothing of itself in Redis: a reliable one
// deletes its heartbeat and leaves the registry. Either kind is single-use:
// a second Run returns ErrAlreadyRun. (TestConformance checks the drain
// and the hand-back of a stop.)
func TestQueueStopDeregisters(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			q := names(t, rdb)
			ctx := context.Background()
			push(t, rdb, q, 3)
			c := m.new(t, rdb, []string{q}, newRecorder(nil), fastOptions())
			run := start(t, c.Run)
			eventually(t, 10*time.Second, "three jobs acknowledged", func() bool { return c.Stats().Acked == 3 })
			registered := func() (heartbeat int64, member bool) {
				heartbeat, _ = rdb.Exists(ctx, queue.HeartbeatKey(q, "worker-1")).Result()
				member, _ = rdb.SIsMember(ctx, queue.ConsumersKey(q), "worker-1").Result()
				return heartbeat, member
			}
			if m.name == "reliable" {
				if hb, member := registered(); hb != 1 || !member {
					t.Errorf("while running: heartbeat keys %d, registered %v; want 1 and true", hb, member)
				}
			}
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			if hb, member := registered(); m.name == "reliable" && (hb != 0 || member) {
				t.Errorf("after a clean stop: heartbeat keys %d, registered %v; want 0 and false", hb, member)
			}
			if err := c.Run(ctx); !errors.Is(err, queue.ErrAlreadyRun) {
				t.Errorf("second Run = %v; want ErrAlreadyRun", err)
			}
		})
	}
}

// A handler that ignores its context past DrainTimeout makes Run return
// ErrDrainTimeout; in reliable mode its job stays in the processing list
// and another consumer recovers it once the heartbeat expires.
func TestQueueDrainTimeout(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	q := names(t, rdb)
	ids := push(t, rdb, q, 1)
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	var started atomic.Bool
	stuck := handler.Func(func(ctx context.Context, m *stream.Message) error {
		started.Store(true)
		<-block
		return nil
	})
	opts := fastOptions()
	opts.DrainTimeout = 100 * time.Millisecond
	c := reliable(t, rdb, []string{q}, "stuck", stuck, opts)
	run := start(t, c.Run)
	eventually(t, 10*time.Second, "the handler to start", started.Load)
	if err := run.Stop(); !errors.Is(err, queue.ErrDrainTimeout) {
		t.Fatalf("Run = %v; want ErrDrainTimeout", err)
	}
	if n := llen(t, rdb, queue.ProcessingKey(q, "stuck")); n != 1 {
		t.Fatalf("processing list length after the drain timeout = %d; want 1", n)
	}
	rec := newRecorder(nil)
	other := reliable(t, rdb, []string{q}, "other", rec, fastOptions())
	run2 := start(t, other.Run)
	eventually(t, 10*time.Second, "the job recovered and handled", func() bool { return other.Stats().Acked == 1 })
	if err := run2.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	_, deliv, _ := rec.snapshot()
	if !slices.Equal(deliv[ids[0]], []int64{2}) {
		t.Errorf("recovered job deliveries = %v; want [2]", deliv[ids[0]])
	}
	if st := other.Stats(); st.Recovered != 1 {
		t.Errorf("Stats = %+v; want Recovered 1", st)
	}
}

// A queue key of another type stops Run with an error naming the key;
// nothing is taken from the other queue.
func TestQueueWrongType(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			base := names(t, rdb)
			good, bad := base+":good", base+":bad"
			push(t, rdb, good, 3)
			if err := rdb.Set(context.Background(), bad, "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
			c := m.new(t, rdb, []string{good, bad}, newRecorder(nil), fastOptions())
			err := start(t, c.Run).Wait(t, 10*time.Second)
			if !errors.Is(err, queue.ErrNotList) || !strings.Contains(err.Error(), strconv.Quote(bad)) {
				t.Errorf("Run = %v; want ErrNotList naming %q", err, bad)
			}
			if n := llen(t, rdb, good); n != 3 {
				t.Errorf("LLEN %s = %d; want 3 (nothing taken)", good, n)
			}
		})
	}
	t.Run("mid-run", func(t *testing.T) {
		t.Parallel()
		rdb := redistest.Client(t)
		q := names(t, rdb)
		rec := newRecorder(nil)
		c := reliable(t, rdb, []string{q}, "w", rec, fastOptions())
		run := start(t, c.Run)
		push(t, rdb, q, 1)
		eventually(t, 10*time.Second, "a job handled", func() bool { return c.Stats().Acked == 1 })
		if err := rdb.HSet(context.Background(), q, "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		err := run.Wait(t, 10*time.Second)
		if !errors.Is(err, queue.ErrNotList) || !strings.Contains(err.Error(), strconv.Quote(q)) {
			t.Errorf("Run = %v; want ErrNotList naming %q", err, q)
		}
	})
}

// Elements that carry the envelope marker but are malformed go to the
// dead-letter list byte for byte, with a reason; the good jobs around them
// are handled; nothing is lost.
func TestQueueGarbageEnvelope(t *testing.T) {
	t.Parallel()
	garbage := []string{
		`{"sg":1,"n":"x","id":"a","v":{}}`,
		`{"sg":2,"n":0,"id":"a","v":{}}`,
		`{"sg":1,"n":0,"id":"a","v":{"x":1}}`,
		`{"sg":1,"n":0,"v":{}}`,
		`{"sg":1,"n":0,"id":"a","v":{}`,
		`{"sg":`,
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			q := names(t, rdb)
			ctx := context.Background()
			push(t, rdb, q, 1)
			for _, g := range garbage {
				if err := rdb.LPush(ctx, q, g).Err(); err != nil {
					t.Fatal(err)
				}
			}
			push(t, rdb, q, 1)
			rec := newRecorder(nil)
			var reported atomic.Int64
			opts := fastOptions()
			opts.OnError = func(err error) {
				if strings.Contains(err.Error(), "malformed envelope") {
					reported.Add(1)
				}
			}
			c := m.new(t, rdb, []string{q}, rec, opts)
			run := start(t, c.Run)
			eventually(t, 10*time.Second, "the garbage dead-lettered and the jobs handled", func() bool {
				return llen(t, rdb, queue.DeadLetterKey(q)) == int64(len(garbage)) && rec.calls() == 2
			})
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			var got []string
			for _, d := range deadLetters(t, rdb, queue.DeadLetterKey(q)) {
				got = append(got, d.Element)
				if d.Values != nil {
					t.Errorf("dead letter of malformed %q has Values %v; want nil", d.Element, d.Values)
				}
				if !strings.HasPrefix(d.Error, "malformed envelope: ") {
					t.Errorf("dead letter error = %q; want a malformed envelope reason", d.Error)
				}
			}
			// Reliable mode counts the delivery in envelopes that start
			// canonically (the fetch script cannot parse the rest).
			var want []string
			for _, g := range garbage {
				if m.name == "reliable" {
					g = strings.Replace(g, `{"sg":1,"n":0,`, `{"sg":1,"n":1,`, 1)
				}
				want = append(want, g)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("dead-lettered jobs = %q; want %q", got, want)
			}
			if st := c.Stats(); st.Malformed != uint64(len(garbage)) || st.DeadLettered != uint64(len(garbage)) || st.Acked != 2 {
				t.Errorf("Stats = %+v; want Malformed = DeadLettered = %d, Acked 2", st, len(garbage))
			}
			if reported.Load() != int64(len(garbage)) {
				t.Errorf("OnError saw %d malformed envelopes; want %d", reported.Load(), len(garbage))
			}
			if n := llen(t, rdb, q) + llen(t, rdb, queue.ProcessingKey(q, "worker-1")); n != 0 {
				t.Errorf("jobs left = %d; want 0", n)
			}
		})
	}
}

// Plain strings pushed by another program (raw LPUSH) are jobs with the
// string in the payload field, so stream.Decode reads them; two identical
// strings are two jobs, each handled and removed once, even when both fail
// their first attempt; and so are two jobs with identical fields.
func TestQueuePlainStringsAndDuplicates(t *testing.T) {
	t.Parallel()
	type email struct {
		To string `json:"to"`
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			q := names(t, rdb)
			ctx := context.Background()
			body := `{"to":"ada@example.com"}`
			if err := rdb.LPush(ctx, q, body, body).Err(); err != nil {
				t.Fatal(err)
			}
			p, _ := queue.NewProducer(rdb, q, nil)
			id1, _ := p.PushPayload(ctx, email{To: "bob@example.com"})
			id2, _ := p.PushPayload(ctx, email{To: "bob@example.com"})
			var mu atomicSet
			rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
				var e email
				if err := stream.Decode(m, nil, &e); err != nil {
					return err
				}
				if m.Deliveries == 1 {
					return errors.New("first attempt fails")
				}
				mu.add(e.To)
				return nil
			})
			c := m.new(t, rdb, []string{q}, rec, fastOptions())
			run := start(t, c.Run)
			eventually(t, 10*time.Second, "four jobs acknowledged", func() bool { return c.Stats().Acked == 4 })
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			order, deliv, msgs := rec.snapshot()
			if len(deliv) != 4 || len(order) != 8 {
				t.Fatalf("handled %d distinct jobs in %d calls: %v; want 4 in 8", len(deliv), len(order), deliv)
			}
			for id, d := range deliv {
				if id == "" || !slices.Equal(d, []int64{1, 2}) {
					t.Errorf("job %q deliveries = %v; want an ID and [1 2]", id, d)
				}
				if msg := msgs[id]; msg.Stream != q {
					t.Errorf("job %s Stream = %q; want %q", id, msg.Stream, q)
				}
			}
			if deliv[id1] == nil || deliv[id2] == nil {
				t.Errorf("producer jobs %s, %s not handled under their IDs: %v", id1, id2, deliv)
			}
			if got := mu.counts(); got["ada@example.com"] != 2 || got["bob@example.com"] != 2 {
				t.Errorf("successful deliveries per address = %v; want 2 each", got)
			}
			if n := llen(t, rdb, q) + llen(t, rdb, queue.ProcessingKey(q, "worker-1")) + llen(t, rdb, queue.DeadLetterKey(q)); n != 0 {
				t.Errorf("elements left in the queue, processing and dead-letter lists = %d; want 0", n)
			}
		})
	}
}

// The recovery sweep moves the jobs of a registered consumer whose
// heartbeat expired back to the queue, and deregisters it; a consumer with
// a live heartbeat is left alone; a consumer restarting under its own
// name first hands back what its earlier life left.
func TestQueueRecoverExpiredConsumer(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	q := names(t, rdb)
	ctx := context.Background()
	// "ghost" died holding a delivered envelope and a plain string.
	ghostJob := `{"sg":1,"n":1,"id":"ghost-1","v":{"k":"v"}}`
	if err := rdb.LPush(ctx, queue.ProcessingKey(q, "ghost"), ghostJob, "plain from ghost").Err(); err != nil {
		t.Fatal(err)
	}
	// "alive" holds a job and has a heartbeat.
	aliveJob := `{"sg":1,"n":1,"id":"alive-1","v":{}}`
	rdb.LPush(ctx, queue.ProcessingKey(q, "alive"), aliveJob)
	rdb.Set(ctx, queue.HeartbeatKey(q, "alive"), "1", time.Minute)
	// "me" is the consumer's own name, left from an earlier life whose
	// heartbeat is still alive.
	meJob := `{"sg":1,"n":2,"id":"me-1","v":{}}`
	rdb.LPush(ctx, queue.ProcessingKey(q, "me"), meJob)
	rdb.Set(ctx, queue.HeartbeatKey(q, "me"), "1", time.Minute)
	rdb.SAdd(ctx, queue.ConsumersKey(q), "ghost", "alive", "me")

	rec := newRecorder(nil)
	c := reliable(t, rdb, []string{q}, "me", rec, fastOptions())
	run := start(t, c.Run)
	eventually(t, 10*time.Second, "three jobs handled", func() bool { return c.Stats().Acked == 3 })
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	_, deliv, msgs := rec.snapshot()
	if !slices.Equal(deliv["ghost-1"], []int64{2}) || !slices.Equal(deliv["me-1"], []int64{3}) {
		t.Errorf("deliveries = %v; want ghost-1 [2] and me-1 [3]", deliv)
	}
	plain := 0
	for id, m := range msgs {
		if m.Values[stream.PayloadField] == "plain from ghost" {
			plain++
			if !slices.Equal(deliv[id], []int64{1}) {
				t.Errorf("recovered plain string deliveries = %v; want [1]", deliv[id])
			}
		}
	}
	if plain != 1 {
		t.Errorf("plain string from ghost handled %d times; want 1", plain)
	}
	if _, ok := deliv["alive-1"]; ok {
		t.Errorf("the job of a live consumer was taken")
	}
	if got, _ := rdb.LRange(ctx, queue.ProcessingKey(q, "alive"), 0, -1).Result(); !slices.Equal(got, []string{aliveJob}) {
		t.Errorf("alive's processing list = %q; want it untouched", got)
	}
	members, _ := rdb.SMembers(ctx, queue.ConsumersKey(q)).Result()
	if slices.Contains(members, "ghost") || !slices.Contains(members, "alive") {
		t.Errorf("registry = %v; want alive kept and ghost removed", members)
	}
	if st := c.Stats(); st.Recovered != 3 {
		t.Errorf("Stats = %+v; want Recovered 3", st)
	}
}

// One handler, with one middleware chain, runs unchanged on both kinds of
// list consumer. (integration_test runs it on a stream consumer group too.)
func TestQueueSameHandlerBothKinds(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	q := names(t, rdb)
	type email struct {
		To string `json:"to"`
	}
	var seen atomicSet
	var wrapped atomic.Int64
	count := func(next handler.Handler) handler.Handler {
		return handler.Func(func(ctx context.Context, m *stream.Message) error {
			wrapped.Add(1)
			return next.Handle(ctx, m)
		})
	}
	h := handler.Chain(handler.Typed(stream.JSON, func(ctx context.Context, m *stream.Message, e email) error {
		if m.ID == "" || m.Deliveries != 1 {
			return fmt.Errorf("message %+v lacks an ID or a delivery count", m)
		}
		seen.add(m.Stream + " " + e.To)
		return nil
	}), handler.Recover(), count, handler.Timeout(time.Minute))

	ctx := context.Background()
	lp, _ := queue.NewProducer(rdb, q+":r", nil)
	lp.PushPayload(ctx, email{To: "reliable@example.com"})
	sq, _ := queue.NewProducer(rdb, q+":s", nil)
	sq.PushPayload(ctx, email{To: "simple@example.com"})

	// A whole-second PollInterval takes go-redis's own BLMOVE and BRPOP
	// (the other tests send fractions).
	wholeSecondPoll := fastOptions()
	wholeSecondPoll.PollInterval = time.Second
	runs := []*running{
		start(t, reliable(t, rdb, []string{q + ":r"}, "w", h, wholeSecondPoll).Run),
		start(t, simple(t, rdb, []string{q + ":s"}, h, wholeSecondPoll).Run),
	}
	eventually(t, 10*time.Second, "two jobs handled", func() bool { return len(seen.counts()) == 2 })
	for _, r := range runs {
		if err := r.Stop(); err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	}
	want := map[string]int{q + ":r reliable@example.com": 1, q + ":s simple@example.com": 1}
	if got := seen.counts(); !mapsEqual(got, want) || wrapped.Load() != 2 {
		t.Errorf("handled %v through the middleware %d times; want %v, 2", got, wrapped.Load(), want)
	}
}

// Options are validated as a whole at construction.
func TestQueueOptionsInvalid(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	h := newRecorder(nil)
	tests := []struct {
		name   string
		queues []string
		cname  string
		opts   *queue.Options
	}{
		{"no queue", nil, "c", nil},
		{"empty queue", []string{""}, "c", nil},
		{"duplicate queue", []string{"a", "a"}, "c", nil},
		{"empty consumer", []string{"a"}, "", nil},
		{"negative concurrency", []string{"a"}, "c", &queue.Options{Concurrency: -1}},
		{"tiny poll", []string{"a"}, "c", &queue.Options{PollInterval: time.Millisecond}},
		{"tiny heartbeat", []string{"a"}, "c", &queue.Options{HeartbeatTTL: time.Millisecond}},
		{"negative max bytes", []string{"a"}, "c", &queue.Options{MaxBytes: -1}},
		{"dead letter is a queue", []string{"a", "b"}, "c", &queue.Options{DeadLetterList: "b"}},
		{"default dead letter is a queue", []string{"a", "{a}:dead"}, "c", nil},
		{"retry cap below base", []string{"a"}, "c", &queue.Options{RetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond}},
		{"too much concurrency", []string{"a"}, "c", &queue.Options{Concurrency: queue.MaxConcurrency + 1}},
	}
	for _, tt := range tests {
		if _, err := queue.NewReliableConsumer(rdb, tt.queues, tt.cname, h, tt.opts); !errors.Is(err, queue.ErrInvalidOptions) {
			t.Errorf("NewReliableConsumer(%s) = %v; want ErrInvalidOptions", tt.name, err)
		}
	}
	if _, err := queue.NewSimpleConsumer(rdb, []string{"a"}, nil, nil); !errors.Is(err, queue.ErrInvalidOptions) {
		t.Errorf("NewSimpleConsumer(nil handler) = %v; want ErrInvalidOptions", err)
	}
	opts := &queue.Options{Concurrency: 3}
	if _, err := queue.NewSimpleConsumer(rdb, []string{"a"}, h, opts); err != nil || opts.Prefetch != 0 {
		t.Errorf("NewSimpleConsumer = %v and options became %+v; want nil and the caller's options untouched", err, opts)
	}
}
