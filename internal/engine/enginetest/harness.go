package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/stream"
)

// Harness plugs one kind of source into [Run]. The zero value is not
// usable: NewQueue is required, the other fields are optional.
type Harness struct {
	// NewQueue returns a fresh, empty queue for t, named after it (two
	// subtests never share one), and removes it with t.Cleanup. It is
	// called once per scenario, inside Bubble when Bubble is set.
	NewQueue func(t *testing.T) Queue

	// Lacks names what the source cannot do, each with the reason. A
	// scenario (or the part of one) that needs it is skipped with that
	// reason; everything else runs.
	Lacks map[Capability]string

	// Bubble, when set, runs each scenario: the fake runs them under
	// testing/synctest (func(t *testing.T, f func(*testing.T)) {
	// synctest.Test(t, f) }), so that backoffs, keep-alives and drain
	// timeouts cost no real time. Nil runs f(t) directly.
	Bubble func(t *testing.T, f func(t *testing.T))

	// Timeout bounds each wait for an observable condition (a handler
	// call, a dead letter, Run returning). Zero means 10s.
	Timeout time.Duration
}

// Capability is something a source may lack; see [Harness.Lacks].
type Capability string

const (
	// Takeover: a job a consumer holds can be taken by another consumer
	// while its handler runs (stream leases, reliable-list heartbeats),
	// and [Queue.Take] can do it. Without it (a simple list holds jobs
	// only in the consumer's memory: at most once) the lost-lease
	// scenario skips.
	Takeover Capability = "takeover"
	// CountKept: Msg.Deliveries survives a hand-back, so the next
	// consumer sees the count go on (stream entries, reliable-list
	// envelopes). Without it, the hand-back scenario skips only its
	// delivery-count checks.
	CountKept Capability = "count-kept"
)

// Queue is one fresh queue under test, and the consumers built on it. Its
// methods are called from the test's goroutine only; Counts also from
// handlers (so it must be safe for concurrent use). Methods fail t rather
// than return errors.
type Queue interface {
	// Publish appends jobs to the queue in order; each is the job's fields
	// (a stream entry's field values, a list job's payload fields). A
	// handler must see them as Msg.Values.
	Publish(t *testing.T, jobs ...map[string]string)

	// NewConsumer returns a consumer of the queue named name (names are
	// unique within a queue) that runs h with the options o (zero fields
	// mean the consumer's defaults). Run is called at most once, and every
	// consumer's Run has returned before the queue's t.Cleanup runs.
	NewConsumer(t *testing.T, name string, h handler.Handler, o Options) Consumer

	// DeadLetters returns the jobs dead-lettered so far, oldest first.
	DeadLetters(t *testing.T) []DeadLetter

	// Counts returns how many jobs are left in Redis, neither settled
	// nor dead-lettered.
	Counts(t *testing.T) Counts

	// Take takes the job msg (as the handler saw it), held by the
	// consumer named consumer, away from it, as another consumer taking
	// it over would: for a stream, XCLAIM it to another consumer name;
	// for a reliable list, delete the consumer's heartbeat and recover
	// its jobs; for the fake, mark it taken. The job must then stay away
	// from every consumer of this queue until the test ends (a stream
	// harness keeps renewing its claim, or claims with an idle time the
	// consumers' sweeps do not reach): Counts counts it as held. Only
	// called when the harness does not lack [Takeover].
	Take(t *testing.T, consumer string, msg *stream.Message)
}

// Consumer is a consumer under test: group.Consumer, queue.Consumer, or the
// engine itself. Run follows the engine's contract: it returns nil after a
// stop by ctx once its handlers are done, and an error wrapping
// engine.ErrDrainTimeout when they outlived DrainTimeout.
type Consumer interface {
	Run(ctx context.Context) error
}

// Options are the engine-level options a scenario sets; the harness maps
// them onto its consumer's public options. A zero field means the
// consumer's default.
type Options struct {
	Concurrency   int
	Prefetch      int // 0: adaptive
	MaxDeliveries int64
	RetryBackoff  time.Duration
	DrainTimeout  time.Duration
	MaxBytes      int64
	// KeepAlive is how long a job a consumer holds stays its own without
	// a keep-alive, and how long a job must be abandoned before another
	// consumer's sweep takes it: a stream consumer's MinIdle (its lease),
	// a reliable list consumer's heartbeat TTL. Consumers keep their own
	// jobs alive well within it, and sweep about that often.
	KeepAlive time.Duration
	// OnError receives the errors the consumer reports (handler failures
	// among them); nil when a scenario does not look.
	OnError func(error)
	// Hook is the consumer's hook (its public Options.Hook; for the
	// engine, what Hook.Consumer returns is Config.Hook). The suite always
	// sets it, and checks with it, in every scenario, that each handler
	// call is one Start and exactly one End, with the context Start
	// returned reaching the handler; a harness that drops it fails.
	Hook hook.Hook
}

// DeadLetter is one dead-lettered job, as read back from the dead-letter
// stream or list.
type DeadLetter struct {
	Values     map[string]string // the job's fields
	Reason     string            // why: the handler's error text, say
	Deliveries int64             // deliveries made, the last included (0: unknown)
}

// Counts are the jobs left in Redis: neither settled nor dead-lettered.
type Counts struct {
	// Waiting jobs can be fetched by a consumer now (not delivered yet, or
	// handed back).
	Waiting int
	// Held jobs are delivered to a consumer and not settled: pending
	// stream entries, jobs in processing lists, jobs taken by [Queue.Take].
	// -1: the source cannot tell (a simple list holds jobs in memory).
	// A stream harness may count handed-back entries here or in Waiting.
	Held int
}

// Left is every job not settled nor dead-lettered, counting Held as 0 when
// it is unknown.
func (c Counts) Left() int { return c.Waiting + max(c.Held, 0) }
