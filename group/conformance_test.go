package group_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/engine/enginetest"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// TestConformance runs the engine's behaviour suite against the stream
// source: group.Consumer on a real Redis stream.
func TestConformance(t *testing.T) {
	rdb := redistest.Client(t)
	enginetest.Run(t, enginetest.Harness{
		NewQueue: func(t *testing.T) enginetest.Queue {
			key, grp := redistest.Names(t)
			t.Cleanup(func() { rdb.Del(context.Background(), key, stream.DeadLetterKey(key)) })
			return &streamQueue{rdb: rdb, key: key, grp: grp}
		},
	})
}

type streamQueue struct {
	rdb      redis.UniversalClient
	key, grp string
}

func (q *streamQueue) Publish(t *testing.T, jobs ...map[string]string) {
	t.Helper()
	for _, j := range jobs {
		values := make(map[string]any, len(j))
		for k, v := range j {
			values[k] = v
		}
		if err := q.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: q.key, Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func (q *streamQueue) NewConsumer(t *testing.T, name string, h handler.Handler, o enginetest.Options) enginetest.Consumer {
	t.Helper()
	c, err := group.NewConsumer(q.rdb, q.key, q.grp, name, h, &group.Options{
		Concurrency:   o.Concurrency,
		Prefetch:      o.Prefetch,
		MaxBytes:      o.MaxBytes,
		Block:         200 * time.Millisecond,
		MaxDeliveries: o.MaxDeliveries,
		MinIdle:       o.KeepAlive,
		RetryBackoff:  o.RetryBackoff,
		DrainTimeout:  o.DrainTimeout,
		OnError:       o.OnError,
		Hook:          o.Hook,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (q *streamQueue) DeadLetters(t *testing.T) []enginetest.DeadLetter {
	t.Helper()
	xs, err := q.rdb.XRange(context.Background(), stream.DeadLetterKey(q.key), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]enginetest.DeadLetter, 0, len(xs))
	for _, x := range xs {
		m, _ := stream.FromXMessage(stream.DeadLetterKey(q.key), x)
		dl, err := stream.ParseDeadLetter(&m)
		if err != nil {
			t.Fatalf("dead letter %s: %v", x.ID, err)
		}
		out = append(out, enginetest.DeadLetter{Values: dl.Values, Reason: dl.Error, Deliveries: dl.Deliveries})
	}
	return out
}

// Counts: entries past the group's last-delivered ID are waiting; pending
// ones (handed-back ones included) are held.
func (q *streamQueue) Counts(t *testing.T) enginetest.Counts {
	t.Helper()
	ctx := context.Background()
	groups, err := q.rdb.XInfoGroups(ctx, q.key).Result()
	if err != nil {
		if strings.HasPrefix(err.Error(), "ERR no such key") {
			return enginetest.Counts{}
		}
		t.Fatal(err)
	}
	last := "0-0"
	for _, g := range groups {
		if g.Name == q.grp {
			last = g.LastDeliveredID
		}
	}
	waiting, err := q.rdb.XRange(ctx, q.key, "("+last, "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	held := int64(0)
	if p, err := q.rdb.XPending(ctx, q.key, q.grp).Result(); err == nil {
		held = p.Count
	}
	return enginetest.Counts{Waiting: len(waiting), Held: int(held)}
}

// Take claims the entry for a consumer outside the test, and keeps its
// claim fresh so that no consumer's sweep takes it back.
func (q *streamQueue) Take(t *testing.T, consumer string, msg *stream.Message) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	claim := func() error {
		return q.rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: q.key, Group: q.grp, Consumer: "thief", Messages: []string{msg.ID}}).Err()
	}
	if err := claim(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = claim()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}
