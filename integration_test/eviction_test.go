package integration_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redischeck"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// logCount is a slog.Handler counting the records of each message, with
// their level.
type logCount struct {
	mu sync.Mutex
	n  map[string]int // "LEVEL message" -> count
}

func (c *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCount) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[r.Level.String()+" "+r.Message]++
	return nil
}
func (c *logCount) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCount) WithGroup(string) slog.Handler      { return c }

// checks returns how many eviction warnings and "could not check" notes
// were logged, and at which levels.
func (c *logCount) checks() (warn, unchecked int, other map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	other = map[string]int{}
	for k, n := range c.n {
		switch k {
		case "WARN " + redischeck.MsgEviction:
			warn += n
		case "INFO " + redischeck.MsgUnchecked:
			unchecked += n
		default:
			if containsAll(k, "maxmemory-policy") {
				other[k] += n
			}
		}
	}
	return warn, unchecked, other
}

// component is a producer or consumer to run against a client; it returns
// once it has done its work (a consumer: handled its entries and stopped).
type component func(t *testing.T, rdb redis.UniversalClient, admin *redis.Client, log *slog.Logger)

var evictionComponents = map[string]component{
	"stream producer": func(t *testing.T, rdb redis.UniversalClient, _ *redis.Client, log *slog.Logger) {
		key, _ := redistest.Names(t)
		p, err := stream.NewProducer(rdb, key, &stream.ProducerOptions{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := p.Add(context.Background(), map[string]any{"n": i}); err != nil {
				t.Fatalf("Add: %v", err)
			}
		}
		if _, err := p.AddBatch(context.Background(), []stream.Entry{{Values: map[string]any{"n": 3}}}); err != nil {
			t.Fatalf("AddBatch: %v", err)
		}
	},
	"list producer": func(t *testing.T, rdb redis.UniversalClient, _ *redis.Client, log *slog.Logger) {
		key, _ := redistest.Names(t)
		p, err := queue.NewProducer(rdb, key+":q", &queue.ProducerOptions{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := p.Push(context.Background(), map[string]any{"n": i}); err != nil {
				t.Fatalf("Push: %v", err)
			}
		}
	},
	"stream consumers": func(t *testing.T, rdb redis.UniversalClient, admin *redis.Client, log *slog.Logger) {
		key, grp := redistest.Names(t)
		publish(t, admin, key, 20, nil)
		var handled atomic.Int64
		h := handler.Func(func(context.Context, *stream.Message) error { handled.Add(1); return nil })
		opts := fastOptions()
		opts.Logger = log
		var runs []*running
		for i := range 3 {
			runs = append(runs, start(t, newConsumer(t, rdb, key, grp, fmt.Sprint("c", i), h, opts).Run))
		}
		eventually(t, 10*time.Second, "20 entries handled", func() bool { return handled.Load() == 20 })
		for _, r := range runs {
			if err := r.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
		}
	},
	"reclaimer": func(t *testing.T, rdb redis.UniversalClient, admin *redis.Client, log *slog.Logger) {
		key, grp := redistest.Names(t)
		publish(t, admin, key, 1, nil)
		if err := admin.XGroupCreate(context.Background(), key, grp, "0").Err(); err != nil {
			t.Fatal(err)
		}
		abandon(t, admin, key, grp, "ghost", 0)
		var handled atomic.Int64
		opts := fastOptions()
		opts.MinIdle = 50 * time.Millisecond
		opts.Logger = log
		r, err := claim.NewReclaimer(rdb, key, grp, "r", handler.Func(func(context.Context, *stream.Message) error { handled.Add(1); return nil }), reclaimerOptions(opts))
		if err != nil {
			t.Fatal(err)
		}
		run := start(t, r.Run)
		eventually(t, 10*time.Second, "the abandoned entry reclaimed and handled", func() bool { return handled.Load() == 1 })
		if err := run.Stop(); err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	},
	"list consumers": func(t *testing.T, rdb redis.UniversalClient, admin *redis.Client, log *slog.Logger) {
		key, _ := redistest.Names(t)
		p, err := queue.NewProducer(admin, key+":q", &queue.ProducerOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		var handled atomic.Int64
		h := handler.Func(func(context.Context, *stream.Message) error { handled.Add(1); return nil })
		opts := &queue.Options{PollInterval: 100 * time.Millisecond, Logger: log}
		rc, err := queue.NewReliableConsumer(rdb, []string{key + ":q"}, "w", h, opts)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := queue.NewSimpleConsumer(rdb, []string{key + ":q"}, h, opts)
		if err != nil {
			t.Fatal(err)
		}
		// One after the other, so that each has started and handled jobs.
		for i, c := range []*queue.Consumer{rc, sc} {
			run := start(t, c.Run)
			for range 2 {
				if _, err := p.Push(context.Background(), map[string]any{"n": 1}); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, 10*time.Second, "2 jobs handled", func() bool { return handled.Load() == int64(2*(i+1)) })
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
		}
	},
}

// runComponents runs the named components one after the other on rdb,
// logging to log.
func runComponents(t *testing.T, names []string, rdb redis.UniversalClient, admin *redis.Client, log *slog.Logger) {
	for _, n := range names {
		evictionComponents[n](t, rdb, admin, log)
	}
}

// TestEvictionPolicyWarning: on a Redis whose maxmemory-policy is
// allkeys-lru, each producer (at its first add) and each consumer and
// reclaimer (when Run starts) checks the policy, and the warning is logged
// exactly once per client, however many of them share it. With
// noeviction nothing is logged.
func TestEvictionPolicyWarning(t *testing.T) {
	s := redistest.StartServer(t, nil)
	admin := s.Client(t)
	if err := admin.ConfigSet(context.Background(), "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	all := []string{"stream producer", "list producer", "stream consumers", "reclaimer", "list consumers"}
	cases := [][]string{{"stream producer"}, {"list producer"}, {"stream consumers"}, {"reclaimer"}, {"list consumers"}, all}
	for _, names := range cases {
		t.Run(fmt.Sprint(names), func(t *testing.T) {
			var logs logCount
			runComponents(t, names, s.Client(t), admin, slog.New(&logs)) // a client of their own
			if warn, unchecked, other := logs.checks(); warn != 1 || unchecked != 0 || len(other) != 0 {
				t.Fatalf("logged the eviction warning %d times, the unchecked note %d times, and %v; want the warning once at Warn", warn, unchecked, other)
			}
		})
	}
	t.Run("noeviction", func(t *testing.T) {
		if err := admin.ConfigSet(context.Background(), "maxmemory-policy", "noeviction").Err(); err != nil {
			t.Fatal(err)
		}
		var logs logCount
		runComponents(t, all, s.Client(t), admin, slog.New(&logs))
		if warn, unchecked, other := logs.checks(); warn != 0 || unchecked != 0 || len(other) != 0 {
			t.Fatalf("with noeviction, logged the warning %d times, the unchecked note %d times, and %v; want nothing", warn, unchecked, other)
		}
	})
}

// TestEvictionPolicyUnchecked: a least-privilege ACL user (workerACL, no
// CONFIG) cannot read maxmemory-policy. The producer and the consumers
// say once that it could not be checked, at Info, and work as usual.
func TestEvictionPolicyUnchecked(t *testing.T) {
	s := redistest.StartSecureServer(t, &redistest.SecureOptions{Password: "admin-" + randHex(t)})
	admin := s.Client(t)
	pass := "worker-" + randHex(t)
	setUser(t, admin, "worker", pass, "sgtest:*", workerACL)
	if err := admin.ConfigSet(context.Background(), "maxmemory-policy", "allkeys-lru").Err(); err != nil {
		t.Fatal(err)
	}
	var logs logCount
	runComponents(t, []string{"stream producer", "stream consumers", "reclaimer"}, s.ClientAs(t, "worker", pass), admin, slog.New(&logs))
	if warn, unchecked, other := logs.checks(); warn != 0 || unchecked != 1 || len(other) != 0 {
		t.Fatalf("logged the unchecked note %d times, the warning %d times, and %v; want the note once at Info", unchecked, warn, other)
	}
}
