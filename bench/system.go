package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	streamKey = "bench:jobs"
	groupName = "bench"
)

// errNA marks a workload a system has no equivalent for.
var errNA = errors.New("n/a")

// errNotYet marks a workload not implemented for a system yet.
var errNotYet = errors.New("not yet")

// env is what every run shares.
type env struct {
	rdb     *redis.Client
	addr    string        // of the server, for systems that need a client of their own
	timeout time.Duration // longest wait for one run to finish
	minIdle time.Duration // idle time of stranded entries before reclaiming (d)
}

// system is one job-queue implementation under test. Every method may
// return errNA or errNotYet.
type system interface {
	name() string
	// backlog publishes n jobs (body payload(i, 0)) as fast as it can; it is
	// setup, not measured.
	backlog(ctx context.Context, e *env, n int) error
	// consume starts consumers handling jobs with the given concurrency,
	// calling t.mark at the start of each handler, then sleeping sleep.
	consume(ctx context.Context, e *env, workers int, t *tracker, sleep time.Duration) (stop func(), err error)
	// acked reports whether every delivered job has been acknowledged.
	acked(ctx context.Context, e *env) (bool, error)
	// publisher returns a function publishing one job; it is safe for
	// concurrent use.
	publisher(ctx context.Context, e *env) (func(ctx context.Context, body []byte) error, error)
	// published counts the jobs stored by the publisher.
	published(ctx context.Context, e *env) (int64, error)
	// strand leaves n jobs pending with a dead consumer (setup for d).
	strand(ctx context.Context, e *env, n int) error
	// reclaim starts taking over the stranded jobs.
	reclaim(ctx context.Context, e *env, t *tracker) (stop func(), err error)
}

// batchPublisher is implemented by the baseline, whose publishing workload
// (e) is pipelined batches instead of single jobs.
type batchPublisher interface {
	publishBatches(ctx context.Context, e *env, n int) error
}

// xaddBacklog adds n entries with pipelined XADD batches of 100.
func xaddBacklog(ctx context.Context, rdb redis.UniversalClient, n int, values func(i int) any) error {
	const batch = 100
	for i := 0; i < n; i += batch {
		pipe := rdb.Pipeline()
		for j := i; j < min(i+batch, n); j++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: streamKey, Values: values(j)})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("backlog XADD: %w", err)
		}
	}
	return nil
}

// strandStream publishes n entries and reads them all as a consumer that
// then dies, leaving them pending.
func strandStream(ctx context.Context, rdb redis.UniversalClient, n int, values func(i int) any) error {
	if err := xaddBacklog(ctx, rdb, n, values); err != nil {
		return err
	}
	if err := rdb.XGroupCreate(ctx, streamKey, groupName, "0").Err(); err != nil {
		return err
	}
	for got := 0; got < n; {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: groupName, Consumer: "dead", Streams: []string{streamKey, ">"}, Count: 10000, Block: -1,
		}).Result()
		if err != nil {
			return fmt.Errorf("strand XREADGROUP after %d: %w", got, err)
		}
		got += len(res[0].Messages)
	}
	return nil
}

// pendingZero reports whether the group has no pending entries.
func pendingZero(ctx context.Context, rdb redis.UniversalClient) (bool, error) {
	p, err := rdb.XPending(ctx, streamKey, groupName).Result()
	if err != nil {
		return false, err
	}
	return p.Count == 0, nil
}

func xlen(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	return rdb.XLen(ctx, streamKey).Result()
}

// newClient returns a client of its own, for systems that close the client
// they are given (watermill's Subscriber.Close does).
func (e *env) newClient() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: e.addr, PoolSize: 256})
}
