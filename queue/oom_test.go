package queue_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// fullRedis is a Redis server of the test's own with the noeviction
// policy, which can be filled past maxmemory (fill) and emptied again
// (free).
type fullRedis struct {
	t   *testing.T
	rdb *redis.Client
}

func newFullRedis(t *testing.T) *fullRedis {
	t.Helper()
	s := redistest.StartServer(t, nil)
	f := &fullRedis{t: t, rdb: s.Client(t)}
	ctx := context.Background()
	if err := f.rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.rdb.ConfigSet(ctx, "maxmemory", "8mb").Err(); err != nil {
		t.Fatal(err)
	}
	return f
}

// fill writes a 16 MiB key (maxmemory is 8 MiB), so that Redis refuses
// every command that may add memory with OOM.
func (f *fullRedis) fill() {
	f.t.Helper()
	ctx := context.Background()
	// Written while maxmemory is off, then maxmemory is put back: the
	// server is then over it.
	if err := f.rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		f.t.Fatal(err)
	}
	// In 1 MiB pieces: a single 16 MiB argument would leave a query
	// buffer of that size on the connection, counted as used memory for a
	// while after the key is deleted.
	piece := strings.Repeat("x", 1<<20)
	for range 16 {
		if err := f.rdb.Append(ctx, "ballast", piece).Err(); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := f.rdb.ConfigSet(ctx, "maxmemory", "8mb").Err(); err != nil {
		f.t.Fatal(err)
	}
	if err := f.rdb.Set(ctx, "probe", "1", 0).Err(); !rediserr.IsOOM(err) {
		f.t.Fatalf("SET on the full server = %v; want an OOM error", err)
	}
}

// free deletes the big key: Redis accepts writes again.
func (f *fullRedis) free() {
	f.t.Helper()
	ctx := context.Background()
	if err := f.rdb.Del(ctx, "ballast").Err(); err != nil {
		f.t.Fatal(err)
	}
	if err := f.rdb.Set(ctx, "probe", "1", 0).Err(); err != nil {
		f.t.Fatalf("SET after deleting the big key = %v; want nil", err)
	}
}

// oomSeen is an OnError that records whether an OOM error was reported.
type oomSeen struct{ n atomic.Int64 }

func (o *oomSeen) add(err error) {
	if rediserr.IsOOM(err) {
		o.n.Add(1)
	}
}

// TestReliableConsumerWaitsOutFullRedis starts a reliable consumer on a
// Redis at maxmemory with the noeviction policy, which refuses its first
// heartbeat (SET) and every fetch (LMOVE in a script) with OOM. Run must
// wait, as for an outage, not return; once memory is freed it must handle
// a job pushed afterwards. Then the server fills up again while it runs:
// its loops must wait again. Before the fix Run returned at once with
// "OOM command not allowed".
func TestReliableConsumerWaitsOutFullRedis(t *testing.T) {
	f := newFullRedis(t)
	rdb := f.rdb
	q := names(t, rdb)
	f.fill()

	var oom oomSeen
	rec := newRecorder(nil)
	opts := fastOptions()
	opts.OnError = oom.add
	c := reliable(t, rdb, []string{q}, "worker-1", rec, opts)
	run := start(t, c.Run)

	eventually(t, 10*time.Second, "the consumer to report OOM", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned on the full server: %v", err)
		}
		return oom.n.Load() > 0
	})

	// A producer's push (or add) is refused: the caller gets the OOM
	// error, nothing is written.
	p, err := queue.NewProducer(rdb, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Push(context.Background(), map[string]any{"n": -1}); !rediserr.IsOOM(err) {
		t.Fatalf("Push on the full server = %v; want an OOM error", err)
	}
	sp, err := stream.NewProducer(rdb, q+":stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Add(context.Background(), map[string]any{"n": -1}); !rediserr.IsOOM(err) {
		t.Fatalf("stream Add on the full server = %v; want an OOM error", err)
	}
	if n := llen(t, rdb, q); n != 0 {
		t.Fatalf("queue holds %d jobs after a refused push; want 0", n)
	}

	f.free()
	ids := push(t, rdb, q, 1)
	eventually(t, 20*time.Second, "the job pushed after memory was freed to be handled", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned: %v", err)
		}
		return c.Stats().Acked == 1
	})
	if _, deliv, _ := rec.snapshot(); len(deliv[ids[0]]) != 1 {
		t.Fatalf("job %s handled %d times; want 1", ids[0], len(deliv[ids[0]]))
	}

	// Full again while running: the fetch loop waits too.
	n0 := oom.n.Load()
	f.fill()
	eventually(t, 10*time.Second, "the running consumer to report OOM", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned on the full server: %v", err)
		}
		return oom.n.Load() > n0
	})
	f.free()
	push(t, rdb, q, 1)
	eventually(t, 20*time.Second, "the job pushed after memory was freed again to be handled", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned: %v", err)
		}
		return c.Stats().Acked == 2
	})
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if n := llen(t, rdb, queue.ProcessingKey(q, "worker-1")); n != 0 {
		t.Errorf("processing list holds %d jobs after Stop; want 0", n)
	}
}

// TestSimpleConsumerDrainsFullRedis: BRPOP is not refused at maxmemory
// (it frees memory), so a simple consumer started on a full Redis handles
// the jobs already queued, and handles new ones once memory is freed.
func TestSimpleConsumerDrainsFullRedis(t *testing.T) {
	f := newFullRedis(t)
	rdb := f.rdb
	q := names(t, rdb)
	push(t, rdb, q, 5)
	f.fill()

	var oom oomSeen
	rec := newRecorder(nil)
	opts := fastOptions()
	opts.OnError = oom.add
	c := simple(t, rdb, []string{q}, rec, opts)
	run := start(t, c.Run)
	eventually(t, 10*time.Second, "the five queued jobs to be handled on the full server", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned on the full server: %v", err)
		}
		return c.Stats().Acked == 5
	})
	f.free()
	push(t, rdb, q, 1)
	eventually(t, 10*time.Second, "the job pushed after memory was freed to be handled", func() bool {
		return c.Stats().Acked == 6
	})
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if n := oom.n.Load(); n != 0 {
		t.Errorf("%d OOM errors reported; want none (BRPOP is allowed at maxmemory)", n)
	}
}
