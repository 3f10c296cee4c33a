package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/engine/enginetest"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// TestConformance runs the engine's behaviour suite against both list
// sources: the reliable and the simple queue.Consumer on real Redis lists.
func TestConformance(t *testing.T) {
	rdb := redistest.Client(t)
	for _, reliable := range []bool{true, false} {
		t.Run(map[bool]string{true: "reliable", false: "simple"}[reliable], func(t *testing.T) {
			h := enginetest.Harness{
				NewQueue: func(t *testing.T) enginetest.Queue {
					return &listQueue{rdb: rdb, q: names(t, rdb), reliable: reliable}
				},
			}
			if !reliable {
				h.Lacks = map[enginetest.Capability]string{
					enginetest.Takeover: "a simple consumer holds its jobs in memory only (at most once)",
				}
			}
			enginetest.Run(t, h)
		})
	}
}

type listQueue struct {
	rdb      redis.UniversalClient
	q        string
	reliable bool

	mu    sync.Mutex
	names []string // consumer names, for Counts; "thief" holds taken jobs
}

func (l *listQueue) Publish(t *testing.T, jobs ...map[string]string) {
	t.Helper()
	p, err := queue.NewProducer(l.rdb, l.q, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]map[string]any, len(jobs))
	for i, j := range jobs {
		batch[i] = make(map[string]any, len(j))
		for k, v := range j {
			batch[i][k] = v
		}
	}
	if _, err := p.PushBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

func (l *listQueue) NewConsumer(t *testing.T, name string, h handler.Handler, o enginetest.Options) enginetest.Consumer {
	t.Helper()
	opts := &queue.Options{
		Concurrency:   o.Concurrency,
		Prefetch:      o.Prefetch,
		MaxBytes:      o.MaxBytes,
		PollInterval:  100 * time.Millisecond,
		MaxDeliveries: o.MaxDeliveries,
		HeartbeatTTL:  o.KeepAlive,
		RetryBackoff:  o.RetryBackoff,
		DrainTimeout:  o.DrainTimeout,
		OnError:       o.OnError,
		Hook:          o.Hook,
	}
	var c *queue.Consumer
	var err error
	if l.reliable {
		l.mu.Lock()
		l.names = append(l.names, name)
		l.mu.Unlock()
		c, err = queue.NewReliableConsumer(l.rdb, []string{l.q}, name, h, opts)
	} else {
		c, err = queue.NewSimpleConsumer(l.rdb, []string{l.q}, h, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (l *listQueue) DeadLetters(t *testing.T) []enginetest.DeadLetter {
	t.Helper()
	xs, err := l.rdb.LRange(context.Background(), queue.DeadLetterKey(l.q), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]enginetest.DeadLetter, 0, len(xs))
	for i := len(xs) - 1; i >= 0; i-- { // newest at the head
		d, err := queue.ParseDeadLetter(xs[i])
		if err != nil {
			t.Fatalf("dead letter %q: %v", xs[i], err)
		}
		out = append(out, enginetest.DeadLetter{Values: d.Values, Reason: d.Error, Deliveries: d.Deliveries})
	}
	return out
}

// Counts: the queue's jobs are waiting; those in processing lists (the
// thief's included) are held. A simple consumer's held jobs are in its
// memory: unknown.
func (l *listQueue) Counts(t *testing.T) enginetest.Counts {
	t.Helper()
	ctx := context.Background()
	waiting, err := l.rdb.LLen(ctx, l.q).Result()
	if err != nil {
		t.Error(err)
	}
	if !l.reliable {
		return enginetest.Counts{Waiting: int(waiting), Held: -1}
	}
	l.mu.Lock()
	names := append([]string{"thief"}, l.names...)
	l.mu.Unlock()
	held := int64(0)
	for _, n := range names {
		k, err := l.rdb.LLen(ctx, queue.ProcessingKey(l.q, n)).Result()
		if err != nil {
			t.Error(err)
		}
		held += k
	}
	return enginetest.Counts{Waiting: int(waiting), Held: int(held)}
}

// take, in one script, expires the consumer's heartbeat and moves the job
// whose ID is ARGV[1] from its processing list to the processing list of a
// consumer "thief", whose heartbeat lasts a minute: what another consumer
// recovering the job and fetching it would do.
const take = `
redis.call('DEL', KEYS[2])
for _, e in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.find(e, '"id":"' .. ARGV[1] .. '"', 1, true) then
    redis.call('LREM', KEYS[1], 1, e)
    redis.call('LPUSH', KEYS[3], e)
    redis.call('SET', KEYS[4], '1', 'PX', 60000)
    return 1
  end
end
return 0`

func (l *listQueue) Take(t *testing.T, consumer string, msg *stream.Message) {
	t.Helper()
	n, err := l.rdb.Eval(context.Background(), take, []string{
		queue.ProcessingKey(l.q, consumer), queue.HeartbeatKey(l.q, consumer),
		queue.ProcessingKey(l.q, "thief"), queue.HeartbeatKey(l.q, "thief"),
	}, msg.ID).Int()
	if err != nil || n != 1 {
		t.Fatalf("take %s from %s = %d, %v; want 1", msg.ID, consumer, n, err)
	}
}
