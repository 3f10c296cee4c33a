package integration_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// The commands the list queues send, per role, directly or from their Lua
// scripts. docs/reliability.md gives the ACL lines built from them; a
// process with several roles grants the union.
var (
	// A queue.Producer: LPUSH (Push, PushPayload, PushBatch).
	listProducerACL = []string{"lpush"}

	// A simple consumer: the type check at start (TYPE), the pop script
	// (TYPE, RPOP), BRPOP when the queues are empty, LPUSH of dead
	// letters, RPUSH of unstarted jobs handed back at shutdown, CLIENT
	// UNBLOCK to wake its own BRPOP at a stop.
	listSimpleACL = []string{"type", "rpop", "brpop", "lpush", "rpush", "evalsha", "eval", "client|unblock"}

	// A reliable consumer: the type check (TYPE); the heartbeat (SET ...
	// GET) and registry (SADD), and after an expired heartbeat the check
	// of its held jobs (LPOS); the fetch script (TYPE, LMOVE, LSET, SADD) and the
	// wait for jobs (BLMOVE); removal of finished jobs (LREM) and the
	// resync of its processing lists (LRANGE); the retry script (LPOS,
	// LSET); the move script for dead letters and hand-backs (LPOS,
	// LPUSH, RPUSH, LREM); the recovery sweep (SMEMBERS) and script
	// (EXISTS, LMOVE, SREM); the leave script at stop (LLEN, DEL, SREM);
	// CLIENT UNBLOCK to wake its own BLMOVE at a stop.
	listReliableACL = []string{
		"type", "set", "sadd", "lmove", "lset", "blmove", "lrem", "lrange", "lpos",
		"lpush", "rpush", "smembers", "exists", "srem", "llen", "del", "evalsha", "eval",
		"client|unblock",
	}
)

// listRecorder is a handler for the list flow: by the job's "kind" field
// it succeeds ("ok", or a plain string), fails once ("flaky"), fails
// permanently ("poison"), always fails ("failing"), or waits for release
// ("hold").
type listRecorder struct {
	flaky   atomic.Bool
	held    chan struct{} // closed when the "hold" job has started
	release chan struct{} // close to let it finish
	once    sync.Once
}

func newListRecorder() *listRecorder {
	return &listRecorder{held: make(chan struct{}), release: make(chan struct{})}
}

func (r *listRecorder) Handle(ctx context.Context, m *stream.Message) error {
	switch m.Values["kind"] {
	case "flaky":
		if r.flaky.CompareAndSwap(false, true) {
			return errors.New("flaky: try again")
		}
	case "poison":
		return handler.Permanent(errors.New("poison"))
	case "failing":
		return errors.New("always fails")
	case "hold":
		r.once.Do(func() { close(r.held) })
		select {
		case <-r.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func listOptions(errs *secErrors) *queue.Options {
	return &queue.Options{
		Concurrency:   1,
		Prefetch:      2,
		PollInterval:  100 * time.Millisecond,
		MaxDeliveries: 2,
		HeartbeatTTL:  300 * time.Millisecond, // sweeps and resyncs every 150ms
		RetryBackoff:  10 * time.Millisecond,
		DrainTimeout:  10 * time.Second,
		OnError:       errs.add,
	}
}

func llen(t *testing.T, rdb *redis.Client, key string) int64 {
	t.Helper()
	n, err := rdb.LLen(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("LLEN %s: %v", key, err)
	}
	return n
}

// stopWhileWaiting runs a consumer made by newConsumer, as the ACL user
// role, with a long PollInterval until its wait blocks, then stops it: the
// stop wakes the wait with CLIENT UNBLOCK, so Run returns well before
// PollInterval, without error.
func stopWhileWaiting(t *testing.T, admin *redis.Client, role string, newConsumer func(*queue.Options) (*queue.Consumer, error)) {
	t.Helper()
	var errs secErrors
	const poll = 30 * time.Second
	c, err := newConsumer(&queue.Options{PollInterval: poll, OnError: errs.add})
	if err != nil {
		t.Fatal(err)
	}
	run := start(t, c.Run)
	eventually(t, 10*time.Second, "the consumer waiting", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned early: %v (OnError: %v)", err, errs.all())
		}
		return blockedConns(t, admin, func(f map[string]string) bool {
			return f["user"] == role && (f["cmd"] == "brpop" || f["cmd"] == "blmove")
		}) > 0
	})
	run.Cancel()
	if err := run.Wait(t, poll/3); err != nil {
		t.Fatalf("Run = %v; want nil (OnError: %v)", err, errs.all())
	}
	if e := errs.all(); len(e) != 0 {
		t.Errorf("OnError got %v; want nothing", e)
	}
}

// listFlow runs one consumer on q through the whole list flow: jobs that
// succeed, one retried once, one failing permanently and one failing until
// MaxDeliveries (two dead letters), plus extra jobs already waiting for it (a
// dead consumer's, for a reliable consumer to recover); then, at a
// graceful stop, two fetched jobs that no handler started go back to the
// queue while an in-flight one finishes. prod pushes the jobs.
func listFlow(t *testing.T, admin *redis.Client, prod *queue.Producer, q string, c *queue.Consumer, rec *listRecorder, errs *secErrors, reliable bool, extra uint64) {
	t.Helper()
	ctx := context.Background()
	run := start(t, c.Run)
	jobs := []map[string]any{{"kind": "ok"}, {"kind": "flaky"}, {"kind": "poison"}, {"kind": "failing"}, {"kind": "ok"}}
	if _, err := prod.PushBatch(ctx, jobs); err != nil {
		t.Fatalf("PushBatch: %v", err)
	}
	if _, err := prod.PushPayload(ctx, map[string]string{"kind": "ok"}); err != nil {
		t.Fatalf("PushPayload: %v", err)
	}
	if _, err := prod.Push(ctx, map[string]any{"kind": "ok"}); err != nil {
		t.Fatalf("Push: %v", err)
	}
	wantAcked := 5 + extra // four "ok", "flaky" on its second attempt, the extra jobs
	proc := queue.ProcessingKey(q, "c1")
	eventually(t, 20*time.Second, "every job handled or dead-lettered", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned early: %v (OnError: %v)", err, errs.all())
		}
		s := c.Stats()
		return s.Acked == wantAcked && s.DeadLettered == 2 && llen(t, admin, q) == 0 && llen(t, admin, proc) == 0
	})
	if n := llen(t, admin, queue.DeadLetterKey(q)); n != 2 {
		t.Errorf("dead-letter list holds %d jobs; want 2", n)
	}

	if reliable {
		// The resync of the processing lists (LRANGE) runs in every
		// sweep (HeartbeatTTL/2).
		eventually(t, 10*time.Second, "a resync", func() bool { return commandsCalled(t, admin)["lrange"] })
	}

	// A graceful stop with one job in a handler and two fetched, unstarted.
	if _, err := prod.PushBatch(ctx, []map[string]any{{"kind": "hold"}, {"kind": "ok"}, {"kind": "ok"}}); err != nil {
		t.Fatalf("PushBatch: %v", err)
	}
	eventually(t, 10*time.Second, "the held job started and the two after it fetched", func() bool {
		select {
		case <-rec.held:
		default:
			return false
		}
		return llen(t, admin, q) == 0 && (!reliable || llen(t, admin, proc) == 3)
	})
	run.Cancel()
	// The unstarted jobs go back before the drain waits for the handler.
	eventually(t, 10*time.Second, "the 2 unstarted jobs handed back to the queue", func() bool { return llen(t, admin, q) == 2 })
	close(rec.release)
	if err := run.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil (OnError: %v)", err, errs.all())
	}
	if reliable {
		if n := llen(t, admin, proc); n != 0 {
			t.Errorf("after the stop the processing list holds %d jobs; want 0", n)
		}
		if ok, _ := admin.SIsMember(ctx, queue.ConsumersKey(q), "c1").Result(); ok {
			t.Errorf("c1 still registered in %s after a stop with an empty processing list", queue.ConsumersKey(q))
		}
	}
	for _, err := range errs.all() {
		if !strings.Contains(err.Error(), "handler failed on job") {
			t.Errorf("OnError got %v; want only handler failures", err)
		}
	}
}

// TestACLListsLeastPrivilege runs the list flow with one ACL user per role,
// each limited to the key patterns jobs:* and {jobs:* and to its role's
// commands: a producer pushing, a simple and a reliable consumer handling,
// retrying, dead-lettering and handing back jobs, the reliable one also
// recovering a dead consumer's jobs. Nothing is denied (ACL LOG stays
// empty), and every command granted to a role was run in its phase (INFO
// commandstats, reset before each phase).
func TestACLListsLeastPrivilege(t *testing.T) {
	s := redistest.StartSecureServer(t, &redistest.SecureOptions{Password: "admin-" + randHex(t)})
	admin := s.Client(t)
	ctx := context.Background()
	clients := map[string]*redis.Client{}
	for role, cmds := range map[string][]string{"producer": listProducerACL, "simple": listSimpleACL, "reliable": listReliableACL} {
		pass := randHex(t)
		setUser(t, admin, role, pass, "jobs:*", cmds)
		clients[role] = s.ClientAs(t, role, pass)
	}
	phase := func(role string, grants []string, run func()) {
		t.Helper()
		if err := admin.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		run()
		called := commandsCalled(t, admin)
		for _, c := range grants {
			if !called[c] {
				t.Errorf("%s: granted command %q was never run: the grant is not needed, or the flow misses a path", role, c)
			}
		}
		t.Logf("ACL SETUSER %s on >password ~jobs:* ~{jobs:* resetchannels -@all +%s", role, strings.Join(grants, " +"))
	}

	phase("producer", listProducerACL, func() {
		p, err := queue.NewProducer(clients["producer"], "jobs:produced", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Push(ctx, map[string]any{"kind": "ok"}); err != nil {
			t.Fatalf("Push: %v", err)
		}
		if _, err := p.PushBatch(ctx, []map[string]any{{"kind": "ok"}, {"kind": "ok"}}); err != nil {
			t.Fatalf("PushBatch: %v", err)
		}
		if _, err := p.PushPayload(ctx, map[string]int{"n": 1}); err != nil {
			t.Fatalf("PushPayload: %v", err)
		}
	})

	phase("simple", listSimpleACL, func() {
		q := "jobs:simple"
		p, err := queue.NewProducer(clients["producer"], q, nil)
		if err != nil {
			t.Fatal(err)
		}
		var errs secErrors
		rec := newListRecorder()
		c, err := queue.NewSimpleConsumer(clients["simple"], []string{q}, rec, listOptions(&errs))
		if err != nil {
			t.Fatal(err)
		}
		listFlow(t, admin, p, q, c, rec, &errs, false, 0)
		stopWhileWaiting(t, admin, "simple", func(opts *queue.Options) (*queue.Consumer, error) {
			return queue.NewSimpleConsumer(clients["simple"], []string{q}, rec, opts)
		})
	})

	q := "jobs:reliable"
	// A dead consumer's job: in its processing list, registered, no
	// heartbeat. Set up by the admin before the phase's statistics reset.
	if err := admin.LPush(ctx, queue.ProcessingKey(q, "ghost"), "left by a crashed consumer").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.SAdd(ctx, queue.ConsumersKey(q), "ghost").Err(); err != nil {
		t.Fatal(err)
	}
	phase("reliable", listReliableACL, func() {
		p, err := queue.NewProducer(clients["producer"], q, nil)
		if err != nil {
			t.Fatal(err)
		}
		var errs secErrors
		rec := newListRecorder()
		c, err := queue.NewReliableConsumer(clients["reliable"], []string{q}, "c1", rec, listOptions(&errs))
		if err != nil {
			t.Fatal(err)
		}
		listFlow(t, admin, p, q, c, rec, &errs, true, 1)
		if s := c.Stats(); s.Recovered == 0 || s.Retried == 0 || s.Released != 2 {
			t.Errorf("Stats = %+v; want the ghost's job recovered, a retry and 2 jobs released", s)
		}
		stopWhileWaiting(t, admin, "reliable", func(opts *queue.Options) (*queue.Consumer, error) {
			return queue.NewReliableConsumer(clients["reliable"], []string{q}, "c1", rec, opts)
		})
	})

	if d := aclDenials(t, admin); len(d) != 0 {
		t.Errorf("ACL LOG has denials:\n%s", strings.Join(d, "\n"))
	}
	// Nothing outside the patterns is reachable.
	if err := clients["producer"].LPush(ctx, "other", "x").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("LPUSH to a key outside jobs:* = %v; want NOPERM", err)
	}
}

// TestACLListsMissingPermission removes one command at a time from a
// role's line: the error, returned by Run (or the producer) or reported to
// OnError, names the command (or, for one refused inside a script, the
// script and the commands it runs).
func TestACLListsMissingPermission(t *testing.T) {
	s := redistest.StartSecureServer(t, &redistest.SecureOptions{Password: "admin-" + randHex(t)})
	admin := s.Client(t)
	without := func(acl []string, cmd string) []string {
		return slices.DeleteFunc(slices.Clone(acl), func(c string) bool { return c == cmd })
	}
	tests := []struct {
		name     string
		cmds     []string
		reliable bool
		producer bool   // push with a queue.Producer instead of running a consumer
		kind     string // of the job waiting in the queue
		want     []string
	}{
		{name: "producer lpush", cmds: without(listProducerACL, "lpush"), producer: true, want: []string{"NOPERM", "lpush"}},
		{name: "simple brpop", cmds: without(listSimpleACL, "brpop"), want: []string{"NOPERM", "brpop"}},
		{name: "simple rpop", cmds: without(listSimpleACL, "rpop"), kind: "ok", want: []string{"script pop (runs TYPE, RPOP)"}},
		{name: "simple evalsha", cmds: without(without(listSimpleACL, "evalsha"), "eval"), kind: "ok", want: []string{"NOPERM", "evalsha"}},
		{name: "simple lpush", cmds: without(listSimpleACL, "lpush"), kind: "poison", want: []string{"NOPERM", "lpush"}},
		{name: "reliable set", cmds: without(listReliableACL, "set"), reliable: true, want: []string{"NOPERM", "set"}},
		{name: "reliable lmove", cmds: without(listReliableACL, "lmove"), reliable: true, kind: "ok", want: []string{"script", "LMOVE"}},
		{name: "reliable blmove", cmds: without(listReliableACL, "blmove"), reliable: true, want: []string{"NOPERM", "blmove"}},
		{name: "reliable lrem", cmds: without(listReliableACL, "lrem"), reliable: true, kind: "ok", want: []string{"NOPERM", "lrem"}},
		{name: "reliable lpush", cmds: without(listReliableACL, "lpush"), reliable: true, kind: "poison", want: []string{"script move (runs LPOS, LPUSH, RPUSH, LREM)"}},
		{name: "reliable lpos", cmds: without(listReliableACL, "lpos"), reliable: true, kind: "flaky", want: []string{"script bump (runs LPOS, LSET)"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			user := fmt.Sprintf("l%d", i)
			pass := randHex(t)
			setUser(t, admin, user, pass, "jobs:*", tt.cmds)
			rdb := s.ClientAs(t, user, pass)
			q := fmt.Sprintf("jobs:list%d", i)
			if tt.producer {
				p, err := queue.NewProducer(rdb, q, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Push(ctx, map[string]any{"kind": "ok"}); err == nil || !containsAll(err.Error(), append(tt.want, q)...) {
					t.Errorf("Push = %v; want an error mentioning %q and the queue", err, tt.want)
				}
				return
			}
			if tt.kind != "" {
				p, err := queue.NewProducer(admin, q, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Push(ctx, map[string]any{"kind": tt.kind}); err != nil {
					t.Fatal(err)
				}
			}
			var errs secErrors
			opts := listOptions(&errs)
			rec := newListRecorder()
			var c *queue.Consumer
			var err error
			if tt.reliable {
				c, err = queue.NewReliableConsumer(rdb, []string{q}, "c1", rec, opts)
			} else {
				c, err = queue.NewSimpleConsumer(rdb, []string{q}, rec, opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			run := start(t, c.Run)
			var got error
			eventually(t, 10*time.Second, fmt.Sprintf("an error mentioning %q", tt.want), func() bool {
				if err, ok := run.Exited(); ok {
					got = err
					if err == nil || !containsAll(err.Error(), tt.want...) {
						t.Fatalf("Run = %v; want an error mentioning %q (OnError: %v)", err, tt.want, errs.all())
					}
					return true
				}
				got = errs.find(tt.want...)
				return got != nil
			})
			t.Logf("%s: %v", tt.name, got)
		})
	}
}
