package engine_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/stream"
)

// BenchmarkHook measures what a hook costs the engine per job: the same
// consumer workload (b.N jobs fetched in batches from an in-memory source
// that allocates nothing per job, an empty handler, settling in batches)
// with no hook and with a hook whose methods do nothing. ns/op and
// allocs/op are per job; the hook's cost is the ratio of the two:
//
//	go test -run '^$' -bench Hook -count 6 ./internal/engine/ > hook.txt
//	benchstat -col /hook hook.txt
//
// With no hook the engine allocates nothing per job (allocs/op 0: what
// allocation there is comes per fetch or settle batch).
func BenchmarkHook(b *testing.B) {
	for _, conc := range []int{1, 16} {
		for _, hc := range []struct {
			name string
			hook hook.Consumer
		}{{"none", nil}, {"noop", noopHook{}}} {
			b.Run(fmt.Sprintf("concurrency=%d/hook=%s", conc, hc.name), func(b *testing.B) {
				benchEngine(b, conc, hc.hook)
			})
		}
	}
}

func benchEngine(b *testing.B, concurrency int, hc hook.Consumer) {
	src := newBenchSource(b.N)
	var n atomic.Int64
	done := make(chan struct{})
	want := int64(b.N)
	h := handler.Func(func(context.Context, *stream.Message) error {
		if n.Add(1) == want {
			close(done)
		}
		return nil
	})
	cfg, err := engine.Config{Handler: h, Concurrency: concurrency, Hook: hc}.Normalize()
	if err != nil {
		b.Fatal(err)
	}
	e := engine.New(src, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() { errc <- e.Run(ctx) }()
	<-done
	b.StopTimer()
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	if got := src.settled.Load(); got != want {
		b.Fatalf("settled %d jobs; want %d", got, want)
	}
}

// noopHook is a hook.Consumer that does nothing.
type noopHook struct{}

func (noopHook) Start(ctx context.Context, _ hook.Message) context.Context { return ctx }
func (noopHook) End(context.Context, hook.Message, hook.Result)            {}
func (noopHook) Event(hook.Event)                                          {}

// benchSource hands out n deliveries made before the timer starts, all
// with the same 200-byte body, and settles by counting. What the engine
// hands back (the adaptive prefetch's watch sheds a surplus when handler
// times seem to jump) is handed out again first.
type benchSource struct {
	mu      sync.Mutex
	ds      []*engine.Delivery
	next    int
	back    []*engine.Delivery
	wake    chan struct{}
	settled atomic.Int64
}

func newBenchSource(n int) *benchSource {
	values := map[string]string{"body": strings.Repeat("x", 200)}
	all := make([]engine.Delivery, n)
	ds := make([]*engine.Delivery, n)
	for i := range all {
		id := strconv.Itoa(i) + "-0"
		all[i] = engine.Delivery{Msg: stream.Message{ID: id, Stream: "bench", Values: values, Deliveries: 1}, Key: id}
		ds[i] = &all[i]
	}
	return &benchSource{ds: ds, wake: make(chan struct{}, 1)}
}

func (s *benchSource) Start(context.Context) error                   { return nil }
func (s *benchSource) Stop(context.Context)                          {}
func (s *benchSource) Fetchers() []engine.Fetcher                    { return []engine.Fetcher{s} }
func (s *benchSource) Close()                                        {}
func (s *benchSource) SweepInterval() time.Duration                  { return 0 }
func (s *benchSource) Classify(string, error) (engine.Action, error) { return engine.Wait, nil }

// Fetch returns up to max deliveries, handed back ones first, or waits
// for some to be handed back (or ctx) once all are out.
func (s *benchSource) Fetch(ctx context.Context, max int) ([]*engine.Delivery, error) {
	for {
		s.mu.Lock()
		if n := min(max, len(s.back)); n > 0 {
			ds := append([]*engine.Delivery(nil), s.back[:n]...)
			s.back = s.back[n:]
			s.mu.Unlock()
			return ds, nil
		}
		lo := s.next
		hi := min(lo+max, len(s.ds))
		s.next = hi
		s.mu.Unlock()
		if lo < hi {
			return s.ds[lo:hi:hi], nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-s.wake:
		}
	}
}

func (s *benchSource) Settle(_ context.Context, ds []*engine.Delivery) error {
	s.settled.Add(int64(len(ds)))
	return nil
}

func (s *benchSource) Redeliver(_ context.Context, ds []*engine.Delivery) ([]*engine.Delivery, error) {
	return ds, nil
}

func (s *benchSource) DeadLetter(context.Context, *engine.Delivery, string) (bool, error) {
	return true, nil
}

func (s *benchSource) Release(_ context.Context, ds []*engine.Delivery, _ bool) (int, error) {
	s.mu.Lock()
	s.back = append(s.back, ds...)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return len(ds), nil
}
