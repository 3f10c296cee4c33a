package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	"github.com/ThreeDotsLabs/watermill/message"
)

// watermillSys runs watermill-redisstream: one Subscriber per worker (a
// subscriber hands out one message at a time), each with its own consumer
// name in one group; the default marshaller; the Publisher.
type watermillSys struct{}

func (watermillSys) name() string { return "watermill-redisstream" }

func wmValues(i int) any {
	v, err := redisstream.DefaultMarshallerUnmarshaller{}.Marshal(streamKey, message.NewMessage(strconv.Itoa(i), payload(i, 0)))
	if err != nil {
		panic(err)
	}
	return v
}

func (watermillSys) backlog(ctx context.Context, e *env, n int) error {
	return xaddBacklog(ctx, e.rdb, n, wmValues)
}

func (watermillSys) subscribe(ctx context.Context, e *env, workers int, cfg redisstream.SubscriberConfig, t *tracker, sleep time.Duration) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var subs []*redisstream.Subscriber
	stop := func() {
		cancel()
		var errs []error
		for _, s := range subs {
			errs = append(errs, s.Close())
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			logf("watermill Close: %v", err)
		}
	}
	for w := range workers {
		c := cfg
		c.Client = e.newClient() // Subscriber.Close closes its client
		c.Consumer = fmt.Sprintf("c%d", w)
		c.ConsumerGroup = groupName
		c.DisableIndefiniteInitialBlock = true // else Close can hang on an idle stream
		s, err := redisstream.NewSubscriber(c, watermill.NopLogger{})
		if err != nil {
			stop()
			return nil, err
		}
		subs = append(subs, s)
		ch, err := s.Subscribe(ctx, streamKey)
		if err != nil {
			stop()
			return nil, err
		}
		wg.Go(func() {
			for m := range ch {
				id, ts := parsePayload([]byte(m.Payload))
				t.mark(id, ts)
				if sleep > 0 {
					jobSleep(sleep)
				}
				m.Ack()
			}
		})
	}
	return stop, nil
}

func (w watermillSys) consume(ctx context.Context, e *env, workers int, t *tracker, sleep time.Duration) (func(), error) {
	return w.subscribe(ctx, e, workers, redisstream.SubscriberConfig{}, t, sleep)
}

func (watermillSys) acked(ctx context.Context, e *env) (bool, error) { return pendingZero(ctx, e.rdb) }

func (watermillSys) publisher(ctx context.Context, e *env) (func(context.Context, []byte) error, error) {
	p, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: e.rdb}, watermill.NopLogger{})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, body []byte) error {
		id, _ := parsePayload(body)
		m := message.NewMessage(strconv.Itoa(id), body)
		m.SetContext(ctx)
		return p.Publish(streamKey, m)
	}, nil
}

func (watermillSys) published(ctx context.Context, e *env) (int64, error) { return xlen(ctx, e.rdb) }

func (watermillSys) strand(ctx context.Context, e *env, n int) error {
	return strandStream(ctx, e.rdb, n, wmValues)
}

// reclaim runs one subscriber whose claim loop (XPENDING IDLE + XCLAIM of
// one ID at a time) takes the stranded entries over.
func (w watermillSys) reclaim(ctx context.Context, e *env, t *tracker) (func(), error) {
	return w.subscribe(ctx, e, 1, redisstream.SubscriberConfig{MaxIdleTime: e.minIdle, ClaimInterval: e.minIdle / 2}, t, 0)
}
