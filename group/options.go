package group

import (
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/streamsrc"
)

// Errors a caller can act on. Each is matched with errors.Is, and the
// ones every consumer kind returns are the same values as queue's:
// errors.Is(err, group.ErrDrainTimeout) matches a queue consumer's drain
// timeout too.
var (
	// ErrInvalidOptions is wrapped by every error about a bad argument or
	// option given to NewConsumer (and claim.NewReclaimer).
	ErrInvalidOptions = engine.ErrInvalidOptions
	// ErrDrainTimeout is wrapped by the error Run returns when in-flight
	// handlers did not finish within DrainTimeout. Their entries stay pending
	// and are delivered again (to this consumer name on its next start, or to
	// another consumer's reclaimer): nothing is lost. It is also the cause
	// (context.Cause) of the handler contexts cancelled at the deadline.
	ErrDrainTimeout = engine.ErrDrainTimeout
	// ErrAlreadyRun is returned by a second call of Run: consumers are
	// single-use.
	ErrAlreadyRun = engine.ErrAlreadyRun
	// ErrConsumerNameInUse is wrapped by the error Run returns when
	// another running consumer (or claim.Reclaimer) of the group uses the
	// same consumer name: two would handle that name's pending entries
	// twice, at the same time. Each consumer holds a liveness key for its
	// name while it runs (see docs/wire-format.md); a consumer starting
	// after a crash of its predecessor waits at most 5 seconds for the
	// crashed one's key to expire.
	ErrConsumerNameInUse = streamsrc.ErrConsumerNameInUse
)

// Options configures a [Consumer] (and a claim.Reclaimer). A nil *Options
// means all defaults; the zero value of every field means its default, as
// documented on the field. NewConsumer copies the options; changing them
// afterwards has no effect. Negative values are invalid.
type Options struct {
	// Concurrency is the number of entries handled at once (the number of
	// handler goroutines). Zero means 10. At most 65536.
	Concurrency int

	// Prefetch is how many entries may wait in memory for a free handler,
	// fetched ahead so that handlers never wait for a round trip. A read is
	// made once at least half of Prefetch fits, asking for as many entries
	// as fit (XREADGROUP COUNT), so memory is bounded by
	// Concurrency+Prefetch entries whatever the backlog. Fetched entries
	// that no handler started when Run stops are given back to the group
	// (see docs/semantics.md). At most 65536.
	//
	// Zero means adaptive: the consumer measures how long a read takes and
	// how long the handler takes, and keeps enough entries fetched to cover
	// one read at that pace: 2 × Concurrency × read time / handler time,
	// between Concurrency and max(Concurrency, 1024). Fast handlers then get
	// large batched reads; slow ones keep Prefetch at Concurrency, so that
	// one consumer does not hoard a burst of slow jobs while its peers
	// idle. MaxBytes bounds memory by size as well.
	Prefetch int

	// MaxBytes bounds the bytes of entry fields (names and values) the
	// consumer holds in memory: in handlers, fetched ahead, and waiting for
	// a retry. Reads are sized to fit from the average entry size seen, and
	// wait while the bound is reached. Zero means 64 MiB, which a pod can
	// live with; large entries (hundreds of KiB) then make reads small,
	// rather than making the consumer hold a gigabyte.
	MaxBytes int64

	// GroupStart is where a group created by the consumer starts: "0" (all
	// entries in the stream), "$" (only entries added from now on) or an
	// entry ID. It applies when the group does not exist yet, at start and
	// when the group vanishes while running. Zero ("") means "0", so jobs
	// published before the first consumer started are not skipped.
	GroupStart string

	// Block is how long one XREADGROUP waits for new entries. Stopping
	// does not wait for it: cancelling Run's context wakes a blocked read
	// (except on a client read on directly; see Connections in the package
	// documentation). Zero means 2s. (Unlike go-redis, zero never means
	// "block forever".)
	Block time.Duration

	// MaxDeliveries is how many deliveries, as counted by Redis, an entry
	// gets before it is moved to the dead-letter stream: a handler error on
	// the MaxDeliveries-th delivery dead-letters it, and so does any delivery
	// beyond it (a handler that crashed the process every time). Zero means 5.
	MaxDeliveries int64

	// DeadLetterStream is the stream that receives entries that failed
	// permanently or too often, with their original fields and metadata
	// (see stream.ParseDeadLetter). Zero means stream.DeadLetterKey(stream):
	// "{jobs:email}:dead" for "jobs:email", "{jobs}:email:dead" for a name
	// with a hash tag such as "{jobs}:email", in the stream's Redis Cluster
	// slot either way. On Redis Cluster a stream set here must hash to the
	// stream's slot (give both the same hash tag); NewConsumer and
	// claim.NewReclaimer refuse it otherwise, as every dead-lettering would
	// fail with CROSSSLOT. On a standalone Redis any name works.
	DeadLetterStream string

	// MinIdle is how long an entry must stay unacknowledged and untouched
	// before another consumer's reclaimer may take it over. Leases keep the
	// entries of a live consumer younger than this: each held entry is
	// renewed (XCLAIM JUSTID, which does not count a delivery) every
	// MinIdle/3, and the reclaimer scans for idle entries every MinIdle/2.
	// Zero means 30s. Minimum 10ms.
	MinIdle time.Duration

	// DisableReclaim turns off the reclaimer inside Consumer.Run, for
	// deployments that run a claim.Reclaimer separately. The zero value
	// (false) runs it.
	DisableReclaim bool

	// RetryBackoff is the delay before the first retry of a failed entry; the
	// n-th retry waits RetryBackoff*2^(n-1), capped by MaxRetryBackoff, with
	// jitter (a delay between half and all of it). The consumer keeps the
	// entry's lease meanwhile. Zero means 5s.
	RetryBackoff time.Duration

	// MaxRetryBackoff caps the retry delay. Zero means the larger of 10
	// minutes and RetryBackoff.
	MaxRetryBackoff time.Duration

	// DrainTimeout is how long Run waits, after its context is cancelled, for
	// in-flight handlers to finish. Past it, handler contexts are cancelled
	// (cause ErrDrainTimeout) and Run returns an error wrapping
	// ErrDrainTimeout. Zero means 30s.
	DrainTimeout time.Duration

	// Logger receives the consumer's logs, with the attributes stream,
	// group, consumer and (per entry) id. Nil means no logging, but for the
	// warning that Redis's maxmemory-policy can evict entries (see
	// docs/reliability.md), which then goes to slog.Default(). Entry
	// contents are never logged.
	Logger *slog.Logger

	// OnError, when not nil, is called with every error the consumer handles
	// by itself: handler failures (wrapping the handler's error), Redis
	// outages it retries, a group it recreates, dead-lettering that failed.
	// It is called from the consumer's goroutines and must not block.
	OnError func(error)

	// Hook is told about each handler call (Start before it, End with
	// the outcome: acknowledged, retried, dead-lettered or abandoned) and
	// about the consumer's events (entries read, reclaimed, handed back,
	// leases lost, the group created, every error OnError gets): see
	// package hook. NewConsumer asks it once for the consumer's
	// hook.Consumer. Nil means none, at the cost of a nil check per event.
	Hook hook.Hook
}

// Stats is a snapshot of a consumer's counters since Run started: a plain
// value, copied out by Stats(). The zero value is all counters at zero.
type Stats struct {
	Delivered     uint64 // entries handed to the handler (or dead-lettered unhandled)
	Acked         uint64 // entries acknowledged with XACK
	Failed        uint64 // handler calls that returned an error or panicked
	Retried       uint64 // failures scheduled for another delivery
	DeadLettered  uint64 // entries moved to the dead-letter stream
	Reclaimed     uint64 // entries taken over with XAUTOCLAIM
	DeletedInPEL  uint64 // pending entries found deleted from the stream and dropped
	LeaseRenewals uint64 // lease renewals of entries held by slow handlers or retries
	LeaseLost     uint64 // held entries another consumer took over (their handlers' contexts were cancelled)
	GroupsCreated uint64 // times the consumer created the group (at start or after NOGROUP)
	Released      uint64 // entries no handler ran when Run stopped (fetched, or waiting for a retry), given back to the group
}

func statsFrom(e engine.Stats, s streamsrc.Stats) Stats {
	return Stats{
		Delivered:     e.Delivered,
		Acked:         e.Acked,
		Failed:        e.Failed,
		Retried:       e.Retried,
		DeadLettered:  e.DeadLettered,
		Reclaimed:     e.Swept,
		DeletedInPEL:  s.DeletedInPEL,
		LeaseRenewals: e.Kept,
		LeaseLost:     e.LeaseLost,
		GroupsCreated: s.GroupsCreated,
		Released:      e.Released,
	}
}

// configs maps the options onto the engine's and the stream source's
// configurations.
func (o *Options) configs(rdb redis.UniversalClient, stream, group, consumer string, h handler.Handler) (engine.Config, streamsrc.Config) {
	if o == nil {
		o = &Options{}
	}
	return engine.Config{
			Handler:         h,
			Concurrency:     o.Concurrency,
			Prefetch:        o.Prefetch,
			MaxBytes:        o.MaxBytes,
			MaxDeliveries:   o.MaxDeliveries,
			RetryBackoff:    o.RetryBackoff,
			MaxRetryBackoff: o.MaxRetryBackoff,
			DrainTimeout:    o.DrainTimeout,
			OnError:         o.OnError,
			Prefix:          "group",
			Noun:            "entry",
		}, streamsrc.Config{
			Client:           rdb,
			Stream:           stream,
			Group:            group,
			Consumer:         consumer,
			GroupStart:       o.GroupStart,
			Block:            o.Block,
			DeadLetterStream: o.DeadLetterStream,
			MinIdle:          o.MinIdle,
			Read:             true,
			Reclaim:          !o.DisableReclaim,
			Logger:           o.Logger,
			OnError:          o.OnError,
		}
}
