package integration_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

var clientNameSeq atomic.Uint64

// namedCopy returns a client with the options of base and a client name
// unique to this process, so that CLIENT LIST finds its connections (and
// the connections a consumer makes from its options).
func namedCopy(t testing.TB, base *redis.Options) (*redis.Client, string) {
	o := *base
	o.ClientName = fmt.Sprintf("sgtest-%d-%d", time.Now().UnixNano()%1e9, clientNameSeq.Add(1))
	c := redis.NewClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c, o.ClientName
}

// blockedReads counts the connections named name that are blocked in an
// XREADGROUP, from CLIENT LIST as admin sees it.
func blockedReads(t testing.TB, admin redis.UniversalClient, name string) int {
	t.Helper()
	return blockedConns(t, admin, func(f map[string]string) bool { return f["name"] == name && f["cmd"] == "xreadgroup" })
}

// blockedConns counts the connections blocked in a command (flag b) whose
// CLIENT LIST fields (name, user, cmd...) match, as admin sees them.
func blockedConns(t testing.TB, admin redis.UniversalClient, match func(fields map[string]string) bool) int {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	n := 0
	for line := range strings.Lines(list) {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if strings.Contains(fields["flags"], "b") && match(fields) {
			n++
		}
	}
	return n
}

// Thirty consumers (one per stream) share one client with go-redis's
// default pool, as the quickstart's one-client pattern leads to. Their
// blocking reads must not take the connections a producer on that client
// needs: every Add succeeds within 2s (the pool used to be exhausted by
// the reads, and Adds waited for the pool timeout and failed), and the
// consumers handle the entries.
func TestConsumersDoNotStarveSharedClient(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t) // default PoolSize: 10 per CPU
	const consumers = 30
	var handled keysHandled
	keys := make([]string, consumers)
	runs := make([]*running, consumers)
	for i := range consumers {
		key, grp := redistest.Names(t)
		keys[i] = key
		runs[i] = start(t, newConsumer(t, rdb, key, grp, "c", &handled, nil).Run)
	}
	stopAllAtCleanup(t, runs, func() { rdb.Del(context.Background(), keys...) })
	// Every consumer has read (it shows in XINFO CONSUMERS): its readers
	// now block in XREADGROUP, for up to Block (2s) at a time.
	admin := redistest.Client(t)
	eventually(t, 30*time.Second, "every consumer reading", func() bool {
		for _, key := range keys {
			cs, err := admin.XInfoConsumers(context.Background(), key, "workers").Result()
			if err != nil || len(cs) != 1 {
				return false
			}
		}
		return true
	})
	eachWithin2s(t, rdb, "Add", len(keys), func(ctx context.Context, i int) error {
		p, err := stream.NewProducer(rdb, keys[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Add(ctx, map[string]any{"n": i})
		return err
	})
	eventually(t, 30*time.Second, "every entry handled and acknowledged", func() bool {
		if handled.count() != consumers {
			return false
		}
		for _, key := range keys {
			if pending(t, admin, key, "workers") != 0 {
				return false
			}
		}
		return true
	})
}

// keysHandled is a handler that records the stream (or list queue) of each
// message it handles: message IDs repeat across streams, and a test with
// one consumer per key counts the keys served.
type keysHandled struct {
	mu   sync.Mutex
	keys map[string]bool
}

func (h *keysHandled) Handle(_ context.Context, m *stream.Message) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keys == nil {
		h.keys = map[string]bool{}
	}
	h.keys[m.Stream] = true
	return nil
}

func (h *keysHandled) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.keys)
}

// stopAllAtCleanup cancels every run at once, then waits for each, then
// calls after.
func stopAllAtCleanup(t *testing.T, runs []*running, after func()) {
	t.Cleanup(func() {
		for _, r := range runs {
			r.Cancel()
		}
		for _, r := range runs {
			_ = r.Stop()
		}
		after()
	})
}

// eachWithin2s calls send(ctx, i) for i < n, each with a 2s deadline, on
// the client rdb the consumers share, and fails t at the first error: the
// consumers' blocking commands took the pool. It returns the slowest call.
func eachWithin2s(t *testing.T, rdb *redis.Client, what string, n int, send func(ctx context.Context, i int) error) time.Duration {
	t.Helper()
	var slowest time.Duration
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		begin := time.Now()
		err := send(ctx, i)
		cancel()
		slowest = max(slowest, time.Since(begin))
		if err != nil {
			t.Fatalf("%s %d on the client the consumers share = %v after %v; want success: the consumers' blocking commands took the pool (%+v)",
				what, i, err, time.Since(begin).Round(time.Millisecond), rdb.PoolStats())
		}
	}
	return slowest
}

// Cancelling Run wakes the consumer's blocked XREADGROUP: Run returns long
// before Block (30s here) has elapsed, also when CLIENT UNBLOCK is refused
// (an ACL without +client|unblock), where the consumer closes its own
// reading connection instead.
func TestStopWakesBlockedRead(t *testing.T) {
	t.Parallel()
	const block = 30 * time.Second
	for _, tc := range []struct {
		name        string
		concurrency int
		noUnblock   bool // the user may not run CLIENT UNBLOCK
	}{
		{name: "two readers", concurrency: 10},
		{name: "one reader", concurrency: 1},
		{name: "without client unblock", concurrency: 10, noUnblock: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var admin *redis.Client
			var base *redis.Options
			key, grp := redistest.Names(t)
			if tc.noUnblock {
				s := redistest.StartSecureServer(t, &redistest.SecureOptions{Password: "admin-" + randHex(t)})
				admin = s.Client(t)
				pass := randHex(t)
				cmds := slices.DeleteFunc(slices.Clone(workerACL), func(c string) bool { return c == "client|unblock" })
				cmds = append(cmds, "client|setname") // the test names the connections to find them
				setUser(t, admin, "worker", pass, "sgtest:*", cmds)
				base = s.Options("worker", pass)
			} else {
				admin = redistest.Client(t)
				base = admin.Options()
				t.Cleanup(func() { admin.Del(context.Background(), key) })
			}
			rdb, name := namedCopy(t, base)
			var errs secErrors
			opts := &group.Options{Concurrency: tc.concurrency, Block: block, OnError: errs.add}
			r := start(t, newConsumer(t, rdb, key, grp, "c", newRecorder(nil).as("c"), opts).Run)
			stopWhileBlocked(t, r, func() int { return blockedReads(t, admin, name) }, block, &errs)
		})
	}
}

// stopWhileBlocked awaits a blocked read or wait of r's consumer (blocked
// counts them), cancels r, and fails t unless Run returns nil well before
// block, with nothing reported to errs and nothing left blocked.
func stopWhileBlocked(t *testing.T, r *running, blocked func() int, block time.Duration, errs *secErrors) {
	t.Helper()
	eventually(t, 20*time.Second, "the consumer's read blocked", func() bool {
		if err, ok := r.Exited(); ok {
			t.Fatalf("Run returned %v; want it reading", err)
		}
		return blocked() > 0
	})
	r.Cancel()
	begin := time.Now()
	if err := r.Wait(t, block/3); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	t.Logf("Run returned %v after cancel", time.Since(begin).Round(time.Microsecond))
	if e := errs.all(); len(e) != 0 {
		t.Errorf("OnError got %v; want nothing", e)
	}
	eventually(t, 10*time.Second, "nothing left blocked", func() bool { return blocked() == 0 })
}

// Stopping a consumer again and again while entries flow in loses nothing:
// an entry delivered to a read that races with the stop is handled, or
// stays pending and is handled later; none is acknowledged unhandled.
func TestStopLosesNothing(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	stopUnderFlow(t, rdb, key, grp, 1500)
}

// stopUnderFlow publishes total entries to key, one every 2ms, while it
// starts and stops a consumer of grp again and again, then runs a last
// consumer, and fails t unless every entry is handled and acknowledged.
func stopUnderFlow(t *testing.T, rdb redis.UniversalClient, key, grp string, total int) {
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	if err := rdb.XGroupCreateMkStream(context.Background(), key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}
	var published []string
	var pubErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		// Steady flow: one entry every 2ms, so that the readers are often
		// blocked, waiting for the next one, when a stop comes.
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := range total {
			<-tick.C
			id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: []any{"n", i}}).Result()
			if err != nil {
				pubErr = err
				return
			}
			published = append(published, id)
		}
	})
	rec := newRecorder(nil)
	opts := fastOptions()
	opts.Block = 2 * time.Second
	opts.MinIdle = time.Second
	stops := 0
	for rec.distinct() < total*3/4 {
		before := rec.distinct()
		r := start(t, newConsumer(t, rdb, key, grp, "c", rec.as("c"), opts).Run)
		eventually(t, 10*time.Second, "some entries handled", func() bool { return rec.distinct() > before })
		if err := r.Stop(); err != nil {
			t.Fatalf("Run = %v after %d stops", err, stops)
		}
		stops++
	}
	wg.Wait()
	if pubErr != nil {
		t.Fatalf("XADD: %v", pubErr)
	}
	// A last consumer finishes: whatever the stops left pending comes back
	// (its own pending entries first, then the rest).
	start(t, newConsumer(t, rdb, key, grp, "c", rec.as("c"), opts).Run)
	eventually(t, 60*time.Second, "every entry handled and acknowledged", func() bool {
		return rec.distinct() == total && pending(t, rdb, key, grp) == 0
	})
	calls, order, _ := rec.snapshot()
	for _, id := range published {
		if calls[id] == 0 {
			t.Errorf("entry %s never handled", id)
		}
	}
	t.Logf("%d stops during the flow; %d entries, %d handler calls", stops, total, len(order))
}

// BenchmarkStop measures how long Run takes to return after its context is
// cancelled, for a consumer with default options whose reads are blocked
// on an idle stream (nothing in flight).
//
//	go test -run '^$' -bench Stop -benchtime 20x -count 3 ./integration_test/
func BenchmarkStop(b *testing.B) {
	admin := redistest.Client(b)
	key, grp := redistest.Names(b)
	b.Cleanup(func() { admin.Del(context.Background(), key) })
	rdb, name := namedCopy(b, admin.Options())
	h := newRecorder(nil).as("c")
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		c := newConsumer(b, rdb, key, grp, "c", h, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		eventually(b, 10*time.Second, "the consumer's read blocked", func() bool { return blockedReads(b, admin, name) > 0 })
		b.StartTimer()
		begin := time.Now()
		cancel()
		err := <-done
		total += time.Since(begin)
		b.StopTimer()
		if err != nil {
			b.Fatalf("Run = %v", err)
		}
		// The next consumer starts once these reads are gone.
		eventually(b, 10*time.Second, "no read left blocked", func() bool { return blockedReads(b, admin, name) == 0 })
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/stop")
}
