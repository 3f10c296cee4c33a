package integration_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// TestConsumerStartsOnFullRedis starts consumers on a Redis at maxmemory
// with the noeviction policy, which refuses XGROUP CREATE MKSTREAM with OOM
// before it can answer BUSYGROUP. A consumer whose group exists must start
// and drain the stream (reads and acknowledgements are not refused); one
// whose group does not exist yet must wait, not return, and start once
// memory is freed. Before the fix both returned at once with "create group
// ...: OOM command not allowed".
func TestConsumerStartsOnFullRedis(t *testing.T) {
	s := redistest.StartServer(t, nil)
	rdb := s.Client(t)
	ctx := context.Background()
	key, grp := redistest.Names(t)
	fresh := key + ":fresh" // no group yet
	publish(t, rdb, key, 20, nil)
	publish(t, rdb, fresh, 5, nil)
	if err := rdb.XGroupCreate(ctx, key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}
	full := func(maxmemory string) {
		t.Helper()
		if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.ConfigSet(ctx, "maxmemory", maxmemory).Err(); err != nil {
			t.Fatal(err)
		}
	}
	full("1") // every command that may add memory is refused
	if err := rdb.XGroupCreateMkStream(ctx, key, grp, "0").Err(); !rediserr.IsOOM(err) {
		t.Fatalf("XGROUP CREATE MKSTREAM on the full server = %v; want an OOM error", err)
	}

	var handled, handledFresh atomic.Int64
	opts := fastOptions()
	existing := newConsumer(t, rdb, key, grp, "A", handler.Func(func(context.Context, *stream.Message) error {
		handled.Add(1)
		return nil
	}), opts)
	var oomReported atomic.Bool
	o := *opts
	o.OnError = func(err error) {
		if rediserr.IsOOM(err) {
			oomReported.Store(true)
		}
	}
	waiting := newConsumer(t, rdb, fresh, grp, "A", handler.Func(func(context.Context, *stream.Message) error {
		handledFresh.Add(1)
		return nil
	}), &o)
	runExisting := start(t, existing.Run)
	runWaiting := start(t, waiting.Run)

	eventually(t, 10*time.Second, "the consumer of the existing group to drain it on the full server", func() bool {
		if err, ok := runExisting.Exited(); ok {
			t.Fatalf("Run of the existing group's consumer returned on the full server: %v", err)
		}
		n, ok := pendingOK(rdb, key, grp)
		return handled.Load() == 20 && ok && n == 0
	})
	eventually(t, 10*time.Second, "the consumer of the missing group to report OOM", oomReported.Load)
	if err, ok := runWaiting.Exited(); ok {
		t.Fatalf("Run of the missing group's consumer returned on the full server: %v", err)
	}
	if n := handledFresh.Load(); n != 0 {
		t.Fatalf("handled %d entries of a stream whose group could not be created", n)
	}

	full("0") // memory freed
	eventually(t, 20*time.Second, "the waiting consumer to create its group and handle the entries", func() bool {
		if err, ok := runWaiting.Exited(); ok {
			t.Fatalf("Run returned: %v", err)
		}
		return handledFresh.Load() == 5
	})
	for name, r := range map[string]*running{"existing": runExisting, "waiting": runWaiting} {
		if err := r.Stop(); err != nil {
			t.Errorf("%s: Run = %v; want nil", name, err)
		}
	}
}
