package engine

import (
	"context"
	"strconv"
	"testing"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

// BenchmarkDispatch measures the in-process cost of one entry from dispatch
// to its queued acknowledgement: hold, queue, worker, handler call (a no-op),
// state change and ack buffer. No Redis round trip is involved.
//
//	go test -run '^$' -bench Dispatch -benchmem ./internal/engine/
func BenchmarkDispatch(b *testing.B) {
	for _, c := range []int{1, 16} {
		b.Run("concurrency="+strconv.Itoa(c), func(b *testing.B) {
			cfg := base()
			cfg.Concurrency = c
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
			for i := range b.N {
				if e.credits.take(context.Background(), 1, 1) != 1 {
					b.Fatal("no credit")
				}
				if !e.dispatch(stream.Message{ID: ids[i], Stream: "s", Values: values, Deliveries: 1}) {
					b.Fatal("dispatch refused")
				}
				if i%1024 == 1023 { // what the acker does after each flush
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
