package integration_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/health"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// healthConsumer is what every consumer kind has in common here.
type healthConsumer interface {
	Run(ctx context.Context) error
	Health() health.Status
}

// subject is one consumer under test, with what the scenarios do to its
// keys.
type subject struct {
	c     healthConsumer
	key   string // the stream or the (first) queue
	group string // the consumer group; "" for list queues
	// push adds n jobs the consumer will handle (for a reclaimer, entries
	// another consumer read and abandoned).
	push func(t *testing.T, n int)
}

// healthKind makes a consumer of one kind on rdb, handling with h.
type healthKind struct {
	name  string
	make  func(t *testing.T, rdb *redis.Client, h handler.Handler) subject
	lists bool // a list consumer: no consumer group
}

var healthKinds = []healthKind{
	{name: "group", make: func(t *testing.T, rdb *redis.Client, h handler.Handler) subject {
		key, grp := redistest.Names(t)
		return subject{c: newConsumer(t, rdb, key, grp, "a", h, fastOptions()), key: key, group: grp,
			push: func(t *testing.T, n int) { publish(t, rdb, key, n, nil) }}
	}},
	{name: "claim", make: func(t *testing.T, rdb *redis.Client, h handler.Handler) subject {
		key, grp := redistest.Names(t)
		r, err := claim.NewReclaimer(rdb, key, grp, "a", h, reclaimerOptions(fastOptions()))
		if err != nil {
			t.Fatal(err)
		}
		return subject{c: r, key: key, group: grp, push: func(t *testing.T, n int) {
			publish(t, rdb, key, n, nil)
			// After a restart that kept no data, the reclaimer may not have
			// recreated its group yet (it does at its next sweep): make sure
			// it exists, from the start, before reading as the dead consumer.
			if err := rdb.XGroupCreateMkStream(context.Background(), key, grp, "0").Err(); err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
				t.Fatal(err)
			}
			abandon(t, rdb, key, grp, "dead", 0)
		}}
	}},
	{name: "queue reliable", lists: true, make: func(t *testing.T, rdb *redis.Client, h handler.Handler) subject {
		q := healthListKey(t, rdb)
		c, err := queue.NewReliableConsumer(rdb, []string{q}, "a", h, healthListOptions())
		if err != nil {
			t.Fatal(err)
		}
		return subject{c: c, key: q, push: listPusher(rdb, q)}
	}},
	{name: "queue simple", lists: true, make: func(t *testing.T, rdb *redis.Client, h handler.Handler) subject {
		q := healthListKey(t, rdb)
		c, err := queue.NewSimpleConsumer(rdb, []string{q}, h, healthListOptions())
		if err != nil {
			t.Fatal(err)
		}
		return subject{c: c, key: q, push: listPusher(rdb, q)}
	}},
}

func healthListOptions() *queue.Options {
	return &queue.Options{
		Concurrency: 4, Prefetch: 4, PollInterval: 100 * time.Millisecond, HeartbeatTTL: 600 * time.Millisecond,
		RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond, DrainTimeout: 5 * time.Second,
	}
}

// healthListKey returns a queue key of t's own.
func healthListKey(t *testing.T, rdb *redis.Client) string {
	key, _ := redistest.Names(t)
	q := strings.TrimSuffix(key, ":stream") + ":q"
	t.Cleanup(func() {
		ctx := context.Background()
		if keys, _ := rdb.Keys(ctx, q+"*").Result(); len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return q
}

func listPusher(rdb *redis.Client, q string) func(t *testing.T, n int) {
	return func(t *testing.T, n int) {
		t.Helper()
		p, err := queue.NewProducer(rdb, q, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, err := p.Push(context.Background(), map[string]any{"n": i}); err != nil {
				t.Fatalf("Push: %v", err)
			}
		}
	}
}

// probes serves /livez and /readyz for c.
func probes(t *testing.T, c health.Checker) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/livez", health.Live(c))
	mux.Handle("/readyz", health.Ready(c))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// probe GETs path on srv and checks its status code and that its body
// holds each of want.
func probe(t *testing.T, srv *httptest.Server, path string, code int, want ...string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != code {
		t.Fatalf("GET %s = %d; want %d (body %q)", path, resp.StatusCode, code, body)
	}
	for _, w := range want {
		if !strings.Contains(string(body), w) {
			t.Fatalf("GET %s body = %q; want it to name %q", path, body, w)
		}
	}
}

// awaitHealth waits until c's health satisfies cond, failing t with the
// last status otherwise.
func awaitHealth(t *testing.T, c health.Checker, timeout time.Duration, what string, cond func(health.Status) bool) health.Status {
	t.Helper()
	var st health.Status
	deadline := time.Now().Add(timeout)
	for st = c.Health(); !cond(st); st = c.Health() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last health: %+v", timeout, what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return st
}

func ready(s health.Status) bool { return s.Ready }

// handledCounter returns a handler counting its calls, and the count.
func handledCounter() (handler.Handler, func() int) {
	var n atomic.Int64
	return handler.Func(func(context.Context, *stream.Message) error {
		n.Add(1)
		return nil
	}), func() int { return int(n.Load()) }
}

// TestHealthOutage: a consumer is ready once started; with its Redis
// stopped it is not ready, says since when Redis is unreachable, and stays
// live; once Redis is back it is ready again and handles new work. The
// probes answer accordingly.
func TestHealthOutage(t *testing.T) {
	for _, k := range healthKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.StartServer(t, nil)
			rdb := srv.Client(t)
			h, handled := handledCounter()
			s := k.make(t, rdb, h)
			web := probes(t, s.c)

			if st := s.c.Health(); st.Ready || !st.Live || !strings.Contains(st.Reason, "not running") {
				t.Fatalf("Health() before Run = %+v; want not ready (not running), live", st)
			}
			probe(t, web, "/readyz", 503, "not running")
			probe(t, web, "/livez", 200, "ok")

			run := start(t, s.c.Run)
			st := awaitHealth(t, s.c, 10*time.Second, "ready after start", ready)
			if st.Started.IsZero() || !st.UnreachableSince.IsZero() || st.Err != nil || !st.Live {
				t.Fatalf("Health() once ready = %+v; want Started set, reachable, no error, live", st)
			}
			awaitHealth(t, s.c, 10*time.Second, "a first fetch or sweep", func(s health.Status) bool { return !s.LastFetch.IsZero() })
			probe(t, web, "/readyz", 200, "ok")
			probe(t, web, "/livez", 200, "ok")
			s.push(t, 3)
			eventually(t, 10*time.Second, "3 jobs handled before the outage", func() bool { return handled() == 3 })

			stopped := time.Now()
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			st = awaitHealth(t, s.c, 20*time.Second, "not ready with Redis stopped", func(s health.Status) bool { return !s.Ready })
			if st.UnreachableSince.IsZero() || st.UnreachableSince.Before(stopped.Add(-time.Second)) || st.Err == nil {
				t.Errorf("Health() with Redis stopped = %+v; want UnreachableSince set after the stop (%v) and Err set", st, stopped)
			}
			if !st.Live || st.Stopped || st.Wedged {
				t.Errorf("Health() with Redis stopped = %+v; want live, not stopped, not wedged", st)
			}
			if !strings.Contains(st.Reason, "redis unavailable") {
				t.Errorf("Health().Reason with Redis stopped = %q; want it to say redis unavailable", st.Reason)
			}
			probe(t, web, "/readyz", 503, "[-]"+st.Name+" failed: ", "redis unavailable", "readyz check failed")
			probe(t, web, "/livez", 200, "ok")
			probe(t, web, "/livez?verbose", 200, "[+]"+st.Name+" ok", "livez check passed")
			if err, ok := run.Exited(); ok {
				t.Fatalf("Run returned during the outage: %v", err)
			}

			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			st = awaitHealth(t, s.c, 20*time.Second, "ready again after Redis restarted", ready)
			if !st.UnreachableSince.IsZero() || st.Err != nil || st.Reason != "" {
				t.Errorf("Health() after the restart = %+v; want reachable, no error, no reason", st)
			}
			probe(t, web, "/readyz", 200, "ok")
			s.push(t, 2) // the server kept no data: the jobs before are gone
			eventually(t, 20*time.Second, "2 more jobs handled after the restart", func() bool { return handled() == 5 })
			if err := run.Stop(); err != nil {
				t.Fatalf("Run = %v; want nil", err)
			}
			st = s.c.Health()
			if st.Ready || !st.Live || !st.Stopped || st.Err != nil || st.Reason != "stopped" {
				t.Errorf("Health() after Run returned nil = %+v; want not ready (stopped), live, no error", st)
			}
		})
	}
}

// TestHealthDrain: while Run drains (its context cancelled, a handler still
// running) the consumer is live and not ready; after Run returned nil it
// is stopped, live and not ready.
func TestHealthDrain(t *testing.T) {
	rdb := redistest.Client(t)
	for _, k := range healthKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			started, release := make(chan struct{}, 1), make(chan struct{})
			s := k.make(t, rdb, handler.Func(func(context.Context, *stream.Message) error {
				started <- struct{}{}
				<-release
				return nil
			}))
			web := probes(t, s.c)
			run := start(t, s.c.Run)
			awaitHealth(t, s.c, 10*time.Second, "ready after start", ready)
			s.push(t, 1)
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler did not start within 10s")
			}
			run.Cancel()
			st := awaitHealth(t, s.c, 10*time.Second, "draining", func(s health.Status) bool { return s.Draining })
			if st.Ready || !st.Live || st.Stopped || !strings.Contains(st.Reason, "draining") {
				t.Errorf("Health() while draining = %+v; want not ready (draining), live, not stopped", st)
			}
			probe(t, web, "/readyz", 503, "draining")
			probe(t, web, "/livez", 200, "ok")
			close(release)
			if err := run.Stop(); err != nil {
				t.Fatalf("Run = %v; want nil", err)
			}
			st = s.c.Health()
			if st.Ready || !st.Live || !st.Stopped || st.Draining || st.Reason != "stopped" {
				t.Errorf("Health() after the drain = %+v; want stopped, live, not ready, not draining", st)
			}
			probe(t, web, "/readyz", 503, "stopped")
			probe(t, web, "/livez", 200, "ok")
		})
	}
}

// TestHealthRunError: a consumer whose key turns into another type while
// it runs stops with an error; it is then neither live nor ready, and the
// probes name the error.
func TestHealthRunError(t *testing.T) {
	rdb := redistest.Client(t)
	for _, k := range healthKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			h, _ := handledCounter()
			s := k.make(t, rdb, h)
			web := probes(t, s.c)
			run := start(t, s.c.Run)
			awaitHealth(t, s.c, 10*time.Second, "ready after start", ready)
			ctx := context.Background()
			if err := rdb.Del(ctx, s.key).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.Set(ctx, s.key, "not a "+k.name, 0).Err(); err != nil {
				t.Fatal(err)
			}
			runErr := run.Wait(t, 20*time.Second)
			if runErr == nil {
				t.Fatal("Run = nil after its key turned into a string; want an error")
			}
			wantErr := group.ErrNotStream
			if k.lists {
				wantErr = queue.ErrNotList
			}
			if !errors.Is(runErr, wantErr) {
				t.Errorf("Run = %v; want an error wrapping %v", runErr, wantErr)
			}
			st := s.c.Health()
			if st.Live || st.Ready || !st.Stopped || !errors.Is(st.Err, wantErr) || !strings.HasPrefix(st.Reason, "stopped: ") {
				t.Fatalf("Health() after Run's error = %+v; want not live, not ready, stopped, Err wrapping %v", st, wantErr)
			}
			probe(t, web, "/livez", 503, "[-]"+st.Name+" failed: stopped: ", "livez check failed")
			probe(t, web, "/readyz", 503, "stopped: ")
		})
	}
}

// TestHealthGroupMissing: a group deleted under a running consumer is
// created again at once, and the consumer is ready again. On a Redis out
// of memory, which refuses to create the group, the consumer reports the
// group missing (and Redis refusing) until memory is freed.
func TestHealthGroupMissing(t *testing.T) {
	for _, k := range healthKinds {
		if k.lists {
			continue // no consumer group
		}
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.StartServer(t, nil)
			rdb := srv.Client(t)
			ctx := context.Background()
			h, handled := handledCounter()
			s := k.make(t, rdb, h)
			run := start(t, s.c.Run)
			awaitHealth(t, s.c, 10*time.Second, "ready after start", ready)

			// Repaired at once.
			if err := rdb.XGroupDestroy(ctx, s.key, s.group).Err(); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "the group created again", func() bool {
				gs, err := rdb.XInfoGroups(ctx, s.key).Result()
				return err == nil && len(gs) == 1 && gs[0].Name == s.group
			})
			st := awaitHealth(t, s.c, 10*time.Second, "ready after the repair", ready)
			if st.GroupMissing {
				t.Errorf("Health() after the repair = %+v; want GroupMissing false", st)
			}

			// Not repairable while Redis is out of memory.
			for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "1"}} {
				if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := rdb.XGroupDestroy(ctx, s.key, s.group).Err(); err != nil {
				t.Fatal(err)
			}
			st = awaitHealth(t, s.c, 10*time.Second, "the group reported missing", func(s health.Status) bool { return s.GroupMissing })
			if st.Ready || !st.Live || !strings.Contains(st.Reason, "consumer group missing") || st.Err == nil {
				t.Errorf("Health() with the group missing = %+v; want not ready (group missing), live, Err set", st)
			}
			web := probes(t, s.c)
			probe(t, web, "/readyz", 503, "consumer group missing")
			probe(t, web, "/livez", 200, "ok")

			if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
				t.Fatal(err)
			}
			st = awaitHealth(t, s.c, 20*time.Second, "ready once memory is freed", ready)
			if st.GroupMissing || st.Err != nil {
				t.Errorf("Health() after memory was freed = %+v; want the group there, no error", st)
			}
			s.push(t, 2)
			eventually(t, 20*time.Second, "2 jobs handled in the group created again", func() bool { return handled() == 2 })
			if err := run.Stop(); err != nil {
				t.Fatalf("Run = %v; want nil", err)
			}
		})
	}
}

// The names of the consumers, as the probes show them.
func TestHealthNames(t *testing.T) {
	rdb := redistest.Client(t)
	h, _ := handledCounter()
	c, err := group.NewConsumer(rdb, "orders", "workers", "pod-1", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := claim.NewReclaimer(rdb, "orders", "workers", "pod-1", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	rq, err := queue.NewReliableConsumer(rdb, []string{"hi", "lo"}, "pod-1", h, nil)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := queue.NewSimpleConsumer(rdb, []string{"jobs"}, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    health.Checker
		want string
	}{
		{c, "group/orders/workers/pod-1"},
		{r, "claim/orders/workers/pod-1"},
		{rq, "queue/hi,lo/pod-1"},
		{sq, "queue/jobs"},
	} {
		if got := tc.c.Health().Name; got != tc.want {
			t.Errorf("Health().Name = %q; want %q", got, tc.want)
		}
	}
}
