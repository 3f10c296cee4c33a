package engine

import (
	"context"
	"time"

	"github.com/streamgroup/streamgroup/stream"
)

// The engine decides what happens to a job; a Source knows how Redis holds
// it. The engine calls no Redis command: everything it does to Redis goes
// through a Source (a stream consumer group, a reliable list queue, a
// simple list queue, or an in-memory fake in tests).

// Delivery is one job a source handed the engine: a stream entry or a list
// job. The source allocates it (Fetch, Sweep); the engine owns it from then
// on and hands the same pointer back in every later call about it.
type Delivery struct {
	// Msg is what the handler sees. Msg.Deliveries counts this delivery (0:
	// unknown).
	Msg stream.Message
	// Key names the job among those this consumer holds: the entry ID, or
	// a token the source makes per fetched job. A delivery whose Key the
	// engine holds already (a stream entry read again while its handler
	// runs) is not dispatched again: the engine drops the new one.
	Key string
	// Bad, when not empty, says why the job is malformed: it is
	// dead-lettered at once with this reason, never handed to the handler.
	Bad string
	// Size is about how many bytes of memory the job holds, for the memory
	// bound. Zero: the engine counts Msg.Values (field names and values).
	Size int
	// Ref is the source's own data about the job (a list element and its
	// queue, say). The engine never looks at it.
	Ref any

	// The engine's bookkeeping, under Engine.mu.
	seq    uint64 // dispatch order
	state  state
	due    time.Time               // awaitRetry, awaitDead: when to act
	kept   time.Time               // last time the source kept it (fetch, Keep)
	tries  int                     // awaitDead: failed dead-letter writes
	reason string                  // awaitDead: why
	cancel context.CancelCauseFunc // inHandler: cancels the handler's context
	lost   bool                    // another consumer took it while its handler ran
}

// Action is what the engine does about an error a source returned.
type Action uint8

const (
	// Wait: waiting can fix it (Redis unreachable, restarting, out of
	// memory). The engine logs it, backs off and tries again.
	Wait Action = iota
	// Repair: the source can fix it itself (a consumer group that
	// vanished): the engine calls Repairer.Repair, then tries again.
	Repair
	// Stop: nothing will fix it (a key of another type, a missing
	// permission). The consumer stops with the error Classify returned.
	Stop
)

// Source is the Redis side of a consumer. Its methods are called from the
// engine's goroutines, several at once (a Fetch while a Settle runs), and
// must be safe for that. Every method but Fetch and Start is called with a
// context that outlives the Run context (bounded by SettleTimeout), so that
// finished work is settled during a shutdown.
type Source interface {
	// Start prepares Redis before anything else runs: creates the consumer
	// group, checks key types, registers the consumer, hands back what an
	// earlier run of this consumer name left behind. The engine calls it
	// again after an error that Classify calls Wait.
	Start(ctx context.Context) error

	// Fetchers returns the loops that fetch new work: several run in
	// parallel (two XREADGROUP readers), or none (a reclaimer only sweeps).
	Fetchers() []Fetcher

	// Settle records that the handler finished each delivery: XACK, or
	// the removal from a processing list. It may be called again with the
	// same deliveries after it failed.
	Settle(ctx context.Context, ds []*Delivery) error

	// Redeliver prepares failed deliveries whose retry is due for another
	// handler call, counting one more delivery (Msg.Deliveries), and
	// returns those still owned by this consumer; the engine forgets the
	// others. It may refresh Msg.Values.
	Redeliver(ctx context.Context, ds []*Delivery) ([]*Delivery, error)

	// DeadLetter moves d to the dead-letter stream or list with reason,
	// atomically with settling it. It reports false when d is no longer
	// owned by this consumer (nothing was done).
	DeadLetter(ctx context.Context, d *Delivery, reason string) (bool, error)

	// Release hands deliveries back so that any consumer can take them,
	// each with the delivery count in its Msg.Deliveries. With now set
	// (shutdown, surplus), at once and first in line, the first of ds
	// first (the engine releases a long run in batches, the last batch
	// first); without (too many failures waiting for a retry), behind the
	// work already waiting.
	// It reports how many it handed back (those still owned).
	Release(ctx context.Context, ds []*Delivery, now bool) (int, error)

	// Classify says what to do about an error a method returned; for Stop,
	// it also returns the error to stop with, naming what is wrong.
	Classify(op string, err error) (Action, error)

	// Stop runs last, once Run is done with Redis: deregisters, closes
	// what the source opened.
	Stop(ctx context.Context)
}

// Fetcher fetches new work for one of a source's fetch loops.
type Fetcher interface {
	// Fetch returns up to max deliveries, waiting a bounded time for work
	// when there is none (XREADGROUP BLOCK, BRPOP). When ctx ends it
	// returns promptly, with nothing fetched that would then be lost.
	Fetch(ctx context.Context, max int) ([]*Delivery, error)
	// Close releases the fetcher's connection, after its last Fetch.
	Close()
}

// Gated is a Fetcher that must not fetch before something else happened:
// a stream's second reader waits until the first has read the consumer's
// own pending entries. The engine waits for Ready before the fetcher takes
// any credits, so that a waiting fetcher holds none.
type Gated interface {
	Ready() <-chan struct{}
}

// Keeper is a source whose held work must be kept alive, or another
// consumer takes it over: stream entries (XCLAIM leases), jobs in a
// reliable list consumer's processing list (its heartbeat).
type Keeper interface {
	// KeepInterval is how long a kept delivery stays safe: Keep runs every
	// third of it, with the deliveries not kept for a third of it.
	KeepInterval() time.Duration
	// Keep keeps held (possibly none) and returns those it found taken by
	// another consumer; the engine cancels their handlers (with cause
	// ErrLeaseLost) and does not settle them.
	Keep(ctx context.Context, held []*Delivery) (lost []*Delivery, err error)
}

// Sweeper is a source that finds work abandoned by consumers that died:
// XAUTOCLAIM of idle entries, recovery of expired processing lists.
type Sweeper interface {
	// SweepInterval is the pause between sweeps (jittered by the engine);
	// zero turns sweeping off. The first sweep runs at start.
	SweepInterval() time.Duration
	// Sweep returns up to max deliveries taken over, and whether the sweep
	// has more to look at (the engine then calls it again at once, when
	// credits allow).
	Sweep(ctx context.Context, max int) (ds []*Delivery, more bool, err error)
}

// Repairer is a source that can repair what Classify calls Repair.
type Repairer interface {
	Repair(ctx context.Context, cause error) error
}

// Paced is a source that takes over work other consumers handed back (a
// stream's announced releases), and sizes what it takes by what this
// consumer's workers will start soon, not by its credits: the engine hands
// it its Pace at construction.
type Paced interface {
	SetPace(Pace)
}

// Pace is what the engine tells a Paced source.
type Pace interface {
	// Room returns how many more jobs the workers would start within
	// about one fetch's round trip, with the handler time taken to be at
	// least h (the one measured by the consumer that handed the work
	// back; 0 for this consumer's own estimate, which h also updates).
	Room(h time.Duration) int
	// HandlerTime is the handler time this consumer measured (0: none
	// yet), announced with what it hands back.
	HandlerTime() time.Duration
}

// Housekeeper is a source with a loop of its own (a consumer name's
// liveness key) that runs from after Start until the drain is over.
type Housekeeper interface {
	Housekeep(ctx context.Context, fail func(error))
}
