package integration_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// A burst target is one kind of queue the work-conservation scenario runs
// on: it publishes jobs and runs a consumer with default options but
// Concurrency.
type burstTarget struct {
	name    string
	publish func(t testing.TB, n int, slow bool)
	consume func(t testing.TB, name string, concurrency int, h handler.Handler) *running
}

func streamBurstTarget(t testing.TB, rdb redis.UniversalClient) burstTarget {
	key, grp := redistest.Names(t)
	p, err := stream.NewProducer(rdb, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return burstTarget{
		name: "stream",
		publish: func(t testing.TB, n int, slow bool) {
			for start := 0; start < n; start += 500 {
				batch := make([]stream.Entry, 0, 500)
				for range min(500, n-start) {
					batch = append(batch, stream.Entry{Values: map[string]any{"slow": slow}})
				}
				if _, err := p.AddBatch(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
			}
		},
		consume: func(t testing.TB, name string, concurrency int, h handler.Handler) *running {
			c, err := group.NewConsumer(rdb, key, grp, name, h, &group.Options{Concurrency: concurrency})
			if err != nil {
				t.Fatal(err)
			}
			return start(t, c.Run)
		},
	}
}

// burstResult is what one run of the scenario measured.
type burstResult struct {
	shares  [2]int64      // slow jobs handled by each consumer
	elapsed time.Duration // from the burst's publication to its last job done
	ideal   time.Duration // the burst's work spread evenly over every worker
}

// runBurst runs the scenario the issue describes, as a new user would: two
// consumers with default options (Concurrency 4) drain 20,000 instant jobs,
// then a burst of 64 jobs of 100ms each arrives.
func runBurst(t testing.TB, tg burstTarget) burstResult {
	const (
		concurrency = 4
		instant     = 20000
		burst       = 64
		slowFor     = 100 * time.Millisecond
	)
	var fast atomic.Int64
	var shares [2]atomic.Int64
	var mu sync.Mutex
	var last time.Time
	handlers := [2]handler.Handler{}
	for i := range handlers {
		handlers[i] = handler.Func(func(ctx context.Context, m *stream.Message) error {
			if m.Values["slow"] != "1" {
				fast.Add(1)
				return nil
			}
			time.Sleep(slowFor)
			shares[i].Add(1)
			mu.Lock()
			last = time.Now()
			mu.Unlock()
			return nil
		})
	}
	tg.publish(t, instant, false)
	runs := []*running{
		tg.consume(t, "a", concurrency, handlers[0]),
		tg.consume(t, "b", concurrency, handlers[1]),
	}
	eventually(t, 2*time.Minute, "the instant jobs drained", func() bool { return fast.Load() == instant })
	begin := time.Now()
	tg.publish(t, burst, true)
	eventually(t, time.Minute, "the burst handled", func() bool { return shares[0].Load()+shares[1].Load() == burst })
	for _, r := range runs {
		if err := r.Stop(); err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return burstResult{
		shares:  [2]int64{shares[0].Load(), shares[1].Load()},
		elapsed: last.Sub(begin),
		ideal:   time.Duration(burst/(2*concurrency)) * slowFor,
	}
}

// TestWorkConservation: no consumer sits idle while another holds
// fetched, unstarted work. Before the engine watched handler times, the
// prefetch sized for the instant jobs let one consumer's read take 62 of
// the 64 slow jobs and the other 2; now the consumer that took too much
// hands the surplus back once its handlers turn slow, and the idle one
// takes it within a read's round trip. Each must handle at least a quarter
// of the burst. How long the burst takes against the ideal is measured by
// BenchmarkWorkConservation, not asserted here.
func TestWorkConservation(t *testing.T) {
	for _, tg := range burstTargets(t) {
		t.Run(tg.name, func(t *testing.T) {
			r := runBurst(t, tg)
			t.Logf("%s: shares %v, burst took %v (ideal %v, %.2fx)", tg.name, r.shares, r.elapsed, r.ideal, float64(r.elapsed)/float64(r.ideal))
			for i, n := range r.shares {
				if n < 16 {
					t.Errorf("consumer %d handled %d of the 64 slow jobs (shares %v); want at least a quarter each", i, n, r.shares)
				}
			}
		})
	}
}

// BenchmarkWorkConservation reports how long the burst of TestWorkConservation
// takes as a ratio to the ideal (x-ideal; 1.0 is perfect sharing):
//
//	go test -run '^$' -bench WorkConservation -benchtime 3x ./integration_test/
func BenchmarkWorkConservation(b *testing.B) {
	for i, name := range burstTargetNames {
		b.Run(name, func(b *testing.B) {
			var ratio float64
			for run := range b.N {
				r := runBurst(b, burstTargets(b)[i])
				ratio += float64(r.elapsed) / float64(r.ideal)
				b.Logf("run %d: shares %v, %.2fx ideal", run, r.shares, float64(r.elapsed)/float64(r.ideal))
			}
			b.ReportMetric(ratio/float64(b.N), "x-ideal")
		})
	}
}

func listBurstTarget(t testing.TB, rdb redis.UniversalClient, reliable bool) burstTarget {
	key, _ := redistest.Names(t)
	q := key + ":q"
	p, err := queue.NewProducer(rdb, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := "simple list"
	if reliable {
		name = "reliable list"
	}
	return burstTarget{
		name: name,
		publish: func(t testing.TB, n int, slow bool) {
			for start := 0; start < n; start += 500 {
				batch := make([]map[string]any, 0, 500)
				for range min(500, n-start) {
					batch = append(batch, map[string]any{"slow": slow})
				}
				if _, err := p.PushBatch(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
			}
		},
		consume: func(t testing.TB, name string, concurrency int, h handler.Handler) *running {
			opts := &queue.Options{Concurrency: concurrency}
			var c *queue.Consumer
			var err error
			if reliable {
				c, err = queue.NewReliableConsumer(rdb, []string{q}, name, h, opts)
			} else {
				c, err = queue.NewSimpleConsumer(rdb, []string{q}, h, opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			return start(t, c.Run)
		},
	}
}

// burstTargetNames names the targets burstTargets returns, in order.
var burstTargetNames = []string{"stream", "reliable list", "simple list"}

// burstTargets returns a fresh target of every kind, on fresh keys.
func burstTargets(t testing.TB) []burstTarget {
	rdb := redistest.Client(t)
	return []burstTarget{streamBurstTarget(t, rdb), listBurstTarget(t, rdb, true), listBurstTarget(t, rdb, false)}
}
