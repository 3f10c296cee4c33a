package integration_test

import (
	"context"
	"fmt"
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
	stopWhileBlocked(t, r, func() int { return blockedReads(t, node, name) }, block, &errs)
}

// TestClusterStopLosesNothing: on a cluster, where a stop closes the
// readers' own clients, stopping again and again while entries flow in
// loses nothing; an entry whose read reply was cut off stays pending and
// is handled later.
func TestClusterStopLosesNothing(t *testing.T) {
	t.Parallel()
	stopUnderFlow(t, redistest.ClusterClient(t), untagged(t, "jobs:flow"), "workers", 600)
}
