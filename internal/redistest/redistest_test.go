package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func TestClient(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	ctx := t.Context()
	if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG, nil", got, err)
	}
	key, _ := redistest.Names(t)
	key += ":kv"
	want := fmt.Sprintf("value-%d", time.Now().UnixNano())
	if err := c.Set(ctx, key, want, time.Minute).Err(); err != nil {
		t.Fatalf("SET %s = %v; want nil", key, err)
	}
	t.Cleanup(func() { c.Del(context.Background(), key) })
	if got, err := c.Get(ctx, key).Result(); err != nil || got != want {
		t.Fatalf("GET %s = %q, %v; want %q, nil", key, got, err, want)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	const n = 200
	var (
		mu   sync.Mutex
		seen = make(map[string]bool)
		wg   sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			key, group := redistest.Names(t)
			if group == "" {
				t.Errorf("Names group = %q; want non-empty", group)
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[key] {
				t.Errorf("Names key %q returned twice", key)
			}
			seen[key] = true
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("Names gave %d distinct keys in %d calls; want %d", len(seen), n, n)
	}

	t.Run("sub test/with spaces{and}braces", func(t *testing.T) {
		key, _ := redistest.Names(t)
		if tag, ok := hashTag(key); !ok || !strings.HasPrefix(tag, "TestNames-sub_test-with_spaces-and-braces-") {
			t.Errorf("hashTag(%q) = %q, %v; want the sanitized test name, true", key, tag, ok)
		}
		dead := key + ":dead"
		if a, b := mustTag(t, key), mustTag(t, dead); a != b {
			t.Errorf("hash tags of %q and %q = %q, %q; want equal", key, dead, a, b)
		}
	})
}

// hashTag returns what Redis Cluster hashes for key: the text inside the
// first {...} when it is not empty.
func hashTag(key string) (string, bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return "", false
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return "", false
	}
	return key[open+1 : open+1+end], true
}

func mustTag(t *testing.T, key string) string {
	t.Helper()
	tag, ok := hashTag(key)
	if !ok {
		t.Fatalf("hashTag(%q) found no tag", key)
	}
	return tag
}

func TestServerAOFSurvivesKill(t *testing.T) {
	t.Parallel()
	s := redistest.StartServer(t, &redistest.ServerOptions{AOF: true})
	c := s.Client(t)
	ctx := t.Context()
	key, _ := redistest.Names(t)
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"n", "1"}}).Result()
	if err != nil {
		t.Fatalf("XADD = %v; want nil", err)
	}
	addr := s.Addr()
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill() = %v; want nil", err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatalf("PING after Kill = nil; want an error")
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start() = %v; want nil", err)
	}
	if s.Addr() != addr {
		t.Errorf("Addr() after Start = %s; want %s", s.Addr(), addr)
	}
	msgs := eventually(t, func() ([]redis.XMessage, error) { return c.XRange(ctx, key, "-", "+").Result() })
	if len(msgs) != 1 || msgs[0].ID != id || msgs[0].Values["n"] != "1" {
		t.Errorf("XRANGE after kill and restart = %v; want [%s n=1]", msgs, id)
	}
}

func TestServerStopStart(t *testing.T) {
	t.Parallel()
	s := redistest.StartServer(t, nil) // no persistence
	c := s.Client(t)
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET = %v; want nil", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop() = %v; want nil", err)
	}
	if err := s.Stop(); err == nil {
		t.Errorf("second Stop() = nil; want an error")
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start() = %v; want nil", err)
	}
	if err := s.Start(); err == nil {
		t.Errorf("Start() on a running server = nil; want an error")
	}
	n := eventually(t, func() (int64, error) { return c.Exists(ctx, "k").Result() })
	if n != 0 {
		t.Errorf("EXISTS k after restart without AOF = %d; want 0", n)
	}
}

func TestServerClientSurvivesRestart(t *testing.T) {
	t.Parallel()
	s := redistest.StartServer(t, &redistest.ServerOptions{AOF: true})
	c := s.Client(t) // made before the crash, used after it
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET = %v; want nil", err)
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill() = %v; want nil", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start() = %v; want nil", err)
	}
	if got := eventually(t, func() (string, error) { return c.Get(ctx, "k").Result() }); got != "v" {
		t.Errorf("GET k after restart = %q; want %q", got, "v")
	}
}

// eventually retries f for a bounded time (a client may first hit a pooled
// connection of the dead server) and fails t if it never succeeds.
func eventually[T any](t *testing.T, f func() (T, error)) T {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := f()
		if err == nil {
			return v
		}
		select {
		case <-deadline.C:
			t.Fatalf("still failing after 10s: %v", err)
		case <-tick.C:
		}
	}
}

// The tests below run this test binary again with no Redis to be found
// (no REDIS_ADDR, an empty PATH, an unreachable DOCKER_HOST).

const helperEnv = "REDISTEST_HELPER"

// TestHelperProcess is the child half of TestNoRedis, TestNoCluster,
// TestClusterFromEnv and TestNoLeakOnPanic;
// it does nothing unless run by them.
func TestHelperProcess(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "client":
		redistest.Client(t)
		t.Error("Client returned without a Redis")
	case "server":
		redistest.StartServer(t, nil)
		t.Error("StartServer returned without redis-server")
	case "cluster":
		redistest.ClusterClient(t)
		t.Error("ClusterClient returned without a cluster")
	case "start-cluster":
		redistest.StartCluster(t, nil)
		t.Error("StartCluster returned without redis-server")
	case "cluster-env":
		v, err := redistest.ClusterClient(t).Get(t.Context(), os.Getenv("REDISTEST_KEY")).Result()
		fmt.Printf("VALUE=%s err=%v\n", v, err)
	case "panic":
		s := redistest.StartServer(t, nil)
		fmt.Printf("ADDR=%s\n", s.Addr())
		panic("test panics while owning a server")
	}
}

func helper(t *testing.T, mode string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.v", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REDIS_ADDR=") && !strings.HasPrefix(kv, redistest.EnvClusterAddrs+"=") && !strings.HasPrefix(kv, redistest.EnvRequire+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, helperEnv+"="+mode, "DOCKER_HOST=unix:///nonexistent/docker.sock")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestNoRedis(t *testing.T) {
	t.Parallel()
	empty := "PATH=" + t.TempDir()
	for _, mode := range []string{"client", "server"} {
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
				for _, want := range []string{"REDIS_ADDR", "Docker", "redis-server on PATH"} {
					if !strings.Contains(out, want) {
						t.Errorf("child output lacks %q:\n%s", want, out)
					}
				}
			})
		}
	}
}

func TestNoLeakOnPanic(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux only")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv(redistest.EnvRequire) == "1" {
			t.Fatalf("needs redis-server on PATH (%s=1)", redistest.EnvRequire)
		}
		t.Skip("needs redis-server on PATH")
	}
	out, err := helper(t, "panic")
	if err == nil {
		t.Fatalf("panicking child exited with nil; want an error\n%s", out)
	}
	_, rest, ok := strings.Cut(out, "ADDR=")
	if !ok {
		t.Fatalf("child printed no ADDR:\n%s", out)
	}
	addr, _, _ := strings.Cut(rest, "\n")
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	eventually(t, func() (struct{}, error) {
		if err := c.Ping(t.Context()).Err(); err == nil {
			return struct{}{}, fmt.Errorf("redis-server of the dead child still answers on %s", addr)
		}
		return struct{}{}, nil
	})
}
