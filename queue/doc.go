// Package queue runs job queues on Redis lists: a [Producer] pushes jobs
// (LPUSH), and a [Consumer] handles them with the same [handler.Handler],
// middleware, message type ([stream.Message]), Run lifecycle, Stats,
// logging and options as a Redis Streams consumer group (package group):
// both run on one engine.
//
// A job is a set of string fields, stored in a list element as a small
// JSON envelope with a unique ID and a delivery count (docs/wire-format.md,
// "Lists"). Plain strings pushed by other programs are jobs too: the
// handler sees the string in the field [stream.PayloadField], so
// [stream.Decode] and handler.Typed read it. Handlers see: ID = the job's
// ID, Stream = its queue, Values = its fields, Deliveries = its
// deliveries, counting this one.
//
// # Two kinds of consumer
//
// A reliable consumer ([NewReliableConsumer]) gives at-least-once delivery.
// A Lua script moves jobs atomically from the queues into a processing list
// of its own ([ProcessingKey]), counting the delivery in the envelope; a
// job leaves it only when its handler returned nil (LREM of exactly that
// element), or when it is dead-lettered or handed back. A job is always in
// exactly one list: its queue, one processing list, or the dead-letter
// list. The consumer keeps a heartbeat key ([HeartbeatKey], renewed every
// HeartbeatTTL/3) and is registered in the set [ConsumersKey]; every
// consumer sweeps that set every HeartbeatTTL/2 and moves the processing
// list of a consumer whose heartbeat expired back to the front of its
// queue. A consumer that finds its own heartbeat expired and its jobs
// taken cancels their handlers' contexts (cause handler.ErrLeaseLost).
//
// A simple consumer ([NewSimpleConsumer]) gives AT-MOST-ONCE delivery. It
// pops jobs and handles them from memory: A CRASH, A KILL OR A LOST
// CONNECTION LOSES THE JOBS BEING HANDLED AND THOSE FETCHED AHEAD. Use it
// only for work that may be lost. A graceful stop loses nothing: unstarted
// jobs are pushed back. docs/lists-vs-streams.md compares both with streams.
//
// # Outcomes
//
// As with streams, the handler's returned error decides: nil finishes the
// job; an error retries it with backoff; an error wrapping
// handler.ErrPermanent or stream.ErrDecode, or a failure on the
// MaxDeliveries-th delivery, moves it to the dead-letter list with the
// reason ([ParseDeadLetter]). Panics and runtime.Goexit are failures too.
// A malformed envelope is dead-lettered unchanged, never dropped.
// docs/semantics.md has the rules.
//
// # Priorities
//
// A consumer takes its queues in priority order: each fetch takes jobs from
// the first non-empty queue first; after every 20 jobs fetched, the next
// fetch first takes one job from each non-empty lower-priority queue, so
// none starves. An idle reliable consumer waits on the first queue only,
// so a job pushed to a lower-priority one waits at most PollInterval; a
// simple consumer waits with BRPOP on all of them. Fetched jobs wait in
// memory in order: set Prefetch small when priority latency matters. On
// Redis Cluster all the queues of a consumer must share a hash tag
// ("{jobs}:high", "{jobs}:low"), and every helper key lies in its queue's
// slot (docs/wire-format.md, "Keys").
//
// # Idempotency and lifecycle
//
// Make handlers idempotent: key side effects by the message ID (the job's
// ID, stable across retries and recoveries) or by a key carried in the job.
//
// [Consumer.Run] blocks until its context is cancelled and fits
// errgroup.Group.Go; cancelling the context is the graceful stop. Run owns
// every goroutine it starts; none is left when it returns, except a handler
// that ignored its context past DrainTimeout ([ErrDrainTimeout]). A
// consumer waits for jobs on a connection of its own, woken at a stop with
// CLIENT UNBLOCK (docs/architecture.md; docs/reliability.md for the ACL).
// [Consumer.Health] reports whether the consumer is ready and live; package
// health serves it as /readyz and /livez probes. [Options].Hook and
// [ProducerOptions].Hook let telemetry see each push, each handler call
// with its outcome, and the consumer's events (package hook); a producer's
// hook may add fields, such as a trace context, to the jobs it pushes
// (docs/wire-format.md).
package queue
