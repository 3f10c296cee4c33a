package integration_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/keys"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// The tests in this file run on a real local Redis Cluster (three masters,
// see redistest.ClusterClient), with stream names without a hash tag, as a
// new user writes them.

var clusterSeq atomic.Uint64

// untagged returns a stream name unique to t without a hash tag, such as
// "jobs:email:TestX-4242-1".
func untagged(t testing.TB, base string) string {
	var b strings.Builder
	for _, r := range t.Name() {
		if r == '{' || r == '}' || r == '/' || r == ' ' {
			r = '-'
		}
		b.WriteRune(r)
	}
	return fmt.Sprintf("%s:%s-%d-%d", base, b.String(), os.Getpid(), clusterSeq.Add(1))
}

// find returns the first error whose text contains s.
func (l *errLog) find(s string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		if strings.Contains(err.Error(), s) {
			return err
		}
	}
	return nil
}

// TestClusterPoisonEntriesDeadLettered: an entry that always fails reaches
// the default dead-letter stream of a stream named without a hash tag,
// instead of failing with CROSSSLOT and being reclaimed forever.
func TestClusterPoisonEntriesDeadLettered(t *testing.T) {
	t.Parallel()
	rdb := redistest.ClusterClient(t)
	ctx := context.Background()
	key, grp := untagged(t, "jobs:email"), "workers"
	dead := "{" + key + "}:dead"
	if got := stream.DeadLetterKey(key); got != dead {
		t.Fatalf("stream.DeadLetterKey(%q) = %q; want %q", key, got, dead)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), key); rdb.Del(context.Background(), dead) })
	ids := publish(t, rdb, key, 3, map[string]any{"to": "x"})

	var errs errLog
	opts := fastOptions()
	opts.MaxDeliveries = 2
	opts.OnError = errs.add
	rec := newRecorder(func(context.Context, *stream.Message) error { return errors.New("smtp: 550 mailbox unavailable") })
	c := newConsumer(t, rdb, key, grp, "c1", rec.as("c1"), opts)
	r := start(t, c.Run)
	eventually(t, 20*time.Second, "3 entries in "+dead+" (or a CROSSSLOT error)", func() bool {
		n, _ := rdb.XLen(ctx, dead).Result()
		return n == 3 || errs.find("CROSSSLOT") != nil
	})
	if err := errs.find("CROSSSLOT"); err != nil {
		t.Fatalf("dead-lettering on Cluster failed: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	got := map[string]bool{}
	for _, d := range deadLetters(t, rdb, dead) {
		if d.Stream != key || d.Group != grp || d.Deliveries != 2 || d.Values["to"] != "x" {
			t.Errorf("dead letter = %+v; want stream %s, group %s, 2 deliveries, to=x", d, key, grp)
		}
		got[d.OriginalID] = true
	}
	for _, id := range ids {
		if !got[id] {
			t.Errorf("entry %s not in %s", id, dead)
		}
	}
	if n := pending(t, rdb, key, grp); n != 0 {
		t.Errorf("pending = %d; want 0", n)
	}
	if s := c.Stats(); s.DeadLettered != 3 {
		t.Errorf("Stats().DeadLettered = %d; want 3", s.DeadLettered)
	}
}

// TestClusterRoundTrip: produce (with trimming), consume and acknowledge on
// a cluster, with a second stream's reclaimer taking entries a dead
// consumer left.
func TestClusterRoundTrip(t *testing.T) {
	t.Parallel()
	rdb := redistest.ClusterClient(t)
	ctx := context.Background()
	key, grp := untagged(t, "jobs:resize"), "workers"
	t.Cleanup(func() { rdb.Del(context.Background(), key) })

	p, err := stream.NewProducer(rdb, key, &stream.ProducerOptions{MaxLen: 1000})
	if err != nil {
		t.Fatalf("NewProducer = %v; want nil", err)
	}
	const n = 100
	ids := make([]string, 0, n)
	for i := range n {
		id, err := p.Add(ctx, map[string]any{"n": i})
		if err != nil {
			t.Fatalf("Add = %v; want nil", err)
		}
		ids = append(ids, id)
	}
	// A consumer that died holding the first 10 entries.
	if err := rdb.XGroupCreateMkStream(ctx, key, grp, "0").Err(); err != nil {
		t.Fatalf("XGROUP CREATE = %v; want nil", err)
	}
	abandon(t, rdb, key, grp, "dead-consumer", 10)

	rec := newRecorder(nil)
	var errs errLog
	opts := fastOptions()
	opts.OnError = errs.add
	c := newConsumer(t, rdb, key, grp, "c1", rec.as("c1"), opts)
	rc, err := claim.NewReclaimer(rdb, key, grp, "r1", rec.as("r1"), reclaimerOptions(opts))
	if err != nil {
		t.Fatalf("NewReclaimer = %v; want nil", err)
	}
	rc1, rc2 := start(t, c.Run), start(t, rc.Run)
	eventually(t, 20*time.Second, "all entries handled and acknowledged", func() bool {
		return rec.distinct() == n && pending(t, rdb, key, grp) == 0
	})
	if err := rc1.Stop(); err != nil {
		t.Errorf("Consumer.Run = %v; want nil", err)
	}
	if err := rc2.Stop(); err != nil {
		t.Errorf("Reclaimer.Run = %v; want nil", err)
	}
	for _, id := range ids {
		if k := rec.count(id); k != 1 {
			t.Errorf("entry %s handled %d times; want 1", id, k)
		}
	}
	if err := errs.find("CROSSSLOT"); err != nil {
		t.Errorf("OnError got %v; want no CROSSSLOT", err)
	}
}

// TestClusterDeadLetterOutsideSlotRefused: on a cluster, a DeadLetterStream
// in another slot than the stream is refused at construction, naming both
// keys and the fix; on a standalone Redis it is allowed.
func TestClusterDeadLetterOutsideSlotRefused(t *testing.T) {
	t.Parallel()
	cc := redistest.ClusterClient(t)
	h := handler.Func(func(context.Context, *stream.Message) error { return nil })
	key := untagged(t, "jobs:email")
	for _, tc := range []struct {
		name, stream, dead string
		ok                 bool
	}{
		{"default", key, "", true},
		{"same tag", "{jobs}:email", "{jobs}:email:failed", true},
		{"beside", key, "{" + key + "}:failed", true},
		{"plain suffix", key, key + ":dead", false},
		{"other tag", "{jobs}:email", "{other}:dead", false},
		{"unclosed brace, default", "jobs{email", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &group.Options{DeadLetterStream: tc.dead}
			dead := tc.dead
			if dead == "" {
				dead = stream.DeadLetterKey(tc.stream)
			}
			_, errC := group.NewConsumer(cc, tc.stream, "workers", "c1", h, opts)
			_, errR := claim.NewReclaimer(cc, tc.stream, "workers", "r1", h, reclaimerOptions(opts))
			for what, err := range map[string]error{"NewConsumer": errC, "NewReclaimer": errR} {
				if tc.ok {
					if err != nil {
						t.Errorf("%s(%q, DeadLetterStream %q) on Cluster = %v; want nil", what, tc.stream, tc.dead, err)
					}
					continue
				}
				if !errors.Is(err, group.ErrInvalidOptions) {
					t.Errorf("%s(%q, DeadLetterStream %q) on Cluster = %v; want ErrInvalidOptions", what, tc.stream, tc.dead, err)
					continue
				}
				for _, want := range []string{fmt.Sprintf("%q", tc.stream), fmt.Sprintf("%q", dead), "hash tag"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s error %q lacks %s", what, err, want)
					}
				}
			}
		})
	}
	t.Run("standalone allows any name", func(t *testing.T) {
		rdb := redistest.Client(t)
		if _, err := group.NewConsumer(rdb, key, "workers", "c1", h, &group.Options{DeadLetterStream: key + ":dead"}); err != nil {
			t.Errorf("NewConsumer on standalone with DeadLetterStream %q = %v; want nil", key+":dead", err)
		}
	})
}

// TestClusterKeySlot: keys.Slot agrees with the cluster's CLUSTER KEYSLOT.
func TestClusterKeySlot(t *testing.T) {
	t.Parallel()
	cc := redistest.ClusterClient(t)
	names := []string{
		"", "a", "jobs:email", "{jobs:email}:dead", "{jobs}:email", "{jobs}:email:dead",
		"foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "a{b", "a}b", "{", "}", "{}",
		"{user1000}.following", "123456789", "jobs:email:processing:worker-1",
		"日本語{ключ}", "sgtest:{TestX-1-2}:stream",
	}
	for i := range 50 {
		names = append(names, fmt.Sprintf("k%d:%x", i, i*7919))
	}
	for _, k := range names {
		want, err := cc.ClusterKeySlot(context.Background(), k).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %q = %v", k, err)
		}
		if got := keys.Slot(k); int64(got) != want {
			t.Errorf("keys.Slot(%q) = %d; want CLUSTER KEYSLOT %d", k, got, want)
		}
	}
}
