package integration_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// BenchmarkDrain measures draining a backlog with acks: a consumer with
// Concurrency 16 (default Prefetch, and Prefetch 84 so that reads ask for
// 100 entries like the baseline's) against a hand-written XREADGROUP
// COUNT 100 + XACK loop (the baseline), in the same run on the same server.
// Compare ns/op between sub-benchmarks of one run. streamgroup-noophook is
// streamgroup with a hook whose methods do nothing: its ratio to
// streamgroup is what a hook costs a consumer on Redis.
//
//	go test -run '^$' -bench Drain -benchtime 50000x ./integration_test/
func BenchmarkDrain(b *testing.B) {
	rdb := redistest.Client(b)
	payload := map[string]any{"body": string(make([]byte, 200))}
	setup := func(b *testing.B) (string, string) {
		b.Helper()
		key, grp := redistest.Names(b)
		b.StopTimer()
		publish(b, rdb, key, b.N, payload)
		if err := rdb.XGroupCreate(context.Background(), key, grp, "0").Err(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rdb.Del(context.Background(), key) })
		b.StartTimer()
		return key, grp
	}
	b.Run("baseline", func(b *testing.B) {
		key, grp := setup(b)
		ctx := context.Background()
		handled := 0
		for handled < b.N {
			res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: grp, Consumer: "c", Streams: []string{key, ">"}, Count: 100, Block: -1}).Result()
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]string, 0, 100)
			for _, m := range res[0].Messages {
				ids = append(ids, m.ID)
			}
			if err := rdb.XAck(ctx, key, grp, ids...).Err(); err != nil {
				b.Fatal(err)
			}
			handled += len(ids)
		}
	})
	for _, bc := range []struct {
		name string
		opts group.Options
	}{
		{"streamgroup", group.Options{Concurrency: 16, Block: 100 * time.Millisecond}},
		{"streamgroup-prefetch84", group.Options{Concurrency: 16, Prefetch: 84, Block: 100 * time.Millisecond}},
		{"streamgroup-noophook", group.Options{Concurrency: 16, Block: 100 * time.Millisecond, Hook: noopHook{}}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchConsumer(b, rdb, setup, bc.opts) })
	}
}

func benchConsumer(b *testing.B, rdb redis.UniversalClient, setup func(*testing.B) (string, string), opts group.Options) {
	key, grp := setup(b)
	var n atomic.Int64
	done := make(chan struct{})
	h := handler.Func(func(context.Context, *stream.Message) error {
		if n.Add(1) == int64(b.N) {
			close(done)
		}
		return nil
	})
	c, err := group.NewConsumer(rdb, key, grp, "c", h, &opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	<-done
	b.StopTimer()
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// noopHook is a hook.Hook whose consumers do nothing.
type noopHook struct{}

func (noopHook) Producer(hook.Target) hook.Producer   { return nil }
func (h noopHook) Consumer(hook.Target) hook.Consumer { return h }

func (noopHook) Start(ctx context.Context, _ hook.Message) context.Context { return ctx }
func (noopHook) End(context.Context, hook.Message, hook.Result)            {}
func (noopHook) Event(hook.Event)                                          {}
