package main

import (
	"context"
	"sync"
	"time"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

// streamgroupSys runs group.Consumer, stream.Producer and claim.Reclaimer
// with default options except Concurrency, Block (100ms, so runs stop
// quickly) and MinIdle for reclaiming.
type streamgroupSys struct{}

func (streamgroupSys) name() string { return "streamgroup" }

func (streamgroupSys) backlog(ctx context.Context, e *env, n int) error {
	return xaddBacklog(ctx, e.rdb, n, streamValues)
}

func sgHandler(t *tracker, sleep time.Duration) handler.Handler {
	return handler.Func(func(ctx context.Context, m *stream.Message) error {
		id, ts := parsePayload(m.Values["p"])
		t.mark(id, ts)
		if sleep > 0 {
			jobSleep(sleep)
		}
		return nil
	})
}

// runUntilStopped runs f in a goroutine until stop is called.
func runUntilStopped(ctx context.Context, f func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := f(ctx); err != nil {
			logf("streamgroup Run: %v", err)
		}
	})
	return func() { cancel(); wg.Wait() }
}

func (streamgroupSys) consume(ctx context.Context, e *env, workers int, t *tracker, sleep time.Duration) (func(), error) {
	// Default options but Concurrency: the figures are what a user gets.
	c, err := group.NewConsumer(e.rdb, streamKey, groupName, "c", sgHandler(t, sleep),
		&group.Options{Concurrency: workers})
	if err != nil {
		return nil, err
	}
	return runUntilStopped(ctx, c.Run), nil
}

func (streamgroupSys) acked(ctx context.Context, e *env) (bool, error) {
	return pendingZero(ctx, e.rdb)
}

func (streamgroupSys) publisher(ctx context.Context, e *env) (func(context.Context, []byte) error, error) {
	p, err := stream.NewProducer(e.rdb, streamKey, nil)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, body []byte) error {
		_, err := p.Add(ctx, map[string]any{"p": body})
		return err
	}, nil
}

func (streamgroupSys) published(ctx context.Context, e *env) (int64, error) { return xlen(ctx, e.rdb) }

func (streamgroupSys) strand(ctx context.Context, e *env, n int) error {
	return strandStream(ctx, e.rdb, n, streamValues)
}

func (streamgroupSys) reclaim(ctx context.Context, e *env, t *tracker) (func(), error) {
	r, err := claim.NewReclaimer(e.rdb, streamKey, groupName, "c", sgHandler(t, 0),
		&claim.Options{Concurrency: 16, MinIdle: e.minIdle})
	if err != nil {
		return nil, err
	}
	return runUntilStopped(ctx, r.Run), nil
}
