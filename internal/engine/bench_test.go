package engine

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// BenchmarkDispatch measures the in-process cost of one entry from dispatch
// to its queued acknowledgement: hold, queue, worker, handler call (a no-op),
// state change and ack buffer. No Redis round trip is involved. Entries are
// dispatched one at a time (batch=1) or as the reader does with a large
// read (batch=256).
//
//	go test -run '^$' -bench Dispatch -benchmem ./internal/engine/
func BenchmarkDispatch(b *testing.B) {
	for _, bc := range []struct{ c, batch int }{{1, 1}, {16, 1}, {4, 256}, {16, 256}} {
		c, batch := bc.c, bc.batch
		b.Run("concurrency="+strconv.Itoa(c)+",batch="+strconv.Itoa(batch), func(b *testing.B) {
			cfg := base()
			cfg.Concurrency = c
			cfg.Prefetch = max(batch, c)
			cfg.Handler = handler.Func(func(context.Context, *stream.Message) error { return nil })
			cfg, err := cfg.Normalize()
			if err != nil {
				b.Fatal(err)
			}
			e := New(cfg)
			e.hctx, e.hcancel = context.WithCancel(context.Background())
			defer e.hcancel()
			for range cfg.Concurrency {
				e.handlers.Go(e.worker)
			}
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = stream.ID{Ms: 1, Seq: uint64(i)}.String()
			}
			values := map[string]string{"to": "a@example.com", "subject": "hello"}
			b.ReportAllocs()
			b.ResetTimer()
			ms := make([]stream.Message, 0, batch)
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				// As the reader does: take credits for a read, dispatch
				// what it returned.
				if got := e.credits.Take(context.Background(), n, n); got != n {
					b.Fatalf("took %d credits; want %d", got, n)
				}
				ms = ms[:0]
				for j := i; j < i+n; j++ {
					ms = append(ms, stream.Message{ID: ids[j], Stream: "s", Values: values, Deliveries: 1})
				}
				if used := e.dispatchAll(ms); used != n {
					b.Fatalf("dispatched %d; want %d", used, n)
				}
				if (i/batch)%max(1, 256/batch) == 0 { // what the acker does after each flush
					e.mu.Lock()
					acked := e.ackBuf
					e.ackBuf = nil
					e.mu.Unlock()
					e.unholdAll(acked)
				}
			}
			close(e.queue)
			e.handlers.Wait()
		})
	}
}

// BenchmarkAck measures acknowledging on a real Redis, per entry: one XACK
// round trip per entry (what a naive consumer does) against the acker's
// flush of a batch (XACK commands of up to AckBatch IDs, pipelined in one
// round trip), for batch sizes the acker sees: a quiet consumer flushes
// after AckInterval with a few IDs, a busy one every AckBatch (256).
//
//	go test -run '^$' -bench Ack -benchmem ./internal/engine/
func BenchmarkAck(b *testing.B) {
	rdb := redistest.Client(b)
	ctx := context.Background()
	// pendingIDs leaves n entries pending in a new group and returns them.
	pendingIDs := func(b *testing.B, n int) (Config, []string) {
		b.Helper()
		key, grp := redistest.Names(b)
		b.Cleanup(func() { rdb.Del(context.Background(), key) })
		ids := make([]string, 0, n)
		for start := 0; start < n; start += 1000 {
			pipe := rdb.Pipeline()
			for range min(1000, n-start) {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"body", "x"}})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		if err := rdb.XGroupCreate(ctx, key, grp, "0").Err(); err != nil {
			b.Fatal(err)
		}
		for len(ids) < n {
			res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: grp, Consumer: "c", Streams: []string{key, ">"}, Count: 10000, Block: -1}).Result()
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range res[0].Messages {
				ids = append(ids, m.ID)
			}
		}
		cfg := base()
		cfg.Client, cfg.Stream, cfg.Group = rdb, key, grp
		cfg, err := cfg.Normalize()
		if err != nil {
			b.Fatal(err)
		}
		return cfg, ids
	}
	b.Run("one XACK per entry", func(b *testing.B) {
		cfg, ids := pendingIDs(b, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for _, id := range ids {
			if err := rdb.XAck(ctx, cfg.Stream, cfg.Group, id).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, batch := range []int{1, 16, 256, 1024} {
		b.Run("flush of "+strconv.Itoa(batch), func(b *testing.B) {
			cfg, ids := pendingIDs(b, b.N)
			e := New(cfg)
			b.ReportAllocs()
			b.ResetTimer()
			for start := 0; start < len(ids); start += batch {
				for _, id := range ids[start:min(start+batch, len(ids))] {
					e.ack(id)
				}
				if err := e.flushAcks(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if got := e.Stats().Acked; got != uint64(b.N) {
				b.Fatalf("acked %d; want %d", got, b.N)
			}
		})
	}
}
