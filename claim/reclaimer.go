package claim

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/health"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/streamsrc"
)

// Reclaimer takes over entries that other consumers of a group left
// unacknowledged for longer than MinIdle (because they died or stalled) and
// handles them with a [handler.Handler], under the same failure policy as a
// group.Consumer (they run on the same engine): acknowledgement on success,
// retry with backoff, dead letters after MaxDeliveries or on a permanent
// error, leases while a handler runs.
//
// Every group.Consumer runs a reclaimer of its own unless
// group.Options.DisableReclaim is set; a standalone Reclaimer is for
// deployments that want reclaiming done by dedicated processes.
//
// A Reclaimer is single-use and safe for concurrent use. The zero value is
// not usable.
type Reclaimer struct {
	eng *engine.Engine
	src *streamsrc.Source
}

// Options configures a [Reclaimer]. A nil *Options means all defaults; the
// zero value of every field means its default. The fields mean what the
// fields of the same name mean on group.Options, which documents each.
type Options struct {
	// MinIdle is how long an entry must stay unacknowledged and untouched
	// before the reclaimer takes it over; passes over the group's pending
	// entries run every MinIdle/2 (with jitter), the first at once. Zero
	// means 30s. Minimum 10ms.
	MinIdle time.Duration
	// Concurrency is the number of entries handled at once. Zero means
	// 10. Each XAUTOCLAIM takes at most as many entries as there are free
	// handler slots (and 512), so slow handlers keep claims small.
	Concurrency int
	// MaxBytes bounds the bytes of entry fields held in memory. Zero
	// means 64 MiB.
	MaxBytes int64
	// GroupStart is where the group starts if the reclaimer creates it
	// ("0", "$" or an entry ID). Zero ("") means "0".
	GroupStart string
	// MaxDeliveries is how many deliveries an entry gets before it is
	// dead-lettered. Zero means 5.
	MaxDeliveries int64
	// DeadLetterStream receives the dead letters. Zero means
	// stream.DeadLetterKey(stream).
	DeadLetterStream string
	// RetryBackoff and MaxRetryBackoff: the delay before the first retry
	// of a failed entry (zero means 5s), doubling up to MaxRetryBackoff
	// (zero means the larger of 10 minutes and RetryBackoff).
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// DrainTimeout is how long Run waits for in-flight handlers after its
	// context is cancelled. Zero means 30s.
	DrainTimeout time.Duration
	// Logger receives the reclaimer's logs; nil means none (but for the
	// maxmemory-policy warning, which then goes to slog.Default()).
	Logger *slog.Logger
	// OnError, when not nil, is called with every error the reclaimer
	// handles by itself. It must not block.
	OnError func(error)
	// Hook is told about each handler call and the reclaimer's events
	// (entries reclaimed, handed back, leases lost, the group created,
	// errors): see package hook. NewReclaimer asks it once for the
	// reclaimer's hook.Consumer. Nil means none.
	Hook hook.Hook
}

// NewReclaimer returns a reclaimer that claims entries into the consumer
// named consumer of group on stream. opts may be nil for defaults. Invalid
// arguments give an error wrapping group.ErrInvalidOptions. The reclaimer
// never closes rdb.
func NewReclaimer(rdb redis.UniversalClient, stream, grp, consumer string, h handler.Handler, opts *Options) (*Reclaimer, error) {
	if opts == nil {
		opts = &Options{}
	}
	scfg, err := streamsrc.Config{
		Client: rdb, Stream: stream, Group: grp, Consumer: consumer,
		GroupStart: opts.GroupStart, DeadLetterStream: opts.DeadLetterStream, MinIdle: opts.MinIdle,
		Reclaim: true, Logger: opts.Logger, OnError: opts.OnError,
	}.Normalize()
	if err != nil {
		return nil, err
	}
	ecfg, err := engine.Config{
		Handler: h, Concurrency: opts.Concurrency, MaxBytes: opts.MaxBytes, MaxDeliveries: opts.MaxDeliveries,
		RetryBackoff: opts.RetryBackoff, MaxRetryBackoff: opts.MaxRetryBackoff, DrainTimeout: opts.DrainTimeout,
		OnError: opts.OnError, Prefix: "claim", Noun: "entry",
	}.Normalize()
	if err != nil {
		return nil, err
	}
	if opts.Hook != nil {
		ecfg.Hook = opts.Hook.Consumer(hook.Target{Kind: hook.Stream, Name: stream, Group: grp,
			Consumer: consumer, DeadLetter: scfg.DeadLetterStream, Client: rdb})
		scfg.Hook = ecfg.Hook
	}
	src := streamsrc.New(scfg)
	ecfg.Logger = src.Logger()
	ecfg.Name = "claim/" + stream + "/" + grp + "/" + consumer
	return &Reclaimer{eng: engine.New(src, ecfg), src: src}, nil
}

// Run reclaims until ctx is cancelled: an XAUTOCLAIM cursor pass over the
// group's pending entries every MinIdle/2 (with jitter), each call taking
// at most as many entries as there are free handler slots. Entries that
// XAUTOCLAIM reports deleted from the stream are counted and dropped,
// never handed to the handler. Shutdown is as for group.Consumer.Run:
// hand back what no handler runs, drain up to DrainTimeout, flush
// acknowledgements, return nil (or an error wrapping
// group.ErrDrainTimeout). It checks Redis's maxmemory-policy at the start,
// as group.Consumer.Run does, and creates the group if it does not exist.
// A second call returns an error wrapping group.ErrAlreadyRun.
func (r *Reclaimer) Run(ctx context.Context) error {
	return r.eng.Run(ctx)
}

// Stats is a snapshot of a reclaimer's counters since Run started.
type Stats struct {
	Reclaimed     uint64 // entries taken over with XAUTOCLAIM
	Acked         uint64 // entries acknowledged after their handler returned nil
	Failed        uint64 // handler calls that returned an error, panicked or called runtime.Goexit
	Retried       uint64 // failures scheduled for another delivery
	DeadLettered  uint64 // entries moved to the dead-letter stream
	DeletedInPEL  uint64 // pending entries found deleted from the stream and dropped
	LeaseRenewals uint64 // lease renewals of entries held by slow handlers or retries
	LeaseLost     uint64 // held entries another consumer took over
	Released      uint64 // entries given back to the group at shutdown
}

// Health returns the reclaimer's health now: ready once Run has created or
// found the group and while Redis answers; live unless Run returned an
// error or a sweep has hung (see [health.Status] for each field). Its
// name is "claim/stream/group/consumer". A reclaimer talks to Redis once
// per sweep (every MinIdle/2) when it has nothing to handle, so it may
// take that long to notice that Redis went away, or came back. Health is
// safe for concurrent use, before, during and after Run; serve it to
// Kubernetes with [health.Live] and [health.Ready].
func (r *Reclaimer) Health() health.Status { return r.eng.Health() }

var _ health.Checker = (*Reclaimer)(nil)

// Stats returns a snapshot of the reclaimer's counters.
func (r *Reclaimer) Stats() Stats {
	e, s := r.eng.Stats(), r.src.Stats()
	return Stats{
		Reclaimed: e.Swept, Acked: e.Acked, Failed: e.Failed, Retried: e.Retried, DeadLettered: e.DeadLettered,
		DeletedInPEL: s.DeletedInPEL, LeaseRenewals: e.Kept, LeaseLost: e.LeaseLost, Released: e.Released,
	}
}
