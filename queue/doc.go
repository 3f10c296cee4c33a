// Package queue runs job queues on Redis lists: a [Producer] pushes jobs
// (LPUSH), and a [Consumer] handles them with the same [handler.Handler],
// middleware, message type ([stream.Message]), Run lifecycle, Stats,
// logging and options as a Redis Streams consumer group (package group):
// both run on one engine.
//
// A job is a set of string fields, stored in a list element as a small
// JSON envelope with a unique ID and a delivery count (see
// docs/wire-format.md, section "Lists"). Plain strings pushed by other
// programs (LPUSH jobs:email '{"to":...}') are jobs too: the handler sees
// the string in the field [stream.PayloadField], so [stream.Decode] and
// handler.Typed read it. Handlers see: ID = the job's ID, Stream = the
// queue key it came from, Values = its fields, Deliveries = its deliveries,
// counting this one.
//
// # Two kinds of consumer
//
// A reliable consumer ([NewReliableConsumer]) gives at-least-once delivery.
// A Lua script moves jobs atomically from the queues into a processing
// list of its own, "{<queue>}:processing:<consumer>" ([ProcessingKey]),
// counting the delivery in the envelope; a job leaves it (LREM of exactly
// that element) only after its handler returned nil, or when it is
// dead-lettered or handed back. A job is always in exactly one list: its
// queue, one processing list, or the dead-letter list. The consumer keeps
// a heartbeat key with a TTL ([HeartbeatKey], HeartbeatTTL) and is
// registered in the set [ConsumersKey]; every consumer sweeps that set and
// moves the processing list of a consumer whose heartbeat expired back to
// the front of its queue. A consumer restarting under its own name first
// hands back what its earlier life left. A consumer that finds its own
// heartbeat expired and its jobs taken cancels their handlers' contexts
// (cause handler.ErrLeaseLost).
// Delivery is at least once, never exactly once.
//
// A simple consumer ([NewSimpleConsumer]) gives AT-MOST-ONCE delivery. It
// pops jobs (a Lua script of RPOPs, or BRPOP when the queues are empty) and
// handles them from memory: A CRASH, A KILL OR A LOST CONNECTION LOSES THE
// JOBS BEING HANDLED AND THOSE FETCHED AHEAD. Use it only for work that may
// be lost. A graceful stop loses nothing: unstarted jobs are pushed back.
//
// docs/lists-vs-streams.md compares both with streams.
//
// # Outcomes
//
// As with streams, the outcome of a job is the error its handler returns:
// nil finishes it; an error retries it with backoff (a reliable consumer
// keeps it in its processing list meanwhile, with its delivery count
// rewritten); an error wrapping handler.ErrPermanent or stream.ErrDecode,
// or a failure on the MaxDeliveries-th delivery, moves it to the
// dead-letter list ("{<queue>}:dead" by default) with the reason (see
// [ParseDeadLetter]). Panics and runtime.Goexit are failures too. An
// element that carries the envelope marker but is malformed is
// dead-lettered unchanged, never dropped. docs/semantics.md has the rules.
//
// # Priorities
//
// A consumer takes a list of queues in priority order. Each fetch takes
// jobs from the first non-empty queue first; after every 20 jobs fetched,
// the next fetch first takes one job from each non-empty lower-priority
// queue, so none starves. An idle reliable consumer waits on the first
// queue only (a BLMOVE that moves nothing), so a job pushed to a
// lower-priority queue waits at most PollInterval; a simple consumer waits
// with BRPOP on all queues. Fetched jobs wait in memory in order: set
// Prefetch small when priority latency matters. On Redis Cluster all the
// queues of a consumer must share a hash tag ("{jobs}:high", "{jobs}:low").
//
// # Key names and connections
//
// Every helper key lies in its queue's Redis Cluster slot: "{<queue>}"
// above stands for the queue's name in a hash tag when it has none, and
// for the name itself when it has one. Keys named by older versions are
// swept too (docs/wire-format.md). A consumer waits for jobs on one
// connection of its own, so its waits never hold the connections of the
// client it was given; a stop wakes them with CLIENT UNBLOCK (see
// docs/architecture.md, and docs/reliability.md for the ACL).
//
// # Idempotency
//
// Make handlers idempotent: key side effects by the message ID (the job's
// ID, stable across retries and recoveries) or by a key carried in the job.
//
// # Lifecycle
//
// [Consumer.Run] blocks until its context is cancelled and fits
// errgroup.Group.Go; cancelling the context is the graceful stop (see
// [Consumer.Run]). Run owns every goroutine it starts; none is left when it
// returns, except a handler that ignored its context past DrainTimeout
// (reported as [ErrDrainTimeout]).
package queue
