package integration_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// TestUnusualEntries: entries far from the usual shape (a 10 MB value,
// ten thousand fields, binary non-UTF-8 bytes, an empty field name) reach
// the handler byte for byte, are acknowledged, and when they fail are
// dead-lettered with every original field intact.
func TestUnusualEntries(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("0123456789abcdef", 10<<20/16) // 10 MiB
	fields := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("f%05d", i)] = fmt.Sprint(i)
		}
		return m
	}
	tests := []struct {
		name   string
		values map[string]string
	}{
		{name: "10 MB value", values: map[string]string{"blob": big}},
		{name: "3000 fields", values: fields(3000)},
		{name: "10000 fields", values: fields(10000)},
		{name: "binary and empty names", values: map[string]string{"": "empty name", "bin": "\x00\xff\xfe\r\n\x00", "\xc3\x28": "bad utf-8 name", "payload": "\x00not json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			key, grp := redistest.Names(t)
			dead := key + ":dead"
			t.Cleanup(func() { rdb.Del(context.Background(), key, dead) })
			for range 2 {
				if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: tt.values}).Err(); err != nil {
					t.Fatalf("XADD: %v", err)
				}
			}
			seen := make(chan map[string]string, 2)
			calls := 0
			h := handler.Func(func(_ context.Context, m *stream.Message) error {
				seen <- maps.Clone(m.Values)
				calls++ // one worker: Concurrency 1
				if calls == 2 {
					return handler.Permanent(errors.New("rejected"))
				}
				return nil
			})
			opts := fastOptions()
			opts.Concurrency, opts.Prefetch = 1, 1
			var errs secErrors
			opts.OnError = errs.add
			c := newConsumer(t, rdb, key, grp, "c1", h, opts)
			r := start(t, c.Run)
			for i := range 2 {
				select {
				case got := <-seen:
					if !maps.Equal(got, tt.values) {
						t.Errorf("call %d: handler got %d fields; want the %d original ones byte for byte", i, len(got), len(tt.values))
					}
				case <-time.After(20 * time.Second):
					t.Fatalf("entry %d never reached the handler", i)
				}
			}
			deadline := time.Now().Add(20 * time.Second)
			for s := c.Stats(); s.Acked != 1 || s.DeadLettered != 1; s = c.Stats() {
				if time.Now().After(deadline) {
					t.Fatalf("Stats = %+v after 20s; want one acknowledged, one dead-lettered (OnError: %v)", s, errs.all())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := r.Stop(); err != nil {
				t.Fatalf("Run = %v; want nil", err)
			}
			dl := deadLetters(t, rdb, dead)
			if len(dl) != 1 || !maps.Equal(dl[0].Values, tt.values) {
				t.Errorf("dead letter kept %d fields; want the %d original ones intact", len(dl[0].Values), len(tt.values))
			}
			if n := pending(t, rdb, key, grp); n != 0 {
				t.Errorf("pending = %d; want 0", n)
			}
		})
	}
}

// TestWrongKeyTypes: a stream key holding any other type stops Run (of a
// consumer and of a reclaimer) at once with ErrNotStream, naming the key
// and quoting Redis's WRONGTYPE; nothing is written to the key.
func TestWrongKeyTypes(t *testing.T) {
	t.Parallel()
	h := handler.Func(func(context.Context, *stream.Message) error { return nil })
	tests := []struct {
		typ  string
		make func(context.Context, *redis.Client, string) error
	}{
		{"string", func(ctx context.Context, rdb *redis.Client, k string) error { return rdb.Set(ctx, k, "v", 0).Err() }},
		{"list", func(ctx context.Context, rdb *redis.Client, k string) error { return rdb.RPush(ctx, k, "v").Err() }},
		{"hash", func(ctx context.Context, rdb *redis.Client, k string) error { return rdb.HSet(ctx, k, "f", "v").Err() }},
		{"set", func(ctx context.Context, rdb *redis.Client, k string) error { return rdb.SAdd(ctx, k, "v").Err() }},
		{"zset", func(ctx context.Context, rdb *redis.Client, k string) error {
			return rdb.ZAdd(ctx, k, redis.Z{Score: 1, Member: "v"}).Err()
		}},
	}
	for _, tt := range tests {
		for _, role := range []string{"consumer", "reclaimer"} {
			t.Run(tt.typ+"/"+role, func(t *testing.T) {
				t.Parallel()
				rdb := redistest.Client(t)
				key, grp := redistest.Names(t)
				ctx := context.Background()
				t.Cleanup(func() { rdb.Del(context.Background(), key) })
				if err := tt.make(ctx, rdb, key); err != nil {
					t.Fatal(err)
				}
				var run func(context.Context) error
				if role == "consumer" {
					run = newConsumer(t, rdb, key, grp, "c1", h, fastOptions()).Run
				} else {
					r, err := claim.NewReclaimer(rdb, key, grp, "r1", h, reclaimerOptions(fastOptions()))
					if err != nil {
						t.Fatal(err)
					}
					run = r.Run
				}
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				err := run(rctx)
				if !errors.Is(err, group.ErrNotStream) || !strings.Contains(err.Error(), "WRONGTYPE") || !strings.Contains(err.Error(), key) {
					t.Errorf("Run on a %s key = %v; want ErrNotStream naming %q with WRONGTYPE", tt.typ, err, key)
				}
				if rctx.Err() != nil {
					t.Errorf("Run returned only when its context ended; want at once")
				}
				if got, err := rdb.Type(ctx, key).Result(); err != nil || got != tt.typ {
					t.Errorf("TYPE %s = %q, %v; want %q untouched", key, got, err, tt.typ)
				}
			})
		}
	}
}

// TestHandlerIgnoringContext: a handler that never returns and ignores its
// context cannot be stopped; Run still returns, with ErrDrainTimeout,
// within DrainTimeout plus the one-second grace, and the entry stays
// pending. When the handler finally returns, its result is ignored: the
// entry is not acknowledged by a consumer that has stopped.
func TestHandlerIgnoringContext(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	publish(t, rdb, key, 1, nil)
	started := make(chan struct{})
	release := make(chan struct{})
	returned := make(chan struct{})
	h := handler.Func(func(ctx context.Context, _ *stream.Message) error {
		defer close(returned)
		close(started)
		<-release // ignores ctx
		return nil
	})
	opts := fastOptions()
	opts.Concurrency, opts.Prefetch = 1, 1
	opts.DrainTimeout = 300 * time.Millisecond
	c := newConsumer(t, rdb, key, grp, "c1", h, opts)
	r := start(t, c.Run)
	t.Cleanup(func() { // the handler goroutine must not outlive the test
		select {
		case <-release:
		default:
			close(release)
		}
		<-returned
	})
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler never started")
	}
	begin := time.Now()
	err := r.Stop()
	took := time.Since(begin)
	if !errors.Is(err, group.ErrDrainTimeout) || !strings.Contains(err.Error(), "1 handlers still running") {
		t.Fatalf("Run = %v; want ErrDrainTimeout with one handler still running", err)
	}
	if limit := opts.DrainTimeout + time.Second + 2*time.Second; took > limit {
		t.Errorf("Run took %v to return after cancel; want at most DrainTimeout + 1s grace (+ slack) = %v", took, limit)
	}
	if n := pending(t, rdb, key, grp); n != 1 {
		t.Errorf("pending after the drain timeout = %d; want 1", n)
	}
	close(release)
	<-returned
	// The consumer has stopped: nothing may acknowledge the late success.
	// Stats are final once Run has returned and the handler has returned.
	if s := c.Stats(); s.Acked != 0 {
		t.Errorf("Acked = %d after the abandoned handler returned; want 0", s.Acked)
	}
	if n := pending(t, rdb, key, grp); n != 1 {
		t.Errorf("pending after the abandoned handler returned = %d; want 1 (delivered again later)", n)
	}
}

// TestClosedClient: a client closed before Run, while Run is reading
// and a handler is in flight, or while Run only waits for entries (its
// reads are on connections of its own, which stay open), makes Run return
// an error wrapping redis.ErrClosed promptly, without spinning on it; an
// entry in flight stays pending.
func TestClosedClient(t *testing.T) {
	t.Parallel()
	for _, when := range []string{"before Run", "while running", "while idle"} {
		t.Run(when, func(t *testing.T) {
			t.Parallel()
			admin := redistest.Client(t)
			key, grp := redistest.Names(t)
			t.Cleanup(func() { admin.Del(context.Background(), key) })
			rdb := redis.NewClient(admin.Options())
			t.Cleanup(func() { _ = rdb.Close() })
			publish(t, admin, key, 1, nil)
			inHandler := make(chan struct{}, 1)
			release := make(chan struct{})
			h := handler.Func(func(ctx context.Context, _ *stream.Message) error {
				inHandler <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			})
			var errs secErrors
			opts := fastOptions()
			opts.OnError = errs.add
			if when == "while idle" {
				opts.DisableReclaim = true // no reclaim pass on the closed client to notice
			}
			c := newConsumer(t, rdb, key, grp, "c1", h, opts)
			if when == "before Run" {
				if err := rdb.Close(); err != nil {
					t.Fatal(err)
				}
			}
			r := start(t, c.Run)
			if when == "while idle" {
				close(release)
				<-inHandler
				eventually(t, 10*time.Second, "the entry acknowledged", func() bool { return pending(t, admin, key, grp) == 0 })
				if err := rdb.Close(); err != nil {
					t.Fatal(err)
				}
			}
			if when == "while running" {
				select {
				case <-inHandler:
				case <-time.After(10 * time.Second):
					t.Fatal("handler never started")
				}
				if err := rdb.Close(); err != nil {
					t.Fatal(err)
				}
				close(release)
			}
			var err error
			eventually(t, 10*time.Second, "Run to return on its own", func() bool {
				var ok bool
				err, ok = r.Exited()
				return ok
			})
			if !errors.Is(err, redis.ErrClosed) || !strings.Contains(err.Error(), key) {
				t.Errorf("Run = %v; want an error wrapping redis.ErrClosed and naming %q", err, key)
			}
			if n := len(errs.all()); n > 10 {
				t.Errorf("OnError called %d times; want a few reports, not a spin: %v", n, errs.all()[:10])
			}
			if when == "while running" {
				if n := pending(t, admin, key, grp); n != 1 {
					t.Errorf("pending = %d; want 1: the entry whose XACK could not be sent stays pending", n)
				}
			}
		})
	}
}
