package integration_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// sleepCtx waits for d, or returns ctx's error when ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestSlowHandlerKeepsLease runs one entry through a handler that takes four
// times MinIdle, with two consumers whose reclaimers both run: the lease
// (XCLAIM JUSTID once an entry is held MinIdle/3) must keep it from looking idle,
// so nobody reclaims it and it is handled and acknowledged exactly once.
func TestSlowHandlerKeepsLease(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })

	const minIdle = 300 * time.Millisecond
	opts := fastOptions() // reclaim passes every MinIdle/2: often
	opts.MinIdle = minIdle

	// Seen by the handler when it is done waiting: the entry's owner and
	// delivery count, as Redis has them. A reclaim by either consumer
	// (including the owner's own reclaimer) would have bumped the count.
	var (
		mu         sync.Mutex
		lastOwner  string
		lastCount  int64
		handlerErr error
	)
	rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
		if err := sleepCtx(ctx, 4*minIdle); err != nil {
			mu.Lock()
			handlerErr = fmt.Errorf("handler context ended early: %w", err)
			mu.Unlock()
			return err
		}
		p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: m.Stream, Group: grp, Start: m.ID, End: m.ID, Count: 1}).Result()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			handlerErr = fmt.Errorf("XPENDING of %s: %w", m.ID, err)
		case len(p) != 1:
			handlerErr = fmt.Errorf("XPENDING of %s = %v; want the entry, pending", m.ID, p)
		default:
			lastOwner, lastCount = p[0].Consumer, p[0].RetryCount
		}
		return nil
	})
	names := []string{"A", "B"}
	consumers := map[string]*group.Consumer{}
	runs := map[string]*running{}
	for _, name := range names {
		consumers[name] = newConsumer(t, rdb, key, grp, name, rec.as(name), opts)
		runs[name] = start(t, consumers[name].Run)
	}
	id := publish(t, rdb, key, 1, nil)[0]

	eventually(t, 15*time.Second, "the entry handled and acknowledged", func() bool {
		return rec.count(id) >= 1 && pending(t, rdb, key, grp) == 0
	})
	for _, name := range names {
		if err := runs[name].Stop(); err != nil { // waits for any handler still running
			t.Errorf("consumer %s: Run = %v; want nil", name, err)
		}
	}

	calls, _, by := rec.snapshot()
	if calls[id] != 1 {
		t.Fatalf("entry %s handled %d times; want exactly once", id, calls[id])
	}
	owner := by[id]
	other := "A"
	if owner == "A" {
		other = "B"
	}
	mu.Lock()
	if handlerErr != nil {
		t.Errorf("handler: %v", handlerErr)
	} else if lastOwner != owner || lastCount != 1 {
		t.Errorf("after 4×MinIdle in the handler, XPENDING says owner %q with %d deliveries; want %q with 1", lastOwner, lastCount, owner)
	}
	mu.Unlock()
	rec.mu.Lock()
	d := rec.deliv[id]
	rec.mu.Unlock()
	if len(d) != 1 || d[0] != 1 {
		t.Errorf("handler saw deliveries %v; want [1]", d)
	}

	so, sx := consumers[owner].Stats(), consumers[other].Stats()
	if so.Delivered != 1 || so.Acked != 1 || so.Reclaimed != 0 || so.LeaseRenewals == 0 {
		t.Errorf("handling consumer %s: Stats = %+v; want Delivered=1 Acked=1 Reclaimed=0 LeaseRenewals>0", owner, so)
	}
	if sx.Delivered != 0 || sx.Acked != 0 || sx.Reclaimed != 0 {
		t.Errorf("other consumer %s: Stats = %+v; want Delivered=0 Acked=0 Reclaimed=0", other, sx)
	}
	if n := pending(t, rdb, key, grp); n != 0 {
		t.Errorf("pending after stop = %d; want 0", n)
	}
}
