package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redisproc"
)

// Environment variables read by the harness.
const (
	// EnvAddr names a Redis (host:port) to use instead of starting one.
	EnvAddr = "REDIS_ADDR"
	// EnvRequire, set to "1", turns every skip for lack of Redis into a failure.
	EnvRequire = "STREAMGROUP_REQUIRE_REDIS"
)

// shared is the Redis shared by the test binary. It is process state by
// nature (one server per test binary), set once by find and torn down by Main.
var shared struct {
	once sync.Once
	addr string // host:port; empty when none was found
	err  error  // why addr is empty: a fatal problem (e.g. REDIS_ADDR down)
	skip string // why addr is empty: nothing available

	mu   sync.Mutex // guards stop, read by Main
	stop func()     // stops what find started; nil for REDIS_ADDR
}

// Main wraps testing.M: it runs the tests and then stops any server (and
// cluster, see [ClusterClient]) the harness started for the package. Use in each package's TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	stop := shared.stop
	shared.stop = nil
	shared.mu.Unlock()
	if stop != nil {
		stop()
	}
	stopSharedCluster()
	return code
}

// Client returns a client to the package's shared Redis (found via REDIS_ADDR,
// else a testcontainers container when Docker answers, else a redis-server on
// PATH started on a free port), closed with t.Cleanup. It skips t when none
// can be had, or fails it when STREAMGROUP_REQUIRE_REDIS=1.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	shared.once.Do(find)
	switch {
	case shared.err != nil:
		logTail(t, shared.err)
		t.Fatal(shared.err)
	case shared.addr == "":
		unavailable(t, shared.skip)
	}
	return newClient(t, shared.addr)
}

// find looks for a Redis in the documented order and fills in shared.
func find() {
	if addr := os.Getenv(EnvAddr); addr != "" {
		if err := ping(addr, 5*time.Second); err != nil {
			shared.err = fmt.Errorf("redistest: %s=%s does not answer PING: %w", EnvAddr, addr, err)
			return
		}
		shared.addr = addr
		return
	}

	var tried []string
	addr, stop, err := startContainer()
	if err == nil {
		shared.addr = addr
		setStop(stop)
		return
	}
	tried = append(tried, "docker: "+err.Error())

	if _, err := exec.LookPath("redis-server"); err != nil {
		tried = append(tried, "redis-server: not on PATH")
		shared.skip = "tried " + strings.Join(tried, "; ")
		return
	}
	dir, err := os.MkdirTemp("", "redistest-shared-")
	if err != nil {
		shared.err = fmt.Errorf("redistest: shared redis-server: %w", err)
		return
	}
	p, err := redisproc.Start(context.Background(), dir, nil)
	if err != nil {
		_ = os.RemoveAll(dir)
		shared.err = err
		return
	}
	shared.addr = p.Addr()
	setStop(func() {
		_ = stopProc(p)
		_ = os.RemoveAll(dir)
	})
}

func setStop(stop func()) {
	shared.mu.Lock()
	shared.stop = stop
	shared.mu.Unlock()
}

// unavailable skips t for lack of Redis, or fails it under EnvRequire=1.
func unavailable(t testing.TB, why string) {
	t.Helper()
	skipOrFail(t, "redistest: no Redis available: set "+EnvAddr+"=host:port, "+
		"or run a Docker daemon (testcontainers), or put redis-server on PATH", why)
}

// skipOrFail skips t with msg (and why, when given), or fails it under
// EnvRequire=1, where a missing server must not go unnoticed.
func skipOrFail(t testing.TB, msg, why string) {
	t.Helper()
	if why != "" {
		msg += " (" + why + ")"
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg + "; failing because " + EnvRequire + "=1")
	}
	t.Skip(msg)
}

// newClient returns a client to addr closed with t.Cleanup. Timeouts are short
// enough for a dead server to surface quickly; go-redis reconnects by itself
// and keeps its default MaxRetries.
func newClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(clientOptions(addr))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func clientOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:         addr,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  3 * time.Second,
		WriteTimeout: 3 * time.Second,
	}
}

// ping sends one PING to addr, without retries.
func ping(addr string, timeout time.Duration) error {
	opts := clientOptions(addr)
	opts.MaxRetries = -1
	opts.PoolSize = 1
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Ping(ctx).Err()
}

var nameSeq atomic.Uint64

// Names returns a stream key and a group name unique to t (and to this
// process), so tests can run in parallel on a shared server.
//
// The stream key looks like "sgtest:{TestFoo-4242-7}:stream": the sanitized
// test name, the pid and a process-wide counter inside a Redis Cluster hash
// tag, so the stream and its dead-letter stream "<stream>:dead" (and any key
// built by appending to it) hash to the same slot. The group is "workers":
// group names live inside their stream, so a unique stream makes it unique.
func Names(t testing.TB) (streamKey, group string) {
	tag := fmt.Sprintf("%s-%d-%d", sanitize(t.Name()), os.Getpid(), nameSeq.Add(1))
	return "sgtest:{" + tag + "}:stream", "workers"
}

// sanitize keeps letters, digits, '_' and '-' of a test name (subtest
// separators and spaces become '-'), at most 64 bytes of it.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 64 {
			break
		}
	}
	if b.Len() == 0 {
		return "test"
	}
	return b.String()
}
