package integration_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/internal/streamsrc"
	"github.com/streamgroup/streamgroup/stream"
)

// TestDuplicateConsumerNameRefused starts a second consumer with the name of
// a running one. Both would re-read that name's pending entries and run them
// twice, at the same time (18 of 20 entries were, before the check): the
// second must refuse to run, with ErrConsumerNameInUse, and handle nothing.
// Once the first stops gracefully, the name is free at once.
func TestDuplicateConsumerNameRefused(t *testing.T) {
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	var first, second atomic.Int64
	count := func(n *atomic.Int64) handler.Handler {
		return handler.Func(func(context.Context, *stream.Message) error { n.Add(1); return nil })
	}
	a := newConsumer(t, rdb, key, grp, "same", count(&first), fastOptions())
	runA := start(t, a.Run)
	publish(t, rdb, key, 5, nil)
	eventually(t, 10*time.Second, "the first consumer to handle 5 entries", func() bool { return first.Load() == 5 })
	b := newConsumer(t, rdb, key, grp, "same", count(&second), fastOptions())
	runB := start(t, b.Run)
	publish(t, rdb, key, 20, nil)
	err := runB.Wait(t, 20*time.Second)
	if !errors.Is(err, group.ErrConsumerNameInUse) {
		t.Fatalf("second Run with a name in use = %v; want ErrConsumerNameInUse", err)
	}
	eventually(t, 10*time.Second, "the first consumer to handle all 25 entries", func() bool { return first.Load() == 25 })
	if n := second.Load(); n != 0 {
		t.Errorf("the refused consumer handled %d entries; want 0", n)
	}
	if err, ok := runA.Exited(); ok {
		t.Fatalf("the first consumer stopped: %v", err)
	}
	if err := runA.Stop(); err != nil {
		t.Fatalf("first Run = %v", err)
	}
	if n := rdb.Exists(context.Background(), streamsrc.LiveKey(key, grp, "same")).Val(); n != 0 {
		t.Errorf("liveness key left after a graceful stop")
	}

	// The name is free: a new consumer with it starts at once.
	var third atomic.Int64
	c := newConsumer(t, rdb, key, grp, "same", count(&third), fastOptions())
	runC := start(t, c.Run)
	publish(t, rdb, key, 4, nil)
	eventually(t, 10*time.Second, "the new consumer to handle new entries", func() bool {
		n, ok := pendingOK(rdb, key, grp)
		return ok && n == 0 && third.Load() == 4
	})
	if err := runC.Stop(); err != nil {
		t.Errorf("third Run = %v", err)
	}
}

// TestConsumerNameOfCrashedConsumer leaves a liveness key behind as a
// consumer killed with SIGKILL does: a new consumer with the name waits for
// it to expire, then runs.
func TestConsumerNameOfCrashedConsumer(t *testing.T) {
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	live := streamsrc.LiveKey(key, grp, "crashed")
	if err := rdb.Set(context.Background(), live, "token-of-the-dead", 1500*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	publish(t, rdb, key, 3, nil)
	var n atomic.Int64
	c := newConsumer(t, rdb, key, grp, "crashed", handler.Func(func(context.Context, *stream.Message) error { n.Add(1); return nil }), fastOptions())
	run := start(t, c.Run)
	eventually(t, 15*time.Second, "the consumer to run once the crashed one's key expired", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned: %v", err)
		}
		return n.Load() == 3
	})
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// lostSetNX is a go-redis hook that lets the first n SET NX commands reach
// Redis and run there, then reports a dropped connection instead of their
// replies, as a connection cut after the command was sent does.
type lostSetNX struct{ left atomic.Int64 }

func (h *lostSetNX) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *lostSetNX) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *lostSetNX) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && cmd.Name() == "set" && slices.ContainsFunc(cmd.Args(), func(a any) bool { return a == "nx" }) && h.left.Add(-1) >= 0 {
			cmd.SetErr(io.ErrUnexpectedEOF)
			return io.ErrUnexpectedEOF
		}
		return err
	}
}

// TestConsumerNameClaimReplyLost: the SET NX that takes the consumer name's
// liveness key runs, but its reply is lost (twice). The consumer must find
// its own token in the key and run, not take itself for another consumer
// with its name (in the chaos run, with connections cut, a restarted worker
// waited for its own key and then refused to run with ErrConsumerNameInUse).
func TestConsumerNameClaimReplyLost(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	hook := &lostSetNX{}
	hook.left.Store(2)
	rdb.AddHook(hook)
	w := newWarnings()
	opts := fastOptions()
	opts.Logger = slog.New(w)
	var handled atomic.Int64
	c := newConsumer(t, rdb, key, grp, "c", handler.Func(func(context.Context, *stream.Message) error { handled.Add(1); return nil }), opts)
	r := start(t, c.Run)
	publish(t, rdb, key, 3, nil)
	eventually(t, 20*time.Second, "the consumer to handle 3 entries", func() bool {
		if err, ok := r.Exited(); ok {
			t.Fatalf("Run returned %v; want it running", err)
		}
		return handled.Load() == 3
	})
	if left := hook.left.Load(); left > 0 {
		t.Fatalf("%d SET NX replies were still to be lost; the test did not test the lost reply", left)
	}
	if ws := w.mentioning("another consumer holds this consumer name"); len(ws) != 0 {
		t.Errorf("the consumer took its own liveness key for another consumer's: %v", ws)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
}
