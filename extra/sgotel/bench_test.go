package sgotel_test

import (
	"context"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/streamgroup/streamgroup/extra/sgotel"
	"github.com/streamgroup/streamgroup/hook"
)

// benchHook returns a Hook as a service would run it: the SDK tracer with
// a batching processor (its exporter a no-op) and a metric reader, or the
// no-op providers (the OTel API with no SDK installed).
func benchHook(b *testing.B, sdk bool, sampler sdktrace.Sampler) *sgotel.Hook {
	b.Helper()
	opts := &sgotel.Options{
		TracerProvider: tracenoop.NewTracerProvider(),
		MeterProvider:  metricnoop.NewMeterProvider(),
		Propagator:     w3c,
	}
	if sdk {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() {
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		})
		opts.TracerProvider, opts.MeterProvider = tp, mp
	}
	h, err := sgotel.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkHook measures what the consumer hook adds per message (Start
// and End of an acknowledged job carrying a trace context), and the
// producer hook per single publish, without Redis. BenchmarkConsumer runs
// it inside a real consumer.
func BenchmarkHook(b *testing.B) {
	for _, c := range []struct {
		name    string
		sdk     bool
		sampler sdktrace.Sampler
	}{
		{"noop", false, nil},
		{"sdk-sampled", true, sdktrace.AlwaysSample()},
		{"sdk-unsampled", true, sdktrace.NeverSample()},
	} {
		h := benchHook(b, c.sdk, c.sampler)
		values := map[string]string{
			"payload":     `{"to":"ada@example.com"}`,
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		}
		b.Run("consumer/"+c.name, func(b *testing.B) {
			hc := h.Consumer(streamTarget)
			ctx := context.Background()
			r := hook.Result{Outcome: hook.Acked, Handled: true, Duration: time.Millisecond}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m := hook.Message{ID: "1-0", Values: values, Deliveries: 1}
				hc.End(hc.Start(ctx, m), m, r)
			}
		})
		b.Run("producer/"+c.name, func(b *testing.B) {
			hp := h.Producer(hook.Target{Kind: hook.Stream, Name: "jobs:email"})
			ctx := context.Background()
			ids := []string{"1-0"}
			b.ReportAllocs()
			for b.Loop() {
				pub := &hook.Publish{Count: 1}
				pctx := hp.Publish(ctx, pub)
				pub.IDs = ids
				hp.Published(pctx, pub)
			}
		})
	}
}
