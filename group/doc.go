// Package group runs Redis Streams consumer groups: [Manager] creates,
// inspects, repositions and cleans up groups and consumers, and [Consumer]
// handles a group's entries with a [handler.Handler].
//
// # Delivery guarantee
//
// Delivery is at least once. An entry is acknowledged (XACK) only after its
// handler returned nil. Until then it stays in the group's pending entries
// list (PEL), owned by the consumer that read it, and nothing that can happen
// to that consumer loses it: after a crash, a kill -9 or a lost connection,
// the consumer's name finishes it on restart, or another consumer's
// reclaimer takes it over once it has been idle for MinIdle. Redis counts
// every delivery; an entry that fails (or crashes its consumer) MaxDeliveries
// times is moved to a dead-letter stream, atomically with its XACK.
//
// The same entry can therefore be handled more than once: after a crash
// between the handler's side effects and the XACK, after a stall longer than
// MinIdle, or when the group is deleted and recreated. Handlers must be
// idempotent: key side effects by the entry ID, or by a job key carried in
// the entry.
//
// # Failures
//
// The handler's returned error decides: nil acknowledges; an error retries
// the entry after a backoff (RetryBackoff, doubling per delivery up to
// MaxRetryBackoff), the consumer keeping its lease meanwhile; an error
// wrapping handler.ErrPermanent or stream.ErrDecode, or a failure on the
// MaxDeliveries-th delivery, dead-letters it. A panic becomes a
// *handler.PanicError, and a handler that calls runtime.Goexit counts as a
// failed delivery too (its worker goroutine is replaced). When another
// consumer takes over an entry whose handler still runs (this consumer
// stalled past MinIdle), the handler's context is cancelled with cause
// handler.ErrLeaseLost and its result is ignored.
//
// The handler gets a *stream.Message that is valid only during the call:
// each worker reuses one Message for every entry, and one context until it
// is cancelled. Keep neither after returning, and do not change Values.
//
// A Consumer runs on the same engine as claim.Reclaimer and the list
// consumers of package queue, under one policy (defaults, retries, dead
// letters, shutdown) and one set of sentinel errors: [ErrDrainTimeout],
// [ErrAlreadyRun] and [ErrInvalidOptions] are the values queue returns too.
//
// # Lifecycle
//
// A Consumer has one method that blocks, [Consumer.Run], which fits
// errgroup.Group.Go. Cancelling its context is the graceful stop. Run owns
// every goroutine it starts; none is left when it returns, except a handler
// that ignored its context past DrainTimeout (reported as [ErrDrainTimeout]).
//
// At the stop, entries no handler runs (fetched ahead, or failed and
// waiting for a retry) are given back to the group at once, with their
// delivery counts, so that any consumer's reclaimer takes them at its next
// pass without waiting for MinIdle; running handlers then get up to
// DrainTimeout, with their contexts not cancelled until then, and what
// they fail meanwhile is given back after them.
//
// Cancelling the context also wakes the consumer's blocked reads (CLIENT
// UNBLOCK): with nothing in flight Run returns within milliseconds, not
// after Block.
//
// [Consumer.Health] reports, at any time, whether the consumer is ready
// (started, its group present, Redis answering, not draining) and live
// (Run has not returned an error, no read has hung); package health serves
// it as /readyz and /livez probes. [Options].Hook lets telemetry see each
// handler call with its outcome (acknowledged, retried, dead-lettered,
// abandoned) and the consumer's events (package hook; an OpenTelemetry
// adapter implements it, docs/observability.md).
//
// # Connections
//
// The Redis client is the caller's: a Consumer never closes it, and many
// consumers and producers can share one. A blocking XREADGROUP holds its
// connection for up to Block, so a Consumer does not read on that client's
// pool. Each of its readers (two when Concurrency is above 1, else one)
// reads on a connection of its own, which Run opens from the client's
// options (address, credentials, TLS, DB, timeouts, OnConnect) and closes
// when it returns: a Consumer holds one or two connections of its own, and
// uses the shared pool only briefly, for acknowledgements, lease renewals,
// reclaiming and scripts. A [*redis.Client] gets one dedicated connection
// per reader, a [*redis.ClusterClient] one dedicated cluster client (one
// connection per node) per reader. Hooks added to the client with AddHook
// do not see these reads. Any other client (a Ring, or a failover client
// from NewFailoverClient, whose master can move) is read on directly: each
// reader then holds one of its pool's connections for up to Block, and
// stopping waits for a blocked read to end. Size PoolSize for that.
//
// See docs/semantics.md in the repository for retries, leases, dead letters
// and shutdown in detail.
package group
