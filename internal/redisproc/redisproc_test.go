package redisproc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redisproc"
)

// envRequire is redistest.EnvRequire, not imported to keep testcontainers
// out of this test binary.
const envRequire = "STREAMGROUP_REQUIRE_REDIS"

// needRedis skips t without redis-server on PATH, or fails it under
// STREAMGROUP_REQUIRE_REDIS=1.
func needRedis(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv(envRequire) == "1" {
			t.Fatalf("needs redis-server on PATH (%s=1)", envRequire)
		}
		t.Skip("needs redis-server on PATH")
	}
}

// start starts a server in a temporary directory, killed with t.Cleanup.
func start(t *testing.T, opts *redisproc.Options) *redisproc.Server {
	t.Helper()
	needRedis(t)
	s, err := redisproc.Start(t.Context(), t.TempDir(), opts)
	if err != nil {
		t.Fatalf("Start = %v; want nil", err)
	}
	t.Cleanup(func() { _ = s.Kill() })
	return s
}

func client(t *testing.T, addr, password string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestStopStart(t *testing.T) {
	t.Parallel()
	s := start(t, nil) // no persistence
	c := client(t, s.Addr(), "")
	ctx := t.Context()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET = %v; want nil", err)
	}
	if _, err := os.Stat(s.LogFile()); err != nil {
		t.Errorf("log file: %v", err)
	}
	if err := s.Start(ctx); !errors.Is(err, redisproc.ErrRunning) {
		t.Errorf("Start() on a running server = %v; want ErrRunning", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop() = %v; want nil", err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatalf("PING after Stop = nil; want an error")
	}
	if err := s.Stop(ctx); !errors.Is(err, redisproc.ErrNotRunning) {
		t.Errorf("second Stop() = %v; want ErrNotRunning", err)
	}
	if err := s.Kill(); !errors.Is(err, redisproc.ErrNotRunning) {
		t.Errorf("Kill() after Stop = %v; want ErrNotRunning", err)
	}
	addr := s.Addr()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start() = %v; want nil", err)
	}
	if s.Addr() != addr {
		t.Errorf("Addr() after Start = %s; want %s", s.Addr(), addr)
	}
	if n, err := client(t, addr, "").Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS k after restart without AOF = %d, %v; want 0, nil", n, err)
	}
}

func TestAOFSurvivesKill(t *testing.T) {
	t.Parallel()
	s := start(t, &redisproc.Options{AOF: true})
	ctx := t.Context()
	if err := client(t, s.Addr(), "").Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET = %v; want nil", err)
	}
	if err := s.Kill(); err != nil {
		t.Fatalf("Kill() = %v; want nil", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start() = %v; want nil", err)
	}
	if got, err := client(t, s.Addr(), "").Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET k after kill and restart = %q, %v; want %q, nil", got, err, "v")
	}
}

func TestPasswordAndArgs(t *testing.T) {
	t.Parallel()
	s := start(t, &redisproc.Options{Password: "secret", Args: []string{"--maxmemory", "10mb"}})
	ctx := t.Context()
	if err := client(t, s.Addr(), "").Ping(ctx).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Errorf("PING without password = %v; want NOAUTH", err)
	}
	got, err := client(t, s.Addr(), "secret").ConfigGet(ctx, "maxmemory").Result()
	if err != nil || got["maxmemory"] != "10485760" {
		t.Errorf("CONFIG GET maxmemory = %v, %v; want 10485760, nil", got, err)
	}
}

func TestStartError(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		opts *redisproc.Options
		want string // in the log tail
	}{
		{"bad argument", t.Context(), &redisproc.Options{Args: []string{"--no-such-directive", "x"}}, "no-such-directive"},
		{"canceled", canceled, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			needRedis(t)
			_, err := redisproc.Start(tc.ctx, t.TempDir(), tc.opts)
			se, ok := errors.AsType[*redisproc.StartError](err)
			if !ok {
				t.Fatalf("Start = %v; want a *StartError", err)
			}
			if !strings.Contains(se.Tail, tc.want) {
				t.Errorf("log tail lacks %q:\n%s", tc.want, se.Tail)
			}
			if tc.ctx.Err() != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Start with a canceled ctx = %v; want context.Canceled", err)
			}
		})
	}
}

func TestNotOnPath(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := redisproc.Start(t.Context(), t.TempDir(), nil); !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("Start without redis-server on PATH = %v; want exec.ErrNotFound", err)
	}
}

// TestStopFallsBackToKill stops a server that cannot handle SIGTERM
// (SIGSTOPped): Stop must SIGKILL it when ctx is done.
func TestStopFallsBackToKill(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGSTOP")
	}
	s := start(t, nil)
	ctx := t.Context()
	info, err := client(t, s.Addr(), "").Info(ctx, "server").Result()
	if err != nil {
		t.Fatalf("INFO = %v; want nil", err)
	}
	var pid int
	for line := range strings.Lines(info) {
		if _, err := fmt.Sscanf(line, "process_id:%d", &pid); err == nil {
			break
		}
	}
	p, err := os.FindProcess(pid)
	if err != nil || pid == 0 {
		t.Fatalf("server pid %d: %v", pid, err)
	}
	if err := p.Signal(stopSignal); err != nil {
		t.Fatalf("SIGSTOP = %v; want nil", err)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := s.Stop(stopCtx); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop() of a stopped process = %v; want a killed error", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Errorf("Start() after the kill = %v; want nil", err)
	}
}

// helperEnv makes TestHelperProcess start a server and exit without
// stopping it, for TestDiesWithParent.
const helperEnv = "REDISPROC_HELPER"

func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	s, err := redisproc.Start(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR=%s\n", s.Addr())
	os.Exit(0) // no cleanup: only Pdeathsig stops the server
}

func TestDiesWithParent(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("Pdeathsig is Linux only")
	}
	needRedis(t)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	_, rest, ok := strings.Cut(string(out), "ADDR=")
	if err != nil || !ok {
		t.Fatalf("helper = %v; want an ADDR line:\n%s", err, out)
	}
	addr, _, _ := strings.Cut(rest, "\n")
	c := client(t, addr, "")
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(t.Context()).Err() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server of the exited helper still answers on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
