package redischeck_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redischeck"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// capture is a slog.Handler that keeps the records of the check.
type capture struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.recs = append(c.recs, r.Clone())
	c.mu.Unlock()
	return nil
}
func (c *capture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *capture) WithGroup(string) slog.Handler      { return c }

// lines returns the records as "LEVEL message k=v ...".
func (c *capture) lines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.recs {
		var b strings.Builder
		b.WriteString(r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		out = append(out, b.String())
	}
	return out
}

func TestEvictionPolicy(t *testing.T) {
	s := redistest.StartServer(t, nil)
	admin := s.Client(t)
	ctx := context.Background()
	setPolicy := func(p string) {
		t.Helper()
		if err := admin.ConfigSet(ctx, "maxmemory-policy", p).Err(); err != nil {
			t.Fatal(err)
		}
	}

	// noeviction (the default): nothing is logged.
	var c capture
	if err := redischeck.EvictionPolicy(ctx, s.Client(t), slog.New(&c)); err != nil {
		t.Fatalf("EvictionPolicy = %v; want nil", err)
	}
	if l := c.lines(); len(l) != 0 {
		t.Fatalf("logged %q with noeviction; want nothing", l)
	}

	// allkeys-lru: one Warn per client, however many checks.
	setPolicy("allkeys-lru")
	rdb := s.Client(t)
	c = capture{}
	for range 5 {
		if err := redischeck.EvictionPolicy(ctx, rdb, slog.New(&c)); err != nil {
			t.Fatalf("EvictionPolicy = %v; want nil", err)
		}
	}
	l := c.lines()
	if len(l) != 1 || !strings.HasPrefix(l[0], "WARN "+redischeck.MsgEviction) ||
		!strings.Contains(l[0], "maxmemory_policy=allkeys-lru") || !strings.Contains(l[0], "addr="+s.Addr()) {
		t.Fatalf("logged %q; want one Warn %q naming allkeys-lru and the server", l, redischeck.MsgEviction)
	}
	if !strings.Contains(l[0], "CONFIG SET maxmemory-policy noeviction") {
		t.Errorf("the warning %q does not give the fix", l[0])
	}
	// Another client logs it again: once per client.
	var c2 capture
	if err := redischeck.EvictionPolicy(ctx, s.Client(t), slog.New(&c2)); err != nil {
		t.Fatal(err)
	}
	if l := c2.lines(); len(l) != 1 {
		t.Fatalf("a second client logged %q; want one Warn", l)
	}
	// A policy changed later is a new finding for the same client.
	setPolicy("volatile-ttl")
	if err := redischeck.EvictionPolicy(ctx, rdb, slog.New(&c)); err != nil {
		t.Fatal(err)
	}
	if l := c.lines(); len(l) != 2 || !strings.Contains(l[1], "maxmemory_policy=volatile-ttl") {
		t.Fatalf("after the policy changed, logged %q; want a second Warn naming volatile-ttl", l)
	}
	setPolicy("noeviction")

	// CONFIG GET refused to an ACL user: one Info that it could not be
	// checked, no error.
	if err := admin.Do(ctx, "ACL", "SETUSER", "worker", "on", ">pw", "~*", "+@all", "-config").Err(); err != nil {
		t.Fatal(err)
	}
	opts := s.Client(t).Options()
	opts.Username, opts.Password = "worker", "pw"
	worker := redisClient(t, opts)
	var c3 capture
	for range 3 {
		if err := redischeck.EvictionPolicy(ctx, worker, slog.New(&c3)); err != nil {
			t.Fatalf("EvictionPolicy as a user without CONFIG = %v; want nil", err)
		}
	}
	l = c3.lines()
	if len(l) != 1 || !strings.HasPrefix(l[0], "INFO "+redischeck.MsgUnchecked) || !strings.Contains(l[0], "NOPERM") {
		t.Fatalf("logged %q; want one Info %q with the NOPERM error", l, redischeck.MsgUnchecked)
	}

	// Redis down: a transient error is returned, nothing logged.
	down := s.Client(t)
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	var c4 capture
	err := redischeck.EvictionPolicy(ctx, down, slog.New(&c4))
	if !rediserr.IsTransient(err) {
		t.Fatalf("EvictionPolicy with Redis down = %v; want a transient error", err)
	}
	if l := c4.lines(); len(l) != 0 {
		t.Fatalf("logged %q with Redis down; want nothing", l)
	}

	// Once leaves the check to do after a transient error, and runs it
	// once it succeeds.
	var once redischeck.Once
	once.Do(ctx, down, slog.New(&c4))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigSet(ctx, "maxmemory-policy", "allkeys-random").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		once.Do(ctx, down, slog.New(&c4))
	}
	if l := c4.lines(); len(l) != 1 || !strings.Contains(l[0], "maxmemory_policy=allkeys-random") {
		t.Fatalf("Once logged %q; want one Warn naming allkeys-random", l)
	}
	if n := configGetCalls(t, admin); n != 1 {
		t.Fatalf("three Once.Do sent CONFIG GET %d times; want 1", n)
	}
}

func redisClient(t *testing.T, opts *redis.Options) *redis.Client {
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// configGetCalls returns how many CONFIG GET the server ran since the
// last CONFIG RESETSTAT.
func configGetCalls(t *testing.T, admin *redis.Client) int {
	t.Helper()
	info, err := admin.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_config|get:calls=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return 0
}

// A closed client is not a finding about the server: nothing is logged (the
// caller reports the closed client at its next command), and no error asks
// the caller to retry.
func TestEvictionPolicyClosedClient(t *testing.T) {
	rdb := redistest.Client(t)
	if err := rdb.Close(); err != nil {
		t.Fatal(err)
	}
	var c capture
	if err := redischeck.EvictionPolicy(context.Background(), rdb, slog.New(&c)); err != nil {
		t.Errorf("EvictionPolicy on a closed client = %v; want nil", err)
	}
	if l := c.lines(); len(l) != 0 {
		t.Errorf("logged %q; want nothing", l)
	}
}
