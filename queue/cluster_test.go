package queue_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/internal/keys"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// The tests in this file run on a real local Redis Cluster (three masters,
// see redistest.ClusterClient), with queue names without a hash tag, as a
// new user writes them.

var clusterSeq atomic.Uint64

// untaggedQueue returns a queue name unique to t without a hash tag, such
// as "jobs:email:TestX-reliable-4242-1".
func untaggedQueue(t testing.TB) string {
	name := strings.NewReplacer("{", "-", "}", "-", "/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("jobs:email:%s-%d-%d", name, os.Getpid(), clusterSeq.Add(1))
}

// errs collects what a consumer reports to OnError.
type errs struct {
	mu  sync.Mutex
	all []error
}

func (e *errs) add(err error) { e.mu.Lock(); e.all = append(e.all, err); e.mu.Unlock() }

func (e *errs) find(s string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.all {
		if strings.Contains(err.Error(), s) {
			return err
		}
	}
	return nil
}

// TestClusterQueueRoundTrip: push, handle and finish jobs on a cluster, and
// dead-letter a poison job, in both modes; every helper key lies in the
// queue's slot.
func TestClusterQueueRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.ClusterClient(t)
			ctx := context.Background()
			q := untaggedQueue(t)
			dead := "{" + q + "}:dead"
			if got := queue.DeadLetterKey(q); got != dead {
				t.Fatalf("DeadLetterKey(%q) = %q; want %q", q, got, dead)
			}
			for _, k := range []string{dead, queue.ProcessingKey(q, "worker-1"), queue.HeartbeatKey(q, "worker-1"), queue.ConsumersKey(q)} {
				if !keys.SameSlot(q, k) {
					t.Errorf("helper key %q is not in the slot of %q", k, q)
				}
			}
			t.Cleanup(func() {
				ctx := context.Background()
				for _, k := range []string{q, dead, queue.ProcessingKey(q, "worker-1"), queue.HeartbeatKey(q, "worker-1"), queue.ConsumersKey(q)} {
					rdb.Del(ctx, k)
				}
			})
			p, err := queue.NewProducer(rdb, q, nil)
			if err != nil {
				t.Fatalf("NewProducer = %v; want nil", err)
			}
			const n = 20
			var good []string
			for i := range n {
				id, err := p.Push(ctx, map[string]any{"n": i})
				if err != nil {
					t.Fatalf("Push = %v; want nil", err)
				}
				good = append(good, id)
			}
			poison, err := p.Push(ctx, map[string]any{"kind": "poison"})
			if err != nil {
				t.Fatalf("Push = %v; want nil", err)
			}
			rec := newRecorder(func(_ context.Context, m *stream.Message) error {
				if m.Values["kind"] == "poison" {
					return errors.New("smtp: 550 mailbox unavailable")
				}
				return nil
			})
			var reported errs
			opts := fastOptions()
			opts.MaxDeliveries = 2
			opts.OnError = reported.add
			c := m.new(t, rdb, []string{q}, rec, opts)
			run := start(t, c.Run)
			eventually(t, 20*time.Second, "the poison job in "+dead+" and the rest finished (or a CROSSSLOT error)", func() bool {
				return (llen(t, rdb, dead) == 1 && c.Stats().Acked == n) || reported.find("CROSSSLOT") != nil
			})
			if err := reported.find("CROSSSLOT"); err != nil {
				t.Fatalf("consumer on Cluster reported %v", err)
			}
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			_, deliv, _ := rec.snapshot()
			for _, id := range good {
				if len(deliv[id]) != 1 {
					t.Errorf("job %s deliveries = %v; want one", id, deliv[id])
				}
			}
			dls := deadLetters(t, rdb, dead)
			if len(dls) != 1 || dls[0].OriginalID != poison || dls[0].Deliveries != 2 || dls[0].Stream != q {
				t.Errorf("dead letters = %+v; want job %s after 2 attempts from %s", dls, poison, q)
			}
			if k := llen(t, rdb, q) + llen(t, rdb, queue.ProcessingKey(q, "worker-1")); k != 0 {
				t.Errorf("jobs left in the queue and processing list = %d; want 0", k)
			}
		})
	}
}

// TestClusterQueueRecoverDeadConsumer: on a cluster, the jobs of a consumer
// that died are recovered by another through its heartbeat and registry.
func TestClusterQueueRecoverDeadConsumer(t *testing.T) {
	t.Parallel()
	rdb := redistest.ClusterClient(t)
	ctx := context.Background()
	q := untaggedQueue(t)
	t.Cleanup(func() {
		for _, k := range []string{q, queue.DeadLetterKey(q), queue.ProcessingKey(q, "dead"), queue.ConsumersKey(q),
			queue.ProcessingKey(q, "worker-1"), queue.HeartbeatKey(q, "worker-1")} {
			rdb.Del(context.Background(), k)
		}
	})
	// A consumer "dead" that fetched two jobs and died: its processing list
	// and registry entry remain, its heartbeat expired.
	for _, j := range []string{"job-a", "job-b"} {
		if err := rdb.LPush(ctx, queue.ProcessingKey(q, "dead"), j).Err(); err != nil {
			t.Fatalf("LPUSH = %v", err)
		}
	}
	if err := rdb.SAdd(ctx, queue.ConsumersKey(q), "dead").Err(); err != nil {
		t.Fatalf("SADD = %v", err)
	}
	rec := newRecorder(nil)
	var reported errs
	opts := fastOptions()
	opts.OnError = reported.add
	c := reliable(t, rdb, []string{q}, "worker-1", rec, opts)
	run := start(t, c.Run)
	eventually(t, 20*time.Second, "both jobs of the dead consumer handled", func() bool { return c.Stats().Acked == 2 })
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if err := reported.find("CROSSSLOT"); err != nil {
		t.Errorf("OnError got %v; want no CROSSSLOT", err)
	}
	if n, _ := rdb.SIsMember(ctx, queue.ConsumersKey(q), "dead").Result(); n {
		t.Errorf("the dead consumer is still registered in %s", queue.ConsumersKey(q))
	}
}

// TestClusterQueueSlotsRefused: on a cluster, queues in different slots, or
// (reliable mode) a DeadLetterList outside their slot, are refused at
// construction, naming the keys and the fix; on a standalone Redis they are
// allowed.
func TestClusterQueueSlotsRefused(t *testing.T) {
	t.Parallel()
	cc := redistest.ClusterClient(t)
	h := newRecorder(nil)
	q := untaggedQueue(t)
	for _, tc := range []struct {
		name   string
		queues []string
		dead   string
		want   []string // in the error; nil: accepted
		simple bool     // a simple consumer accepts it (it writes its dead-letter list alone)
	}{
		{"default", []string{q}, "", nil, true},
		{"tagged queues", []string{"{jobs}:high", "{jobs}:low"}, "", nil, true},
		{"tagged dead letter", []string{"{jobs}:high", "{jobs}:low"}, "{jobs}:dead", nil, true},
		{"dead letter beside", []string{q}, "{" + q + "}:failed", nil, true},
		{"dead letter elsewhere", []string{q}, q + ":dead", []string{`"` + q + `"`, `"` + q + `:dead"`, "hash tag"}, true},
		{"queues in two slots", []string{"jobs:high", "jobs:low"}, "", []string{`"jobs:high"`, `"jobs:low"`, "hash tag"}, false},
		{"unmatched brace", []string{"jobs{email"}, "", []string{`"jobs{email"`, "brace"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &queue.Options{DeadLetterList: tc.dead}
			_, errR := queue.NewReliableConsumer(cc, tc.queues, "worker-1", h, opts)
			_, errS := queue.NewSimpleConsumer(cc, tc.queues, h, opts)
			for what, err := range map[string]error{"NewReliableConsumer": errR, "NewSimpleConsumer": errS} {
				if tc.want == nil || (tc.simple && what == "NewSimpleConsumer") {
					if err != nil {
						t.Errorf("%s(%q, DeadLetterList %q) on Cluster = %v; want nil", what, tc.queues, tc.dead, err)
					}
					continue
				}
				if !errors.Is(err, queue.ErrInvalidOptions) {
					t.Errorf("%s(%q, DeadLetterList %q) on Cluster = %v; want ErrInvalidOptions", what, tc.queues, tc.dead, err)
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s error %q lacks %s", what, err, w)
					}
				}
			}
		})
	}
	t.Run("standalone allows any names", func(t *testing.T) {
		rdb := redistest.Client(t)
		if _, err := queue.NewReliableConsumer(rdb, []string{"jobs:high", "jobs:low"}, "worker-1", h, &queue.Options{DeadLetterList: "elsewhere"}); err != nil {
			t.Errorf("NewReliableConsumer on standalone = %v; want nil", err)
		}
	})
}
