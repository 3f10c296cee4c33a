package main

import (
	"context"
	"sync"
	"time"

	redisv7 "github.com/go-redis/redis/v7"
	"github.com/robinjoseph08/redisqueue/v2"
)

// redisqueueSys runs github.com/robinjoseph08/redisqueue/v2 (on go-redis
// v7, with a client of its own): one Consumer with the given Concurrency
// and its default BufferSize, BlockingTimeout 100ms so runs stop quickly,
// and the Producer without trimming (its default trims to about 1000
// entries, which would drop a backlog).
type redisqueueSys struct{}

func (redisqueueSys) name() string { return "redisqueue" }

func (redisqueueSys) backlog(ctx context.Context, e *env, n int) error {
	return xaddBacklog(ctx, e.rdb, n, streamValues)
}

func (redisqueueSys) client(e *env) *redisv7.Client {
	return redisv7.NewClient(&redisv7.Options{Addr: e.addr, PoolSize: 256})
}

func (r redisqueueSys) run(ctx context.Context, e *env, opts redisqueue.ConsumerOptions, t *tracker, sleep time.Duration) (func(), error) {
	rdb := r.client(e)
	opts.Name = "c"
	opts.GroupName = groupName
	opts.BlockingTimeout = 100 * time.Millisecond
	opts.RedisClient = rdb
	c, err := redisqueue.NewConsumerWithOptions(&opts)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	c.Register(streamKey, func(m *redisqueue.Message) error {
		body, _ := m.Values["p"].(string)
		id, ts := parsePayload(body)
		t.mark(id, ts)
		if sleep > 0 {
			jobSleep(sleep)
		}
		return nil
	})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { // Errors is unbuffered: the consumer blocks until it is read
		for {
			select {
			case err := <-c.Errors:
				logf("redisqueue: %v", err)
			case <-ctx.Done():
				return
			}
		}
	})
	ran := make(chan struct{})
	go func() { defer close(ran); c.Run() }()
	return func() {
		c.Shutdown()
		<-ran
		cancel()
		wg.Wait()
		rdb.Close()
	}, nil
}

func (r redisqueueSys) consume(ctx context.Context, e *env, workers int, t *tracker, sleep time.Duration) (func(), error) {
	return r.run(ctx, e, redisqueue.ConsumerOptions{Concurrency: workers, BufferSize: 100, VisibilityTimeout: time.Minute}, t, sleep)
}

func (redisqueueSys) acked(ctx context.Context, e *env) (bool, error) { return pendingZero(ctx, e.rdb) }

func (r redisqueueSys) publisher(ctx context.Context, e *env) (func(context.Context, []byte) error, error) {
	p, err := redisqueue.NewProducerWithOptions(&redisqueue.ProducerOptions{RedisClient: r.client(e)})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, body []byte) error {
		return p.Enqueue(&redisqueue.Message{Stream: streamKey, Values: map[string]any{"p": body}})
	}, nil
}

func (redisqueueSys) published(ctx context.Context, e *env) (int64, error) { return xlen(ctx, e.rdb) }

func (redisqueueSys) strand(ctx context.Context, e *env, n int) error {
	return strandStream(ctx, e.rdb, n, streamValues)
}

// reclaim runs one consumer whose reclaim loop (XPENDING pages, then XCLAIM
// of one ID at a time) takes the stranded entries over.
func (r redisqueueSys) reclaim(ctx context.Context, e *env, t *tracker) (func(), error) {
	return r.run(ctx, e, redisqueue.ConsumerOptions{Concurrency: 16, BufferSize: 100, VisibilityTimeout: e.minIdle, ReclaimInterval: e.minIdle / 2}, t, 0)
}
