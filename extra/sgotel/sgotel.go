package sgotel

import (
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/streamgroup/streamgroup/hook"
)

// ScopeName is the instrumentation scope of the tracer and the meter: the
// package's import path.
const ScopeName = "github.com/streamgroup/streamgroup/extra/sgotel"

// Attribute keys this package adds where the messaging semantic
// conventions have none. The conventions reserve their own namespaces, so
// these live under "streamgroup.".
const (
	// KindKey is the Redis structure the destination is: "stream" or
	// "list" (hook.Kind.String). messaging.system is "redis" for both.
	KindKey = attribute.Key("streamgroup.destination.kind")
	// DeliveryCountKey is the delivery a consumer span handles: 1 for the
	// first, 2 for the first retry... (Redis's count for a stream, the
	// envelope's for a list). Absent when the count is unknown.
	DeliveryCountKey = attribute.Key("streamgroup.message.delivery_count")
	// OutcomeKey is what the consumer did with the job after a delivery:
	// "ack", "retry", "dead_letter" or "abandoned" (hook.Outcome.String).
	OutcomeKey = attribute.Key("streamgroup.outcome")
	// HandledKey is false on a consumer span, and on a dead-letter count,
	// for a job dead-lettered without a handler call (malformed, or
	// delivered more than MaxDeliveries times). Spans omit it otherwise.
	HandledKey = attribute.Key("streamgroup.handled")
)

// system is messaging.system. The conventions list well-known values and
// Redis is not among them; "redis" names the broker, and [KindKey] the
// structure, so one filter finds every streamgroup series.
var system = semconv.MessagingSystemKey.String("redis")

// processDurationBuckets are the bucket boundaries the semantic
// conventions give for messaging.process.duration, in seconds.
var processDurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Options configures a [Hook]. A nil *Options means all defaults.
//
// There is no setting for gauges read from Redis (lag, pending entries,
// age of the oldest pending entry, queue lengths): a Hook sees only what
// its producers and consumers do, and records it from their goroutines.
// Redis-side gauges are read by a collector of their own, one per process
// whatever the number of consumers, so that XINFO and XPENDING run once
// per stream and interval rather than once per consumer.
type Options struct {
	// TracerProvider makes the spans. Nil: otel.GetTracerProvider(), the
	// global provider (a later otel.SetTracerProvider takes effect). A
	// trace/noop provider turns tracing off; the trace context is then
	// still propagated when the publish's context carries one.
	TracerProvider trace.TracerProvider
	// MeterProvider makes the instruments. Nil: otel.GetMeterProvider(),
	// the global provider (a later otel.SetMeterProvider takes effect). A
	// metric/noop provider turns metrics off.
	MeterProvider metric.MeterProvider
	// Propagator writes the trace context into the fields of published
	// entries and reads it back in consumers. Nil: the global propagator,
	// otel.GetTextMapPropagator(), unless it propagates no field when New
	// is called (the global default is a no-op until
	// otel.SetTextMapPropagator); then W3C Trace Context and Baggage
	// (fields "traceparent", "tracestate", "baggage"). Producers and
	// consumers must use propagators that agree.
	Propagator propagation.TextMapPropagator
}

// Hook is an OpenTelemetry [hook.Hook]: give it to producers and consumers
// in their options (stream.ProducerOptions.Hook, queue.ProducerOptions.Hook,
// group.Options.Hook, queue.Options.Hook, claim.Options.Hook). One Hook
// serves any number of them. It is safe for concurrent use. The zero
// value is not usable: call [New].
type Hook struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	m          instruments
}

var _ hook.Hook = (*Hook)(nil)

// instruments are the Hook's metric instruments, made once by New.
type instruments struct {
	sent         metric.Int64Counter     // messaging.client.sent.messages
	consumed     metric.Int64Counter     // messaging.client.consumed.messages
	duration     metric.Float64Histogram // messaging.process.duration
	handled      metric.Int64Counter     // streamgroup.consumer.handled.messages
	retries      metric.Int64Counter     // streamgroup.consumer.retries
	deadLetters  metric.Int64Counter     // streamgroup.consumer.dead_letters
	reclaimed    metric.Int64Counter     // streamgroup.consumer.reclaimed.messages
	lostLeases   metric.Int64Counter     // streamgroup.consumer.lost_leases
	released     metric.Int64Counter     // streamgroup.consumer.released.messages
	groupCreated metric.Int64Counter     // streamgroup.consumer.groups_created
	errors       metric.Int64Counter     // streamgroup.consumer.errors
}

// New returns a Hook that records spans and metrics with the providers of
// opts. Its error comes from the meter provider refusing an instrument.
func New(opts *Options) (*Hook, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.TracerProvider == nil {
		o.TracerProvider = otel.GetTracerProvider()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	if o.Propagator == nil {
		o.Propagator = otel.GetTextMapPropagator()
		if len(o.Propagator.Fields()) == 0 {
			o.Propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
		}
	}
	h := &Hook{
		tracer: o.TracerProvider.Tracer(ScopeName,
			trace.WithSchemaURL(semconv.SchemaURL)),
		propagator: o.Propagator,
	}
	meter := o.MeterProvider.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	if err := h.m.init(meter); err != nil {
		return nil, fmt.Errorf("sgotel: %w", err)
	}
	return h, nil
}

func (m *instruments) init(meter metric.Meter) error {
	var errs [11]error
	sent, e0 := messagingconv.NewClientSentMessages(meter)
	consumed, e1 := messagingconv.NewClientConsumedMessages(meter)
	duration, e2 := messagingconv.NewProcessDuration(meter,
		metric.WithExplicitBucketBoundaries(processDurationBuckets...))
	m.sent, m.consumed, m.duration = sent.Inst(), consumed.Inst(), duration.Inst()
	errs[0], errs[1], errs[2] = e0, e1, e2

	counter := func(i int, name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs[i] = err
		return c
	}
	m.handled = counter(3, "streamgroup.consumer.handled.messages", "{message}",
		"Handler calls, by what the consumer did with the job after each (streamgroup.outcome).")
	m.retries = counter(4, "streamgroup.consumer.retries", "{message}",
		"Handler calls that failed and whose job will be delivered again after a backoff.")
	m.deadLetters = counter(5, "streamgroup.consumer.dead_letters", "{message}",
		"Jobs moved to the dead-letter stream or list, with or without a handler call (streamgroup.handled).")
	m.reclaimed = counter(6, "streamgroup.consumer.reclaimed.messages", "{message}",
		"Jobs taken over from consumers that died or stalled (XAUTOCLAIM, recovery of an expired processing list).")
	m.lostLeases = counter(7, "streamgroup.consumer.lost_leases", "{message}",
		"Jobs another consumer took over while this one held them; their handlers' results were dropped.")
	m.released = counter(8, "streamgroup.consumer.released.messages", "{message}",
		"Jobs no handler ran (fetched ahead, or waiting for a retry) handed back for any consumer to take.")
	m.groupCreated = counter(9, "streamgroup.consumer.groups_created", "{group}",
		"Consumer groups a consumer created, at its start or because the group vanished while it ran.")
	m.errors = counter(10, "streamgroup.consumer.errors", "{error}",
		"Errors a consumer handled by itself (those its OnError receives), by error.type.")
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Producer returns the hooks of one producer, its attributes computed once.
func (h *Hook) Producer(t hook.Target) hook.Producer { return newProducer(h, t) }

// Consumer returns the hooks of one consumer, its attributes computed once.
func (h *Hook) Consumer(t hook.Target) hook.Consumer { return newConsumer(h, t) }

// addOpts is a precomputed attribute set as the options of Add, so that a
// measurement allocates nothing for its attributes.
func addOpts(kv ...attribute.KeyValue) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

func recordOpts(kv ...attribute.KeyValue) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

// with returns base followed by kv, in a new slice.
func with(base []attribute.KeyValue, kv ...attribute.KeyValue) []attribute.KeyValue {
	return append(base[:len(base):len(base)], kv...)
}
