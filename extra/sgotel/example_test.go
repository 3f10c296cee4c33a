package sgotel_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/streamgroup/streamgroup/extra/sgotel"
	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

// A producer and a consumer traced end to end: the handler's span is a
// child of the publish's, across processes. (Compile-only: it needs a
// Redis server, and an exporter in the providers.)
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	tp := sdktrace.NewTracerProvider( /* sdktrace.WithBatcher(exporter) */ )
	mp := sdkmetric.NewMeterProvider( /* sdkmetric.WithReader(prometheusExporter) */ )
	defer tp.Shutdown(context.Background())
	defer mp.Shutdown(context.Background())
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	h, err := sgotel.New(nil) // the global providers and propagator
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	p, err := stream.NewProducer(rdb, "jobs:email", &stream.ProducerOptions{Hook: h})
	if err != nil {
		log.Fatal(err)
	}
	// The entry carries the trace context of ctx's span (fields
	// traceparent, tracestate, baggage).
	if _, err := p.Add(ctx, map[string]any{"to": "ada@example.com"}); err != nil {
		log.Fatal(err)
	}

	host, _ := os.Hostname()
	c, err := group.NewConsumer(rdb, "jobs:email", "mailers", host, handler.Func(
		func(ctx context.Context, m *stream.Message) error {
			// ctx carries the "process jobs:email" span: spans started
			// from it are its children.
			return nil
		}), &group.Options{Hook: h})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
