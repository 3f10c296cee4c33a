package queue

import (
	"context"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/health"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/listsrc"
)

// Consumer handles the jobs of one or more Redis lists with a
// [handler.Handler] on a bounded pool of goroutines, on the same engine as
// a stream consumer group (package group). It is reliable
// ([NewReliableConsumer]) or simple ([NewSimpleConsumer]); see the package
// documentation. A Consumer is single-use: call [Consumer.Run] once. Its
// methods are safe for concurrent use. The zero value is not usable.
type Consumer struct {
	eng *engine.Engine
	src listsrc.Source
}

// NewReliableConsumer returns a consumer named consumer that moves jobs
// from queues (in priority order, the first queue first) into processing
// lists of its own before handling them, so that no job is lost when the
// process dies (see the package documentation). The name must be unique
// among the queues' consumers and stable across restarts (a host or pod
// name): on start, a consumer first hands back the jobs its name left in
// its processing lists. opts may be nil for defaults.
//
// Invalid arguments (a nil client or handler, no queues, empty names,
// negative or inconsistent options) give an error wrapping
// [ErrInvalidOptions]. The consumer never closes rdb.
func NewReliableConsumer(rdb redis.UniversalClient, queues []string, consumer string, h handler.Handler, opts *Options) (*Consumer, error) {
	ecfg, lcfg := opts.configs(rdb, queues, consumer, true, h)
	return newConsumer(ecfg, lcfg, opts.hook())
}

// NewSimpleConsumer returns a consumer that pops jobs from queues (BRPOP,
// in priority order, the first queue first) and handles them. Delivery is
// at most once: a job is out of Redis while its handler runs, so a crash
// loses it (see the package documentation). opts may be nil for defaults;
// HeartbeatTTL is ignored.
//
// Invalid arguments give an error wrapping [ErrInvalidOptions]. The
// consumer never closes rdb.
func NewSimpleConsumer(rdb redis.UniversalClient, queues []string, h handler.Handler, opts *Options) (*Consumer, error) {
	ecfg, lcfg := opts.configs(rdb, queues, "", false, h)
	return newConsumer(ecfg, lcfg, opts.hook())
}

// newConsumer checks the configurations (the list source's arguments and
// options, the engine's, then the Redis Cluster slots) and builds the
// consumer, asking hk (if any) for its hook.Consumer.
func newConsumer(ecfg engine.Config, lcfg listsrc.Config, hk hook.Hook) (*Consumer, error) {
	lcfg, err := lcfg.Normalize()
	if err != nil {
		return nil, err
	}
	if ecfg, err = ecfg.Normalize(); err != nil {
		return nil, err
	}
	if err := lcfg.CheckSlots(); err != nil {
		return nil, err
	}
	if hk != nil {
		dead := lcfg.DeadLetterLists()
		ecfg.Hook = hk.Consumer(hook.Target{Kind: hook.List, Name: lcfg.Queues[0], Consumer: lcfg.Consumer,
			DeadLetter: dead[0], Client: lcfg.Client, Queues: slices.Clone(lcfg.Queues), DeadLetters: dead})
		lcfg.Hook = ecfg.Hook
	}
	src := listsrc.New(lcfg)
	ecfg.Logger = src.Logger()
	ecfg.Name = healthName(lcfg.Queues, lcfg.Consumer)
	ecfg.FetchWait = lcfg.PollInterval
	return &Consumer{eng: engine.New(src, ecfg), src: src}, nil
}

// Run consumes until ctx is cancelled, then shuts down gracefully: it stops
// fetching, hands the jobs no handler runs back to the front of their
// queues, waits up to DrainTimeout for in-flight handlers (their contexts
// are not cancelled until then), settles, deregisters and returns nil;
// past DrainTimeout, an error wrapping [ErrDrainTimeout]. Redis outages
// and OOM refusals are ridden out with capped, jittered backoff; Run
// returns early only for errors that waiting cannot fix: a key of the
// wrong type ([ErrNotList], naming the key), a missing permission. A
// second call returns [ErrAlreadyRun]. docs/semantics.md has the details.
func (c *Consumer) Run(ctx context.Context) error { return c.eng.Run(ctx) }

// Health returns the consumer's health now: ready once Run has checked its
// keys and while Redis answers; live unless Run returned an error or a
// fetch has hung (see [health.Status] for each field). Its name is
// "queue/" and the queues joined by commas, then "/" and the consumer name
// for a reliable consumer. GroupMissing is always false. Health is safe for
// concurrent use, before, during and after Run; serve it to Kubernetes
// with [health.Live] and [health.Ready].
func (c *Consumer) Health() health.Status { return c.eng.Health() }

// healthName is a list consumer's health.Status.Name.
func healthName(queues []string, consumer string) string {
	name := "queue/" + strings.Join(queues, ",")
	if consumer != "" {
		name += "/" + consumer
	}
	return name
}

var _ health.Checker = (*Consumer)(nil)

// Stats returns a snapshot of the consumer's counters.
func (c *Consumer) Stats() Stats {
	e, s := c.eng.Stats(), c.src.Stats()
	return Stats{
		Delivered:    e.Delivered,
		Acked:        e.Acked,
		Failed:       e.Failed,
		Retried:      e.Retried,
		Requeued:     s.Requeued,
		DeadLettered: e.DeadLettered,
		Malformed:    s.Malformed,
		Recovered:    s.Recovered,
		LeaseLost:    e.LeaseLost,
		Released:     e.Released,
	}
}
