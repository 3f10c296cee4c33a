package integration_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/internal/redistest"
)

// namedClusterCopy returns a cluster client like base whose connections
// carry a name unique to the test, and that name.
func namedClusterCopy(t testing.TB, base *redis.ClusterClient) (*redis.ClusterClient, string) {
	o := *base.Options()
	o.ClientName = fmt.Sprintf("sgtest-%d-%d", time.Now().UnixNano()%1e9, clientNameSeq.Add(1))
	c := redis.NewClusterClient(&o)
	t.Cleanup(func() { _ = c.Close() })
	return c, o.ClientName
}

// TestClusterStopWakesBlockedRead: on a cluster, the readers block on
// cluster clients of their own, and a stop wakes them (by closing those
// clients): Run returns long before Block, and no read is left blocked on
// the node that holds the stream.
func TestClusterStopWakesBlockedRead(t *testing.T) {
	t.Parallel()
	const block = 30 * time.Second
	base := redistest.ClusterClient(t)
	rdb, name := namedClusterCopy(t, base)
	key := untagged(t, "jobs:idle")
	t.Cleanup(func() { base.Del(context.Background(), key) })
	node, err := base.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatalf("MasterForKey = %v", err)
	}
	var errs secErrors
	opts := &group.Options{Concurrency: 10, Block: block, OnError: errs.add}
	r := start(t, newConsumer(t, rdb, key, "workers", "c", newRecorder(nil).as("c"), opts).Run)
	eventually(t, 20*time.Second, "a read blocked on the stream's node", func() bool {
		if err, ok := r.Exited(); ok {
			t.Fatalf("Run returned %v; want it reading", err)
		}
		return blockedReads(t, node, name) > 0
	})
	r.Cancel()
	begin := time.Now()
	if err := r.Wait(t, block/3); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	t.Logf("Run returned %v after cancel", time.Since(begin).Round(time.Microsecond))
	if e := errs.all(); len(e) != 0 {
		t.Errorf("OnError got %v; want nothing", e)
	}
	eventually(t, 10*time.Second, "no read left blocked", func() bool { return blockedReads(t, node, name) == 0 })
}

// TestClusterStopLosesNothing: on a cluster, where a stop closes the
// readers' own clients, stopping again and again while entries flow in
// loses nothing; an entry whose read reply was cut off stays pending and
// is handled later.
func TestClusterStopLosesNothing(t *testing.T) {
	t.Parallel()
	rdb := redistest.ClusterClient(t)
	key, grp := untagged(t, "jobs:flow"), "workers"
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	if err := rdb.XGroupCreateMkStream(context.Background(), key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}
	const total = 600
	var published []string
	var pubErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := range total {
			<-tick.C
			id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: []any{"n", i}}).Result()
			if err != nil {
				pubErr = err
				return
			}
			published = append(published, id)
		}
	})
	rec := newRecorder(nil)
	opts := fastOptions()
	opts.Block = 2 * time.Second
	opts.MinIdle = time.Second
	stops := 0
	for rec.distinct() < total*3/4 {
		before := rec.distinct()
		r := start(t, newConsumer(t, rdb, key, grp, "c", rec.as("c"), opts).Run)
		eventually(t, 10*time.Second, "some entries handled", func() bool { return rec.distinct() > before })
		if err := r.Stop(); err != nil {
			t.Fatalf("Run = %v after %d stops", err, stops)
		}
		stops++
	}
	wg.Wait()
	if pubErr != nil {
		t.Fatalf("XADD: %v", pubErr)
	}
	start(t, newConsumer(t, rdb, key, grp, "c", rec.as("c"), opts).Run)
	eventually(t, 60*time.Second, "every entry handled and acknowledged", func() bool {
		return rec.distinct() == total && pending(t, rdb, key, grp) == 0
	})
	calls, _, _ := rec.snapshot()
	for _, id := range published {
		if calls[id] == 0 {
			t.Errorf("entry %s never handled", id)
		}
	}
	t.Logf("%d stops during the flow", stops)
}
