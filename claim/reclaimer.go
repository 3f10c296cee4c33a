package claim

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/engine"
)

// Reclaimer takes over entries that other consumers of a group left
// unacknowledged for longer than MinIdle (because they died or stalled) and
// handles them with a [handler.Handler], under the same failure policy as a
// [group.Consumer]: acknowledgement on success, retry with backoff, dead
// letters after MaxDeliveries or on a permanent error, leases while a handler
// runs.
//
// Every group.Consumer runs a reclaimer of its own unless
// group.Options.DisableReclaim is set; a standalone Reclaimer is for
// deployments that want reclaiming done by dedicated processes.
//
// A Reclaimer is single-use and safe for concurrent use. The zero value is
// not usable.
type Reclaimer struct {
	eng *engine.Engine
}

// NewReclaimer returns a reclaimer that claims entries into the consumer
// named consumer of group on stream. It reads MinIdle, ReclaimInterval,
// ReclaimCount and the failure-policy, lease, shutdown and logging fields of
// opts (nil for defaults); fields about reading new entries do not apply.
// Invalid arguments give an error wrapping [group.ErrInvalidOptions]. The
// reclaimer never closes rdb.
func NewReclaimer(rdb redis.UniversalClient, stream, grp, consumer string, h handler.Handler, opts *group.Options) (*Reclaimer, error) {
	var knobs engine.Knobs
	if opts != nil {
		knobs = engine.Knobs(*opts)
	}
	cfg, err := engine.Config{
		Client: rdb, Stream: stream, Group: grp, Consumer: consumer, Handler: h, Knobs: knobs,
	}.Normalize()
	if err != nil {
		return nil, err
	}
	return &Reclaimer{eng: engine.New(cfg)}, nil
}

// Run reclaims until ctx is cancelled: an XAUTOCLAIM cursor pass over the
// group's pending entries every ReclaimInterval (with jitter), each call
// taking at most as many entries as there are free handler slots. Entries
// that XAUTOCLAIM reports deleted from the stream are counted and dropped,
// never handed to the handler. Shutdown is as for [group.Consumer.Run]:
// drain up to DrainTimeout, flush acknowledgements, return nil (or an error
// wrapping [group.ErrDrainTimeout]). It checks Redis's maxmemory-policy at
// the start, as [group.Consumer.Run] does, and creates the group if it does
// not exist. A second call returns [group.ErrAlreadyRun].
func (r *Reclaimer) Run(ctx context.Context) error {
	return r.eng.Run(ctx, engine.Mode{Reclaim: true})
}

// Stats returns a snapshot of the reclaimer's counters.
func (r *Reclaimer) Stats() group.Stats {
	return group.Stats(r.eng.Stats())
}
