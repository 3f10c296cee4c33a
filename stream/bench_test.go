package stream_test

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// Hot paths of decoding an entry:
//
//	go test -run '^$' -bench . -benchmem ./stream/
func BenchmarkFromXMessage(b *testing.B) {
	x := redis.XMessage{ID: "1700000000000-0", Values: map[string]any{
		"payload": `{"to":"user@example.com","subject":"Welcome"}`, "content-type": "application/json",
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := stream.FromXMessage("jobs", x); !ok {
			b.Fatal("not ok")
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	type email struct {
		To      string `json:"to"`
		Subject string `json:"subject"`
	}
	payload := &stream.Message{ID: "1-0", Values: map[string]string{"payload": `{"to":"user@example.com","subject":"Welcome"}`}}
	plain := &stream.Message{ID: "1-0", Values: map[string]string{"to": "user@example.com", "subject": "Welcome"}}
	for _, bc := range []struct {
		name string
		msg  *stream.Message
	}{{"payload", payload}, {"plain-fields", plain}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var e email
				if err := stream.Decode(bc.msg, nil, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stream.ParseID("1700000000000-42"); err != nil {
			b.Fatal(err)
		}
	}
}

// Publishing, against Redis (the harness's; see internal/redistest). The
// three read together: the uncontended add, single adds from ~64 goroutines
// (coalesced into pipelines), and hand-written go-redis pipelines of 100
// XADDs from 4 goroutines, the baseline of bench/ target (e):
//
//	go test -run '^$' -bench 'Add|XAdd' -benchtime 2s -count 3 ./stream/
//
// STREAMGROUP_BENCH_MAXINFLIGHT=n sets ProducerOptions.MaxInFlight of
// BenchmarkAddConcurrent, for tuning.

// benchStream returns a client and a stream key for b, deleted when b ends.
func benchStream(b *testing.B) (*redis.Client, string) {
	b.Helper()
	rdb := redistest.Client(b)
	key, _ := redistest.Names(b)
	b.Cleanup(func() { rdb.Del(context.Background(), key) })
	return rdb, key
}

// benchBody is the job body of every published entry: 200 bytes, as in
// bench/.
var benchBody = bytes.Repeat([]byte("x"), 200)

// reportRate reports msgs/s over the timed part of b.
func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// parallelism returns the b.SetParallelism argument that runs about n
// goroutines.
func parallelism(n int) int { return max(1, n/runtime.GOMAXPROCS(0)) }

func BenchmarkAddSerial(b *testing.B) {
	rdb, key := benchStream(b)
	p, err := stream.NewProducer(rdb, key, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Add(ctx, map[string]any{"p": benchBody}); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkAddConcurrent(b *testing.B) {
	rdb, key := benchStream(b)
	opts := &stream.ProducerOptions{}
	if s := os.Getenv("STREAMGROUP_BENCH_MAXINFLIGHT"); s != "" { // for tuning
		opts.MaxInFlight, _ = strconv.Atoi(s)
	}
	p, err := stream.NewProducer(rdb, key, opts)
	if err != nil {
		b.Fatal(err)
	}
	var pipes pipelineCounter
	rdb.AddHook(&pipes)
	ctx := b.Context()
	b.ReportAllocs()
	b.SetParallelism(parallelism(64))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.Add(ctx, map[string]any{"p": benchBody}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
	n := float64(max(1, pipes.pipelines.Load()))
	b.ReportMetric(float64(pipes.cmds.Load())/n, "adds/pipeline")
	b.ReportMetric(float64(pipes.ns.Load())/n/1e3, "µs/pipeline")
	b.ReportMetric(100*float64(pipes.singles.Load())/n, "%alone")
}

func BenchmarkXAddPipelined(b *testing.B) {
	rdb, key := benchStream(b)
	ctx := b.Context()
	const batch = 100
	b.ReportAllocs()
	b.SetParallelism(parallelism(4))
	b.RunParallel(func(pb *testing.PB) {
		for more := true; more; {
			pipe := rdb.Pipeline()
			n := 0
			for n < batch {
				if more = pb.Next(); !more {
					break
				}
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"p", benchBody}})
				n++
			}
			if n == 0 {
				return
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}

// pipelineCounter is a go-redis hook counting pipelines, the XADDs they
// carry and the time they take, from the write to the last reply.
type pipelineCounter struct {
	pipelines, cmds, ns, singles atomic.Int64
}

func (*pipelineCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook counts an XADD sent alone as a pipeline of one.
func (c *pipelineCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return c.ProcessPipelineHook(func(ctx context.Context, cmds []redis.Cmder) error {
			return next(ctx, cmds[0])
		})(ctx, []redis.Cmder{cmd})
	}
}

func (c *pipelineCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		n := 0
		for _, cmd := range cmds {
			if cmd.Name() == "xadd" {
				n++
			}
		}
		if n == 0 {
			return next(ctx, cmds)
		}
		start := time.Now()
		err := next(ctx, cmds)
		c.ns.Add(int64(time.Since(start)))
		c.pipelines.Add(1)
		c.cmds.Add(int64(n))
		if n == 1 {
			c.singles.Add(1)
		}
		return err
	}
}

// BenchmarkAddHook measures what a producer hook costs an add: Add with no
// hook, with a hook that does nothing, and with one that sets two fields
// the size of a W3C traceparent and tracestate (what the OpenTelemetry
// adapter adds), one goroutine adding (serial) and 64 (concurrent,
// coalesced). The cost is the ratio of ns/op between hook values:
//
//	go test -run '^$' -bench AddHook -benchtime 2s -count 6 ./stream/ > add.txt
//	benchstat -col /hook add.txt
func BenchmarkAddHook(b *testing.B) {
	for _, mode := range []string{"serial", "concurrent"} {
		for _, hc := range []struct {
			name string
			hook hook.Hook
		}{{"none", nil}, {"noop", benchHook{}}, {"fields", benchHook{fields: true}}} {
			b.Run(mode+"/hook="+hc.name, func(b *testing.B) {
				rdb, key := benchStream(b)
				p, err := stream.NewProducer(rdb, key, &stream.ProducerOptions{Hook: hc.hook})
				if err != nil {
					b.Fatal(err)
				}
				ctx := b.Context()
				b.ReportAllocs()
				if mode == "serial" {
					for b.Loop() {
						if _, err := p.Add(ctx, map[string]any{"p": benchBody}); err != nil {
							b.Fatal(err)
						}
					}
					reportRate(b)
					return
				}
				b.SetParallelism(parallelism(64))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := p.Add(ctx, map[string]any{"p": benchBody}); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportRate(b)
			})
		}
	}
}

// benchHook is a hook.Hook whose producer does nothing but, with fields,
// set a traceparent and a tracestate.
type benchHook struct{ fields bool }

func (h benchHook) Producer(hook.Target) hook.Producer { return h }
func (benchHook) Consumer(hook.Target) hook.Consumer   { return nil }

func (h benchHook) Publish(ctx context.Context, p *hook.Publish) context.Context {
	if h.fields {
		p.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		p.Set("tracestate", "congo=t61rcWkgMzE")
	}
	return ctx
}

func (benchHook) Published(context.Context, *hook.Publish) {}
