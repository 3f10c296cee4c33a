package integration_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// A consumer facing a backlog holds at most Concurrency+Prefetch entries:
// with every handler blocked it reads Concurrency+Prefetch entries of a
// backlog of 1000 and no more, however long it waits (through several
// blocking reads, reclaim passes and lease renewals); released, it handles
// the whole backlog with at most Concurrency handlers at once.
func TestBacklogHoldsAtMostConcurrencyPlusPrefetch(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	key, grp := redistest.Names(t)
	const total = 1000
	ids := publish(t, rdb, key, total, map[string]any{"body": string(make([]byte, 200))})
	// Created here so that XPENDING can be polled from the start.
	if err := rdb.XGroupCreate(ctx, key, grp, "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE %s %s 0: %v", key, grp, err)
	}

	opts := fastOptions()
	opts.Concurrency, opts.Prefetch = 2, 2
	bound := opts.Concurrency + opts.Prefetch

	release := make(chan struct{})
	var started, inFlight, maxInFlight atomic.Int64
	rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
		started.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			old := maxInFlight.Load()
			if n <= old || maxInFlight.CompareAndSwap(old, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	})
	c := newConsumer(t, rdb, key, grp, "c1", rec.as("c1"), opts)
	r := start(t, c.Run)
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before r.stop (cleanups run last in, first out)

	// held reports what Redis says the consumer holds: the group's PEL, the
	// consumer's own PEL and how many entries the group has read.
	held := func() (pel, own, read int64) {
		pel = pending(t, rdb, key, grp)
		ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: key, Group: grp, Consumer: "c1", Start: "-", End: "+", Count: total,
		}).Result()
		if err != nil {
			t.Fatalf("XPENDING %s %s - + %d c1: %v", key, grp, total, err)
		}
		gs, err := rdb.XInfoGroups(ctx, key).Result()
		if err != nil || len(gs) != 1 {
			t.Fatalf("XINFO GROUPS %s = %v, %v; want one group", key, gs, err)
		}
		return pel, int64(len(ps)), gs[0].EntriesRead
	}

	eventually(t, 5*time.Second, fmt.Sprintf("%d handlers blocked and %d entries pending", opts.Concurrency, bound), func() bool {
		pel, _, _ := held()
		return started.Load() == int64(opts.Concurrency) && pel == int64(bound)
	})
	// Hold the handlers for 1s, longer than 4 blocking reads (Block 200ms),
	// 10 reclaim passes (100ms) and 6 lease renewals (MinIdle/3 = 167ms),
	// and check on the way that the consumer never reads one entry more.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pel, own, read := held()
		if pel != int64(bound) || own != int64(bound) || read != int64(bound) {
			t.Fatalf("with every handler blocked: XPENDING count %d, owned by c1 %d, XINFO GROUPS entries-read %d; want %d (Concurrency+Prefetch) each", pel, own, read, bound)
		}
		if s, d := started.Load(), c.Stats().Delivered; s != int64(opts.Concurrency) || d != uint64(bound) {
			t.Fatalf("with every handler blocked: %d handlers started, Stats().Delivered = %d; want %d and %d", s, d, opts.Concurrency, bound)
		}
	}

	unblock()
	eventually(t, 10*time.Second, "the whole backlog handled and acknowledged", func() bool {
		return rec.distinct() == total && pending(t, rdb, key, grp) == 0
	})
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	for _, id := range ids {
		if rec.count(id) == 0 {
			t.Fatalf("entry %s was never handled", id)
		}
	}
	if m := maxInFlight.Load(); m > int64(opts.Concurrency) {
		t.Errorf("at most %d handlers ran at once; want at most %d (Concurrency)", m, opts.Concurrency)
	}
}

// envBacklog overrides the large backlog of BenchmarkBacklogMemory (1,000,000).
const envBacklog = "STREAMGROUP_BENCH_BACKLOG"

// BenchmarkBacklogMemory measures the Go heap of a consumer draining a large
// backlog with a slow handler (5ms), to show that memory is bounded by
// Concurrency+Prefetch and not by the backlog. On a redis-server of its own
// (no persistence) it publishes two streams of ~200-byte entries, a small
// backlog (10,000) and a large one (1,000,000, or STREAMGROUP_BENCH_BACKLOG;
// publishing a million takes about 10s), then for each
// Concurrency/Prefetch pair and each backlog runs a consumer in a new group
// (which starts at the head of the whole backlog) until it has handled
// 5,000 entries, sampling the live heap (runtime.GC, then HeapAlloc) every
// 20ms. It reports per run:
//
//	peak-heap-B      the highest live heap sampled while Run ran
//	over-base-B      that peak minus the live heap just before Run started
//	B/held-entry     over-base-B / (Concurrency+Prefetch)
//	conns            regular connections the consumer's client opened
//	pipeline-conns   connections of its pipeline pool; with the go-redis
//	                 defaults their buffers (64KiB and 256KiB each) are most
//	                 of over-base-B
//	x-small-backlog  (large backlog only) over-base-B / over-base-B of the
//	                 small backlog with the same Concurrency/Prefetch: near 1
//	                 when memory does not grow with the backlog
//	B/extra-entry    (second pair only) the growth of over-base-B from the
//	                 first Concurrency/Prefetch pair, same backlog, per entry
//	                 of Concurrency+Prefetch added: the marginal cost of an
//	                 entry held, without the fixed costs (connection buffers)
//
// It fails when a consumer was handed more than Concurrency+Prefetch
// entries beyond those it handled. Run it with
//
//	go test -run '^$' -bench BacklogMemory -benchtime 1x ./integration_test/
func BenchmarkBacklogMemory(b *testing.B) {
	large := 1_000_000
	if v := os.Getenv(envBacklog); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < memHandled {
			b.Fatalf("%s=%q; want an integer of at least %d", envBacklog, v, memHandled)
		}
		large = n
	}
	const small = 10_000

	srv := redistest.StartServer(b, nil)
	keys := map[int]string{}
	for _, n := range []int{small, large} {
		key, _ := redistest.Names(b)
		keys[n] = key
		pub := srv.Client(b)
		began := time.Now()
		publishBacklog(b, pub, key, n)
		el := time.Since(began)
		b.Logf("published %d entries of ~200 bytes in %v (%.0f entries/s)", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
		_ = pub.Close() // its connection buffers are not the consumer's
	}

	first := map[int]memResult{} // by backlog, for the first pair
	firstBound := 0
	for i, cp := range []struct{ c, p int }{{16, 0}, {64, 64}} {
		opts := group.Options{Concurrency: cp.c, Prefetch: cp.p, Block: 100 * time.Millisecond}
		// Prefetch zero is adaptive: with a 5ms handler it stays at Concurrency.
		bound := cp.c + orDefault(cp.p, cp.c)
		if i == 0 {
			firstBound = bound
		}
		b.Run(fmt.Sprintf("c=%d,p=%d", cp.c, bound-cp.c), func(b *testing.B) {
			var smallOver float64
			for _, n := range []int{small, large} {
				b.Run(fmt.Sprintf("backlog=%d", n), func(b *testing.B) {
					var r memResult
					for range b.N {
						x := memRun(b, srv, keys[n], opts, bound)
						r.peak, r.over = max(r.peak, x.peak), max(r.over, x.over)
						r.conns, r.pipeConns = max(r.conns, x.conns), max(r.pipeConns, x.pipeConns)
					}
					b.ReportMetric(float64(r.conns), "conns")
					b.ReportMetric(float64(r.pipeConns), "pipeline-conns")
					b.ReportMetric(float64(r.peak), "peak-heap-B")
					b.ReportMetric(float64(r.over), "over-base-B")
					b.ReportMetric(float64(r.over)/float64(bound), "B/held-entry")
					switch {
					case n == small:
						smallOver = float64(r.over)
					case smallOver > 0:
						b.ReportMetric(float64(r.over)/smallOver, "x-small-backlog")
					}
					if i == 0 {
						first[n] = r
					} else if f, ok := first[n]; ok {
						b.ReportMetric((float64(r.over)-float64(f.over))/float64(bound-firstBound), "B/extra-entry")
					}
				})
			}
		})
	}
}

// memResult is what the runs of one sub-benchmark measured.
type memResult struct{ peak, over, conns, pipeConns uint64 }

// memHandled is how many entries each run of BenchmarkBacklogMemory handles.
const memHandled = 5000

// orDefault returns v, or def when v is zero.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// memRun runs one consumer, in a new group at the head of key, until it has
// handled memHandled entries with a 5ms handler, and returns the peak live
// heap sampled meanwhile, that peak over the live heap just before Run, and
// how many connections the consumer's client opened (fixed costs: with the
// go-redis defaults, 64KiB of buffers for a regular connection, 256KiB for
// one of the pipeline pool).
func memRun(b *testing.B, srv *redistest.Server, key string, opts group.Options, bound int) memResult {
	b.Helper()
	b.StopTimer()
	rdb := srv.Client(b)
	grp := fmt.Sprintf("mem-%d", memSeq.Add(1))
	if err := rdb.XGroupCreate(context.Background(), key, grp, "0").Err(); err != nil {
		b.Fatalf("XGROUP CREATE %s %s 0: %v", key, grp, err)
	}
	var handled atomic.Int64
	done := make(chan struct{})
	h := handler.Func(func(ctx context.Context, m *stream.Message) error {
		time.Sleep(5 * time.Millisecond) // a slow handler: the backlog waits in Redis
		if handled.Add(1) == memHandled {
			close(done)
		}
		return nil
	})
	c, err := group.NewConsumer(rdb, key, grp, "c", h, &opts)
	if err != nil {
		b.Fatal(err)
	}
	base := liveHeap()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	b.StartTimer()
	go func() { errc <- c.Run(ctx) }()

	// The sampler stops when Run has returned, so the drain is measured too.
	stop := make(chan struct{})
	sampled := make(chan uint64)
	go func() {
		peak := liveHeap()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sampled <- peak
				return
			case <-tick.C:
				peak = max(peak, liveHeap())
			}
		}
	}()

	var runErr error
	ran := false // Run has returned, with runErr
	select {
	case <-done:
	case runErr = <-errc:
		ran = true
	case <-time.After(2 * time.Minute):
	}
	b.StopTimer()
	cancel()
	if !ran {
		err = <-errc
	}
	close(stop)
	peak := <-sampled
	switch {
	case ran:
		b.Fatalf("Run returned before %d entries were handled: %v", memHandled, runErr)
	case handled.Load() < memHandled:
		b.Fatalf("%d entries not handled within 2m (%d handled)", memHandled, handled.Load())
	case err != nil:
		b.Fatalf("Run = %v; want nil", err)
	}
	// Every entry the consumer was handed was handled, or waited in memory
	// (bounded by Concurrency+Prefetch) when Run stopped.
	if d, n := c.Stats().Delivered, handled.Load(); d > uint64(n)+uint64(bound) {
		b.Fatalf("Stats().Delivered = %d with %d handled; want at most %d (handled + Concurrency+Prefetch)", d, n, n+int64(bound))
	}
	ps := rdb.PoolStats()
	r := memResult{peak: peak, conns: uint64(ps.TotalConns)}
	if ps.PipelineStats != nil {
		r.pipeConns = uint64(ps.PipelineStats.TotalConns)
	}
	if peak > base {
		r.over = peak - base
	}
	return r
}

var memSeq atomic.Uint64

// liveHeap returns the bytes of live heap objects: HeapAlloc right after a
// full garbage collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// publishBacklog adds n entries {"n": i, "body": 200 bytes} to key with
// pipelined XADDs in batches of 10,000, keeping nothing in memory (unlike
// publish, which returns the IDs).
func publishBacklog(b *testing.B, rdb redis.UniversalClient, key string, n int) {
	b.Helper()
	const batch = 10_000
	body := string(make([]byte, 200))
	ctx := context.Background()
	for from := 0; from < n; from += batch {
		pipe := rdb.Pipeline()
		for i := from; i < min(from+batch, n); i++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"n", i, "body", body}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatalf("XADD to %s: %v", key, err)
		}
	}
}
