package faultproxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/faultproxy"
	"github.com/streamgroup/streamgroup/internal/redistest"
)

// redisThrough returns a client that reaches srv through a new proxy.
func redisThrough(t *testing.T, srv *redistest.Server) (*faultproxy.Proxy, *redis.Client) {
	t.Helper()
	p := listen(t, srv.Addr())
	rdb := redis.NewClient(&redis.Options{
		Addr:        p.Addr(),
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: -1, DialerRetries: 1,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	return p, rdb
}

// eventually polls f until it returns nil, or fails t after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after %v", what, err, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisRestartBehindProxy kills redis-server (SIGKILL) and starts it
// again on its address: a client of the proxy reconnects through the same
// proxy address and finds the data (AOF).
func TestRedisRestartBehindProxy(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t, &redistest.ServerOptions{AOF: true})
	_, rdb := redisThrough(t, srv)
	ctx := t.Context()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the proxy: %v", err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Get(ctx, "k").Err(); err == nil {
		t.Fatalf("GET with redis-server killed succeeded; want an error")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "GET after the restart", func() error {
		v, err := rdb.Get(ctx, "k").Result()
		if err == nil && v != "v" {
			t.Fatalf("GET k = %q; want %q", v, "v")
		}
		return err
	})
}

// TestRedisCut cuts a client's connections and refuses new ones: commands
// fail at once (no hang) during the refusal and work again after it.
func TestRedisCut(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t, nil)
	p, rdb := redisThrough(t, srv)
	ctx := t.Context()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING through the proxy: %v", err)
	}
	const refuse = time.Second
	cutAt := time.Now()
	if n := p.Cut(refuse); n != 1 {
		t.Errorf("Cut() = %d; want 1 (the client's pooled connection)", n)
	}
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Errorf("PING during the refusal succeeded; want an error")
	}
	if d := time.Since(cutAt); d > refuse/2 {
		t.Errorf("PING during the refusal took %v to fail; want a fast failure", d)
	}
	eventually(t, 5*time.Second, "PING after the refusal", func() error { return rdb.Ping(ctx).Err() })
	if d := time.Since(cutAt); d < refuse {
		t.Errorf("PING worked again %v after the cut; want at least %v", d, refuse)
	}
}

// TestRedisStall stalls a blocking command's reply past the client's read
// timeout: the client gets a timeout, not a hang.
func TestRedisStall(t *testing.T) {
	t.Parallel()
	srv := redistest.StartServer(t, nil)
	p, rdb := redisThrough(t, srv)
	ctx := t.Context()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	p.Stall(3 * time.Second)
	start := time.Now()
	err := rdb.Ping(ctx).Err()
	if err == nil {
		t.Fatalf("PING during a 3s stall succeeded; want a read timeout")
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 2500*time.Millisecond {
		t.Errorf("PING during a stall failed after %v (%v); want about the 1s read timeout", d, err)
	}
	p.Heal()
	eventually(t, 5*time.Second, "PING after Heal", func() error {
		return rdb.Ping(context.WithoutCancel(ctx)).Err()
	})
}
