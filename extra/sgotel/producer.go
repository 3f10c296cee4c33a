package sgotel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/streamgroup/streamgroup/hook"
)

// producer is the hook of one producer: everything that does not change
// per publish is computed here once.
type producer struct {
	h         *Hook
	spanName  string                  // "send <destination>"
	startOpts []trace.SpanStartOption // kind and the target's attributes
	metric    []attribute.KeyValue    // attributes of sent.messages
	sentOK    []metric.AddOption      // sent.messages of written entries
}

func newProducer(h *Hook, t hook.Target) *producer {
	base := []attribute.KeyValue{
		system,
		KindKey.String(t.Kind.String()),
		semconv.MessagingDestinationName(t.Name),
		semconv.MessagingOperationName("send"),
	}
	metricAttrs := base
	return &producer{
		h:        h,
		spanName: "send " + t.Name,
		startOpts: []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(with(base, semconv.MessagingOperationTypeSend)...),
		},
		metric: metricAttrs,
		sentOK: addOpts(metricAttrs...),
	}
}

// Publish starts the publish's PRODUCER span and writes its trace context
// into the fields of every entry. A batch gets one span: see the package
// documentation.
func (p *producer) Publish(ctx context.Context, pub *hook.Publish) context.Context {
	ctx, span := p.h.tracer.Start(ctx, p.spanName, p.startOpts...)
	if pub.Count != 1 && span.IsRecording() {
		span.SetAttributes(semconv.MessagingBatchMessageCount(pub.Count))
	}
	p.h.propagator.Inject(ctx, (*publishCarrier)(pub))
	return ctx
}

// Published ends the span Publish started and counts the entries sent.
func (p *producer) Published(ctx context.Context, pub *hook.Publish) {
	written := pub.Count
	if pub.Err != nil {
		written = 0
		for _, id := range pub.IDs {
			if id != "" {
				written++
			}
		}
	}
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		if pub.Count == 1 && len(pub.IDs) == 1 && pub.IDs[0] != "" {
			span.SetAttributes(semconv.MessagingMessageID(pub.IDs[0]))
		}
		if pub.Err != nil {
			span.SetAttributes(semconv.ErrorType(pub.Err))
			span.RecordError(pub.Err)
			span.SetStatus(codes.Error, pub.Err.Error())
		} else {
			span.SetStatus(codes.Ok, "")
		}
	}
	span.End()

	if written > 0 {
		p.h.m.sent.Add(ctx, int64(written), p.sentOK...)
	}
	if failed := pub.Count - written; failed > 0 {
		p.h.m.sent.Add(ctx, int64(failed), addOpts(with(p.metric, semconv.ErrorType(pub.Err))...)...)
	}
}

// publishCarrier lets the propagator write into a publish's fields.
type publishCarrier hook.Publish

func (c *publishCarrier) Get(key string) string {
	f := (*hook.Publish)(c).Fields()
	for i := 0; i+1 < len(f); i += 2 {
		if f[i] == key {
			return f[i+1]
		}
	}
	return ""
}

func (c *publishCarrier) Set(key, value string) { (*hook.Publish)(c).Set(key, value) }

func (c *publishCarrier) Keys() []string {
	f := (*hook.Publish)(c).Fields()
	keys := make([]string, 0, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		keys = append(keys, f[i])
	}
	return keys
}
