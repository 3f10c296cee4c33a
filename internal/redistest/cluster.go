package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/keys"
	"github.com/streamgroup/streamgroup/internal/redisproc"
)

// EnvClusterAddrs names an existing Redis Cluster (comma-separated
// host:port seeds) to use for [ClusterClient] instead of starting one.
const EnvClusterAddrs = "REDIS_CLUSTER_ADDRS"

// clusterReadyTimeout bounds how long a cluster start waits for
// cluster_state:ok on every node and a write to every slot owner.
const clusterReadyTimeout = 30 * time.Second

// ClusterOptions configures a cluster started by [StartCluster]. A nil
// *ClusterOptions means 3 masters and no replicas.
type ClusterOptions struct {
	// Masters is the number of master nodes. Zero means 3, the fewest
	// redis-cli --cluster create accepts.
	Masters int
	// Replicas is the number of replicas of each master. Zero means none.
	Replicas int
}

// Cluster is a local Redis Cluster of redis-server processes on free ports
// of 127.0.0.1, without persistence, each in a directory of its own. Its
// methods are safe for concurrent use. The zero value is not usable: get a
// Cluster from [StartCluster].
type Cluster struct {
	addrs []string
	procs []*redisproc.Server
}

// sharedCluster is the cluster shared by the test binary, found or started
// once on first use and stopped by Main.
var sharedCluster struct {
	once  sync.Once
	addrs []string // seeds; empty when none
	err   error    // a fatal problem (a start that failed, REDIS_CLUSTER_ADDRS down)
	skip  string   // why addrs is empty: nothing available

	mu   sync.Mutex // guards stop, read by Main
	stop func()     // stops what findCluster started; nil for REDIS_CLUSTER_ADDRS
}

// ClusterClient returns a client to the cluster shared by the test binary,
// closed with t.Cleanup. The cluster is REDIS_CLUSTER_ADDRS when set, else
// 3 masters started on first use from the redis-server and redis-cli on
// PATH and stopped by [Main]. Without them it skips t, or fails it when
// STREAMGROUP_REQUIRE_REDIS=1. The cluster is never flushed: tests isolate
// themselves with unique key names.
func ClusterClient(t testing.TB) *redis.ClusterClient {
	t.Helper()
	sharedCluster.once.Do(findCluster)
	switch {
	case sharedCluster.err != nil:
		logTail(t, sharedCluster.err)
		t.Fatal(sharedCluster.err)
	case len(sharedCluster.addrs) == 0:
		clusterUnavailable(t, sharedCluster.skip)
	}
	return newClusterClient(t, sharedCluster.addrs)
}

// findCluster fills in sharedCluster.
func findCluster() {
	if v := os.Getenv(EnvClusterAddrs); v != "" {
		var addrs []string
		for a := range strings.SplitSeq(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := clusterReady(ctx, addrs, 0); err != nil {
			sharedCluster.err = fmt.Errorf("redistest: %s=%s is not a ready cluster: %w", EnvClusterAddrs, v, err)
			return
		}
		sharedCluster.addrs = addrs
		return
	}
	if why := clusterTools(); why != "" {
		sharedCluster.skip = why
		return
	}
	dir, err := os.MkdirTemp("", "redistest-cluster-")
	if err != nil {
		sharedCluster.err = fmt.Errorf("redistest: shared cluster: %w", err)
		return
	}
	c, err := startCluster(dir, 3, 0)
	if err != nil {
		_ = os.RemoveAll(dir)
		sharedCluster.err = err
		return
	}
	sharedCluster.addrs = c.addrs
	sharedCluster.mu.Lock()
	sharedCluster.stop = func() {
		c.stop()
		_ = os.RemoveAll(dir)
	}
	sharedCluster.mu.Unlock()
}

// stopSharedCluster stops the shared cluster if this process started one.
func stopSharedCluster() {
	sharedCluster.mu.Lock()
	stop := sharedCluster.stop
	sharedCluster.stop = nil
	sharedCluster.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// clusterTools returns why no cluster can be started here, or "".
func clusterTools() string {
	var missing []string
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return strings.Join(missing, " and ") + " not on PATH"
}

// clusterUnavailable skips t for lack of a cluster, or fails it under
// EnvRequire=1.
func clusterUnavailable(t testing.TB, why string) {
	t.Helper()
	skipOrFail(t, "redistest: no Redis Cluster available: set "+EnvClusterAddrs+"=host:port,..., "+
		"or put redis-server and redis-cli on PATH (Debian: apt-get install redis-server)", why)
}

// StartCluster starts a cluster owned by t, killed with t.Cleanup. It needs
// redis-server and redis-cli on PATH; otherwise it skips t, or fails it when
// STREAMGROUP_REQUIRE_REDIS=1. It returns once every node reports
// cluster_state:ok and a client has written to every master.
func StartCluster(t testing.TB, opts *ClusterOptions) *Cluster {
	t.Helper()
	if why := clusterTools(); why != "" {
		clusterUnavailable(t, "StartCluster needs redis-server and redis-cli on PATH: "+why)
	}
	var o ClusterOptions
	if opts != nil {
		o = *opts
	}
	if o.Masters == 0 {
		o.Masters = 3
	}
	if o.Masters < 3 || o.Replicas < 0 {
		t.Fatalf("redistest: StartCluster: %d masters with %d replicas each; want at least 3 masters and no negative replicas", o.Masters, o.Replicas)
	}
	c, err := startCluster(t.TempDir(), o.Masters, o.Replicas)
	if err != nil {
		logTail(t, err)
		t.Fatalf("redistest: StartCluster: %v", err)
	}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(c.kill)
	return c
}

// Addrs returns the host:port of every node, masters first.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Client returns a new client to c, closed with t.Cleanup.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	return newClusterClient(t, c.addrs)
}

func (c *Cluster) stop() {
	var wg sync.WaitGroup
	for _, p := range c.procs {
		wg.Go(func() { _ = stopProc(p) })
	}
	wg.Wait()
}

func (c *Cluster) kill() {
	for _, p := range c.procs {
		_ = p.Kill()
	}
}

// startCluster starts masters*(1+replicas) cluster-enabled servers in
// subdirectories of dir, joins them with redis-cli --cluster create and
// waits until the cluster is ready. On failure nothing is left running.
func startCluster(dir string, masters, replicas int) (_ *Cluster, err error) {
	c := &Cluster{}
	defer func() {
		if err != nil {
			c.kill()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	for i := range masters * (1 + replicas) {
		nodeDir := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.Mkdir(nodeDir, 0o755); err != nil {
			return nil, fmt.Errorf("redistest: cluster: %w", err)
		}
		p, err := startNode(ctx, nodeDir)
		if err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
		c.addrs = append(c.addrs, p.Addr())
	}
	args := append([]string{"--cluster", "create"}, c.addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("redistest: redis-cli %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	if err := clusterReady(ctx, c.addrs, len(c.addrs)); err != nil {
		return nil, fmt.Errorf("redistest: cluster on %s: %w", strings.Join(c.addrs, ","), err)
	}
	return c, nil
}

// startNode starts one cluster-enabled server with its data in dir. The
// cluster bus gets a free port of its own (--cluster-port): the default,
// port+10000, can lie beyond 65535 for an ephemeral port.
func startNode(ctx context.Context, dir string) (*redisproc.Server, error) {
	bus, err := freePort()
	if err != nil {
		return nil, err
	}
	return redisproc.Start(ctx, dir, &redisproc.Options{Args: []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-port", strconv.Itoa(bus),
		"--cluster-node-timeout", "5000",
	}})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// clusterReady waits until CLUSTER SLOTS lists nodes nodes (any number when
// nodes is 0; replicas appear once they synced), every one of them reports
// cluster_state:ok, and a cluster client has written a key to the slots of
// every master.
func clusterReady(ctx context.Context, seeds []string, nodes int) error {
	if len(seeds) == 0 {
		return errors.New("no address")
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = clusterWritable(ctx, seeds, nodes); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// clusterWritable checks the cluster once: CLUSTER INFO on every node in
// CLUSTER SLOTS says cluster_state:ok, and one key in every slot range is
// written and read back through a cluster client.
func clusterWritable(ctx context.Context, seeds []string, want int) error {
	seed := redis.NewClient(clientOptions(seeds[0]))
	defer seed.Close()
	slots, err := seed.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("CLUSTER SLOTS on %s: %w", seeds[0], err)
	}
	covered := 0
	nodes := map[string]bool{}
	for _, r := range slots {
		covered += int(r.End - r.Start + 1)
		for _, n := range r.Nodes {
			nodes[n.Addr] = true
		}
	}
	if covered != 16384 {
		return fmt.Errorf("CLUSTER SLOTS on %s covers %d of 16384 slots", seeds[0], covered)
	}
	if want > 0 && len(nodes) != want {
		return fmt.Errorf("CLUSTER SLOTS on %s lists %d nodes; want %d", seeds[0], len(nodes), want)
	}
	for addr := range nodes {
		n := redis.NewClient(clientOptions(addr))
		info, err := n.ClusterInfo(ctx).Result()
		_ = n.Close()
		if err != nil {
			return fmt.Errorf("CLUSTER INFO on %s: %w", addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("CLUSTER INFO on %s: not cluster_state:ok", addr)
		}
	}
	opts := clusterOptions(seeds)
	opts.MaxRedirects = 3
	cc := redis.NewClusterClient(opts)
	defer cc.Close()
	for _, r := range slots {
		key := keyInSlots(int(r.Start), int(r.End))
		if err := cc.Set(ctx, key, "1", time.Minute).Err(); err != nil {
			return fmt.Errorf("SET %s (slot %d, owned by %s): %w", key, keys.Slot(key), r.Nodes[0].Addr, err)
		}
		if err := cc.Del(ctx, key).Err(); err != nil {
			return fmt.Errorf("DEL %s: %w", key, err)
		}
	}
	return nil
}

// keyInSlots returns a key whose slot lies in [lo, hi].
func keyInSlots(lo, hi int) string {
	for i := 0; ; i++ {
		k := "redistest:probe:" + strconv.Itoa(i)
		if s := keys.Slot(k); s >= lo && s <= hi {
			return k
		}
	}
}

func clusterOptions(addrs []string) *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:        append([]string(nil), addrs...),
		DialTimeout:  2 * time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
	}
}

// newClusterClient returns a client to the cluster at addrs, closed with
// t.Cleanup.
func newClusterClient(t testing.TB, addrs []string) *redis.ClusterClient {
	c := redis.NewClusterClient(clusterOptions(addrs))
	t.Cleanup(func() { _ = c.Close() })
	return c
}
