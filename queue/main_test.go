package queue_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	// The restart test makes go-redis log every failed dial; consumers
	// report what matters through OnError.
	redis.SetLogger(quiet{})
	os.Exit(redistest.Main(m))
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// names returns a queue key unique to t, inside a hash tag, and deletes
// every key built from it when t ends.
func names(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	key, _ := redistest.Names(t)
	q := key[:len(key)-len(":stream")] + ":q"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, q+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return q
}

// fastOptions are consumer options scaled down so that heartbeats,
// sweeps and retries happen within a test's time.
func fastOptions() *queue.Options {
	return &queue.Options{
		Concurrency:     4,
		Prefetch:        4,
		PollInterval:    100 * time.Millisecond,
		HeartbeatTTL:    600 * time.Millisecond, // sweeps every 300ms
		RetryBackoff:    10 * time.Millisecond,
		MaxRetryBackoff: 50 * time.Millisecond,
		DrainTimeout:    5 * time.Second,
	}
}

// recorder is a handler that records every call.
type recorder struct {
	mu    sync.Mutex
	order []string           // message IDs in call order
	deliv map[string][]int64 // deliveries seen, per ID
	msgs  map[string]stream.Message
	inner func(ctx context.Context, m *stream.Message) error
}

func newRecorder(inner func(ctx context.Context, m *stream.Message) error) *recorder {
	return &recorder{deliv: map[string][]int64{}, msgs: map[string]stream.Message{}, inner: inner}
}

func (r *recorder) Handle(ctx context.Context, m *stream.Message) error {
	r.mu.Lock()
	r.order = append(r.order, m.ID)
	r.deliv[m.ID] = append(r.deliv[m.ID], m.Deliveries)
	r.msgs[m.ID] = *m
	r.mu.Unlock()
	if r.inner != nil {
		return r.inner(ctx, m)
	}
	return nil
}

func (r *recorder) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.deliv)
}

func (r *recorder) snapshot() (order []string, deliv map[string][]int64, msgs map[string]stream.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	deliv = make(map[string][]int64, len(r.deliv))
	for k, v := range r.deliv {
		deliv[k] = slices.Clone(v)
	}
	msgs = make(map[string]stream.Message, len(r.msgs))
	for k, v := range r.msgs {
		msgs[k] = v
	}
	return slices.Clone(r.order), deliv, msgs
}

func reliable(t testing.TB, rdb redis.UniversalClient, queues []string, name string, h handler.Handler, opts *queue.Options) *queue.Consumer {
	t.Helper()
	c, err := queue.NewReliableConsumer(rdb, queues, name, h, opts)
	if err != nil {
		t.Fatalf("NewReliableConsumer: %v", err)
	}
	return c
}

func simple(t testing.TB, rdb redis.UniversalClient, queues []string, h handler.Handler, opts *queue.Options) *queue.Consumer {
	t.Helper()
	c, err := queue.NewSimpleConsumer(rdb, queues, h, opts)
	if err != nil {
		t.Fatalf("NewSimpleConsumer: %v", err)
	}
	return c
}

// modes builds a consumer of either mode, for tests that run on both.
var modes = []struct {
	name string
	new  func(t testing.TB, rdb redis.UniversalClient, queues []string, h handler.Handler, opts *queue.Options) *queue.Consumer
}{
	{"reliable", func(t testing.TB, rdb redis.UniversalClient, queues []string, h handler.Handler, opts *queue.Options) *queue.Consumer {
		return reliable(t, rdb, queues, "worker-1", h, opts)
	}},
	{"simple", simple},
}

// llen returns the length of a list.
func llen(t testing.TB, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	n, err := rdb.LLen(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("LLEN %s: %v", key, err)
	}
	return n
}

// deadLetters reads a dead-letter list, oldest first.
func deadLetters(t testing.TB, rdb redis.UniversalClient, key string) []stream.DeadLetter {
	t.Helper()
	xs, err := rdb.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatalf("LRANGE %s: %v", key, err)
	}
	var out []stream.DeadLetter
	for i := len(xs) - 1; i >= 0; i-- {
		d, err := queue.ParseDeadLetter(xs[i])
		if err != nil {
			t.Fatalf("element %d of %s is not a dead letter: %v", i, key, err)
		}
		out = append(out, d)
	}
	return out
}

func push(t testing.TB, rdb redis.UniversalClient, q string, n int) []string {
	t.Helper()
	p, err := queue.NewProducer(rdb, q, nil)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	jobs := make([]map[string]any, n)
	for i := range jobs {
		jobs[i] = map[string]any{"n": i}
	}
	ids, err := p.PushBatch(context.Background(), jobs)
	if err != nil {
		t.Fatalf("PushBatch: %v", err)
	}
	return ids
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// atomicSet counts strings, safely for concurrent use.
type atomicSet struct {
	mu sync.Mutex
	m  map[string]int
}

func (s *atomicSet) add(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]int{}
	}
	s.m[k]++
}

func (s *atomicSet) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

func mapsEqual(a, b map[string]int) bool { return maps.Equal(a, b) }

// The Run harness and the polling wait are internal/redistest's.
type running = redistest.Running

var (
	start      = redistest.Go
	eventually = redistest.Eventually
)
