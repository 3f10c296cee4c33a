// Package queue runs job queues on Redis lists: a [Producer] pushes jobs
// (LPUSH), and a [Consumer] handles them with the same [handler.Handler],
// middleware, message type ([stream.Message]), Run lifecycle, Stats and
// logging as a Redis Streams consumer group (package group).
//
// A job is a set of string fields, stored in a list element as a small
// JSON envelope with a unique ID and an attempt count (see
// docs/wire-format.md, section "Lists"). Plain strings pushed by other
// programs (LPUSH jobs:email '{"to":...}') are jobs too: the handler sees
// the string in the field [stream.PayloadField], so [stream.Decode] and
// handler.Typed read it, and the consumer gives it an ID and an attempt
// count the first time it rewrites it. Handlers see: ID = the job's ID,
// Stream = the queue key it came from, Values = its fields, Deliveries =
// its attempts, counting this one.
//
// # Two modes
//
// A reliable consumer ([NewReliableConsumer]) gives at-least-once delivery.
// It moves jobs atomically (a Lua script, as many as it has free handler
// slots, in one round trip) from the queues into a processing list of its
// own, "{<queue>}:processing:<consumer>" ([ProcessingKey]), and removes
// each job from there
// (LREM of exactly that element) only after its handler returned nil. A
// job is always in exactly one list: its queue, one processing list, or the
// dead-letter list. Each consumer keeps a heartbeat key with a TTL
// ("{<queue>}:heartbeat:<consumer>", renewed every HeartbeatInterval) and is
// registered in the set "{<queue>}:consumers". Every consumer sweeps that set
// at start-up and every SweepInterval: the processing list of a consumer
// whose heartbeat has expired is moved back to the front of its queue, in
// one atomic script that checks the heartbeat itself. A consumer restarting
// under its own name first hands back what its earlier life left.
//
// So a crashed consumer's jobs wait HeartbeatTTL (30s by default) plus at
// most SweepInterval before another consumer takes them. A consumer cut
// off from Redis for longer than HeartbeatTTL may see its jobs recovered
// while its handlers still run them: they then run twice. Delivery is at
// least once, never exactly once.
//
// A simple consumer ([NewSimpleConsumer]) gives AT-MOST-ONCE delivery. It
// pops jobs (a Lua script of RPOPs, or BRPOP when the queues are empty)
// and handles them from memory: A CRASH, A KILL OR A LOST CONNECTION
// WHILE A JOB IS BEING HANDLED, OR WAITS IN MEMORY (up to
// Concurrency+Prefetch jobs), LOSES IT. Use it only for work that may be
// lost, such as cache warming or notifications that are retried
// elsewhere. A graceful stop loses nothing: unstarted jobs are pushed back.
//
// # Outcomes
//
// As with streams, the outcome of a job is the error its handler returns:
// nil finishes it; an error schedules a retry with backoff (RetryBackoff,
// doubling, capped by MaxRetryBackoff; in reliable mode the job stays in the
// processing list meanwhile, and its element is rewritten in place with
// the attempt count incremented); an error wrapping handler.ErrPermanent or
// stream.ErrDecode, or a failure on the MaxAttempts-th attempt, moves the
// job to the dead-letter list ("{<queue>}:dead" by default) with the reason,
// the consumer, the attempt count and the time (see [ParseDeadLetter]),
// atomically with its removal from the processing list. Panics become
// *handler.PanicError and take the error path. An element that carries
// the envelope marker but is malformed is dead-lettered unchanged (in
// reliable mode with its attempt count incremented when that part was
// readable), never dropped. In reliable mode a job recovered from a dead
// consumer has that delivery counted, so a job that crashes its process
// every time ends in the dead-letter list after MaxAttempts deliveries.
//
// # Priorities
//
// A consumer takes a list of queues in priority order. Each fetch takes
// jobs from the first non-empty queue first, as a multi-key BRPOP does.
// Unless [Options.StrictPriority] is set, lower-priority work is not
// starved: after every [Options.StarvationLimit] jobs fetched (20 by
// default), the next fetch first takes one job from each non-empty
// lower-priority queue. A reliable consumer with nothing to do waits on the
// first queue only (a BLMOVE that moves nothing) for up to PollInterval,
// so a job pushed to a lower-priority queue of an idle consumer waits at
// most PollInterval (1s by default); a simple consumer waits with BRPOP on
// all queues. Priorities apply when jobs are fetched: fetched jobs wait in
// memory in order, so keep Prefetch small when priority latency matters.
// On Redis Cluster all the queues of a consumer must share a hash tag
// ("{jobs}:high", "{jobs}:low"), since one script reads them all; the
// constructors refuse them otherwise when given a *redis.ClusterClient.
//
// # Key names
//
// Every helper key lies in its queue's Redis Cluster slot, so every script
// touches one slot: "{<queue>}" above stands for the queue's name in a hash
// tag when it has none ("{jobs:email}:dead" for "jobs:email") and for the
// name itself when it has one ("{jobs}:email:dead" for "{jobs}:email"). Older
// versions appended to the name ("jobs:email:processing:<consumer>"); a
// reliable consumer recovers jobs left under those names once their old
// heartbeat has expired, so an upgrade strands none (docs/wire-format.md).
//
// # Idempotency
//
// Make handlers idempotent: key side effects by the message ID (the job's
// ID, stable across retries and recoveries) or by a key carried in the job.
// A plain string gets its ID when a reliable consumer first fetches it; two
// plain strings with the same text are two jobs with two IDs.
//
// # Connections
//
// A consumer waits for jobs (BRPOP, BLMOVE) on one connection of its own,
// opened by Run from the options of the client it was given and closed
// when Run returns, so that its waits never hold the connections of that
// client's pool, which producers, removals and heartbeats share: thirty
// consumers on one client with go-redis's default pool otherwise starve a
// producer's Push. Everything else uses the shared client, briefly. A
// *redis.ClusterClient gets a cluster client of its own with one
// connection per node; a redis.Ring or a Sentinel failover client is
// waited on directly (each wait then holds one of its connections).
//
// A stop wakes a blocked wait with CLIENT UNBLOCK, sent from the shared
// client (grant +client|unblock, see docs/reliability.md): an unblocked
// BRPOP pops nothing and an unblocked BLMOVE moves nothing, so Run returns
// without waiting for PollInterval. If CLIENT UNBLOCK is refused or gets no
// answer within a second, a reliable consumer closes its waiting connection
// (its BLMOVE takes a job from the first queue and puts it back where it
// was, so a reply lost that way loses nothing; on Redis Cluster it closes
// it at once). A
// simple consumer never closes it with a BRPOP in flight: the popped job
// is in the reply and nowhere else, and a graceful stop loses nothing. Its
// stop then waits for the BRPOP to end, up to PollInterval; on Redis
// Cluster it always does.
//
// # Lifecycle
//
// [Consumer.Run] blocks until its context is cancelled and fits
// errgroup.Group.Go; cancelling the context is the graceful stop: fetched
// jobs no handler started go back to the front of their queue, in-flight
// handlers get up to DrainTimeout (their contexts are not cancelled before),
// finished jobs are removed, and a reliable consumer with an empty
// processing list deregisters. Run owns every goroutine it starts; none is
// left when it returns, except a handler that ignored its context past
// DrainTimeout (reported as [ErrDrainTimeout]). Redis outages are ridden
// out with capped backoff; Run returns early only for errors that waiting
// cannot fix, such as a queue key holding another type ([ErrNotList], with
// the key's name).
package queue
