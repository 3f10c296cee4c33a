package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// baseline is a hand-written, best-effort go-redis loop: pipelined XADD
// batches; W goroutines each reading XREADGROUP COUNT 100 and sending the
// XACK of a batch in one pipeline with the next read.
type baseline struct{}

func (baseline) name() string { return "baseline (go-redis)" }

func streamValues(i int) any { return []any{"p", payload(i, 0)} }

func (baseline) backlog(ctx context.Context, e *env, n int) error {
	return xaddBacklog(ctx, e.rdb, n, streamValues)
}

func (baseline) consume(ctx context.Context, e *env, workers int, t *tracker, sleep time.Duration) (func(), error) {
	if err := e.rdb.XGroupCreateMkStream(ctx, streamKey, groupName, "0").Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { baselineWorker(ctx, e.rdb, fmt.Sprintf("c%d", w), t, sleep) })
	}
	return func() { cancel(); wg.Wait() }, nil
}

func baselineWorker(ctx context.Context, rdb redis.UniversalClient, consumer string, t *tracker, sleep time.Duration) {
	ack := make([]string, 0, 100)
	for ctx.Err() == nil {
		pipe := rdb.Pipeline()
		if len(ack) > 0 {
			pipe.XAck(ctx, streamKey, groupName, ack...)
		}
		read := pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: groupName, Consumer: consumer, Streams: []string{streamKey, ">"},
			Count: 100, Block: 100 * time.Millisecond,
		})
		_, err := pipe.Exec(ctx)
		if err != nil && !errors.Is(err, redis.Nil) {
			if ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			continue // the acks are sent again with the next read
		}
		ack = ack[:0]
		res, _ := read.Result()
		for _, s := range res {
			for _, m := range s.Messages {
				body, _ := m.Values["p"].(string)
				id, ts := parsePayload(body)
				t.mark(id, ts)
				if sleep > 0 {
					jobSleep(sleep)
				}
				ack = append(ack, m.ID)
			}
		}
	}
	if len(ack) > 0 {
		rdb.XAck(context.WithoutCancel(ctx), streamKey, groupName, ack...)
	}
}

func (baseline) acked(ctx context.Context, e *env) (bool, error) { return pendingZero(ctx, e.rdb) }

func (baseline) publisher(ctx context.Context, e *env) (func(context.Context, []byte) error, error) {
	return func(ctx context.Context, body []byte) error {
		return e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: streamKey, Values: []any{"p", body}}).Err()
	}, nil
}

// publishBatches publishes n jobs with 4 goroutines, each sending
// pipelined XADD batches of 100.
func (baseline) publishBatches(ctx context.Context, e *env, n int) error {
	const batch = 100
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(batch)) - batch
				if i >= n {
					return
				}
				pipe := e.rdb.Pipeline()
				for j := i; j < min(i+batch, n); j++ {
					pipe.XAdd(ctx, &redis.XAddArgs{Stream: streamKey, Values: []any{"p", payload(j, 0)}})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (baseline) published(ctx context.Context, e *env) (int64, error) { return xlen(ctx, e.rdb) }

func (baseline) strand(ctx context.Context, e *env, n int) error {
	return strandStream(ctx, e.rdb, n, streamValues)
}

// reclaim is a hand-written XAUTOCLAIM loop: COUNT 100, the XACK of each
// batch pipelined with the next XAUTOCLAIM.
func (baseline) reclaim(ctx context.Context, e *env, t *tracker) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		cursor := "0-0"
		ack := make([]string, 0, 100)
		for ctx.Err() == nil {
			pipe := e.rdb.Pipeline()
			if len(ack) > 0 {
				pipe.XAck(ctx, streamKey, groupName, ack...)
			}
			claim := pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: streamKey, Group: groupName, Consumer: "c", MinIdle: e.minIdle, Start: cursor, Count: 100,
			})
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				continue
			}
			msgs, next, err := claim.Result()
			if err != nil {
				continue
			}
			cursor = next
			sent := len(ack) > 0
			ack = ack[:0]
			for _, m := range msgs {
				body, _ := m.Values["p"].(string)
				id, ts := parsePayload(body)
				t.mark(id, ts)
				ack = append(ack, m.ID)
			}
			if len(msgs) == 0 && !sent && cursor == "0-0" {
				select {
				case <-ctx.Done():
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		if len(ack) > 0 {
			e.rdb.XAck(context.WithoutCancel(ctx), streamKey, groupName, ack...)
		}
	})
	return func() { cancel(); wg.Wait() }, nil
}
