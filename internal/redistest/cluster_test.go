package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redistest"
)

// TestClusterClient checks the shared cluster: every node is in
// cluster_state:ok, and a client writes keys that land on every master.
func TestClusterClient(t *testing.T) {
	t.Parallel()
	c := redistest.ClusterClient(t)
	checkCluster(t, c, 3, 0)
	if again := redistest.ClusterClient(t); again == c {
		t.Errorf("ClusterClient returned the same client twice; want one per call")
	}
}

// TestStartCluster checks an owned cluster with a replica per master, and
// that it is gone after the test.
func TestStartCluster(t *testing.T) {
	t.Parallel()
	var addrs []string
	t.Run("owned", func(t *testing.T) {
		cl := redistest.StartCluster(t, &redistest.ClusterOptions{Replicas: 1})
		addrs = cl.Addrs()
		if len(addrs) != 6 {
			t.Fatalf("Addrs() = %v; want 6 nodes", addrs)
		}
		checkCluster(t, cl.Client(t), 3, 1)
	})
	if len(addrs) == 0 {
		return
	}
	for _, addr := range addrs {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			t.Errorf("dial %s after the owning test ended = nil; want an error (node still running)", addr)
		}
	}
}

// checkCluster checks that c's cluster has masters masters with replicas
// replicas each, all in cluster_state:ok, and that keys routed by c reach
// every master.
func checkCluster(t *testing.T, c *redis.ClusterClient, masters, replicas int) {
	t.Helper()
	ctx := t.Context()
	var nMasters, nReplicas int
	if err := c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
		info, err := n.ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %s: CLUSTER INFO lacks cluster_state:ok:\n%s", n.Options().Addr, info)
		}
		return nil
	}); err != nil {
		t.Fatalf("ForEachShard(CLUSTER INFO) = %v; want nil", err)
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS = %v; want nil", err)
	}
	owners := map[string]bool{}
	for _, r := range slots {
		owners[r.Nodes[0].Addr] = true
		nReplicas += len(r.Nodes) - 1
	}
	nMasters = len(owners)
	if nMasters != masters || nReplicas != masters*replicas {
		t.Errorf("CLUSTER SLOTS: %d masters, %d replicas; want %d, %d", nMasters, nReplicas, masters, masters*replicas)
	}
	// Write until every master holds one of the keys.
	hit := map[string]bool{}
	for i := 0; len(hit) < nMasters && i < 1000; i++ {
		key := "redistest:check:" + strconv.Itoa(i) + ":" + t.Name()
		if err := c.Set(ctx, key, "v", time.Minute).Err(); err != nil {
			t.Fatalf("SET %s = %v; want nil", key, err)
		}
		n, err := c.MasterForKey(ctx, key)
		if err != nil {
			t.Fatalf("MasterForKey(%s) = %v; want nil", key, err)
		}
		if got, err := n.Get(ctx, key).Result(); err != nil || got != "v" {
			t.Fatalf("GET %s on its master %s = %q, %v; want v, nil", key, n.Options().Addr, got, err)
		}
		hit[n.Options().Addr] = true
		c.Del(ctx, key)
	}
	if len(hit) != nMasters {
		t.Errorf("keys reached %d masters; want %d", len(hit), nMasters)
	}
}

// TestClusterFromEnv runs a child with REDIS_CLUSTER_ADDRS naming an owned
// cluster: the child must use it, not start one.
func TestClusterFromEnv(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, nil)
	c := cl.Client(t)
	key := "redistest:{env}:" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := c.Set(t.Context(), key, "from-parent", time.Minute).Err(); err != nil {
		t.Fatalf("SET %s = %v; want nil", key, err)
	}
	out, err := helper(t, "cluster-env", redistest.EnvClusterAddrs+"="+strings.Join(cl.Addrs()[:1], ","), "REDISTEST_KEY="+key)
	if err != nil {
		t.Fatalf("child exited with %v\n%s", err, out)
	}
	if !strings.Contains(out, "VALUE=from-parent") {
		t.Errorf("child did not read the parent's key from %s:\n%s", redistest.EnvClusterAddrs, out)
	}
}

func TestNoCluster(t *testing.T) {
	t.Parallel()
	empty := "PATH=" + t.TempDir()
	for _, mode := range []string{"cluster", "start-cluster"} {
		for _, require := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/require=%v", mode, require), func(t *testing.T) {
				t.Parallel()
				env := []string{empty}
				if require {
					env = append(env, redistest.EnvRequire+"=1")
				}
				out, err := helper(t, mode, env...)
				var exit *exec.ExitError
				switch {
				case require && !errors.As(err, &exit):
					t.Errorf("child with %s=1 exited with %v; want a test failure\n%s", redistest.EnvRequire, err, out)
				case require && !strings.Contains(out, "--- FAIL: TestHelperProcess"):
					t.Errorf("child with %s=1 did not fail:\n%s", redistest.EnvRequire, out)
				case !require && err != nil:
					t.Errorf("child exited with %v; want success (a skip)\n%s", err, out)
				case !require && !strings.Contains(out, "--- SKIP: TestHelperProcess"):
					t.Errorf("child did not skip:\n%s", out)
				}
				for _, want := range []string{"no Redis Cluster", redistest.EnvClusterAddrs, "redis-server", "redis-cli"} {
					if !strings.Contains(out, want) {
						t.Errorf("child output lacks %q:\n%s", want, out)
					}
				}
			})
		}
	}
}
