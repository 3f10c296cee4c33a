// Package hook lets telemetry see what producers and consumers do: each
// publish, each delivery and its outcome, and the rarer events around
// them (reclaims, lost leases, a group created again, errors). It has no
// dependency beyond the core module's own: the OpenTelemetry adapter
// (module github.com/streamgroup/streamgroup/extra/sgotel) implements it,
// and so can a Prometheus adapter, a test recorder or a service's own code.
//
// A [Hook] is given once, in the options of a producer or a consumer
// (stream.ProducerOptions.Hook, queue.ProducerOptions.Hook,
// group.Options.Hook, queue.Options.Hook, claim.Options.Hook). Each
// producer and consumer asks it, when it is created, for a [Producer] or
// [Consumer] of its own, told its [Target]; the hook can then prepare what
// it records per target (attribute sets, instruments) once, not per
// message. A nil Hook, or a Hook that returns nil, costs one nil check per
// event.
//
// Hooks are called from the producers' and consumers' goroutines, several
// at once: they must be safe for concurrent use, and fast. A hook must not
// block: a consumer's handler waits for Start and End, a publish for
// Publish and Published.
package hook

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Hook makes the hooks of each producer and consumer it is given to. One
// Hook serves any number of them. Either method may return nil: that
// producer or consumer then calls nothing.
type Hook interface {
	Producer(t Target) Producer
	Consumer(t Target) Consumer
}

// Kind is the Redis structure a target's jobs live in.
type Kind uint8

const (
	// Stream: a Redis stream read through a consumer group (packages
	// stream, group and claim).
	Stream Kind = iota + 1
	// List: a Redis list (package queue).
	List
)

// String returns "stream" or "list".
func (k Kind) String() string {
	switch k {
	case Stream:
		return "stream"
	case List:
		return "list"
	}
	return "unknown"
}

// Target names what a producer publishes to or a consumer consumes.
type Target struct {
	Kind Kind
	// Name is the stream's or the list queue's key.
	Name string
	// Group is the consumer group; empty for list queues and producers.
	Group string
	// Consumer is the consumer's name within its group or queue; empty
	// for producers and simple list consumers (which have no name).
	Consumer string
	// DeadLetter is the key of the dead-letter stream (streams) or list
	// (queues) of a consumer; empty for producers.
	DeadLetter string
	// Queues and DeadLetters are, for a list consumer, every queue it
	// takes jobs from (in priority order) and the dead-letter list of
	// each: Name and DeadLetter are the first of each. Nil for streams and
	// producers.
	Queues, DeadLetters []string
	// Client is the client the producer or consumer uses, so that a hook
	// can read the target's state from Redis (its backlog, say). The hook
	// must not close it.
	Client redis.UniversalClient
}

// Producer is told about the publishes of one producer.
type Producer interface {
	// Publish is called before a publish (one add or push, or one batch)
	// sends its entries, from the publishing goroutine. It returns the
	// context the publish is sent with and Published is handed (ctx
	// itself, or one carrying a span), and may add fields to every entry
	// of the publish with [Publish.Set]: the W3C trace context, say. Every
	// Publish is followed by exactly one Published, also for a publish
	// that fails before anything is sent (an invalid entry, a payload the
	// codec refused); a batch of no entries publishes nothing and calls
	// neither.
	Publish(ctx context.Context, p *Publish) context.Context
	// Published is called once the publish returned, with p's IDs and Err
	// filled in.
	Published(ctx context.Context, p *Publish)
}

// Publish describes one publish: one single add or push, or one batch.
// The producer owns it; a hook must not keep it past Published.
type Publish struct {
	// Count is the number of entries of the publish (of the batch, the
	// invalid ones included).
	Count int
	// IDs holds, in Published, the ID of each entry, in order ("" for an
	// entry that failed).
	IDs []string
	// Err is, in Published, the publish's error: nil when every entry was
	// written. For a batch with failed entries it is the producer's batch
	// error (stream.BatchError, queue.BatchError).
	Err error

	fields []string // name, value, name, value...
}

// Set adds a field to every entry of the publish (for a list job, to its
// fields in the envelope). It is only valid during Producer.Publish. A
// field the entry already has keeps the entry's value (a caller that
// propagates a trace context by hand wins), and a field set twice keeps
// the last value. The fields are ordinary fields: handlers see them in
// Message.Values, dead letters keep them.
func (p *Publish) Set(name, value string) {
	for i := 0; i < len(p.fields); i += 2 {
		if p.fields[i] == name {
			p.fields[i+1] = value
			return
		}
	}
	if p.fields == nil {
		// Room for the W3C trace context and baggage in one allocation.
		p.fields = make([]string, 0, 8)
	}
	p.fields = append(p.fields, name, value)
}

// Fields returns the name/value pairs added with Set, alternating. The
// producer calls it after Publish.
func (p *Publish) Fields() []string { return p.fields }

// Consumer is told what happens in one consumer (a group.Consumer, a
// claim.Reclaimer, a queue.Consumer).
type Consumer interface {
	// Start is called from the worker goroutine before the handler gets
	// m, or before m is dead-lettered without a handler call (see
	// Result.Handled; ctx is then one with the values of Run's context,
	// never cancelled). The context it returns is the handler's (ctx
	// itself, or one derived from it carrying a span). Every Start is
	// followed by exactly one End with the context Start returned, from
	// the same goroutine, also when the handler panicked or called
	// runtime.Goexit.
	Start(ctx context.Context, m Message) context.Context
	// End is called once the consumer decided what happens to m after
	// its handler returned (or without a handler call: see
	// Result.Handled).
	End(ctx context.Context, m Message, r Result)
	// Event is called for everything that is not one message's handling.
	Event(e Event)
}

// Message is what a hook sees of a delivered job: the fields of the
// stream.Message its handler gets (this package cannot name that type,
// as package stream's producer options name this package's Hook).
// Values is the consumer's: a hook reads it during the call, never
// writes it or keeps it.
type Message struct {
	// ID is the stream entry's ID, or the list job's.
	ID string
	// Name is the stream or the list queue the job came from: the
	// target's Name, or for a list consumer of several queues the one the
	// job came from.
	Name string
	// Values holds the job's fields (the trace context among them, when
	// the producer's hook set it).
	Values map[string]string
	// Deliveries counts this delivery (0: unknown).
	Deliveries int64
}

// Outcome is what a consumer does with a job after a delivery.
type Outcome uint8

const (
	// Acked: the handler succeeded; the job is settled (XACK, or removed
	// from the processing list) in the next batch, within milliseconds.
	Acked Outcome = iota + 1
	// Retried: the handler failed; the job is delivered again after a
	// backoff.
	Retried
	// DeadLettered: the handler failed permanently or on the last allowed
	// delivery, or the job was malformed or delivered more than
	// MaxDeliveries times (Result.Handled false): it is moved to the
	// dead-letter stream or list (a failed move is tried again until it
	// succeeds, or the job is handed back at shutdown).
	DeadLettered
	// Abandoned: another consumer took the job over while its handler ran
	// (a lost lease), the drain gave up on it, or it was found no longer
	// this consumer's when it was to be retried or dead-lettered (taken
	// over, or its consumer group vanished): this consumer settles
	// nothing; the job runs again elsewhere.
	Abandoned
)

// String returns "ack", "retry", "dead_letter" or "abandoned".
func (o Outcome) String() string {
	switch o {
	case Acked:
		return "ack"
	case Retried:
		return "retry"
	case DeadLettered:
		return "dead_letter"
	case Abandoned:
		return "abandoned"
	}
	return "unknown"
}

// Result is the outcome of one delivery.
type Result struct {
	Outcome Outcome
	// Err is the handler's error (a *handler.PanicError for a panic); nil
	// for Acked. For a job dead-lettered without a handler call, an error
	// saying why.
	Err error
	// Duration is how long the handler ran; zero when Handled is false.
	Duration time.Duration
	// Handled is false for a job dead-lettered without a handler call: it
	// was malformed, or delivered more than MaxDeliveries times (the
	// handler crashed the process or stalled each time).
	Handled bool
}

// EventKind says what an [Event] reports.
type EventKind uint8

const (
	// Delivered: N jobs were fetched (XREADGROUP, a list move) and queued
	// for the handlers. Jobs taken over are reported as Reclaimed instead;
	// a retry of a job the consumer holds is no new delivery (its Start
	// shows it).
	Delivered EventKind = iota + 1
	// Reclaimed: N jobs abandoned by consumers that died were taken over
	// (XAUTOCLAIM, recovery of an expired processing list).
	Reclaimed
	// LeaseLost: another consumer took over the job with ID while this one
	// held it; its handler's context is cancelled with cause
	// handler.ErrLeaseLost.
	LeaseLost
	// GroupCreated: the consumer created its consumer group, at start or
	// because it vanished while running.
	GroupCreated
	// Released: N jobs that no handler ran (fetched ahead, or waiting for
	// a retry) were handed back for any consumer to take, at shutdown or
	// because this consumer held more than it could run.
	Released
	// Error: an error the consumer handled by itself (Err), the same one
	// its OnError receives: a handler failure, a Redis outage it waits
	// out, a dead-lettering that failed.
	Error
)

// String returns the event's name in snake case ("lease_lost", say).
func (k EventKind) String() string {
	switch k {
	case Delivered:
		return "delivered"
	case Reclaimed:
		return "reclaimed"
	case LeaseLost:
		return "lease_lost"
	case GroupCreated:
		return "group_created"
	case Released:
		return "released"
	case Error:
		return "error"
	}
	return "unknown"
}

// Event is something that happened in a consumer besides one message's
// handling.
type Event struct {
	Kind EventKind
	// N counts the jobs of Delivered, Reclaimed and Released.
	N int
	// ID is the job of LeaseLost.
	ID string
	// Err is the error of Error.
	Err error
}
