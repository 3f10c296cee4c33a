package health

import "time"

// Status is a consumer's health at one moment: a plain value, computed when
// [Checker.Health] is called, that the caller owns. The zero Status is
// neither ready nor live and names nothing: a Checker always fills it in.
//
// Ready and Live are the two verdicts; the other fields are the facts they
// are drawn from, for a program or an operator that wants to know more than
// yes or no.
type Status struct {
	// Name identifies the consumer in probe bodies and logs, by kind and
	// keys: "group/orders/workers/pod-1" (stream, group, consumer name),
	// "claim/orders/workers/pod-1" for a standalone reclaimer,
	// "queue/jobs/pod-1" for a reliable list consumer (queues joined by
	// commas), "queue/jobs" for a simple one.
	Name string

	// Ready reports that the consumer is doing its work: Run is running
	// and has prepared Redis (Started is set), the consumer group exists
	// (not GroupMissing), the last call to Redis succeeded
	// (UnreachableSince is zero), it is neither Draining nor Stopped, and
	// it is Live. Reason says why not.
	Ready bool

	// Live reports that the consumer is not broken in a way that only a
	// restart of its process repairs. It is false in two cases only: Run
	// returned an error (Stopped, with Err set), or one of Run's loops is
	// Wedged. A Redis outage, a missing group, a drain or a stop its
	// caller asked for (Run returned nil) leave it true: restarting does
	// not bring Redis back, and a liveness probe that failed with Redis
	// would restart every consumer of the deployment at once, and again
	// and again until Redis returns. Before Run is called, Live is true.
	Live bool

	// Reason says in one line why the consumer is not ready (which
	// includes why it is not live, if it is not); several reasons are
	// joined by "; ". Empty when Ready.
	Reason string

	// Started is when Run finished preparing Redis (creating the
	// consumer group, checking key types, taking the consumer name) and
	// began consuming. Zero before that: Run not called yet, or still
	// waiting for Redis at start.
	Started time.Time

	// LastFetch is when a fetch (XREADGROUP; a list consumer's move or
	// BRPOP) or a sweep (XAUTOCLAIM; the recovery of a dead list
	// consumer's jobs) last came back from Redis without an error, with
	// work or after waiting for it in vain. Zero: none yet. A consumer
	// whose handlers hold all its slots fetches nothing until one frees,
	// so an old LastFetch alone is no sign of trouble; a standalone
	// reclaimer only sweeps, once per sweep interval.
	LastFetch time.Time

	// UnreachableSince is when the current run of errors that the
	// consumer waits out began: Redis unreachable or timing out,
	// restarting, loading its data, failing over, or out of memory. It
	// is set by the first such error of the consumer's calls to Redis
	// (start, fetch, sweep, retry, acknowledgement, keep-alive) and
	// cleared by the next start, fetch, sweep, group repair,
	// acknowledgement or keep-alive that succeeds. Zero when Redis
	// answered.
	UnreachableSince time.Time

	// GroupMissing reports that the consumer group (or its stream)
	// vanished (deleted, or Redis lost its data) and the consumer has not
	// yet created it again. A consumer repairs it at once on its next
	// read, so it is usually seen only when the repair fails (Redis out
	// of memory refuses XGROUP CREATE). Always false for list consumers.
	GroupMissing bool

	// Draining reports that Run is shutting down: its context was
	// cancelled (or an error stopped it), it fetches nothing more, and it
	// is handing back unstarted work and waiting for running handlers.
	Draining bool

	// Stopped reports that Run returned. Err holds its error, if any.
	Stopped bool

	// Wedged reports that a call of one of Run's loops to Redis (a fetch
	// or a sweep) has been in flight far longer than it can take on a
	// working connection: longer than the time it blocks waiting for work
	// (Block, PollInterval) plus [WedgedAfter]. go-redis's own timeouts
	// end such a call long before, unless they are turned off (a
	// ReadTimeout of -1) and the connection hangs; only a restart of the
	// process is then sure to help.
	Wedged bool

	// Err is the error behind the state: Run's error once it returned
	// one; otherwise, while UnreachableSince is set or GroupMissing, the
	// latest error the consumer waited out; nil otherwise.
	Err error
}

// WedgedAfter is how much longer than its blocking wait (Block for a stream
// consumer, PollInterval for a list consumer, none for a sweep) one call of
// a consumer's loop to Redis may stay in flight before the consumer reports
// itself Wedged, and so not Live. With go-redis's default timeouts (5s to
// dial, 3s to read, three retries) a call to an unreachable Redis fails
// within about half a minute; two minutes leaves room for clients
// configured with longer timeouts and retries, while still restarting a
// consumer whose connection hangs with no timeout at all within minutes.
const WedgedAfter = 2 * time.Minute

// Checker is anything that reports its health: group.Consumer,
// claim.Reclaimer and queue.Consumer implement it, and [Func] adapts a
// function. Health must be safe for concurrent use and fast: the probe
// handlers call it on every request.
type Checker interface {
	Health() Status
}

// Func adapts a function to a [Checker], for checks of a program's own.
type Func func() Status

// Health calls f.
func (f Func) Health() Status { return f() }
