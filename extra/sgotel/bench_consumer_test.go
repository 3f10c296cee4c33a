package sgotel_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// BenchmarkConsumer drains a backlog of b.N entries through a real
// group.Consumer (16 workers, a handler that does nothing), without a
// hook and with the sgotel hook: on the OTel API without an SDK (no-op
// providers), and on the SDK with every span sampled (batching to a no-op
// exporter) and a metric reader. Every entry carries a traceparent, with
// or without a hook. The ratio of ns/op to "none" is the hook's cost per
// message in a consumer; docs/observability.md quotes it.
func BenchmarkConsumer(b *testing.B) {
	rdb := redistest.Client(b)
	for _, bc := range []struct {
		name string
		hook func(b *testing.B) hook.Hook
	}{
		{"none", func(*testing.B) hook.Hook { return nil }},
		{"sgotel-noop", func(b *testing.B) hook.Hook { return benchHook(b, false, nil) }},
		{"sgotel-sdk-unsampled", func(b *testing.B) hook.Hook { return benchHook(b, true, sdktrace.NeverSample()) }},
		{"sgotel-sdk", func(b *testing.B) hook.Hook { return benchHook(b, true, sdktrace.AlwaysSample()) }},
	} {
		b.Run(bc.name, func(b *testing.B) { benchConsumer(b, rdb, bc.hook(b)) })
	}
}

func benchConsumer(b *testing.B, rdb *redis.Client, h hook.Hook) {
	key, grp := redistest.Names(b)
	ctx := context.Background()
	b.StopTimer()
	values := []any{"body", string(make([]byte, 200)), "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	for start := 0; start < b.N; start += 1000 {
		pipe := rdb.Pipeline()
		for range min(1000, b.N-start) {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: values})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if err := rdb.XGroupCreate(ctx, key, grp, "0").Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Del(context.Background(), key) })

	var n atomic.Int64
	done := make(chan struct{})
	hd := handler.Func(func(context.Context, *stream.Message) error {
		if n.Add(1) == int64(b.N) {
			close(done)
		}
		return nil
	})
	c, err := group.NewConsumer(rdb, key, grp, "c", hd, &group.Options{Concurrency: 16, Block: 100 * time.Millisecond, Hook: h})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.StartTimer()
	r := redistest.Go(b, c.Run)
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatal("the backlog was not drained within 5 minutes")
	}
	b.StopTimer()
	if err := r.Stop(); err != nil {
		b.Fatal(err)
	}
}
