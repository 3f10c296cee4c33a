package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

var nop = handler.Func(func(context.Context, *stream.Message) error { return nil })

// client is never dialled by these tests. It is made outside any synctest
// bubble, since go-redis starts goroutines of its own.
var client = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})

func base() Config {
	return Config{Client: client, Stream: "s", Group: "g", Consumer: "c", Handler: nop}
}

func TestNormalizeDefaults(t *testing.T) {
	cfg, err := base().Normalize()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"GroupStart", cfg.GroupStart, "0"},
		{"Concurrency", cfg.Concurrency, DefaultConcurrency},
		{"AdaptivePrefetch", cfg.AdaptivePrefetch, true},
		{"Prefetch (the adaptive cap)", cfg.Prefetch, MaxAdaptivePrefetch},
		{"Block", cfg.Block, 2 * time.Second},
		{"MaxDeliveries", cfg.MaxDeliveries, int64(5)},
		{"DeadLetterStream", cfg.DeadLetterStream, "{s}:dead"},
		{"MinIdle", cfg.MinIdle, 30 * time.Second},
		{"LeaseInterval", cfg.LeaseInterval, 10 * time.Second},
		{"ReclaimInterval", cfg.ReclaimInterval, 15 * time.Second},
		{"ReclaimCount", cfg.ReclaimCount, 512},
		{"RetryBackoff", cfg.RetryBackoff, 30 * time.Second},
		{"MaxRetryBackoff", cfg.MaxRetryBackoff, 10 * time.Minute},
		{"AckInterval", cfg.AckInterval, 50 * time.Millisecond},
		{"AckBatch", cfg.AckBatch, 256},
		{"DrainTimeout", cfg.DrainTimeout, 30 * time.Second},
		{"AckTimeout", cfg.AckTimeout, 10 * time.Second},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("default %s = %v; want %v", c.name, c.got, c.want)
		}
	}
	if cfg.Logger == nil {
		t.Error("default Logger = nil; want a discarding logger")
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"nil client", func(c *Config) { c.Client = nil }, "nil redis client"},
		{"empty stream", func(c *Config) { c.Stream = "" }, "empty stream"},
		{"empty group", func(c *Config) { c.Group = "" }, "empty group"},
		{"empty consumer", func(c *Config) { c.Consumer = "" }, "empty consumer"},
		{"nil handler", func(c *Config) { c.Handler = nil }, "nil handler"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "Concurrency"},
		{"negative block", func(c *Config) { c.Block = -time.Second }, "Block"},
		{"sub-ms block", func(c *Config) { c.Block = time.Microsecond }, "Block"},
		{"negative max deliveries", func(c *Config) { c.MaxDeliveries = -1 }, "MaxDeliveries"},
		{"dead letters into itself", func(c *Config) { c.DeadLetterStream = "s" }, "DeadLetterStream"},
		{"tiny MinIdle", func(c *Config) { c.MinIdle = time.Millisecond }, "MinIdle"},
		{"lease >= MinIdle", func(c *Config) { c.MinIdle = time.Second; c.LeaseInterval = time.Second }, "LeaseInterval"},
		{"lease above MinIdle/2", func(c *Config) { c.MinIdle = time.Second; c.LeaseInterval = 501 * time.Millisecond }, "MinIdle/2"},
		{"tiny lease", func(c *Config) { c.LeaseInterval = time.Nanosecond }, "LeaseInterval"},
		{"max backoff < backoff", func(c *Config) { c.RetryBackoff = time.Minute; c.MaxRetryBackoff = time.Second }, "MaxRetryBackoff"},
		{"negative ack batch", func(c *Config) { c.AckBatch = -1 }, "AckBatch"},
		{"bad group start", func(c *Config) { c.GroupStart = "latest" }, "GroupStart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.mod(&cfg)
			before := cfg
			_, err := cfg.Normalize()
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Normalize = %v; want ErrInvalidOptions mentioning %q", err, tt.want)
			}
			if cfg.Concurrency != before.Concurrency || cfg.DeadLetterStream != before.DeadLetterStream {
				t.Error("Normalize mutated its receiver")
			}
		})
	}
}

// drainEngine returns an engine ready to drain, with n handlers that run
// until release is closed (or, when watchCtx, until their context ends).
func drainEngine(t *testing.T, drain time.Duration, n int, watchCtx bool, release chan struct{}) *Engine {
	cfg := base()
	cfg.DrainTimeout = drain
	cfg, err := cfg.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	e := New(cfg)
	e.hctx, e.hcancel = context.WithCancel(context.Background())
	for i := range n {
		id := stream.ID{Ms: 1, Seq: uint64(i)}.String()
		e.holds[id] = held{}
		e.handlers.Go(func() {
			if watchCtx {
				select {
				case <-e.hctx.Done():
				case <-release:
				}
			} else {
				<-release
			}
			if !e.isAbandoned() {
				e.unhold(id)
			}
		})
	}
	return e
}

func TestDrainWaitsForHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		e := drainEngine(t, 10*time.Second, 3, false, release)
		time.AfterFunc(4*time.Second, func() { close(release) })
		start := time.Now()
		if err := e.drain(); err != nil {
			t.Fatalf("drain = %v; want nil", err)
		}
		if got := time.Since(start); got != 4*time.Second {
			t.Errorf("drain took %v; want 4s (until the handlers finished)", got)
		}
	})
}

func TestDrainTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Handlers that watch their context return once it is cancelled at
		// the deadline.
		e := drainEngine(t, 5*time.Second, 2, true, make(chan struct{}))
		start := time.Now()
		err := e.drain()
		if !errors.Is(err, ErrDrainTimeout) {
			t.Fatalf("drain = %v; want ErrDrainTimeout", err)
		}
		if got := time.Since(start); got != 5*time.Second {
			t.Errorf("drain took %v; want exactly DrainTimeout", got)
		}
		if e.hctx.Err() == nil {
			t.Error("handler context not cancelled at the deadline")
		}
	})
	synctest.Test(t, func(t *testing.T) {
		// Handlers that ignore their context are abandoned after a 1s grace.
		release := make(chan struct{})
		e := drainEngine(t, 5*time.Second, 2, false, release)
		start := time.Now()
		err := e.drain()
		if !errors.Is(err, ErrDrainTimeout) || !strings.Contains(err.Error(), "2 handlers still running") {
			t.Fatalf("drain = %v; want ErrDrainTimeout naming 2 running handlers", err)
		}
		if got := time.Since(start); got != 6*time.Second {
			t.Errorf("drain took %v; want DrainTimeout + 1s grace", got)
		}
		close(release)
		e.handlers.Wait()
	})
}

func TestSortIDs(t *testing.T) {
	ids := []string{"10-0", "9-5", "9-10", "100-0", "9-0"}
	sortIDs(ids)
	want := []string{"9-0", "9-5", "9-10", "10-0", "100-0"}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("sortIDs = %v; want %v", ids, want)
		}
	}
}
