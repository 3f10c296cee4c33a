package engine

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

func newTestEngine(t *testing.T, cfg Config) *Engine {
	t.Helper()
	cfg.Handler = handler.Func(func(context.Context, *stream.Message) error { return nil })
	cfg, err := cfg.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return New(nil, cfg)
}

// fitBytes asks for one job while no size is known, else for what fits in
// the room left, and reserves it: a second fetch waits until the first is
// dispatched and its reservation given back.
func TestFitBytesReserves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newTestEngine(t, Config{Concurrency: 8, Prefetch: 8, MaxBytes: 1000})
		ctx := context.Background()
		if want, res, ok := e.fitBytes(ctx, 16); want != 1 || res != 0 || !ok {
			t.Fatalf("fitBytes(16) with no size known = %d, %d, %v; want 1, 0, true", want, res, ok)
		}
		e.sizeAvg.Store(100)
		want, res, ok := e.fitBytes(ctx, 16)
		if want != 10 || res != 1000 || !ok {
			t.Fatalf("fitBytes(16) with room for 10 = %d, %d, %v; want 10, 1000, true", want, res, ok)
		}
		got := make(chan int, 1)
		go func() { want, _, _ := e.fitBytes(ctx, 16); got <- want }()
		synctest.Wait()
		select {
		case hi := <-got:
			t.Fatalf("a second fetch got room for %d jobs while the first's reservation filled MaxBytes", hi)
		default:
		}
		e.mu.Lock()
		e.heldBytes += 300 // the first fetch brought three jobs
		e.mu.Unlock()
		e.unreserve(res)
		if want := <-got; want != 7 {
			t.Errorf("second fetch's want = %d; want 7 (700 bytes of room)", want)
		}
	})
}

// popDue returns due deliveries in due order, skips entries whose delivery
// moved on, and says when the next one falls due.
func TestPopDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newTestEngine(t, Config{})
		now := time.Now()
		a := &Delivery{Key: "a", state: awaitRetry}
		b := &Delivery{Key: "b", state: awaitRetry}
		stale := &Delivery{Key: "stale", state: awaitRetry}
		later := &Delivery{Key: "later", state: awaitRetry}
		e.mu.Lock()
		e.pushLocked(b, now.Add(-time.Second))
		e.pushLocked(stale, now.Add(-3*time.Second))
		e.pushLocked(a, now.Add(-2*time.Second))
		e.pushLocked(later, now.Add(time.Minute))
		stale.state = gone // handed back meanwhile
		e.mu.Unlock()
		due, next := e.popDue(awaitRetry, 10)
		if len(due) != 2 || due[0] != a || due[1] != b || !next.Equal(now.Add(time.Minute)) {
			t.Errorf("popDue = %v, next in %v; want a, b, next in 1m", due, next.Sub(now))
		}
		if due, _ := e.popDue(awaitDead, 10); len(due) != 0 {
			t.Errorf("popDue(awaitDead) = %v; want none", due)
		}
	})
}
