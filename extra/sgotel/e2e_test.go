package sgotel_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// system is one producer and consumer kind run end to end against Redis.
type system struct {
	name  string
	kind  string // streamgroup.destination.kind
	group bool   // whether spans and metrics name a consumer group
	// setup returns the destination's key, a single and a batch publish,
	// and a consumer's Run, all given h.
	setup func(t *testing.T, rdb *redis.Client, h hook.Hook, hd handler.Handler, onError func(error)) (key string, one func(context.Context, map[string]any) (string, error), batch func(context.Context, []map[string]any) ([]string, error), run func(context.Context) error)
}

var systems = []system{
	{name: "stream", kind: "stream", group: true, setup: setupStream},
	{name: "reliable list", kind: "list", setup: setupList(true)},
	{name: "simple list", kind: "list", setup: setupList(false)},
}

const testGroup = "mailers"

func setupStream(t *testing.T, rdb *redis.Client, h hook.Hook, hd handler.Handler, onError func(error)) (string, func(context.Context, map[string]any) (string, error), func(context.Context, []map[string]any) ([]string, error), func(context.Context) error) {
	key, _ := redistest.Names(t)
	p, err := stream.NewProducer(rdb, key, &stream.ProducerOptions{Hook: h})
	if err != nil {
		t.Fatal(err)
	}
	c, err := group.NewConsumer(rdb, key, testGroup, "host-1", hd, &group.Options{
		Hook: h, OnError: onError, RetryBackoff: 10 * time.Millisecond, Block: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(ctx context.Context, vs []map[string]any) ([]string, error) {
		entries := make([]stream.Entry, len(vs))
		for i, v := range vs {
			entries[i] = stream.Entry{Values: v}
		}
		return p.AddBatch(ctx, entries)
	}
	return key, p.Add, batch, c.Run
}

func setupList(reliable bool) func(t *testing.T, rdb *redis.Client, h hook.Hook, hd handler.Handler, onError func(error)) (string, func(context.Context, map[string]any) (string, error), func(context.Context, []map[string]any) ([]string, error), func(context.Context) error) {
	return func(t *testing.T, rdb *redis.Client, h hook.Hook, hd handler.Handler, onError func(error)) (string, func(context.Context, map[string]any) (string, error), func(context.Context, []map[string]any) ([]string, error), func(context.Context) error) {
		key, _ := redistest.Names(t)
		q := key + ":q"
		p, err := queue.NewProducer(rdb, q, &queue.ProducerOptions{Hook: h})
		if err != nil {
			t.Fatal(err)
		}
		opts := &queue.Options{Hook: h, OnError: onError, RetryBackoff: 10 * time.Millisecond, PollInterval: 100 * time.Millisecond}
		var c *queue.Consumer
		if reliable {
			c, err = queue.NewReliableConsumer(rdb, []string{q}, "host-1", hd, opts)
		} else {
			c, err = queue.NewSimpleConsumer(rdb, []string{q}, hd, opts)
		}
		if err != nil {
			t.Fatal(err)
		}
		return q, p.Push, p.PushBatch, c.Run
	}
}

// jobHandler: "ok" and "batch" jobs succeed; "flaky" fails on its first
// two deliveries and succeeds on the third; "bad" fails permanently.
var jobHandler = handler.Func(func(ctx context.Context, m *stream.Message) error {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return handler.Permanent(errors.New("the handler's context carries no span"))
	}
	switch m.Values["job"] {
	case "flaky":
		if m.Deliveries < 3 {
			return fmt.Errorf("flaky: delivery %d", m.Deliveries)
		}
	case "bad":
		return handler.Permanent(errors.New("bad job"))
	}
	return nil
})

// A job published inside a span is handled in a process span whose parent
// is the job's send span; the outcome sets the status; a retried job gets
// a span per delivery; the counters equal what the test did.
func TestEndToEnd(t *testing.T) {
	for _, sys := range systems {
		t.Run(sys.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			e := newEnv(t)
			var onErrors atomic.Int64
			key, one, batch, run := sys.setup(t, rdb, e.hook, jobHandler, func(error) { onErrors.Add(1) })

			// Each job published in a parent span of its own.
			ctx := context.Background()
			parents := map[string]trace.SpanContext{} // job → its parent span
			ids := map[string]string{}                // entry ID → job
			for _, job := range []string{"ok", "flaky", "bad"} {
				pctx, parent := e.parent(ctx)
				id, err := one(pctx, map[string]any{"job": job})
				parent.End()
				if err != nil {
					t.Fatal(err)
				}
				parents[job], ids[id] = parent.SpanContext(), job
			}
			pctx, parent := e.parent(ctx)
			bids, err := batch(pctx, []map[string]any{{"job": "batch"}, {"job": "batch"}, {"job": "batch"}, {"job": "batch"}})
			parent.End()
			if err != nil {
				t.Fatal(err)
			}
			parents["batch"] = parent.SpanContext()
			for _, id := range bids {
				ids[id] = "batch"
			}

			r := redistest.Go(t, run)
			const deliveries = 1 + 3 + 1 + 4
			redistest.Eventually(t, 10*time.Second, "9 process spans", func() bool {
				return len(e.ended("process "+key)) >= deliveries
			})
			if err := r.Stop(); err != nil {
				t.Fatalf("Run = %v", err)
			}

			// Send spans: one per publish, children of the publish's span.
			sends := e.ended("send " + key)
			if len(sends) != 4 {
				t.Fatalf("send spans: %d; want 4 (three single publishes, one batch)", len(sends))
			}
			sendOf := map[string]sdktrace.ReadOnlySpan{} // job → its send span
			for _, s := range sends {
				a := attrs(s)
				job := ids[a["messaging.message.id"]]
				if a["messaging.batch.message_count"] == "4" {
					job = "batch"
				}
				if job == "" {
					t.Fatalf("send span with attributes %v: no job", a)
				}
				sendOf[job] = s
				if s.Parent().SpanID() != parents[job].SpanID() {
					t.Errorf("send span of %s: parent %v; want the publish's span %v", job, s.Parent().SpanID(), parents[job].SpanID())
				}
				wantAttrs(t, s, map[string]string{"streamgroup.destination.kind": sys.kind, "messaging.destination.name": key})
			}

			// Process spans: children of their job's send span.
			byJob := map[string][]sdktrace.ReadOnlySpan{}
			procs := e.ended("process " + key)
			if len(procs) != deliveries {
				t.Fatalf("process spans: %d; want %d", len(procs), deliveries)
			}
			for _, s := range procs {
				job := ids[attrs(s)["messaging.message.id"]]
				byJob[job] = append(byJob[job], s)
				send := sendOf[job]
				if s.SpanContext().TraceID() != parents[job].TraceID() {
					t.Errorf("process span of %s: trace %v; want the publisher's %v", job, s.SpanContext().TraceID(), parents[job].TraceID())
				}
				if s.Parent().SpanID() != send.SpanContext().SpanID() || !s.Parent().IsRemote() {
					t.Errorf("process span of %s: parent %v (remote %v); want its send span %v", job, s.Parent().SpanID(), s.Parent().IsRemote(), send.SpanContext().SpanID())
				}
				if len(s.Links()) != 0 {
					t.Errorf("process span of %s: links %v; want none", job, s.Links())
				}
				want := map[string]string{
					"messaging.system":             "redis",
					"streamgroup.destination.kind": sys.kind,
					"messaging.destination.name":   key,
				}
				var absent []string
				if sys.group {
					want["messaging.consumer.group.name"] = testGroup
				} else {
					absent = append(absent, "messaging.consumer.group.name")
				}
				wantAttrs(t, s, want, absent...)
			}
			type span struct {
				deliveries string
				outcome    string
				code       codes.Code
			}
			for job, want := range map[string][]span{
				"ok":    {{"1", "ack", codes.Ok}},
				"flaky": {{"1", "retry", codes.Error}, {"2", "retry", codes.Error}, {"3", "ack", codes.Ok}},
				"bad":   {{"1", "dead_letter", codes.Error}},
				"batch": {{"1", "ack", codes.Ok}, {"1", "ack", codes.Ok}, {"1", "ack", codes.Ok}, {"1", "ack", codes.Ok}},
			} {
				var got []span
				for _, s := range byJob[job] {
					a := attrs(s)
					got = append(got, span{a["streamgroup.message.delivery_count"], a["streamgroup.outcome"], s.Status().Code})
				}
				slices.SortFunc(got, func(a, b span) int { return compareNum(a.deliveries, b.deliveries) })
				if !slices.Equal(got, want) {
					t.Errorf("process spans of %s (delivery count, outcome, status) = %v; want %v", job, got, want)
				}
			}

			// Metrics: exactly what the test did. Run has returned, so
			// every hook call is done.
			rm := e.collect()
			dest := attribute.String("messaging.destination.name", key)
			outcome := func(o string) attribute.KeyValue { return attribute.String("streamgroup.outcome", o) }
			created := int64(0)
			if sys.group {
				created = 1
			}
			for _, c := range []struct {
				name  string
				match []attribute.KeyValue
				want  int64
			}{
				{"messaging.client.sent.messages", []attribute.KeyValue{dest}, 7},
				{"messaging.client.consumed.messages", []attribute.KeyValue{dest}, deliveries},
				{"streamgroup.consumer.handled.messages", []attribute.KeyValue{dest, outcome("ack")}, 6},
				{"streamgroup.consumer.handled.messages", []attribute.KeyValue{dest, outcome("retry")}, 2},
				{"streamgroup.consumer.handled.messages", []attribute.KeyValue{dest, outcome("dead_letter")}, 1},
				{"streamgroup.consumer.handled.messages", []attribute.KeyValue{dest, outcome("abandoned")}, 0},
				{"streamgroup.consumer.retries", []attribute.KeyValue{dest}, 2},
				{"streamgroup.consumer.dead_letters", []attribute.KeyValue{dest, attribute.Bool("streamgroup.handled", true)}, 1},
				{"streamgroup.consumer.dead_letters", []attribute.KeyValue{dest, attribute.Bool("streamgroup.handled", false)}, 0},
				{"streamgroup.consumer.reclaimed.messages", []attribute.KeyValue{dest}, 0},
				{"streamgroup.consumer.lost_leases", []attribute.KeyValue{dest}, 0},
				{"streamgroup.consumer.groups_created", []attribute.KeyValue{dest}, created},
				{"streamgroup.consumer.errors", []attribute.KeyValue{dest}, onErrors.Load()},
			} {
				if n := sum(t, rm, c.name, c.match...); n != c.want {
					t.Errorf("%s %v = %d; want %d", c.name, c.match, n, c.want)
				}
			}
			var n uint64
			for _, p := range histogram(t, rm, "messaging.process.duration", dest) {
				n += p.Count
			}
			if n != deliveries {
				t.Errorf("process.duration count = %d; want %d", n, deliveries)
			}
		})
	}
}

func compareNum(a, b string) int {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return x - y
}

// Jobs dead-lettered without a handler call get a process span with
// streamgroup.handled=false and count as unhandled dead letters.
func TestUnhandledDeadLetter(t *testing.T) {
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		rdb := redistest.Client(t)
		e := newEnv(t)
		key, grp := redistest.Names(t)
		ctx := context.Background()
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: map[string]any{"job": "x"}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		// Another consumer reads it (delivery 1) and dies: the consumer's
		// reclaimer takes it over as delivery 2, past MaxDeliveries 1.
		if err := rdb.XGroupCreate(ctx, key, grp, "0").Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: grp, Consumer: "ghost", Streams: []string{key, ">"}, Count: 1, Block: -1}).Err(); err != nil {
			t.Fatal(err)
		}
		var called atomic.Int64
		c, err := group.NewConsumer(rdb, key, grp, "host-1", handler.Func(func(context.Context, *stream.Message) error {
			called.Add(1)
			return nil
		}), &group.Options{Hook: e.hook, MaxDeliveries: 1, MinIdle: 10 * time.Millisecond, Block: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		r := redistest.Go(t, c.Run)
		redistest.Eventually(t, 10*time.Second, "the dead letter", func() bool {
			return rdb.XLen(ctx, stream.DeadLetterKey(key)).Val() == 1
		})
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
		checkUnhandled(t, e, key, id, called.Load())
	})
	t.Run("list", func(t *testing.T) {
		t.Parallel()
		rdb := redistest.Client(t)
		e := newEnv(t)
		key, _ := redistest.Names(t)
		q := key + ":q"
		ctx := context.Background()
		// A job that has had its 5 deliveries (MaxDeliveries): the fetch
		// counts a sixth, and the consumer dead-letters it unhandled.
		if err := rdb.LPush(ctx, q, `{"sg":1,"n":5,"id":"x1","v":{"job":"x"}}`).Err(); err != nil {
			t.Fatal(err)
		}
		var called atomic.Int64
		c, err := queue.NewReliableConsumer(rdb, []string{q}, "host-1", handler.Func(func(context.Context, *stream.Message) error {
			called.Add(1)
			return nil
		}), &queue.Options{Hook: e.hook, PollInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		r := redistest.Go(t, c.Run)
		redistest.Eventually(t, 10*time.Second, "the dead letter", func() bool {
			return rdb.LLen(ctx, queue.DeadLetterKey(q)).Val() == 1
		})
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
		checkUnhandled(t, e, q, "x1", called.Load())
	})
}

func checkUnhandled(t *testing.T, e *env, key, id string, called int64) {
	t.Helper()
	if called != 0 {
		t.Errorf("handler called %d times; want 0", called)
	}
	s := e.one("process " + key)
	want := map[string]string{"streamgroup.handled": "false", "streamgroup.outcome": "dead_letter"}
	if id != "" {
		want["messaging.message.id"] = id
	}
	wantAttrs(t, s, want)
	if s.Status().Code != codes.Error {
		t.Errorf("status = %v; want Error", s.Status())
	}
	rm := e.collect()
	dest := attribute.String("messaging.destination.name", key)
	for _, c := range []struct {
		name  string
		match []attribute.KeyValue
		want  int64
	}{
		{"streamgroup.consumer.dead_letters", []attribute.KeyValue{dest, attribute.Bool("streamgroup.handled", false)}, 1},
		{"streamgroup.consumer.dead_letters", []attribute.KeyValue{dest, attribute.Bool("streamgroup.handled", true)}, 0},
		{"streamgroup.consumer.handled.messages", []attribute.KeyValue{dest}, 0},
		{"messaging.client.consumed.messages", []attribute.KeyValue{dest}, 0},
	} {
		if n := sum(t, rm, c.name, c.match...); n != c.want {
			t.Errorf("%s %v = %d; want %d", c.name, c.match, n, c.want)
		}
	}
}

// A list consumer of several queues names, in each job's span and
// metrics, the queue the job came from.
func TestSeveralQueues(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	e := newEnv(t)
	key, _ := redistest.Names(t)
	q1, q2 := key+":high", key+":low"
	ctx := context.Background()
	for _, q := range []string{q1, q2, q2} {
		p, err := queue.NewProducer(rdb, q, &queue.ProducerOptions{Hook: e.hook})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Push(ctx, map[string]any{"job": "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := queue.NewReliableConsumer(rdb, []string{q1, q2}, "host-1", jobHandler, &queue.Options{Hook: e.hook, PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := redistest.Go(t, c.Run)
	redistest.Eventually(t, 10*time.Second, "3 process spans", func() bool {
		return len(e.ended("process "+q1))+len(e.ended("process "+q2)) == 3
	})
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if n1, n2 := len(e.ended("process "+q1)), len(e.ended("process "+q2)); n1 != 1 || n2 != 2 {
		t.Errorf("process spans: %d of %s, %d of %s; want 1 and 2", n1, q1, n2, q2)
	}
	for _, s := range e.ended("process " + q2) {
		wantAttrs(t, s, map[string]string{"messaging.destination.name": q2})
	}
	rm := e.collect()
	for q, want := range map[string]int64{q1: 1, q2: 2} {
		if n := sum(t, rm, "messaging.client.consumed.messages", attribute.String("messaging.destination.name", q)); n != want {
			t.Errorf("consumed.messages of %s = %d; want %d", q, n, want)
		}
	}
}
