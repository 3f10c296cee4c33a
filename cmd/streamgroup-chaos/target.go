package main

import (
	"context"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redisproc"
)

// A target is what the scenario exercises: a kind of consumer, its keys in
// Redis and how to read them. The scenario's skeleton (publish, drain,
// check; the worker processes) is written once over targets; each target
// supplies what differs. streamsTarget and listsTarget implement it.
//
// The targets of a worker process have no env: there only name, ledger
// and consumer may be called.
type target interface {
	// name is the target's name: targetStreams or targetLists.
	name() string
	// ledger is the hash in which the workers count each handling.
	ledger() string
	// plan is what the scenario's log line says of the target's own plan
	// drawn from the seed (key, value pairs); nil for nothing.
	plan() []any

	// publisher opens what publishes the jobs to the target, straight to
	// Redis.
	publisher() (*publisher, error)
	// left reads what the target has in flight.
	left(ctx context.Context) (leftover, error)
	// deadLetters reads every dead letter of the target.
	deadLetters(ctx context.Context) ([]deadLetter, error)
	// disrupt is the target's part of the group-destroy fault.
	disrupt(ctx context.Context, log *slog.Logger) error
	// finish runs once the workers have stopped, before the check, to
	// finish what they left; its error means something is left.
	finish(ctx context.Context) error
	// vetDeadLetter checks the dead letter d of poison job i beyond the
	// checker's own rules; it returns the problem, or "".
	vetDeadLetter(i int, d deadLetter) string
	// describe says where the lost job i (published with ID id) is, for
	// the checker's report.
	describe(ctx context.Context, i int, id string) string
	// checkLeft checks, at the end, that nothing is left in flight, and
	// adds the target's own figures to res.
	checkLeft(ctx context.Context, res *result) error

	// consumer builds the target's consumer of a worker process, on rdb
	// (through the fault proxy), handling with h, reporting asynchronous
	// errors to onError and logging to lib (nil: no library logs).
	consumer(rdb *redis.Client, w workerArgs, h handler.Handler, onError func(error), lib *slog.Logger) (workerConsumer, error)
}

// newTargets returns the targets that sel (-target) selects, in the order
// of the result lines. e is nil in a worker process.
func newTargets(sel string, e *env) []target {
	var ts []target
	if hasStreams(sel) {
		ts = append(ts, newStreamsTarget(e))
	}
	if hasLists(sel) {
		ts = append(ts, newListsTarget(e))
	}
	return ts
}

// env is what the parent's targets share of a run: its parameters, its
// jobs, the server and a client straight to it.
type env struct {
	cfg   config
	log   *slog.Logger
	srv   *redisproc.Server
	admin *redis.Client // straight to Redis, not through the proxy
	jobs  []job
}

// leftover is what a target has in flight. Its dynamic type must be
// comparable.
type leftover interface {
	// idle reports that nothing is in flight: no handler runs and no retry
	// waits, so a job that is missing now stays missing.
	idle() bool
	// attrs are the key, value pairs of the drain's log lines.
	attrs() []any
	// String is the text of a drain error.
	String() string
}

// deadLetter is one dead letter as a target reads it.
type deadLetter struct {
	where  string // where it is: "the dead-letter stream", "dead-letter list <key>"
	key    string // the job key; "" when bad
	id     string // the job's ID, for targets whose retried publishes get a new one (one ID dead-lettered twice is a duplicate); "" otherwise
	from   string // the queue the record says it came from; "" when the target's records do not say
	reason string // the error the record carries, with from
	bad    string // why the record is unreadable or malformed; "" when it is fine
	raw    string // the record, when bad
}

// publisher is how the shared publish loop sends jobs to a target.
type publisher struct {
	stream uint64 // producer k draws its batch sizes from PCG(seed, stream+k)
	verb   string // for logs: "add", "push"
	// split splits a batch into the parts sent one after the other (one
	// per queue); nil sends the batch whole.
	split func(batch []int) [][]int
	// send sends the jobs at indices batch (all of one part; with the
	// call for one job when single) and returns an ID per job, "" for
	// one that failed.
	send  func(ctx context.Context, batch []int, single bool) ([]string, error)
	close func() error
}

// workerConsumer is a target's consumer in a worker process.
type workerConsumer struct {
	run   func(context.Context) error
	stats func() []any // its counters, logged when it stopped
	// report, when not nil, runs alongside the consumers until they have
	// all stopped.
	report func(context.Context)
}
