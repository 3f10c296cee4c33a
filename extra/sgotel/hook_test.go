package sgotel_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/streamgroup/streamgroup/extra/sgotel"
	"github.com/streamgroup/streamgroup/hook"
)

var (
	streamTarget = hook.Target{Kind: hook.Stream, Name: "jobs:email", Group: "mailers", Consumer: "host-1", DeadLetter: "{jobs:email}:dead"}
	listTarget   = hook.Target{Kind: hook.List, Name: "jobs:thumbs", Consumer: "host-2", DeadLetter: "{jobs:thumbs}:dead"}
	redisSystem  = attribute.String("messaging.system", "redis")
)

// publish runs one publish of count entries through p, as a producer
// does, and returns the fields the hook added.
func publish(ctx context.Context, p hook.Producer, count int, ids []string, err error) map[string]string {
	pub := &hook.Publish{Count: count}
	ctx = p.Publish(ctx, pub)
	f := fields(pub.Fields())
	pub.IDs, pub.Err = ids, err
	p.Published(ctx, pub)
	return f
}

func TestProducerSpan(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.hook.Producer(hook.Target{Kind: hook.Stream, Name: "jobs:email"})
	ctx, parent := e.parent(context.Background())
	f := publish(ctx, p, 1, []string{"1-0"}, nil)
	parent.End()

	s := e.one("send jobs:email")
	if s.SpanKind() != trace.SpanKindProducer {
		t.Errorf("kind = %v; want producer", s.SpanKind())
	}
	if s.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("parent = %v; want the publish's context's span %v", s.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	wantAttrs(t, s, map[string]string{
		"messaging.system":             "redis",
		"messaging.destination.name":   "jobs:email",
		"messaging.operation.name":     "send",
		"messaging.operation.type":     "send",
		"messaging.message.id":         "1-0",
		"streamgroup.destination.kind": "stream",
	}, "messaging.batch.message_count", "error.type")
	if s.Status().Code != codes.Ok {
		t.Errorf("status = %v; want Ok", s.Status())
	}
	if got, want := f["traceparent"], traceparent(s.SpanContext()); got != want {
		t.Errorf("field traceparent = %q; want %q (the send span)", got, want)
	}
	if got := keys(f); !slices.Equal(got, []string{"traceparent"}) {
		t.Errorf("fields set = %v; want [traceparent] (no tracestate, no baggage in the context)", got)
	}

	rm := e.collect()
	if n := sum(t, rm, "messaging.client.sent.messages", redisSystem,
		attribute.String("messaging.destination.name", "jobs:email"),
		attribute.String("messaging.operation.name", "send")); n != 1 {
		t.Errorf("sent.messages = %d; want 1", n)
	}
}

func TestProducerBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.hook.Producer(hook.Target{Kind: hook.List, Name: "jobs:thumbs"})
	ctx, parent := e.parent(context.Background())
	f := publish(ctx, p, 3, []string{"a", "b", "c"}, nil)
	parent.End()

	s := e.one("send jobs:thumbs")
	wantAttrs(t, s, map[string]string{
		"messaging.batch.message_count": "3",
		"streamgroup.destination.kind":  "list",
	}, "messaging.message.id")
	if got, want := f["traceparent"], traceparent(s.SpanContext()); got != want {
		t.Errorf("field traceparent = %q; want %q: every entry carries the batch's span", got, want)
	}
	if n := sum(t, e.collect(), "messaging.client.sent.messages"); n != 3 {
		t.Errorf("sent.messages = %d; want 3", n)
	}
}

// batchError stands for stream.BatchError.
type batchError struct{ failed int }

func (e *batchError) Error() string { return fmt.Sprintf("%d entries failed", e.failed) }

func TestProducerError(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.hook.Producer(hook.Target{Kind: hook.Stream, Name: "jobs:err"})
	down := errors.New("connection refused")
	publish(context.Background(), p, 1, nil, down)
	publish(context.Background(), p, 4, []string{"1-0", "", "3-0", ""}, &batchError{2})

	spans := e.ended("send jobs:err")
	if len(spans) != 2 {
		t.Fatalf("send spans: %d; want 2", len(spans))
	}
	for i, want := range []struct{ desc, errType string }{
		{"connection refused", "*errors.errorString"},
		{"2 entries failed", "*sgotel_test.batchError"},
	} {
		s := spans[i]
		if s.Status().Code != codes.Error || s.Status().Description != want.desc {
			t.Errorf("span %d: status = %v; want Error %q", i, s.Status(), want.desc)
		}
		wantAttrs(t, s, map[string]string{"error.type": want.errType}, "messaging.message.id")
		if len(s.Events()) != 1 || s.Events()[0].Name != "exception" {
			t.Errorf("span %d: events = %v; want one exception", i, s.Events())
		}
	}

	rm := e.collect()
	for _, c := range []struct {
		match []attribute.KeyValue
		want  int64
	}{
		{nil, 5},
		{[]attribute.KeyValue{attribute.String("error.type", "*errors.errorString")}, 1},
		{[]attribute.KeyValue{attribute.String("error.type", "*sgotel_test.batchError")}, 2},
	} {
		if n := sum(t, rm, "messaging.client.sent.messages", c.match...); n != c.want {
			t.Errorf("sent.messages %v = %d; want %d", c.match, n, c.want)
		}
	}
	// The two written entries of the batch: no error.type.
	m, _ := find(rm, "messaging.client.sent.messages")
	var written int64
	for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if _, ok := p.Attributes.Value("error.type"); !ok {
			written += p.Value
		}
	}
	if written != 2 {
		t.Errorf("sent.messages without error.type = %d; want 2", written)
	}
}

// The consumer's span is a child of the producer's: same trace, its
// parent the send span, and no link.
func TestConsumerChildOfProducer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.hook.Producer(hook.Target{Kind: hook.Stream, Name: "jobs:email"})
	c := e.hook.Consumer(streamTarget)

	ctx, parent := e.parent(context.Background())
	ctx = baggage.ContextWithBaggage(ctx, mustBaggage(t, "tenant=acme"))
	f := publish(ctx, p, 1, []string{"1-0"}, nil)
	parent.End()
	if f["baggage"] != "tenant=acme" {
		t.Errorf("field baggage = %q; want tenant=acme", f["baggage"])
	}

	values := map[string]string{"to": "ada@example.com"}
	for k, v := range f {
		values[k] = v
	}
	m := hook.Message{ID: "1-0", Values: values, Deliveries: 1}
	hctx := c.Start(context.Background(), m)
	if got := baggage.FromContext(hctx).Member("tenant").Value(); got != "acme" {
		t.Errorf("handler's baggage tenant = %q; want acme", got)
	}
	if got := trace.SpanFromContext(hctx).SpanContext(); !got.IsValid() {
		t.Error("the handler's context carries no span")
	}
	c.End(hctx, m, hook.Result{Outcome: hook.Acked, Duration: time.Millisecond, Handled: true})

	send, proc := e.one("send jobs:email"), e.one("process jobs:email")
	if proc.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("kind = %v; want consumer", proc.SpanKind())
	}
	if proc.SpanContext().TraceID() != send.SpanContext().TraceID() {
		t.Errorf("process trace = %v; want the send span's %v", proc.SpanContext().TraceID(), send.SpanContext().TraceID())
	}
	if proc.Parent().SpanID() != send.SpanContext().SpanID() || !proc.Parent().IsRemote() {
		t.Errorf("process parent = %v (remote %v); want the send span %v, remote",
			proc.Parent().SpanID(), proc.Parent().IsRemote(), send.SpanContext().SpanID())
	}
	if len(proc.Links()) != 0 {
		t.Errorf("links = %v; want none", proc.Links())
	}
	if got := trace.SpanFromContext(hctx).SpanContext().SpanID(); got != proc.SpanContext().SpanID() {
		t.Errorf("handler's span = %v; want the process span %v", got, proc.SpanContext().SpanID())
	}
	wantAttrs(t, proc, map[string]string{
		"messaging.system":                   "redis",
		"messaging.destination.name":         "jobs:email",
		"messaging.consumer.group.name":      "mailers",
		"messaging.client.id":                "host-1",
		"messaging.operation.name":           "process",
		"messaging.operation.type":           "process",
		"messaging.message.id":               "1-0",
		"streamgroup.destination.kind":       "stream",
		"streamgroup.message.delivery_count": "1",
		"streamgroup.outcome":                "ack",
	}, "error.type", "streamgroup.handled")
	if proc.Status().Code != codes.Ok {
		t.Errorf("status = %v; want Ok", proc.Status())
	}
}

func mustBaggage(t *testing.T, s string) baggage.Baggage {
	t.Helper()
	b, err := baggage.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A job with no trace context (pushed by another program) gets a root span.
func TestConsumerWithoutTraceContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.hook.Consumer(listTarget)
	m := hook.Message{ID: "018f3a2b4c5d9e8f7a6b5c4d3e2f", Values: map[string]string{"payload": "{}"}}
	ctx := c.Start(context.Background(), m)
	c.End(ctx, m, hook.Result{Outcome: hook.Acked, Handled: true})

	s := e.one("process jobs:thumbs")
	if s.Parent().IsValid() {
		t.Errorf("parent = %v; want none", s.Parent())
	}
	wantAttrs(t, s, map[string]string{
		"streamgroup.destination.kind": "list",
		"messaging.client.id":          "host-2",
		"messaging.message.id":         "018f3a2b4c5d9e8f7a6b5c4d3e2f",
	}, "messaging.consumer.group.name", "streamgroup.message.delivery_count")
}

func TestConsumerOutcomes(t *testing.T) {
	t.Parallel()
	boom := errors.New("smtp: 451 try later")
	for _, tc := range []struct {
		r        hook.Result
		code     codes.Code
		desc     string
		errType  string // "" for none
		handled  string // streamgroup.handled, "" for none
		outcome  string
		exceptns int
	}{
		{hook.Result{Outcome: hook.Acked, Handled: true}, codes.Ok, "", "", "", "ack", 0},
		{hook.Result{Outcome: hook.Retried, Err: boom, Handled: true}, codes.Error, boom.Error(), "*errors.errorString", "", "retry", 1},
		{hook.Result{Outcome: hook.DeadLettered, Err: fmt.Errorf("bad: %w", &batchError{1}), Handled: true}, codes.Error, "bad: 1 entries failed", "*sgotel_test.batchError", "", "dead_letter", 1},
		{hook.Result{Outcome: hook.DeadLettered, Err: errors.New("delivered 6 times"), Handled: false}, codes.Error, "delivered 6 times", "*errors.errorString", "false", "dead_letter", 1},
		{hook.Result{Outcome: hook.Abandoned, Handled: true}, codes.Error, "abandoned", "abandoned", "", "abandoned", 0},
		{hook.Result{Outcome: hook.Abandoned, Err: boom, Handled: true}, codes.Error, boom.Error(), "*errors.errorString", "", "abandoned", 1},
	} {
		t.Run(fmt.Sprintf("%s/handled=%v/err=%v", tc.r.Outcome, tc.r.Handled, tc.r.Err != nil), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			c := e.hook.Consumer(streamTarget)
			m := hook.Message{ID: "7-0", Values: map[string]string{}, Deliveries: 3}
			ctx := context.Background()
			if tc.r.Handled {
				ctx = c.Start(ctx, m)
			}
			c.End(ctx, m, tc.r)

			s := e.one("process jobs:email")
			if s.Status().Code != tc.code || s.Status().Description != tc.desc {
				t.Errorf("End(%v) status = %v; want %v %q", tc.r, s.Status(), tc.code, tc.desc)
			}
			want := map[string]string{"streamgroup.outcome": tc.outcome, "streamgroup.message.delivery_count": "3", "messaging.message.id": "7-0"}
			var absent []string
			if tc.errType != "" {
				want["error.type"] = tc.errType
			} else {
				absent = append(absent, "error.type")
			}
			if tc.handled != "" {
				want["streamgroup.handled"] = tc.handled
			} else {
				absent = append(absent, "streamgroup.handled")
			}
			wantAttrs(t, s, want, absent...)
			if n := len(s.Events()); n != tc.exceptns {
				t.Errorf("End(%v) events = %v; want %d exception", tc.r, s.Events(), tc.exceptns)
			}
		})
	}
}

// A handler whose context already carries a span (the consumer's Run
// context did) still gets the process span, and End ends that one.
func TestConsumerAmbientSpan(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.hook.Consumer(streamTarget)
	ctx, run := e.parent(context.Background())
	m := hook.Message{ID: "1-0", Deliveries: 1}
	hctx := c.Start(ctx, m)
	c.End(hctx, m, hook.Result{Outcome: hook.Acked, Handled: true})
	s := e.one("process jobs:email")
	if s.Parent().SpanID() != run.SpanContext().SpanID() {
		t.Errorf("parent = %v; want the context's span %v when the job carries none", s.Parent().SpanID(), run.SpanContext().SpanID())
	}
	if !run.IsRecording() {
		t.Error("End ended the context's span, not its own")
	}
	run.End()
}

// The counters equal exactly what the test did.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.hook.Producer(hook.Target{Kind: hook.Stream, Name: "jobs:email"})
	c := e.hook.Consumer(streamTarget)
	lc := e.hook.Consumer(listTarget)
	ctx := context.Background()

	publish(ctx, p, 1, []string{"1-0"}, nil)
	publish(ctx, p, 5, []string{"2-0", "2-1", "2-2", "2-3", "2-4"}, nil)

	run := func(c hook.Consumer, r hook.Result) {
		m := hook.Message{ID: "x", Deliveries: 1}
		if r.Handled {
			c.End(c.Start(ctx, m), m, r)
		} else {
			c.End(ctx, m, r)
		}
	}
	fail := errors.New("fail")
	for range 4 {
		run(c, hook.Result{Outcome: hook.Acked, Handled: true, Duration: 20 * time.Millisecond})
	}
	for range 3 {
		run(c, hook.Result{Outcome: hook.Retried, Err: fail, Handled: true, Duration: 2 * time.Second})
	}
	run(c, hook.Result{Outcome: hook.DeadLettered, Err: fail, Handled: true})
	run(c, hook.Result{Outcome: hook.DeadLettered, Err: fail, Handled: false})
	run(c, hook.Result{Outcome: hook.Abandoned, Handled: true})
	run(lc, hook.Result{Outcome: hook.Acked, Handled: true})

	c.Event(hook.Event{Kind: hook.Delivered, N: 10})
	c.Event(hook.Event{Kind: hook.Reclaimed, N: 3})
	c.Event(hook.Event{Kind: hook.Reclaimed, N: 2})
	c.Event(hook.Event{Kind: hook.LeaseLost, ID: "1-0"})
	c.Event(hook.Event{Kind: hook.Released, N: 7})
	c.Event(hook.Event{Kind: hook.GroupCreated})
	c.Event(hook.Event{Kind: hook.GroupCreated})
	c.Event(hook.Event{Kind: hook.Error, Err: fail})
	c.Event(hook.Event{Kind: hook.Error, Err: &batchError{}})
	c.Event(hook.Event{Kind: hook.Error})

	rm := e.collect()
	email := attribute.String("messaging.destination.name", "jobs:email")
	mailers := attribute.String("messaging.consumer.group.name", "mailers")
	outcome := func(o string) attribute.KeyValue { return attribute.String("streamgroup.outcome", o) }
	for _, tc := range []struct {
		name  string
		match []attribute.KeyValue
		want  int64
	}{
		{"messaging.client.sent.messages", []attribute.KeyValue{email}, 6},
		{"messaging.client.consumed.messages", []attribute.KeyValue{email, mailers, redisSystem, attribute.String("messaging.operation.name", "process")}, 9},
		{"messaging.client.consumed.messages", []attribute.KeyValue{attribute.String("messaging.destination.name", "jobs:thumbs")}, 1},
		{"streamgroup.consumer.handled.messages", []attribute.KeyValue{email, mailers, outcome("ack")}, 4},
		{"streamgroup.consumer.handled.messages", []attribute.KeyValue{email, outcome("retry")}, 3},
		{"streamgroup.consumer.handled.messages", []attribute.KeyValue{email, outcome("dead_letter")}, 1},
		{"streamgroup.consumer.handled.messages", []attribute.KeyValue{email, outcome("abandoned")}, 1},
		{"streamgroup.consumer.handled.messages", []attribute.KeyValue{attribute.String("messaging.destination.name", "jobs:thumbs"), outcome("ack")}, 1},
		{"streamgroup.consumer.retries", []attribute.KeyValue{email, mailers}, 3},
		{"streamgroup.consumer.dead_letters", []attribute.KeyValue{email, attribute.Bool("streamgroup.handled", true)}, 1},
		{"streamgroup.consumer.dead_letters", []attribute.KeyValue{email, attribute.Bool("streamgroup.handled", false)}, 1},
		{"streamgroup.consumer.reclaimed.messages", []attribute.KeyValue{email, mailers}, 5},
		{"streamgroup.consumer.lost_leases", []attribute.KeyValue{email}, 1},
		{"streamgroup.consumer.released.messages", []attribute.KeyValue{email}, 7},
		{"streamgroup.consumer.groups_created", []attribute.KeyValue{email, mailers}, 2},
		{"streamgroup.consumer.errors", []attribute.KeyValue{email}, 3},
		{"streamgroup.consumer.errors", []attribute.KeyValue{attribute.String("error.type", "*sgotel_test.batchError")}, 1},
		{"streamgroup.consumer.errors", []attribute.KeyValue{attribute.String("error.type", "_OTHER")}, 1},
	} {
		if n := sum(t, rm, tc.name, tc.match...); n != tc.want {
			t.Errorf("%s %v = %d; want %d", tc.name, tc.match, n, tc.want)
		}
	}

	// Handler durations: one point per outcome, the failed ones with error.type.
	pts := histogram(t, rm, "messaging.process.duration", email, outcome("ack"))
	if len(pts) != 1 || pts[0].Count != 4 || pts[0].Sum != 0.08 {
		t.Fatalf("process.duration ack = %+v; want one point, count 4, sum 0.08", pts)
	}
	if want := []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}; !slices.Equal(pts[0].Bounds, want) {
		t.Errorf("process.duration bounds = %v; want the semantic conventions' %v", pts[0].Bounds, want)
	}
	if _, ok := pts[0].Attributes.Value("error.type"); ok {
		t.Error("process.duration ack has error.type")
	}
	pts = histogram(t, rm, "messaging.process.duration", email, outcome("retry"), attribute.String("error.type", "*errors.errorString"))
	if len(pts) != 1 || pts[0].Count != 3 || pts[0].Sum != 6 {
		t.Errorf("process.duration retry = %+v; want one point, count 3, sum 6", pts)
	}
	var n uint64
	for _, p := range histogram(t, rm, "messaging.process.duration", email) {
		n += p.Count
	}
	if n != 9 {
		t.Errorf("process.duration count = %d; want 9 (the unhandled dead letter has no duration)", n)
	}
	m, _ := find(rm, "messaging.process.duration")
	if m.Unit != "s" {
		t.Errorf("process.duration unit = %q; want s", m.Unit)
	}
}

// The default propagator: the global one if set, else W3C Trace Context
// and Baggage.
func TestDefaultPropagator(t *testing.T) { // not parallel: sets the global propagator
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "job")
	defer span.End()

	fieldsOf := func(h *sgotel.Hook) []string {
		pub := &hook.Publish{Count: 1}
		h.Producer(hook.Target{Kind: hook.Stream, Name: "s"}).Publish(ctx, pub)
		return keys(fields(pub.Fields()))
	}
	if len(otel.GetTextMapPropagator().Fields()) != 0 {
		t.Fatalf("the global propagator is set (%T) before the test", otel.GetTextMapPropagator())
	}
	// Setting the global propagator back to the one
	// otel.GetTextMapPropagator returned is refused: set a no-op instead.
	t.Cleanup(func() { otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator()) })

	h, err := sgotel.New(&sgotel.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if got := fieldsOf(h); !slices.Equal(got, []string{"traceparent"}) {
		t.Errorf("no global propagator: fields %v; want [traceparent]", got)
	}

	otel.SetTextMapPropagator(fieldProp{})
	h, err = sgotel.New(&sgotel.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	if got := fieldsOf(h); !slices.Equal(got, []string{"x-trace"}) {
		t.Errorf("global propagator set: fields %v; want [x-trace]", got)
	}

	h, err = sgotel.New(&sgotel.Options{TracerProvider: tp, Propagator: propagation.TraceContext{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fieldsOf(h); !slices.Equal(got, []string{"traceparent"}) {
		t.Errorf("Options.Propagator: fields %v; want [traceparent]", got)
	}
}

// fieldProp writes one field of its own.
type fieldProp struct{}

func (fieldProp) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	c.Set("x-trace", trace.SpanContextFromContext(ctx).TraceID().String())
}
func (fieldProp) Extract(ctx context.Context, _ propagation.TextMapCarrier) context.Context {
	return ctx
}
func (fieldProp) Fields() []string { return []string{"x-trace"} }

func TestNewNil(t *testing.T) {
	t.Parallel()
	h, err := sgotel.New(nil)
	if err != nil || h == nil {
		t.Fatalf("New(nil) = %v, %v; want a Hook", h, err)
	}
}

// A list consumer of several queues records each job under the queue it
// came from (hook.Message.Name); events go to its first queue.
func TestConsumerSeveralQueues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.hook.Consumer(hook.Target{Kind: hook.List, Name: "q:high", Consumer: "host-1",
		Queues: []string{"q:high", "q:low"}, DeadLetters: []string{"{q:high}:dead", "{q:low}:dead"}})
	for _, name := range []string{"q:low", "q:high", "q:low", ""} {
		m := hook.Message{ID: "1", Name: name, Deliveries: 1}
		c.End(c.Start(context.Background(), m), m, hook.Result{Outcome: hook.Acked, Handled: true})
	}
	c.Event(hook.Event{Kind: hook.Released, N: 2})
	if high, low := len(e.ended("process q:high")), len(e.ended("process q:low")); high != 2 || low != 2 {
		t.Errorf("process spans: %d of q:high, %d of q:low; want 2 and 2 (a job without a name goes to the first)", high, low)
	}
	for _, s := range e.ended("process q:low") {
		wantAttrs(t, s, map[string]string{"messaging.destination.name": "q:low"})
	}
	rm := e.collect()
	for _, tc := range []struct {
		name, queue string
		want        int64
	}{
		{"messaging.client.consumed.messages", "q:high", 2},
		{"messaging.client.consumed.messages", "q:low", 2},
		{"streamgroup.consumer.released.messages", "q:high", 2},
		{"streamgroup.consumer.released.messages", "q:low", 0},
	} {
		if n := sum(t, rm, tc.name, attribute.String("messaging.destination.name", tc.queue)); n != tc.want {
			t.Errorf("%s of %s = %d; want %d", tc.name, tc.queue, n, tc.want)
		}
	}
}
