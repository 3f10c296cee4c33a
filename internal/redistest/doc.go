// Package redistest is the real-Redis test harness for streamgroup's tests.
//
// # Finding a Redis
//
// [Client] hands out clients to one Redis shared by the whole test binary,
// found once per process, lazily, in this order:
//
//  1. REDIS_ADDR (host:port): that server is used as is. It is never flushed;
//     tests isolate themselves with the unique names from [Names]. A set
//     REDIS_ADDR that does not answer PING fails the test.
//  2. A container started through testcontainers-go (image [ContainerImage])
//     when a Docker daemon answers a ping within a few seconds. Testcontainers'
//     own discovery is used (DOCKER_HOST, Docker contexts,
//     ~/.testcontainers.properties, the default socket), so no daemon means a
//     fast fall-through, not a hang.
//  3. A redis-server binary on PATH, started on a free port of 127.0.0.1
//     without persistence, in a temporary directory.
//  4. None: the test is skipped with a message naming the three options, or
//     fails with the same message when STREAMGROUP_REQUIRE_REDIS=1 (CI sets
//     it, so a missing Redis cannot pass unnoticed).
//
// [StartServer] gives a test a server of its own that it can stop, kill with
// SIGKILL and start again on the same port and data directory, for crash and
// reconnection tests. It needs a redis-server binary on PATH (a container
// cannot be killed and restarted on a fixed address as reliably); without
// one it skips or fails as [Client] does.
//
// # Redis Cluster
//
// [ClusterClient] hands out clients to one Redis Cluster shared by the test
// binary: REDIS_CLUSTER_ADDRS (comma-separated seeds) when set, else three
// masters started lazily, on first use, from the redis-server and redis-cli
// on PATH (redis-server --cluster-enabled yes on free ports, joined with
// redis-cli --cluster create), ready once every node says cluster_state:ok
// and a write reached every master. [StartCluster] gives a test a cluster
// of its own (optionally with replicas). Without the binaries, both skip,
// or fail under STREAMGROUP_REQUIRE_REDIS=1. Debian's redis-server package
// brings redis-cli (redis-tools).
//
// # Lifecycle
//
// Every package that uses the harness wraps its tests with [Main], which
// stops the shared server (process or container) and the shared cluster
// after the tests ran:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
//
// Owned servers are killed by t.Cleanup. On Linux every redis-server the
// harness starts also gets SIGKILL from the kernel when the test process
// dies (Pdeathsig), so a panic or a `go test -timeout` leaves no server
// behind; containers are reaped by testcontainers' Ryuk.
//
// # Environment
//
//	REDIS_ADDR=host:port           use this server for Client; never flushed
//	REDIS_CLUSTER_ADDRS=h:p,h:p    use this cluster for ClusterClient; never flushed
//	STREAMGROUP_REQUIRE_REDIS=1    fail instead of skip when no Redis can be had
//
// Docker discovery honours the usual DOCKER_HOST and testcontainers settings
// (for example TESTCONTAINERS_RYUK_DISABLED).
package redistest
