package integration_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// namedClient returns a client to addr whose connections all carry the client
// name name (CLIENT SETNAME), so a test can find them in CLIENT LIST.
func namedClient(t *testing.T, addr, name string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:         addr,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error {
			return cn.ClientSetName(ctx, name).Err()
		},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clientName turns a test's stream key into a valid, unique client name.
func clientName(key string) string {
	return "review-" + strings.NewReplacer("{", "", "}", "", ":", "-").Replace(key)
}

// waitBlockedRead waits until a connection named name is blocked in
// XREADGROUP on the server admin talks to.
func waitBlockedRead(t *testing.T, admin *redis.Client, name string) {
	t.Helper()
	eventually(t, 10*time.Second, "the consumer's XREADGROUP to block", func() bool {
		list, err := admin.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatalf("CLIENT LIST: %v", err)
		}
		for _, line := range strings.Split(list, "\n") {
			f := map[string]string{}
			for _, kv := range strings.Fields(line) {
				k, v, _ := strings.Cut(kv, "=")
				f[k] = v
			}
			if f["name"] == name && f["cmd"] == "xreadgroup" && strings.Contains(f["flags"], "b") {
				return true
			}
		}
		return false
	})
}

// errLog collects the errors a consumer reports to OnError.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) add(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

func (l *errLog) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		if strings.Contains(err.Error(), substr) {
			return true
		}
	}
	return false
}

// TestStreamDeletedWhileReadBlocked deletes the stream key (DEL) while
// the consumer is blocked in XREADGROUP. docs/semantics.md: "NOGROUP (the
// group or the whole stream was deleted ...) makes the consumer create the
// group again from GroupStart ... and carry on". Redis >= 7.0 answers the
// blocked read with "UNBLOCKED the stream key no longer exists", which is not
// NOGROUP: the consumer must still recreate the group and carry on.
func TestStreamDeletedWhileReadBlocked(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	name := clientName(key)
	crdb := namedClient(t, rdb.Options().Addr, name)

	opts := fastOptions()
	opts.Block = 5 * time.Second // the read is surely still blocked when the key goes
	rec := newRecorder(nil)
	c := newConsumer(t, crdb, key, grp, "A", rec.as("A"), opts)
	run := start(t, c.Run)

	first := publish(t, rdb, key, 1, nil)[0]
	eventually(t, 10*time.Second, "the first entry handled and acknowledged", func() bool {
		n, ok := pendingOK(rdb, key, grp)
		return rec.count(first) == 1 && ok && n == 0
	})
	waitBlockedRead(t, rdb, name)
	if err := rdb.Del(context.Background(), key).Err(); err != nil {
		t.Fatalf("DEL %s: %v", key, err)
	}
	second := publish(t, rdb, key, 1, nil)[0]
	eventually(t, 15*time.Second, "the entry added after the DEL handled", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned after the stream was deleted: %v; want it to recreate the group and carry on", err)
		}
		n, ok := pendingOK(rdb, key, grp)
		return rec.count(second) == 1 && ok && n == 0
	})
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
}

// TestFailoverWhileReadBlocked turns the server into a replica while
// the consumer is blocked in XREADGROUP, then promotes it back, as a Sentinel
// failover does to the old master. docs/semantics.md: "Connection errors,
// timeouts, LOADING, READONLY and similar are transient: every loop retries
// ... and never exits". Redis answers the blocked read with "UNBLOCKED force
// unblock from blocking operation, instance state changed (master ->
// replica?)"; the consumer must ride it out like the READONLY that follows.
func TestFailoverWhileReadBlocked(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t, nil)
	admin := srv.Client(t)
	key, grp := redistest.Names(t)
	name := clientName(key)
	crdb := namedClient(t, srv.Addr(), name)

	opts := fastOptions()
	opts.Block = 5 * time.Second
	var errs errLog
	opts.OnError = errs.add
	rec := newRecorder(nil)
	c := newConsumer(t, crdb, key, grp, "A", rec.as("A"), opts)
	run := start(t, c.Run)

	first := publish(t, admin, key, 1, nil)[0]
	eventually(t, 10*time.Second, "the first entry handled and acknowledged", func() bool {
		n, ok := pendingOK(admin, key, grp)
		return rec.count(first) == 1 && ok && n == 0
	})
	waitBlockedRead(t, admin, name)
	// Port 1: nothing listens, so the replica never syncs and keeps its data.
	if err := admin.Do(context.Background(), "REPLICAOF", "127.0.0.1", "1").Err(); err != nil {
		t.Fatalf("REPLICAOF: %v", err)
	}
	promoted := false
	t.Cleanup(func() {
		if !promoted {
			admin.Do(context.Background(), "REPLICAOF", "NO", "ONE")
		}
	})
	eventually(t, 10*time.Second, "the consumer to see the role change", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned during a failover: %v; want it to retry and carry on", err)
		}
		return errs.has("READONLY") || errs.has("UNBLOCKED")
	})
	if err := admin.Do(context.Background(), "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatalf("REPLICAOF NO ONE: %v", err)
	}
	promoted = true
	second := publish(t, admin, key, 1, nil)[0]
	eventually(t, 20*time.Second, "the entry added after the failover handled", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned during a failover: %v; want it to retry and carry on", err)
		}
		n, ok := pendingOK(admin, key, grp)
		return rec.count(second) == 1 && ok && n == 0
	})
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
}

// TestSameNameCrashLoopDeadLettered pins the crash-loop guarantee for a
// consumer restarted under the same name: re-reading its own pending entries
// (XREADGROUP ... 0) counts a delivery, so an entry that already had
// MaxDeliveries deliveries is dead-lettered without calling the handler.
func TestSameNameCrashLoopDeadLettered(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	t.Cleanup(func() { rdb.Del(context.Background(), key, key+":dead") })
	if err := rdb.XGroupCreateMkStream(ctx, key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}
	ids := publish(t, rdb, key, 2, nil)
	poison, fine := ids[0], ids[1]
	abandon(t, rdb, key, grp, "w", 2)
	opts := fastOptions()
	opts.MaxDeliveries = 3
	opts.MinIdle = time.Hour // no reclaiming: only the restart path
	// The poison entry crashed "w" on each of its MaxDeliveries deliveries.
	if err := rdb.Do(ctx, "XCLAIM", key, grp, "w", 0, poison, "RETRYCOUNT", opts.MaxDeliveries).Err(); err != nil {
		t.Fatalf("XCLAIM RETRYCOUNT: %v", err)
	}
	rec := newRecorder(nil)
	c := newConsumer(t, rdb, key, grp, "w", rec.as("w"), opts)
	r := start(t, c.Run)
	eventually(t, 10*time.Second, "PEL empty", func() bool { return pending(t, rdb, key, grp) == 0 })
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	if n := rec.count(poison); n != 0 {
		t.Errorf("entry past MaxDeliveries reached the handler %d times; want 0", n)
	}
	if n := rec.count(fine); n != 1 {
		t.Errorf("other pending entry handled %d times; want 1", n)
	}
	dl := deadLetters(t, rdb, key+":dead")
	if len(dl) != 1 || dl[0].OriginalID != poison || dl[0].Deliveries != opts.MaxDeliveries+1 {
		t.Fatalf("dead letters = %+v; want %s with %d deliveries", dl, poison, opts.MaxDeliveries+1)
	}
	if s := c.Stats(); s.DeadLettered != 1 || s.Acked != 1 {
		t.Errorf("Stats = %+v; want DeadLettered=1 Acked=1", s)
	}
}

// TestEntryDeletedWhileAwaitingRetry pins the retry script's deleted
// entry path: an entry that failed and was XDEL'd while waiting for its retry
// never reaches the handler again, leaves the PEL, and is counted.
func TestEntryDeletedWhileAwaitingRetry(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	t.Cleanup(func() { rdb.Del(context.Background(), key, key+":dead") })

	opts := fastOptions()
	opts.RetryBackoff, opts.MaxRetryBackoff = 300*time.Millisecond, 300*time.Millisecond
	opts.MinIdle = time.Hour // leases and retries only: nothing is reclaimed
	warns := newWarnings()
	opts.Logger = slog.New(warns)
	rec := newRecorder(func(context.Context, *stream.Message) error { return errors.New("try later") })
	c := newConsumer(t, rdb, key, grp, "A", rec.as("A"), opts)
	r := start(t, c.Run)
	id := publish(t, rdb, key, 1, nil)[0]
	eventually(t, 10*time.Second, "the first failure", func() bool {
		return c.Stats().Retried == 1
	})
	if err := rdb.XDel(ctx, key, id).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the deleted entry dropped from the PEL", func() bool {
		return pending(t, rdb, key, grp) == 0 && c.Stats().DeletedInPEL == 1
	})
	if len(warns.mentioning("deleted", id)) == 0 {
		t.Errorf("no Warn record names the entry deleted while awaiting its retry (%s)", id)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	if n := rec.count(id); n != 1 {
		t.Errorf("entry deleted while awaiting its retry handled %d times; want 1 (before the delete)", n)
	}
	if dl := deadLetters(t, rdb, key+":dead"); len(dl) != 0 {
		t.Errorf("dead letters = %+v; want none", dl)
	}
}

// TestDeadLetterKeyWrongType pins the dead-letter script's atomicity:
// when XADD to the dead-letter stream fails (the key holds a string), the
// entry is not acknowledged and stays pending; once the key is fixed, a
// reclaim brings it back and it is dead-lettered.
func TestDeadLetterKeyWrongType(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	dead := key + ":dead"
	ctx := context.Background()
	t.Cleanup(func() { rdb.Del(context.Background(), key, dead) })
	if err := rdb.Set(ctx, dead, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	opts := fastOptions()
	opts.MinIdle = 300 * time.Millisecond
	var errs errLog
	opts.OnError = errs.add
	rec := newRecorder(func(context.Context, *stream.Message) error {
		return fmt.Errorf("bad job: %w", handler.ErrPermanent)
	})
	c := newConsumer(t, rdb, key, grp, "A", rec.as("A"), opts)
	r := start(t, c.Run)
	id := publish(t, rdb, key, 1, nil)[0]
	eventually(t, 10*time.Second, "the failed dead-lettering reported", func() bool {
		return errs.has("dead-letter entry " + id)
	})
	ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: grp, Start: "-", End: "+", Count: 10}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].ID != id {
		t.Fatalf("pending = %+v; want %s still pending after the failed XADD", ps, id)
	}
	if err := rdb.Del(ctx, dead).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the entry dead-lettered once the key is fixed", func() bool {
		n, _ := rdb.XLen(ctx, dead).Result()
		return n == 1 && pending(t, rdb, key, grp) == 0
	})
	if err, ok := r.Exited(); ok {
		t.Fatalf("Run returned early: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	dl := deadLetters(t, rdb, dead)
	if len(dl) != 1 || dl[0].OriginalID != id {
		t.Fatalf("dead letters = %+v; want %s", dl, id)
	}
	if s := c.Stats(); s.DeadLettered != 1 || s.Delivered != 1 {
		t.Errorf("Stats = %+v; want DeadLettered=1 Delivered=1: the consumer kept the entry and tried again", s)
	}
}
