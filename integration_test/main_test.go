// Package integration_test runs streamgroup end to end against a real Redis
// server (see internal/redistest for how one is found or started).
package integration_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	// The outage tests make go-redis log every failed dial; the consumers
	// report what matters through OnError.
	redis.SetLogger(quiet{})
	os.Exit(redistest.Main(m))
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// fastOptions are consumer options scaled down so that reclaims, leases and
// retries happen within a test's time.
func fastOptions() *group.Options {
	return &group.Options{
		Concurrency:     8,
		Prefetch:        8,
		Block:           200 * time.Millisecond,
		MinIdle:         500 * time.Millisecond,
		RetryBackoff:    20 * time.Millisecond,
		MaxRetryBackoff: 100 * time.Millisecond,
		DrainTimeout:    5 * time.Second,
	}
}

// reclaimerOptions returns the claim.Options that match a consumer's.
func reclaimerOptions(o *group.Options) *claim.Options {
	return &claim.Options{
		MinIdle: o.MinIdle, Concurrency: o.Concurrency, MaxBytes: o.MaxBytes, GroupStart: o.GroupStart,
		MaxDeliveries: o.MaxDeliveries, DeadLetterStream: o.DeadLetterStream, RetryBackoff: o.RetryBackoff,
		MaxRetryBackoff: o.MaxRetryBackoff, DrainTimeout: o.DrainTimeout, Logger: o.Logger, OnError: o.OnError,
	}
}

// publish adds n entries {"n": i, ...extra} and returns their IDs in order.
func publish(t testing.TB, rdb redis.UniversalClient, key string, n int, extra map[string]any) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for start := 0; start < n; start += 500 {
		pipe := rdb.Pipeline()
		var cmds []*redis.StringCmd
		for i := start; i < min(start+500, n); i++ {
			vals := map[string]any{"n": i}
			for k, v := range extra {
				vals[k] = v
			}
			cmds = append(cmds, pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: vals}))
		}
		if _, err := pipe.Exec(context.Background()); err != nil {
			t.Fatalf("XADD: %v", err)
		}
		for _, c := range cmds {
			ids = append(ids, c.Val())
		}
	}
	return ids
}

// recorder is a handler that records every call, per entry ID.
type recorder struct {
	mu     sync.Mutex
	calls  map[string]int
	order  []string
	deliv  map[string][]int64
	by     map[string]string // consumer name (from ctx-free closure) per ID, last call
	inner  func(ctx context.Context, m *stream.Message) error
	notify chan struct{}
}

func newRecorder(inner func(ctx context.Context, m *stream.Message) error) *recorder {
	return &recorder{calls: map[string]int{}, deliv: map[string][]int64{}, by: map[string]string{}, inner: inner, notify: make(chan struct{}, 1)}
}

// as returns a handler that records calls under the consumer name name.
func (r *recorder) as(name string) handler.Handler {
	return handler.Func(func(ctx context.Context, m *stream.Message) error {
		var err error
		if r.inner != nil {
			err = r.inner(ctx, m)
		}
		r.mu.Lock()
		r.calls[m.ID]++
		r.order = append(r.order, m.ID)
		r.deliv[m.ID] = append(r.deliv[m.ID], m.Deliveries)
		r.by[m.ID] = name
		r.mu.Unlock()
		select {
		case r.notify <- struct{}{}:
		default:
		}
		return err
	})
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

func (r *recorder) snapshot() (calls map[string]int, order []string, by map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	calls = make(map[string]int, len(r.calls))
	for k, v := range r.calls {
		calls[k] = v
	}
	by = make(map[string]string, len(r.by))
	for k, v := range r.by {
		by[k] = v
	}
	return calls, append([]string(nil), r.order...), by
}

func newConsumer(t testing.TB, rdb redis.UniversalClient, key, grp, name string, h handler.Handler, opts *group.Options) *group.Consumer {
	t.Helper()
	c, err := group.NewConsumer(rdb, key, grp, name, h, opts)
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	return c
}

// pending returns the group's pending count.
func pending(t testing.TB, rdb redis.UniversalClient, key, grp string) int64 {
	t.Helper()
	p, err := rdb.XPending(context.Background(), key, grp).Result()
	if err != nil {
		t.Fatalf("XPENDING: %v", err)
	}
	return p.Count
}

// deadLetters reads the dead-letter stream.
func deadLetters(t testing.TB, rdb redis.UniversalClient, key string) []stream.DeadLetter {
	t.Helper()
	xs, err := rdb.XRange(context.Background(), key, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	var out []stream.DeadLetter
	for _, x := range xs {
		m, _ := stream.FromXMessage(key, x)
		d, err := stream.ParseDeadLetter(&m)
		if err != nil {
			t.Fatalf("entry %s in %s: %v (values %v)", x.ID, key, err, x.Values)
		}
		out = append(out, d)
	}
	return out
}

// abandon makes consumer read up to count new entries of grp (0: all) and
// leaves them pending, as a consumer that died before acknowledging them.
func abandon(t testing.TB, rdb redis.UniversalClient, key, grp, consumer string, count int64) {
	t.Helper()
	err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: grp, Consumer: consumer, Streams: []string{key, ">"}, Count: count, Block: -1,
	}).Err()
	if err != nil {
		t.Fatalf("XREADGROUP as %q: %v", consumer, err)
	}
}

// The Run harness and the polling wait are internal/redistest's.
type running = redistest.Running

var (
	start      = redistest.Go
	eventually = redistest.Eventually
)
