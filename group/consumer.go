package group

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/health"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/streamsrc"
)

// Consumer is one named member of a consumer group, handling the group's
// entries with a [handler.Handler] on a bounded pool of goroutines.
//
// A Consumer is single-use: create it with [NewConsumer], call [Consumer.Run]
// once. Its methods are safe for concurrent use. The zero value is not usable.
type Consumer struct {
	eng *engine.Engine
	src *streamsrc.Source
}

// NewConsumer returns a consumer named consumer in group on stream, handling
// entries with h. The name must be stable across restarts (a host or pod
// name): on start, a consumer first finishes the entries its name still owns.
// opts may be nil for defaults.
//
// Invalid arguments (a nil client or handler, empty names, negative or
// inconsistent options) give an error wrapping [ErrInvalidOptions]. The
// consumer never closes rdb.
func NewConsumer(rdb redis.UniversalClient, stream, group, consumer string, h handler.Handler, opts *Options) (*Consumer, error) {
	ecfg, scfg := opts.configs(rdb, stream, group, consumer, h)
	scfg, err := scfg.Normalize()
	if err != nil {
		return nil, err
	}
	ecfg, err = ecfg.Normalize()
	if err != nil {
		return nil, err
	}
	if ecfg.Concurrency == 1 {
		scfg.Readers = 1 // one reader keeps stream order
	}
	if opts != nil && opts.Hook != nil {
		ecfg.Hook = opts.Hook.Consumer(hook.Target{Kind: hook.Stream, Name: stream, Group: group,
			Consumer: consumer, DeadLetter: scfg.DeadLetterStream, Client: rdb})
		scfg.Hook = ecfg.Hook
	}
	src := streamsrc.New(scfg)
	ecfg.Logger = src.Logger()
	ecfg.Name = "group/" + stream + "/" + group + "/" + consumer
	ecfg.FetchWait = scfg.Block
	return &Consumer{eng: engine.New(src, ecfg), src: src}, nil
}

// Run consumes until ctx is cancelled, then shuts down gracefully. It:
//
//   - checks Redis's maxmemory-policy: a policy other than noeviction is
//     logged at Warn (Redis may evict the stream and its pending entries),
//     once per client (see docs/reliability.md);
//   - creates the group if needed (XGROUP CREATE ... MKSTREAM from
//     Options.GroupStart), and again whenever it vanishes (NOGROUP);
//   - first delivers the entries this consumer name still has pending from
//     an earlier run, then new ones, reading as many as there are free
//     handler slots per XREADGROUP;
//   - acknowledges handled entries in batches, retries failed ones with
//     backoff, dead-letters those that fail permanently or too often;
//   - reclaims entries that other consumers left idle past MinIdle
//     (unless Options.DisableReclaim), and renews the leases of its own
//     slow entries so that nobody reclaims them from a live consumer; a
//     handler whose entry another consumer took over anyway (this one
//     stalled past MinIdle) has its context cancelled with cause
//     handler.ErrLeaseLost, and its result is not acknowledged;
//   - rides out Redis outages with capped, jittered backoff.
//
// When ctx is cancelled Run stops reading, gives back to the group at once
// the entries no handler runs (fetched ahead, or waiting for a retry) so
// that other consumers take them without waiting for MinIdle, waits up to
// DrainTimeout for in-flight handlers (their contexts are not cancelled
// until then), gives back what they failed meanwhile, flushes
// acknowledgements and returns nil. Past DrainTimeout it returns an error
// wrapping [ErrDrainTimeout]; unfinished entries stay pending and are
// delivered again later. Run returns early with an error only for problems
// that waiting cannot fix, such as a key of the wrong type or a missing
// permission. A second call returns [ErrAlreadyRun].
func (c *Consumer) Run(ctx context.Context) error {
	return c.eng.Run(ctx)
}

// Health returns the consumer's health now: ready once Run has created or
// found the group and while Redis answers; live unless Run returned an
// error or a read has hung (see [health.Status] for each field). Its name
// is "group/stream/group/consumer". Health is safe for concurrent use,
// before, during and after Run; serve it to Kubernetes with [health.Live]
// and [health.Ready].
func (c *Consumer) Health() health.Status { return c.eng.Health() }

var _ health.Checker = (*Consumer)(nil)

// Stats returns a snapshot of the consumer's counters.
func (c *Consumer) Stats() Stats {
	return statsFrom(c.eng.Stats(), c.src.Stats())
}
