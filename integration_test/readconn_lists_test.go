package integration_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// listWaitCmd is the blocking command a list consumer waits with.
func listWaitCmd(reliable bool) string {
	if reliable {
		return "blmove"
	}
	return "brpop"
}

// blockedWaits counts the connections named name that are blocked in a
// list consumer's wait (BRPOP or BLMOVE), from CLIENT LIST as admin sees it.
func blockedWaits(t testing.TB, admin redis.UniversalClient, name string, reliable bool) int {
	t.Helper()
	cmd := listWaitCmd(reliable)
	return blockedConns(t, admin, func(f map[string]string) bool { return f["name"] == name && f["cmd"] == cmd })
}

// newListConsumer returns a simple or reliable consumer (named "c") of q.
func newListConsumer(t testing.TB, rdb redis.UniversalClient, q string, reliable bool, h handler.Handler, opts *queue.Options) *queue.Consumer {
	t.Helper()
	var c *queue.Consumer
	var err error
	if reliable {
		c, err = queue.NewReliableConsumer(rdb, []string{q}, "c", h, opts)
	} else {
		c, err = queue.NewSimpleConsumer(rdb, []string{q}, h, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// listModes are the two list consumers, for subtests.
var listModes = []struct {
	name     string
	reliable bool
}{{"simple", false}, {"reliable", true}}

// Thirty list consumers (one per queue) share one client with go-redis's
// default pool, as with streams (TestConsumersDoNotStarveSharedClient).
// Their waits (BRPOP, BLMOVE) must not take the connections a producer on
// that client needs: every Push succeeds within 2s, and the consumers
// handle the jobs. With PollInterval 5s, waits on the shared pool made
// Pushes fail (a Push waited for one of the waits to time out, behind the
// consumers queued for a connection); with the default 1s they took up to
// about a second each.
func TestListConsumersDoNotStarveSharedClient(t *testing.T) {
	t.Parallel()
	for _, mode := range listModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			admin := redistest.Client(t)
			rdb, name := namedCopy(t, admin.Options()) // default PoolSize: 10 per CPU
			// More consumers than the pool has connections, whatever the
			// number of CPUs.
			consumers := max(30, rdb.Options().PoolSize+10)
			var handled keysHandled
			var keys []string
			runs := make([]*running, consumers)
			for i := range consumers {
				q, _ := redistest.Names(t)
				keys = append(keys, q, queue.ProcessingKey(q, "c"), queue.HeartbeatKey(q, "c"), queue.ConsumersKey(q))
				opts := &queue.Options{PollInterval: 5 * time.Second}
				runs[i] = start(t, newListConsumer(t, rdb, q, mode.reliable, &handled, opts).Run)
			}
			stopAllAtCleanup(t, runs, func() { admin.Del(context.Background(), keys...) })
			// The consumers wait for jobs: at least as many waits are
			// blocked as the shared client's pool has connections.
			eventually(t, 30*time.Second, "the consumers waiting", func() bool {
				return blockedWaits(t, admin, name, mode.reliable) >= min(consumers, rdb.Options().PoolSize)
			})
			slowest := eachWithin2s(t, rdb, "Push", consumers, func(ctx context.Context, i int) error {
				p, err := queue.NewProducer(rdb, keys[4*i], nil)
				if err != nil {
					t.Fatal(err)
				}
				_, err = p.Push(ctx, map[string]any{"n": i})
				return err
			})
			t.Logf("slowest Push: %v", slowest.Round(time.Microsecond))
			eventually(t, 30*time.Second, "every job handled", func() bool {
				return handled.count() == consumers
			})
			if mode.reliable {
				eventually(t, 30*time.Second, "every job removed from its processing list", func() bool {
					for i := range consumers {
						if llen(t, admin, keys[4*i+1]) != 0 {
							return false
						}
					}
					return true
				})
			}
		})
	}
}

// Cancelling Run wakes the list consumer's blocked wait: Run returns long
// before PollInterval (30s here) has elapsed. Without +client|unblock a
// reliable consumer closes its waiting connection instead (its BLMOVE moves
// nothing, so a lost reply loses nothing); a simple consumer never does
// that (a lost BRPOP reply would lose the job), so it is not tested here:
// its stop waits for the BRPOP to time out.
func TestListStopWakesBlockedWait(t *testing.T) {
	t.Parallel()
	const poll = 30 * time.Second
	for _, tc := range []struct {
		name      string
		reliable  bool
		noUnblock bool // the user may not run CLIENT UNBLOCK
	}{
		{name: "simple", reliable: false},
		{name: "reliable", reliable: true},
		{name: "reliable without client unblock", reliable: true, noUnblock: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var admin *redis.Client
			var base *redis.Options
			q, _ := redistest.Names(t)
			if tc.noUnblock {
				s := redistest.StartSecureServer(t, &redistest.SecureOptions{Password: "admin-" + randHex(t)})
				admin = s.Client(t)
				pass := randHex(t)
				cmds := slices.DeleteFunc(slices.Clone(listReliableACL), func(c string) bool { return c == "client|unblock" })
				cmds = append(cmds, "client|setname") // the test names the connections to find them
				setUser(t, admin, "worker", pass, "sgtest:*", cmds)
				base = s.Options("worker", pass)
			} else {
				admin = redistest.Client(t)
				base = admin.Options()
				t.Cleanup(func() {
					admin.Del(context.Background(), q, queue.ProcessingKey(q, "c"), queue.HeartbeatKey(q, "c"), queue.ConsumersKey(q))
				})
			}
			rdb, name := namedCopy(t, base)
			var errs secErrors
			opts := &queue.Options{PollInterval: poll, OnError: errs.add}
			r := start(t, newListConsumer(t, rdb, q, tc.reliable, newListRecorder(), opts).Run)
			stopWhileBlocked(t, r, func() int { return blockedWaits(t, admin, name, tc.reliable) }, poll, &errs)
		})
	}
}

// Stopping a list consumer again and again while jobs flow in loses
// nothing: a job that a wait races with the stop is handled, or stays in
// the queue or the processing list and is handled later. Both modes (a
// graceful stop of a simple consumer loses nothing either), with and
// without +client|unblock: without it the reliable consumer's stop closes
// its waiting connection, and the simple consumer's waits for its BRPOP.
func TestListStopLosesNothing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		reliable  bool
		noUnblock bool
	}{
		{name: "simple", reliable: false},
		{name: "reliable", reliable: true},
		{name: "simple without client unblock", reliable: false, noUnblock: true},
		{name: "reliable without client unblock", reliable: true, noUnblock: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, _ := redistest.Names(t)
			var admin, rdb *redis.Client
			if tc.noUnblock {
				s := redistest.StartSecureServer(t, &redistest.SecureOptions{Password: "admin-" + randHex(t)})
				admin = s.Client(t)
				pass := randHex(t)
				cmds := listSimpleACL
				if tc.reliable {
					cmds = listReliableACL
				}
				cmds = slices.DeleteFunc(slices.Clone(cmds), func(c string) bool { return c == "client|unblock" })
				setUser(t, admin, "worker", pass, "sgtest:*", cmds)
				rdb = s.ClientAs(t, "worker", pass)
			} else {
				admin = redistest.Client(t)
				rdb = admin
				t.Cleanup(func() {
					admin.Del(context.Background(), q, queue.ProcessingKey(q, "c"), queue.HeartbeatKey(q, "c"), queue.ConsumersKey(q))
				})
			}
			const total = 1000
			var published []string
			var pubErr error
			var wg sync.WaitGroup
			wg.Go(func() {
				p, err := queue.NewProducer(admin, q, nil)
				if err != nil {
					pubErr = err
					return
				}
				// Steady flow: one job every 2ms, so that the consumer is
				// often waiting for the next one when a stop comes.
				tick := time.NewTicker(2 * time.Millisecond)
				defer tick.Stop()
				for i := range total {
					<-tick.C
					id, err := p.Push(context.Background(), map[string]any{"n": i})
					if err != nil {
						pubErr = err
						return
					}
					published = append(published, id)
				}
			})
			var mu sync.Mutex
			calls := map[string]int{}
			distinct := func() int {
				mu.Lock()
				defer mu.Unlock()
				return len(calls)
			}
			h := handler.Func(func(_ context.Context, m *stream.Message) error {
				mu.Lock()
				calls[m.ID]++
				mu.Unlock()
				return nil
			})
			opts := &queue.Options{PollInterval: 200 * time.Millisecond}
			stops := 0
			for distinct() < total*3/4 {
				before := distinct()
				r := start(t, newListConsumer(t, rdb, q, tc.reliable, h, opts).Run)
				eventually(t, 10*time.Second, "some jobs handled", func() bool { return distinct() > before })
				if err := r.Stop(); err != nil {
					t.Fatalf("Run = %v after %d stops", err, stops)
				}
				stops++
			}
			wg.Wait()
			if pubErr != nil {
				t.Fatalf("Push: %v", pubErr)
			}
			// A last consumer finishes what the stops left in the queue
			// (and, for a reliable consumer, its processing list).
			start(t, newListConsumer(t, rdb, q, tc.reliable, h, opts).Run)
			eventually(t, 60*time.Second, "every job handled", func() bool {
				return distinct() == total && llen(t, admin, q) == 0 && llen(t, admin, queue.ProcessingKey(q, "c")) == 0
			})
			mu.Lock()
			defer mu.Unlock()
			for _, id := range published {
				if calls[id] == 0 {
					t.Errorf("job %s never handled", id)
				}
			}
			t.Logf("%d stops during the flow; %d jobs", stops, total)
		})
	}
}

// BenchmarkListStop measures how long a list consumer's Run takes to return
// after its context is cancelled, with default options (PollInterval 1s),
// while it waits on an empty queue (nothing in flight).
//
//	go test -run '^$' -bench Stop -benchtime 20x -count 3 ./integration_test/
func BenchmarkListStop(b *testing.B) {
	for _, mode := range listModes {
		b.Run(mode.name, func(b *testing.B) {
			admin := redistest.Client(b)
			q, _ := redistest.Names(b)
			b.Cleanup(func() {
				admin.Del(context.Background(), q, queue.ProcessingKey(q, "c"), queue.HeartbeatKey(q, "c"), queue.ConsumersKey(q))
			})
			rdb, name := namedCopy(b, admin.Options())
			h := handler.Func(func(context.Context, *stream.Message) error { return nil })
			var total time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				c := newListConsumer(b, rdb, q, mode.reliable, h, nil)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- c.Run(ctx) }()
				eventually(b, 10*time.Second, "the consumer's wait blocked", func() bool { return blockedWaits(b, admin, name, mode.reliable) > 0 })
				b.StartTimer()
				begin := time.Now()
				cancel()
				err := <-done
				total += time.Since(begin)
				b.StopTimer()
				if err != nil {
					b.Fatalf("Run = %v", err)
				}
				eventually(b, 10*time.Second, "no wait left blocked", func() bool { return blockedWaits(b, admin, name, mode.reliable) == 0 })
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/stop")
		})
	}
}
