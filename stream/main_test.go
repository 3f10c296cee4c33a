package stream_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// setup returns a client and a stream key unique to t, deleted (with the
// group name) when t ends.
func setup(t *testing.T) (*redis.Client, string, string) {
	t.Helper()
	rdb := redistest.Client(t)
	key, group := redistest.Names(t)
	t.Cleanup(func() { rdb.Del(context.WithoutCancel(t.Context()), key) })
	return rdb, key, group
}

// ids returns the IDs of all entries of key, oldest first.
func ids(t *testing.T, rdb redis.UniversalClient, key string) []string {
	t.Helper()
	msgs, err := rdb.XRange(t.Context(), key, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// seed adds entries with IDs 1-0 ... n-0, each with field n = its number.
func seed(t *testing.T, rdb redis.UniversalClient, key string, n int) {
	t.Helper()
	pipe := rdb.Pipeline()
	for i := 1; i <= n; i++ {
		pipe.XAdd(t.Context(), &redis.XAddArgs{Stream: key, ID: itoa(i) + "-0", Values: []any{"n", i}})
	}
	if _, err := pipe.Exec(t.Context()); err != nil {
		t.Fatalf("seed %s: %v", key, err)
	}
}

// span returns "a-0" ... "b-0".
func span(a, b int) []string {
	out := []string{}
	for i := a; i <= b; i++ {
		out = append(out, itoa(i)+"-0")
	}
	return out
}
