package inspect_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/inspect"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

func llen(t testing.TB, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	n, err := rdb.LLen(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pushJobs(t testing.TB, rdb redis.UniversalClient, q string, jobs ...map[string]any) {
	t.Helper()
	p, err := queue.NewProducer(rdb, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PushBatch(context.Background(), jobs); err != nil {
		t.Fatal(err)
	}
}

// blocking is a handler that dead-letters jobs of kind "poison" and holds
// every other job until release is closed, ignoring its context.
type blocking struct {
	started atomic.Int64
	release chan struct{}
	once    sync.Once
}

func newBlocking() *blocking { return &blocking{release: make(chan struct{})} }

func (b *blocking) free() { b.once.Do(func() { close(b.release) }) }

func (b *blocking) Handle(_ context.Context, m *stream.Message) error {
	if m.Values["kind"] == "poison" {
		return fmt.Errorf("poison: %w", handler.ErrPermanent)
	}
	b.started.Add(1)
	<-b.release
	return nil
}

func reliableConsumer(t testing.TB, rdb redis.UniversalClient, q, name string, h handler.Handler, opts *queue.Options) *redistest.Running {
	t.Helper()
	c, err := queue.NewReliableConsumer(rdb, []string{q}, name, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	run := redistest.Go(t, c.Run)
	if b, ok := h.(*blocking); ok {
		t.Cleanup(b.free) // before the consumer's stop, which waits for the handlers
	}
	return run
}

// TestQueueState reads two queues in one call: one with a live reliable
// consumer whose handlers hold jobs and a dead-lettered job, one whose
// consumer stopped with jobs in hand and whose heartbeat expired.
func TestQueueState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	live, gone := queueKey(t, rdb), queueKey(t, rdb)

	// gone: a consumer stops past its drain timeout holding two jobs; they
	// stay in its processing list and its heartbeat expires.
	h0 := newBlocking()
	pushJobs(t, rdb, gone, map[string]any{"n": 1}, map[string]any{"n": 2})
	run0 := reliableConsumer(t, rdb, gone, "w0", h0, &queue.Options{Concurrency: 2, Prefetch: 1, HeartbeatTTL: 200 * time.Millisecond, DrainTimeout: 50 * time.Millisecond})
	redistest.Eventually(t, 10*time.Second, "both jobs of w0 in handlers", func() bool { return h0.started.Load() == 2 })
	if err := run0.Stop(); !errors.Is(err, queue.ErrDrainTimeout) {
		t.Fatalf("Run = %v; want ErrDrainTimeout", err)
	}
	redistest.Eventually(t, 5*time.Second, "w0's heartbeat to expire", func() bool {
		return rdb.Exists(ctx, queue.HeartbeatKey(gone, "w0")).Val() == 0
	})

	// live: a poison job is dead-lettered, then five jobs come; two are in
	// handlers, the consumer fetches one ahead, the others wait.
	h1 := newBlocking()
	pushJobs(t, rdb, live, map[string]any{"kind": "poison"})
	started := time.Now()
	reliableConsumer(t, rdb, live, "w1", h1, &queue.Options{Concurrency: 2, Prefetch: 1, PollInterval: 50 * time.Millisecond})
	redistest.Eventually(t, 10*time.Second, "the poison job dead-lettered", func() bool { return llen(t, rdb, queue.DeadLetterKey(live)) == 1 })
	pushJobs(t, rdb, live, map[string]any{"n": 1}, map[string]any{"n": 2}, map[string]any{"n": 3}, map[string]any{"n": 4}, map[string]any{"n": 5})
	redistest.Eventually(t, 10*time.Second, "two jobs in handlers and one fetched ahead", func() bool {
		return h1.started.Load() == 2 && llen(t, rdb, queue.ProcessingKey(live, "w1")) == 3
	})
	time.Sleep(200 * time.Millisecond) // a further fetch would show now

	in := newInspector(t, rdb, nil)
	before := time.Now()
	states, err := in.Queues(ctx, []inspect.QueueTarget{{Queue: live}, {Queue: gone}})
	if err != nil {
		t.Fatalf("Queues: %v", err)
	}
	l, g := states[0], states[1]

	// What the test made, and what LLEN and the registry say.
	if l.Queue != live || l.Length != 2 || l.Processing != 3 || l.DeadLetters != 1 || l.DeadLetterList != queue.DeadLetterKey(live) || l.LiveConsumers != 1 || l.ExpiredConsumers != 0 {
		t.Errorf("live queue = %+v; want length 2, 3 processing, 1 dead letter, 1 live consumer", l)
	}
	if l.Length != llen(t, rdb, live) || l.DeadLetters != llen(t, rdb, queue.DeadLetterKey(live)) {
		t.Errorf("live queue = length %d, %d dead letters; LLEN says %d, %d", l.Length, l.DeadLetters, llen(t, rdb, live), llen(t, rdb, queue.DeadLetterKey(live)))
	}
	if len(l.Consumers) != 1 {
		t.Fatalf("live queue consumers = %+v; want w1", l.Consumers)
	}
	w1 := l.Consumers[0]
	if w1.Name != "w1" || !w1.Live || w1.Processing != 3 || w1.Processing != llen(t, rdb, queue.ProcessingKey(live, "w1")) {
		t.Errorf("w1 = %+v; want live, 3 processing (LLEN %d)", w1, llen(t, rdb, queue.ProcessingKey(live, "w1")))
	}
	if w1.LastBeat.Before(started.Add(-time.Millisecond)) || w1.LastBeat.After(before.Add(time.Millisecond)) {
		t.Errorf("w1 last beat = %v; want between its start %v and the read %v", w1.LastBeat, started, before)
	}
	if g.Queue != gone || g.Length != 0 || g.Processing != 2 || g.DeadLetters != 0 || g.LiveConsumers != 0 || g.ExpiredConsumers != 1 {
		t.Errorf("gone queue = %+v; want length 0, 2 processing, no dead letter, 1 expired consumer", g)
	}
	if len(g.Consumers) != 1 {
		t.Fatalf("gone queue consumers = %+v; want w0", g.Consumers)
	}
	if w0 := g.Consumers[0]; w0.Name != "w0" || w0.Live || !w0.LastBeat.IsZero() || w0.Processing != 2 || w0.Processing != llen(t, rdb, queue.ProcessingKey(gone, "w0")) {
		t.Errorf("w0 = %+v; want expired, 2 processing (LLEN %d)", w0, llen(t, rdb, queue.ProcessingKey(gone, "w0")))
	}
	for _, q := range []string{live, gone} {
		members := rdb.SMembers(ctx, queue.ConsumersKey(q)).Val()
		if len(members) != 1 {
			t.Errorf("registry of %q = %v; want one consumer", q, members)
		}
	}
}

// TestQueueStateCustomDeadLetterList reads a dead-letter list given by the
// target, and a queue nobody has used.
func TestQueueStateCustomDeadLetterList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	q := queueKey(t, rdb)
	dead := q + ":failed"
	rdb.LPush(ctx, dead, "a", "b", "c")
	pushJobs(t, rdb, q, map[string]any{"n": 1})
	st, err := newInspector(t, rdb, nil).Queue(ctx, inspect.QueueTarget{Queue: q, DeadLetterList: dead})
	if err != nil {
		t.Fatalf("Queue: %v", err)
	}
	want := inspect.QueueState{Queue: q, Length: 1, DeadLetterList: dead, DeadLetters: 3}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("Queue = %+v; want %+v", st, want)
	}
	unused := q + ":unused"
	st, err = newInspector(t, rdb, nil).Queue(ctx, inspect.QueueTarget{Queue: unused})
	want = inspect.QueueState{Queue: unused, DeadLetterList: queue.DeadLetterKey(unused)}
	if err != nil || fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("Queue(unused) = %+v, %v; want %+v, nil", st, err, want)
	}
}
