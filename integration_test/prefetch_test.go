package integration_test

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// readCounts records the COUNT of every XREADGROUP ... > a server receives,
// from its MONITOR feed: on the server, because a consumer reads on
// connections of its own, which the hooks of the client it is given do not
// see.
type readCounts struct {
	mu     sync.Mutex
	counts []int64
	marks  map[string]chan struct{} // ECHO markers awaited by sync
}

// monitorReads starts recording the reads the server at addr receives, until
// t ends.
func monitorReads(t *testing.T, addr string) *readCounts {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("MONITOR = %q, %v", line, err)
	}
	r := &readCounts{marks: map[string]chan struct{}{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			r.observe(monitorArgs(line))
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-done })
	return r
}

// monitorArgs returns the command arguments of a MONITOR line:
// +1339518083.107412 [0 127.0.0.1:60866] "xreadgroup" "GROUP" ...
func monitorArgs(line string) []string {
	_, rest, ok := strings.Cut(line, "] ")
	if !ok {
		return nil
	}
	rest = strings.TrimRight(rest, "\r\n")
	var args []string
	for rest != "" {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return args
		}
		a, _ := strconv.Unquote(q)
		args = append(args, a)
		rest = strings.TrimPrefix(rest[len(q):], " ")
	}
	return args
}

func (r *readCounts) observe(args []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(args) == 2 && strings.EqualFold(args[0], "echo") {
		if ch, ok := r.marks[args[1]]; ok {
			close(ch)
			delete(r.marks, args[1])
		}
		return
	}
	if len(args) == 0 || !strings.EqualFold(args[0], "xreadgroup") || args[len(args)-1] != ">" {
		return
	}
	for i := 0; i+1 < len(args); i++ {
		if strings.EqualFold(args[i], "count") {
			n, _ := strconv.ParseInt(args[i+1], 10, 64)
			r.counts = append(r.counts, n)
		}
	}
}

// sync waits until the feed has caught up with every command the server
// ran before this call.
func (r *readCounts) sync(t *testing.T, rdb *redis.Client) {
	t.Helper()
	mark := "sync-" + randHex(t)
	ch := make(chan struct{})
	r.mu.Lock()
	r.marks[mark] = ch
	r.mu.Unlock()
	if err := rdb.Echo(context.Background(), mark).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the MONITOR feed did not catch up within 10s")
	}
}

func (r *readCounts) max() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := int64(0)
	for _, n := range r.counts {
		m = max(m, n)
	}
	return m
}

// With the default (adaptive) Prefetch, a consumer whose handler is fast
// grows its reads well beyond Concurrency+Concurrency, and one whose handler
// is slow keeps them at most Concurrency+Concurrency: it never takes more of
// a burst than it can start soon.
func TestAdaptivePrefetch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		sleep   time.Duration
		entries int
		check   func(t *testing.T, maxCount int64)
	}{
		{"fast handler reads large batches", 0, 20000, func(t *testing.T, m int64) {
			if m <= 4*4 {
				t.Errorf("largest XREADGROUP COUNT = %d; want > %d (4 × Concurrency): the prefetch did not grow for a fast handler", m, 4*4)
			}
		}},
		{"slow handler keeps it at Concurrency", 30 * time.Millisecond, 60, func(t *testing.T, m int64) {
			if m > 2*4 {
				t.Errorf("largest XREADGROUP COUNT = %d; want at most %d (Concurrency + Concurrency) for a slow handler", m, 2*4)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A server of its own, whose MONITOR feed is this test's commands.
			srv := redistest.StartServer(t, nil)
			rdb := srv.Client(t)
			key, grp := redistest.Names(t)
			publish(t, rdb, key, tc.entries, nil)
			rc := monitorReads(t, srv.Addr())
			rec := newRecorder(func(context.Context, *stream.Message) error {
				time.Sleep(tc.sleep)
				return nil
			})
			c := newConsumer(t, rdb, key, grp, "c", rec.as("c"),
				&group.Options{Concurrency: 4, Block: 100 * time.Millisecond})
			r := start(t, c.Run)
			eventually(t, 60*time.Second, "every entry handled", func() bool { return rec.distinct() == tc.entries })
			if err := r.Stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			rc.sync(t, rdb)
			if rc.max() == 0 {
				t.Fatal("MONITOR saw no XREADGROUP ... > with a COUNT")
			}
			tc.check(t, rc.max())
		})
	}
}

// Two consumers with the default Prefetch share a burst of slow jobs: the
// first to read does not hoard it while the other idles.
func TestSlowBurstIsShared(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	rec := newRecorder(func(context.Context, *stream.Message) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	opts := &group.Options{Concurrency: 2, Block: 100 * time.Millisecond}
	for _, name := range []string{"a", "b"} {
		start(t, newConsumer(t, rdb, key, grp, name, rec.as(name), opts).Run)
	}
	// Both consumers are up once the group exists and both have read.
	eventually(t, 10*time.Second, "both consumers registered", func() bool {
		cs, err := rdb.XInfoConsumers(context.Background(), key, grp).Result()
		return err == nil && len(cs) == 2
	})
	const n = 80
	publish(t, rdb, key, n, nil)
	eventually(t, 60*time.Second, "every entry handled", func() bool { return rec.distinct() == n })
	_, _, by := rec.snapshot()
	per := map[string]int{}
	for _, name := range by {
		per[name]++
	}
	// Each consumer can start 2 and hold 2 more: a fair share is about half.
	// Hoarding (one prefetch of the whole burst) would leave the other few.
	for _, name := range []string{"a", "b"} {
		if per[name] < n/4 {
			t.Errorf("consumer %s handled %d of %d entries; want at least %d: the burst was hoarded (%v)", name, per[name], n, n/4, per)
		}
	}
}

// signalHandler is a slog.Handler that closes ch at the first record whose
// message is msg.
type signalHandler struct {
	msg  string
	ch   chan struct{}
	once *sync.Once
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h signalHandler) WithGroup(string) slog.Handler            { return h }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.msg) {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}

// Entries fetched but never started when Run stops are given back: their
// delivery counters are set back to what they were before the fetch and
// their idle time to MinIdle, so another consumer's reclaimer takes them at
// once and the unused fetch does not count toward MaxDeliveries.
func TestUnstartedEntriesReleasedOnStop(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	const n = 11
	publish(t, rdb, key, n, nil)
	if err := rdb.XGroupCreate(ctx, key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}

	unblock := make(chan struct{})
	draining := make(chan struct{})
	var first sync.Once
	rec := newRecorder(func(context.Context, *stream.Message) error {
		first.Do(func() { <-unblock }) // the first entry holds the only worker
		return nil
	})
	opts := fastOptions()
	opts.Concurrency, opts.Prefetch = 1, n-1
	opts.MinIdle = 2 * time.Second
	opts.Logger = slog.New(signalHandler{msg: "draining", ch: draining, once: new(sync.Once)})
	c := newConsumer(t, rdb, key, grp, "a", rec.as("a"), opts)
	r := start(t, c.Run)
	eventually(t, 10*time.Second, "all entries fetched", func() bool { return pending(t, rdb, key, grp) == n })

	r.Cancel()
	<-draining
	close(unblock)
	if err := r.Stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := c.Stats().Released; got != n-1 {
		t.Fatalf("Stats().Released = %d; want %d (fetched, never started)", got, n-1)
	}
	ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: grp, Start: "-", End: "+", Count: 100}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != n-1 {
		t.Fatalf("pending after stop = %d; want %d", len(ps), n-1)
	}
	for _, p := range ps {
		if p.RetryCount != 0 || p.Idle < opts.MinIdle {
			t.Errorf("released entry %s: deliveries %d, idle %v; want 0 and at least MinIdle %v", p.ID, p.RetryCount, p.Idle, opts.MinIdle)
		}
	}

	// Another consumer's reclaimer takes them; each is on its first delivery.
	rec2 := newRecorder(nil)
	opts2 := fastOptions()
	opts2.MinIdle = opts.MinIdle
	start(t, newConsumer(t, rdb, key, grp, "b", rec2.as("b"), opts2).Run)
	eventually(t, 20*time.Second, "released entries handled by b", func() bool { return rec2.distinct() == n-1 })
	rec2.mu.Lock()
	defer rec2.mu.Unlock()
	for id, ds := range rec2.deliv {
		if len(ds) != 1 || ds[0] != 1 {
			t.Errorf("entry %s reached b with deliveries %v; want [1]", id, ds)
		}
	}
}
