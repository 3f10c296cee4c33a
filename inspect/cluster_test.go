package inspect_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/inspect"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// onEveryMaster returns one key per master of the cluster, named
// prefix+suffix, without a hash tag, and deletes the keys derived from
// them (named in derived) when t ends.
func onEveryMaster(t *testing.T, rdb *redis.ClusterClient, prefix string, derived func(key string) []string) []string {
	t.Helper()
	ctx := context.Background()
	masters := map[string]bool{}
	var out []string
	for i := 0; len(out) < 3 && i < 1000; i++ {
		key := prefix + strconv.Itoa(i)
		m, err := rdb.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if addr := m.Options().Addr; !masters[addr] {
			masters[addr] = true
			out = append(out, key)
		}
	}
	if len(out) < 3 {
		t.Fatalf("found keys on %d masters; want 3", len(out))
	}
	t.Cleanup(func() {
		for _, key := range out {
			for _, k := range append(derived(key), key) {
				rdb.Del(context.Background(), k)
			}
		}
	})
	return out
}

// TestCluster reads streams and queues on every master of a Redis Cluster,
// their helper keys in their slots, in one call each: go-redis splits the
// pipelines by node, and no command spans two slots.
func TestCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.ClusterClient(t)
	prefix := fmt.Sprintf("inspect:%s-%d:", strings.ReplaceAll(t.Name(), "/", "-"), os.Getpid())

	streams := onEveryMaster(t, rdb, prefix+"stream-", func(key string) []string { return []string{stream.DeadLetterKey(key)} })
	for _, key := range streams {
		addN(t, rdb, key, 3)
		do(t, rdb, "XGROUP", "CREATE", key, "g", "0")
		do(t, rdb, "XGROUP", "CREATE", key, "mid", "2-0") // no lag from Redis: counted
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, ">"}, Count: 1}).Err(); err != nil {
			t.Fatal(err)
		}
		do(t, rdb, "XADD", stream.DeadLetterKey(key), "*", "dlq:id", "1-0")
	}
	queues := onEveryMaster(t, rdb, prefix+"queue-", func(key string) []string {
		return []string{queue.DeadLetterKey(key), queue.ConsumersKey(key), queue.ProcessingKey(key, "c"), queue.HeartbeatKey(key, "c")}
	})
	for _, q := range queues {
		pushJobs(t, rdb, q, map[string]any{"n": 1}, map[string]any{"n": 2})
		do(t, rdb, "LPUSH", queue.DeadLetterKey(q), "{}")
		do(t, rdb, "SADD", queue.ConsumersKey(q), "c")
		do(t, rdb, "LPUSH", queue.ProcessingKey(q, "c"), "job")
		do(t, rdb, "SET", queue.HeartbeatKey(q, "c"), "1700000000000", "PX", 60000)
	}

	in := newInspector(t, rdb, nil)
	var targets []inspect.StreamTarget
	for _, key := range streams {
		targets = append(targets, inspect.StreamTarget{Stream: key})
	}
	states, err := in.Streams(ctx, targets)
	if err != nil {
		t.Fatalf("Streams: %v", err)
	}
	for _, st := range states {
		if st.Length != 3 || st.DeadLetters != 1 || len(st.Groups) != 2 {
			t.Errorf("stream %q = %+v; want length 3, 1 dead letter, groups g and mid", st.Stream, st)
			continue
		}
		g, mid := findGroup(t, st, "g"), findGroup(t, st, "mid")
		if g.Lag != 2 || g.LagEstimated || g.Pending != 1 || g.OldestPending.ID != "1-0" || g.OldestPending.Consumer != "c" || g.IdlestOwner != "c" {
			t.Errorf("stream %q group g = %+v; want lag 2, 1-0 pending with c", st.Stream, g)
		}
		if mid.Lag != 1 || mid.LagEstimated {
			t.Errorf("stream %q group mid = %+v; want lag 1, counted", st.Stream, mid)
		}
	}

	var qtargets []inspect.QueueTarget
	for _, q := range queues {
		qtargets = append(qtargets, inspect.QueueTarget{Queue: q})
	}
	qstates, err := in.Queues(ctx, qtargets)
	if err != nil {
		t.Fatalf("Queues: %v", err)
	}
	for _, st := range qstates {
		if st.Length != 2 || st.DeadLetters != 1 || st.Processing != 1 || st.LiveConsumers != 1 || len(st.Consumers) != 1 || st.Consumers[0].LastBeat.UnixMilli() != 1700000000000 {
			t.Errorf("queue %q = %+v; want length 2, 1 dead letter, 1 job processing by a live consumer", st.Queue, st)
		}
	}
}
