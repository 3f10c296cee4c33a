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
// # Lifecycle
//
// A Consumer has one method that blocks, [Consumer.Run], which fits
// errgroup.Group.Go. Cancelling its context is the graceful stop. Run owns
// every goroutine it starts; none is left when it returns, except a handler
// that ignored its context past DrainTimeout (reported as [ErrDrainTimeout]).
//
// See docs/semantics.md in the repository for retries, leases, dead letters
// and shutdown in detail.
package group
