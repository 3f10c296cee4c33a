package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// BenchmarkQueueDrain measures draining a backlog of b.N jobs with a no-op
// handler (Concurrency 10, default Prefetch), per mode; jobs/s is reported.
func BenchmarkQueueDrain(b *testing.B) {
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			rdb := redistest.Client(b)
			q := names(b, rdb)
			p, _ := queue.NewProducer(rdb, q, nil)
			batch := make([]map[string]any, 0, 1000)
			for i := range b.N {
				batch = append(batch, map[string]any{"n": i, "to": "ada@example.com"})
				if len(batch) == cap(batch) || i == b.N-1 {
					if _, err := p.PushBatch(context.Background(), batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			nop := handler.Func(func(context.Context, *stream.Message) error { return nil })
			opts := &queue.Options{Concurrency: 10, PollInterval: 100 * time.Millisecond}
			c := m.new(b, rdb, []string{q}, nop, opts)
			b.ResetTimer()
			run := start(b, c.Run)
			for c.Stats().Acked < uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
			if err := run.Stop(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
