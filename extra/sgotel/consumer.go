package sgotel

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/streamgroup/streamgroup/hook"
)

// consumer is the hook of one consumer: the span options and every
// attribute set its measurements use are computed here once, per
// destination, so that a message's measurements allocate nothing for
// their attributes.
type consumer struct {
	h     *Hook
	dests []dest // the target's stream, or each of its list queues
	// Events carry no destination: they are counted under the target's
	// Name (a list consumer's first queue).
	plain []metric.AddOption // retries, reclaims, lost leases, released, groups
	base  []attribute.KeyValue
}

// dest is what a consumer records for one stream or list queue.
type dest struct {
	name      string
	spanName  string                  // "process <destination>"
	startOpts []trace.SpanStartOption // kind and the destination's attributes

	consumed  []metric.AddOption
	outcomes  [hook.Abandoned + 1]outcomeOpts // by hook.Outcome
	plain     []metric.AddOption              // retries
	deadOK    []metric.AddOption              // dead letters after a handler call
	deadUnrun []metric.AddOption              // dead letters without one
}

// outcomeOpts are the attribute sets of one outcome.
type outcomeOpts struct {
	attr     attribute.KeyValue    // streamgroup.outcome
	attrs    []attribute.KeyValue  // attr alone, passed without a new slice
	handled  []metric.AddOption    // handled.messages
	duration []metric.RecordOption // process.duration
	process  []attribute.KeyValue  // process and outcome, for error.type
}

func newConsumer(h *Hook, t hook.Target) *consumer {
	c := &consumer{h: h}
	for _, name := range destinations(t) {
		c.dests = append(c.dests, newDest(t, name))
	}
	c.base = destAttrs(t, c.dests[0].name)
	c.plain = c.dests[0].plain
	return c
}

// destAttrs are the attributes of every measurement of a destination.
func destAttrs(t hook.Target, name string) []attribute.KeyValue {
	base := []attribute.KeyValue{
		system,
		KindKey.String(t.Kind.String()),
		semconv.MessagingDestinationName(name),
	}
	if t.Group != "" {
		base = append(base, semconv.MessagingConsumerGroupName(t.Group))
	}
	return base
}

func newDest(t hook.Target, name string) dest {
	base := destAttrs(t, name)
	process := with(base, semconv.MessagingOperationName("process"))
	spanAttrs := with(process, semconv.MessagingOperationTypeProcess)
	if t.Consumer != "" {
		spanAttrs = append(spanAttrs, semconv.MessagingClientID(t.Consumer))
	}
	d := dest{
		name:     name,
		spanName: "process " + name,
		startOpts: []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(spanAttrs...),
		},
		consumed:  addOpts(process...),
		plain:     addOpts(base...),
		deadOK:    addOpts(with(base, HandledKey.Bool(true))...),
		deadUnrun: addOpts(with(base, HandledKey.Bool(false))...),
	}
	for o := hook.Acked; o <= hook.Abandoned; o++ {
		attr := OutcomeKey.String(o.String())
		withOutcome := with(process, attr)
		d.outcomes[o] = outcomeOpts{
			attr:     attr,
			attrs:    []attribute.KeyValue{attr},
			handled:  addOpts(with(base, attr)...),
			duration: recordOpts(withOutcome...),
			process:  withOutcome,
		}
	}
	return d
}

// destinations are the streams or queues a target consumes: its Name,
// or every queue of a list consumer, Name first.
func destinations(t hook.Target) []string {
	names := []string{t.Name}
	for _, q := range t.Queues {
		if q != t.Name {
			names = append(names, q)
		}
	}
	return names
}

// dest returns what the consumer records for the job m: the destination
// it came from (a consumer has one stream, or a few list queues).
func (c *consumer) dest(m *hook.Message) *dest {
	for i := range c.dests {
		if c.dests[i].name == m.Name {
			return &c.dests[i]
		}
	}
	return &c.dests[0] // no name, or one the target did not list
}

// spanKey marks the context Start returned, so that End finds the span
// even when the handler's context already carried another one, and knows
// when no Start came before it.
type spanKey struct{}

// Start extracts the publisher's trace context from the job's fields and
// starts the CONSUMER span as its child.
func (c *consumer) Start(ctx context.Context, m hook.Message) context.Context {
	ctx, span := c.start(ctx, c.dest(&m), &m)
	return context.WithValue(ctx, spanKey{}, span)
}

func (c *consumer) start(ctx context.Context, d *dest, m *hook.Message) (context.Context, trace.Span) {
	ctx = c.h.propagator.Extract(ctx, propagation.MapCarrier(m.Values))
	ctx, span := c.h.tracer.Start(ctx, d.spanName, d.startOpts...)
	if span.IsRecording() {
		if m.Deliveries > 0 {
			span.SetAttributes(semconv.MessagingMessageID(m.ID), DeliveryCountKey.Int64(m.Deliveries))
		} else {
			span.SetAttributes(semconv.MessagingMessageID(m.ID))
		}
	}
	return ctx, span
}

// End sets the span's status from the outcome, ends it and records the
// message's metrics. A job dead-lettered without a handler call gets a
// span all the same, started here when no Start came before.
func (c *consumer) End(ctx context.Context, m hook.Message, r hook.Result) {
	d := c.dest(&m)
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		ctx, span = c.start(ctx, d, &m)
	}
	o := r.Outcome
	if o < hook.Acked || o > hook.Abandoned {
		o = hook.Abandoned // an outcome this version does not know: not settled here
	}
	oo := &d.outcomes[o]
	failed := o != hook.Acked
	var errType attribute.KeyValue
	if failed {
		errType = errorType(r.Err, o)
	}

	if span.IsRecording() {
		if failed {
			if r.Handled {
				span.SetAttributes(oo.attr, errType)
			} else {
				span.SetAttributes(oo.attr, errType, HandledKey.Bool(false))
			}
			desc := o.String()
			if r.Err != nil {
				span.RecordError(r.Err)
				desc = r.Err.Error()
			}
			span.SetStatus(codes.Error, desc)
		} else {
			span.SetAttributes(oo.attrs...)
			span.SetStatus(codes.Ok, "")
		}
	}
	span.End()

	mt := &c.h.m
	if r.Handled {
		mt.consumed.Add(ctx, 1, d.consumed...)
		mt.handled.Add(ctx, 1, oo.handled...)
		if failed {
			mt.duration.Record(ctx, r.Duration.Seconds(),
				metric.WithAttributeSet(attribute.NewSet(with(oo.process, errType)...)))
		} else {
			mt.duration.Record(ctx, r.Duration.Seconds(), oo.duration...)
		}
	}
	switch o {
	case hook.Retried:
		mt.retries.Add(ctx, 1, d.plain...)
	case hook.DeadLettered:
		if r.Handled {
			mt.deadLetters.Add(ctx, 1, d.deadOK...)
		} else {
			mt.deadLetters.Add(ctx, 1, d.deadUnrun...)
		}
	}
}

// errorType is error.type for a delivery that did not end in an ack: the
// error's type per the semantic conventions, or the outcome's name when
// there is no error (a job abandoned without one).
func errorType(err error, o hook.Outcome) attribute.KeyValue {
	if err == nil {
		return semconv.ErrorTypeKey.String(o.String())
	}
	return semconv.ErrorType(err)
}

// Event counts what happens in the consumer besides one message.
func (c *consumer) Event(e hook.Event) {
	ctx := context.Background()
	mt := &c.h.m
	switch e.Kind {
	case hook.Reclaimed:
		mt.reclaimed.Add(ctx, int64(e.N), c.plain...)
	case hook.LeaseLost:
		mt.lostLeases.Add(ctx, 1, c.plain...)
	case hook.Released:
		mt.released.Add(ctx, int64(e.N), c.plain...)
	case hook.GroupCreated:
		mt.groupCreated.Add(ctx, 1, c.plain...)
	case hook.Error:
		et := semconv.ErrorTypeOther
		if e.Err != nil {
			et = semconv.ErrorType(e.Err)
		}
		mt.errors.Add(ctx, 1, addOpts(with(c.base, et)...)...)
	}
}
