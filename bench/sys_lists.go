package main

import (
	"context"
	"time"

	"github.com/streamgroup/streamgroup/queue"
)

const listKey = "bench:list"

// listsSys runs streamgroup's Redis Lists queues (package queue): the
// reliable consumer (LMOVE into a processing list, LREM on success,
// heartbeat and recovery) or the simple one (BRPOP, at-most-once). The
// handler is the same one the stream consumer runs.
type listsSys struct{ reliable bool }

func (s listsSys) name() string {
	if s.reliable {
		return "streamgroup lists, reliable"
	}
	return "streamgroup lists, simple"
}

func (listsSys) backlog(ctx context.Context, e *env, n int) error {
	p, err := queue.NewProducer(e.rdb, listKey, nil)
	if err != nil {
		return err
	}
	const batch = 1000
	jobs := make([]map[string]any, 0, batch)
	for i := 0; i < n; i += batch {
		jobs = jobs[:0]
		for j := i; j < min(i+batch, n); j++ {
			jobs = append(jobs, map[string]any{"p": payload(j, 0)})
		}
		if _, err := p.PushBatch(ctx, jobs); err != nil {
			return err
		}
	}
	return nil
}

func (s listsSys) consume(ctx context.Context, e *env, workers int, t *tracker, sleep time.Duration) (func(), error) {
	opts := &queue.Options{Concurrency: workers, PollInterval: 100 * time.Millisecond}
	var c *queue.Consumer
	var err error
	if s.reliable {
		c, err = queue.NewReliableConsumer(e.rdb, []string{listKey}, "c", sgHandler(t, sleep), opts)
	} else {
		c, err = queue.NewSimpleConsumer(e.rdb, []string{listKey}, sgHandler(t, sleep), opts)
	}
	if err != nil {
		return nil, err
	}
	return runUntilStopped(ctx, c.Run), nil
}

// acked: the queue is empty and (reliable) so is every processing list.
func (s listsSys) acked(ctx context.Context, e *env) (bool, error) {
	keys := []string{listKey}
	if s.reliable {
		keys = append(keys, queue.ProcessingKey(listKey, "c"), queue.ProcessingKey(listKey, "dead"))
	}
	for _, k := range keys {
		n, err := e.rdb.LLen(ctx, k).Result()
		if err != nil || n > 0 {
			return false, err
		}
	}
	return true, nil
}

func (listsSys) publisher(ctx context.Context, e *env) (func(context.Context, []byte) error, error) {
	p, err := queue.NewProducer(e.rdb, listKey, nil)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, body []byte) error {
		_, err := p.Push(ctx, map[string]any{"p": body})
		return err
	}, nil
}

func (listsSys) published(ctx context.Context, e *env) (int64, error) {
	return e.rdb.LLen(ctx, listKey).Result()
}

// strand leaves n jobs in the processing list of a consumer "dead" that is
// registered but has no heartbeat, as a SIGKILLed reliable consumer leaves
// them once its heartbeat expired.
func (s listsSys) strand(ctx context.Context, e *env, n int) error {
	if !s.reliable {
		return errNA // at-most-once: nothing to recover
	}
	if err := s.backlog(ctx, e, n); err != nil {
		return err
	}
	dead := queue.ProcessingKey(listKey, "dead")
	for moved := 0; moved < n; moved += 1000 {
		pipe := e.rdb.Pipeline()
		for range min(1000, n-moved) {
			pipe.LMove(ctx, listKey, dead, "RIGHT", "LEFT")
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return e.rdb.SAdd(ctx, queue.ConsumersKey(listKey), "dead").Err()
}

// reclaim starts a reliable consumer: its start-up sweep moves the dead
// consumer's jobs back to the queue, then it handles them.
func (s listsSys) reclaim(ctx context.Context, e *env, t *tracker) (func(), error) {
	if !s.reliable {
		return nil, errNA
	}
	return s.consume(ctx, e, 16, t, 0)
}
