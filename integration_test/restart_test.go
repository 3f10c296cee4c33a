package integration_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// pendingOK returns the group's pending count, or ok false when Redis cannot
// tell right now (server down or restarting, group missing): for polling in
// eventually while the system recovers.
func pendingOK(rdb redis.UniversalClient, key, grp string) (n int64, ok bool) {
	p, err := rdb.XPending(context.Background(), key, grp).Result()
	if err != nil {
		return 0, false
	}
	return p.Count, true
}

// gate holds handlers back: the first `after` handler calls pass, later ones
// wait (honouring ctx) until open is called. It lets a test act while a known
// number of entries is in flight, instead of hoping for the right moment.
type gate struct {
	after   int64
	calls   atomic.Int64
	waiting atomic.Int64 // calls that reached the closed gate (and may have passed since)
	ch      chan struct{}
}

func newGate(after int64) *gate { return &gate{after: after, ch: make(chan struct{})} }

func (g *gate) wait(ctx context.Context) error {
	if g.calls.Add(1) <= g.after {
		return nil
	}
	select {
	case <-g.ch:
		return nil
	default:
	}
	g.waiting.Add(1)
	select {
	case <-g.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) open() { close(g.ch) }

// TestRedisRestartMidRun takes the server down while two consumers are
// working through 2000 entries, with handlers in flight, then brings it back:
// the consumers must reconnect by themselves and finish every entry. The
// server is killed with SIGKILL (AOF with fsync always keeps every write it
// acknowledged), or stopped gracefully.
func TestRedisRestartMidRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		down func(*redistest.Server) error
	}{
		{"kill", (*redistest.Server).Kill},
		{"stop", (*redistest.Server).Stop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := redistest.StartServer(t, &redistest.ServerOptions{AOF: true})
			rdb := s.Client(t)
			key, grp := redistest.Names(t)

			const total, passFirst = 2000, 300
			opts := fastOptions()
			inFlight := 2 * opts.Concurrency // what two full consumers hold
			ids := publish(t, rdb, key, total, nil)

			// The first 300 calls pass; the next ones wait at the gate,
			// until both consumers have all their slots busy.
			g := newGate(passFirst)
			rec := newRecorder(func(ctx context.Context, _ *stream.Message) error {
				if err := g.wait(ctx); err != nil {
					return err
				}
				return sleepCtx(ctx, time.Millisecond)
			})
			names := []string{"A", "B"}
			consumers := map[string]*group.Consumer{}
			runs := map[string]*running{}
			readErrs := map[string]*atomic.Int64{} // XREADGROUP failures reported to OnError
			for _, name := range names {
				o := *opts
				n := new(atomic.Int64)
				readErrs[name] = n
				o.OnError = func(err error) {
					if strings.Contains(err.Error(), "XREADGROUP") {
						n.Add(1)
					}
				}
				consumers[name] = newConsumer(t, s.Client(t), key, grp, name, rec.as(name), &o)
				runs[name] = start(t, consumers[name].Run)
			}
			eventually(t, 20*time.Second, "300 entries handled and both consumers' slots full", func() bool {
				return rec.distinct() >= passFirst && g.waiting.Load() == int64(inFlight)
			})

			if err := tc.down(s); err != nil {
				t.Fatalf("%s server: %v", tc.name, err)
			}
			// The held handlers finish while Redis is down: their acks
			// must wait for it.
			g.open()
			eventually(t, 10*time.Second, "the in-flight handlers to finish", func() bool {
				return rec.distinct() >= passFirst+inFlight
			})
			// Keep Redis down until both read loops have seen it fail
			// (past go-redis's own retries), so that they have to recover
			// by themselves.
			eventually(t, 20*time.Second, "both consumers to report a failed XREADGROUP", func() bool {
				for _, name := range names {
					if err, ok := runs[name].Exited(); ok {
						t.Fatalf("consumer %s: Run returned while Redis was down: %v", name, err)
					}
				}
				return readErrs["A"].Load() > 0 && readErrs["B"].Load() > 0
			})
			if err := s.Start(); err != nil {
				t.Fatalf("restart server: %v", err)
			}

			eventually(t, 60*time.Second, "every entry handled and acknowledged after the restart", func() bool {
				for _, name := range names {
					if err, ok := runs[name].Exited(); ok {
						t.Fatalf("consumer %s: Run returned early: %v", name, err)
					}
				}
				n, ok := pendingOK(rdb, key, grp)
				return ok && n == 0 && rec.distinct() == total
			})
			for _, name := range names {
				if err := runs[name].Stop(); err != nil {
					t.Errorf("consumer %s: Run = %v; want nil", name, err)
				}
			}

			calls, _, _ := rec.snapshot()
			published := make(map[string]bool, len(ids))
			for i, id := range ids {
				published[id] = true
				if calls[id] < 1 {
					t.Errorf("entry %d (%s) never handled", i, id)
				}
			}
			for id := range calls {
				if !published[id] {
					t.Errorf("handled %s, which was never published", id)
				}
			}
			if n := pending(t, rdb, key, grp); n != 0 {
				t.Errorf("pending after stop = %d; want 0", n)
			}
			if dl := deadLetters(t, rdb, key+":dead"); len(dl) != 0 {
				t.Errorf("dead letters = %v; want none", dl)
			}
			var delivered, created uint64
			for _, name := range names {
				st := consumers[name].Stats()
				if st.Failed != 0 || st.DeadLettered != 0 {
					t.Errorf("consumer %s: Stats = %+v; want no failures, no dead letters", name, st)
				}
				delivered += st.Delivered
				created += st.GroupsCreated
			}
			if delivered < total {
				t.Errorf("consumers delivered %d entries in all; want at least %d", delivered, total)
			}
			// The AOF kept the group: nobody had to create it again.
			if created != 1 {
				t.Errorf("GroupsCreated across the consumers = %d; want 1 (at start only)", created)
			}
		})
	}
}

// TestGroupDeletedWhileRunning destroys the consumer group (XGROUP DESTROY)
// while two consumers have handlers in flight. They must create the group
// again, from GroupStart ("0"), and carry on: entries published after the
// destroy are handled exactly once, and those published before at least once,
// including those the old group never delivered.
//
// Entries handled before the destroy are delivered again by the new group but
// not necessarily handled again: a consumer that still has the entry's XACK
// queued skips the redelivery, and that XACK then acknowledges it in the new
// group. At least once allows both, so the test does not count them.
func TestGroupDeletedWhileRunning(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := t.Context()
	key, grp := redistest.Names(t)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })

	const before, after, passFirst = 100, 100, 20
	opts := fastOptions()
	inFlight := 2 * opts.Concurrency

	g := newGate(passFirst)
	rec := newRecorder(func(ctx context.Context, _ *stream.Message) error { return g.wait(ctx) })
	names := []string{"A", "B"}
	consumers := map[string]*group.Consumer{}
	runs := map[string]*running{}
	for _, name := range names {
		consumers[name] = newConsumer(t, rdb, key, grp, name, rec.as(name), opts)
		runs[name] = start(t, consumers[name].Run)
	}
	beforeIDs := publish(t, rdb, key, before, map[string]any{"phase": "before"})
	eventually(t, 15*time.Second, "20 entries handled and both consumers' slots full", func() bool {
		return rec.distinct() >= passFirst && g.waiting.Load() == int64(inFlight)
	})
	// With every handler held at the gate, a consumer holds at most
	// Concurrency+Prefetch entries and reads no more, so the old group has
	// delivered at most passFirst + 2*(Concurrency+Prefetch) = 52 of the
	// 100: the rest are handled only if the group comes back from "0".
	maxRead := passFirst + 2*(opts.Concurrency+opts.Prefetch)
	gs, err := rdb.XInfoGroups(ctx, key).Result()
	if err != nil || len(gs) != 1 {
		t.Fatalf("XINFO GROUPS = %+v, %v; want one group", gs, err)
	}
	if last := slices.Index(beforeIDs, gs[0].LastDeliveredID); last < passFirst-1 || last >= maxRead {
		t.Fatalf("old group delivered up to entry %d (%s); want within [%d, %d)", last, gs[0].LastDeliveredID, passFirst-1, maxRead)
	}

	if n, err := rdb.XGroupDestroy(ctx, key, grp).Result(); err != nil || n != 1 {
		t.Fatalf("XGROUP DESTROY = %d, %v; want 1, nil", n, err)
	}
	afterIDs := publish(t, rdb, key, after, map[string]any{"phase": "after"})
	g.open()

	eventually(t, 20*time.Second, "every entry handled and acknowledged in the new group", func() bool {
		for _, name := range names {
			if err, ok := runs[name].Exited(); ok {
				t.Fatalf("consumer %s: Run returned early: %v", name, err)
			}
		}
		n, ok := pendingOK(rdb, key, grp)
		return ok && n == 0 && rec.distinct() == before+after
	})
	for _, name := range names {
		if err := runs[name].Stop(); err != nil {
			t.Errorf("consumer %s: Run = %v; want nil", name, err)
		}
	}

	calls, _, _ := rec.snapshot()
	for i, id := range beforeIDs {
		if calls[id] < 1 {
			t.Errorf("entry %d published before the destroy (%s) never handled", i, id)
		}
	}
	for i, id := range afterIDs {
		if calls[id] != 1 {
			t.Errorf("entry %d published after the destroy (%s) handled %d times; want exactly once", i, id, calls[id])
		}
	}
	var created uint64
	for _, name := range names {
		created += consumers[name].Stats().GroupsCreated
	}
	if created != 2 {
		t.Errorf("GroupsCreated across the consumers = %d; want 2 (at start, after the destroy)", created)
	}
	groups, err := rdb.XInfoGroups(ctx, key).Result()
	if err != nil {
		t.Fatalf("XINFO GROUPS: %v", err)
	}
	last := afterIDs[len(afterIDs)-1]
	if len(groups) != 1 || groups[0].Name != grp || groups[0].Pending != 0 || groups[0].LastDeliveredID != last {
		t.Errorf("XINFO GROUPS = %+v; want one group %q with 0 pending, last delivered %s", groups, grp, last)
	}
}
