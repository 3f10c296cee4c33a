package claim_test

import (
	"context"
	"errors"
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

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// A standalone reclaimer takes over what a dead consumer left: live entries
// are handled and acked, entries deleted from the stream are dropped via
// XAUTOCLAIM's deleted list, and an entry already delivered MaxDeliveries
// times is dead-lettered without reaching the handler.
func TestReclaimerTakesOverDeadConsumer(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 10 {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: map[string]any{"n": i}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	read := func(consumer, cursor string) {
		t.Helper()
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: grp, Consumer: consumer, Streams: []string{key, cursor}, Count: 10, Block: -1}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	read("dead", ">")
	// ids[9] crashed its consumers twice more: delivered 3 times.
	for range 2 {
		if err := rdb.XClaim(ctx, &redis.XClaimArgs{Stream: key, Group: grp, Consumer: "dead", Messages: []string{ids[9]}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.XDel(ctx, key, ids[0], ids[1]).Err(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	handled := map[string]int64{}
	h := handler.Func(func(ctx context.Context, m *stream.Message) error {
		mu.Lock()
		handled[m.ID] = m.Deliveries
		mu.Unlock()
		return nil
	})
	r, err := claim.NewReclaimer(rdb, key, grp, "rescuer", h, &claim.Options{
		MinIdle: 50 * time.Millisecond, MaxDeliveries: 3, Concurrency: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := rdb.XPending(ctx, key, grp).Result()
		if err == nil && p.Count == 0 && r.Stats().DeadLettered == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PEL not emptied: %+v, stats %+v", p, r.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids[2:9] {
		if d, ok := handled[id]; !ok || d != 2 {
			t.Errorf("entry %s: handled=%v deliveries=%d; want handled with deliveries 2", id, ok, d)
		}
	}
	for _, id := range []string{ids[0], ids[1], ids[9]} {
		if _, ok := handled[id]; ok {
			t.Errorf("entry %s reached the handler; want not", id)
		}
	}
	s := r.Stats()
	if s.Reclaimed != 8 || s.DeletedInPEL != 2 || s.DeadLettered != 1 || s.Acked != 7 {
		t.Errorf("Stats = %+v; want Reclaimed=8 DeletedInPEL=2 DeadLettered=1 Acked=7", s)
	}
	xs, err := rdb.XRange(ctx, key+":dead", "-", "+").Result()
	if err != nil || len(xs) != 1 || xs[0].Values[stream.DeadIDField] != ids[9] || xs[0].Values[stream.DeadDeliveriesField] != "4" {
		t.Errorf("dead letters = %v, %v; want %s with 4 deliveries", xs, err, ids[9])
	}
	if err := r.Run(ctx); !errors.Is(err, group.ErrAlreadyRun) {
		t.Errorf("second Run = %v; want ErrAlreadyRun", err)
	}
}

func TestNewReclaimerRejectsBadOptions(t *testing.T) {
	rdb := redistest.Client(t)
	h := handler.Func(func(context.Context, *stream.Message) error { return nil })
	if _, err := claim.NewReclaimer(rdb, "s", "g", "c", h, &claim.Options{MinIdle: -1}); !errors.Is(err, group.ErrInvalidOptions) {
		t.Errorf("NewReclaimer(MinIdle -1) = %v; want ErrInvalidOptions", err)
	}
	if _, err := claim.NewReclaimer(rdb, "s", "g", "c", nil, nil); !errors.Is(err, group.ErrInvalidOptions) {
		t.Errorf("NewReclaimer(nil handler) = %v; want ErrInvalidOptions", err)
	}
}
