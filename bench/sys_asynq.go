package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
)

// asynqSys runs asynq (Redis lists, not streams): Client.Enqueue and a
// Server with the given Concurrency, default queue, default polling.
type asynqSys struct{}

func (asynqSys) name() string { return "asynq" }

const asynqType = "bench:job"

func (asynqSys) backlog(ctx context.Context, e *env, n int) error {
	c := asynq.NewClientFromRedisClient(e.rdb)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 64)
	for g := range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if _, err := c.EnqueueContext(ctx, asynq.NewTask(asynqType, payload(i, 0))); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (asynqSys) consume(ctx context.Context, e *env, workers int, t *tracker, sleep time.Duration) (func(), error) {
	srv := asynq.NewServerFromRedisClient(e.rdb, asynq.Config{Concurrency: workers, LogLevel: asynq.FatalLevel})
	err := srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		id, ts := parsePayload(task.Payload())
		t.mark(id, ts)
		if sleep > 0 {
			jobSleep(sleep)
		}
		return nil
	}))
	if err != nil {
		return nil, err
	}
	return srv.Shutdown, nil
}

func (asynqSys) acked(ctx context.Context, e *env) (bool, error) {
	q, err := asynq.NewInspectorFromRedisClient(e.rdb).GetQueueInfo("default")
	if err != nil {
		return false, err
	}
	return q.Active == 0 && q.Pending == 0 && q.Retry == 0, nil
}

func (asynqSys) publisher(ctx context.Context, e *env) (func(context.Context, []byte) error, error) {
	c := asynq.NewClientFromRedisClient(e.rdb)
	return func(ctx context.Context, body []byte) error {
		_, err := c.EnqueueContext(ctx, asynq.NewTask(asynqType, body))
		return err
	}, nil
}

func (asynqSys) published(ctx context.Context, e *env) (int64, error) {
	q, err := asynq.NewInspectorFromRedisClient(e.rdb).GetQueueInfo("default")
	if err != nil {
		return 0, err
	}
	return int64(q.Pending), nil
}

func (asynqSys) strand(ctx context.Context, e *env, n int) error { return errNA }

func (asynqSys) reclaim(ctx context.Context, e *env, t *tracker) (func(), error) { return nil, errNA }
