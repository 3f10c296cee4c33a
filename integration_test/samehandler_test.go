package integration_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// One handler, with one middleware chain, runs unchanged on a stream
// consumer group and on both kinds of list consumer. (Moved from package
// queue's tests, which must not depend on package group.)
func TestSameHandlerStreamsAndLists(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	streamKey, grp := redistest.Names(t)
	q := streamKey + ":q"
	t.Cleanup(func() { rdb.Del(context.Background(), streamKey, q+":r", q+":s") })
	type email struct {
		To string `json:"to"`
	}
	var mu sync.Mutex
	seen := map[string]int{}
	wrapped := 0
	count := func(next handler.Handler) handler.Handler {
		return handler.Func(func(ctx context.Context, m *stream.Message) error {
			mu.Lock()
			wrapped++
			mu.Unlock()
			return next.Handle(ctx, m)
		})
	}
	h := handler.Chain(handler.Typed(stream.JSON, func(ctx context.Context, m *stream.Message, e email) error {
		if m.ID == "" || m.Deliveries != 1 {
			return fmt.Errorf("message %+v lacks an ID or a delivery count", m)
		}
		mu.Lock()
		seen[m.Stream+" "+e.To]++
		mu.Unlock()
		return nil
	}), handler.Recover(), count, handler.Timeout(time.Minute))

	ctx := context.Background()
	sp, _ := stream.NewProducer(rdb, streamKey, nil)
	if _, err := sp.AddPayload(ctx, email{To: "stream@example.com"}); err != nil {
		t.Fatal(err)
	}
	lp, _ := queue.NewProducer(rdb, q+":r", nil)
	lp.PushPayload(ctx, email{To: "reliable@example.com"})
	sq, _ := queue.NewProducer(rdb, q+":s", nil)
	sq.PushPayload(ctx, email{To: "simple@example.com"})

	qopts := &queue.Options{PollInterval: 100 * time.Millisecond, DrainTimeout: 5 * time.Second}
	rc, err := queue.NewReliableConsumer(rdb, []string{q + ":r"}, "w", h, qopts)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := queue.NewSimpleConsumer(rdb, []string{q + ":s"}, h, qopts)
	if err != nil {
		t.Fatal(err)
	}
	runs := []*redistest.Running{
		redistest.Go(t, newConsumer(t, rdb, streamKey, grp, "w", h, fastOptions()).Run),
		redistest.Go(t, rc.Run),
		redistest.Go(t, sc.Run),
	}
	defer func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("handled: %v", seen)
			mu.Unlock()
		}
	}()
	redistest.Eventually(t, 10*time.Second, "three jobs handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 3
	})
	for _, r := range runs {
		if err := r.Stop(); err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	}
	want := map[string]int{streamKey + " stream@example.com": 1, q + ":r reliable@example.com": 1, q + ":s simple@example.com": 1}
	mu.Lock()
	defer mu.Unlock()
	if !maps.Equal(seen, want) || wrapped != 3 {
		t.Errorf("handled %v through the middleware %d times; want %v, 3", seen, wrapped, want)
	}
}
