package inspect_test

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/inspect"
	"github.com/streamgroup/streamgroup/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// streamKey returns a stream key unique to t, inside a hash tag, and
// deletes every key built from it when t ends.
func streamKey(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	key, _ := redistest.Names(t)
	cleanup(t, rdb, key)
	return key
}

// queueKey returns a queue key unique to t, as streamKey does.
func queueKey(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	key, _ := redistest.Names(t)
	q := strings.TrimSuffix(key, ":stream") + ":q"
	cleanup(t, rdb, q)
	return q
}

// cleanup deletes, when t ends, key and every key derived from it by
// appending or by wrapping it in a hash tag.
func cleanup(t testing.TB, rdb redis.UniversalClient, key string) {
	t.Cleanup(func() {
		ctx := context.Background()
		for _, pattern := range []string{key + "*", "{" + key + "}*"} {
			keys, _ := rdb.Keys(ctx, pattern).Result()
			if len(keys) > 0 {
				rdb.Del(ctx, keys...)
			}
		}
	})
}

func newInspector(t testing.TB, rdb redis.UniversalClient, opts *inspect.Options) *inspect.Inspector {
	t.Helper()
	in, err := inspect.New(rdb, opts)
	if err != nil {
		t.Fatalf("inspect.New: %v", err)
	}
	return in
}

// counter is a go-redis hook counting round trips: single commands and
// pipelines, but for a new connection's set-up (HELLO, CLIENT SETINFO),
// which go-redis sends through the hooks too.
type counter struct{ single, pipelines atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !setup(cmd) {
			c.single.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !setup(cmds[0]) {
			c.pipelines.Add(1)
		}
		return next(ctx, cmds)
	}
}

func setup(cmd redis.Cmder) bool { return cmd.Name() == "hello" || cmd.Name() == "client" }
