// Package inspect reads, from Redis, the state an operator watches and
// alerts on: per stream its length and dead letters, per consumer group
// its lag, pending entries, oldest pending entry and idle consumers, and
// per list queue its length, the jobs held in processing lists, the
// consumers' heartbeats and the dead-letter list.
//
// It only reads: every call runs read commands and returns plain values
// ([StreamState], [QueueState]) that a program can log, export as gauges
// or print. It needs no running consumer and works on any stream or queue
// in the documented format (docs/wire-format.md), whoever wrote it.
//
// # Batches
//
// [Inspector.Streams] and [Inspector.Queues] take many targets and
// pipeline the commands of all of them: a collector reading 50 streams
// makes one or two round trips, not 50. Each command reads one key, so the
// same code serves a single Redis and Redis Cluster (where go-redis splits
// the pipeline by node). A target that cannot be read (a key of the wrong
// type, a missing group, a refused command) does not spoil the others: the
// error, a [*BatchError], holds one error per target. [Inspector.Stream]
// and [Inspector.Queue] read one target and return its own error.
//
// # Lag
//
// Redis reports a group's lag in XINFO GROUPS, but not always: after an
// entry after the group's position was deleted, or while the group's read
// counter is unknown (a group created or moved to an arbitrary ID), it
// reports none; and after a trim past the group, Redis 7.0 still counts
// the entries trimmed away. [GroupState.Lag] is exact in these cases too,
// counting the entries when it must, up to [Options.LagCountLimit]; past
// that it is an upper bound and [GroupState.LagEstimated] says so.
//
// # Ages
//
// Two numbers describe a group's oldest pending entry (the smallest ID in
// its pending entries list). [GroupState.OldestPendingAge] is how long ago
// the entry was added (Redis's clock minus the time in its ID): it grows
// with a backlog and with an entry that never gets acknowledged.
// [PendingEntry.Idle] of [GroupState.OldestPending] is the time since it
// was last delivered or claimed: running consumers renew their entries'
// leases, so it passes MinIdle only when the owner is gone or stalled.
//
// # Concurrency
//
// An [Inspector] is safe for concurrent use and holds no state between
// calls. It never closes the client it was given. The commands of a call
// form a pipeline, not a transaction: under traffic, numbers read by
// different commands may be a few entries apart.
package inspect
