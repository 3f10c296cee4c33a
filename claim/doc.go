// Package claim takes over work that consumers of a Redis Streams consumer
// group left behind.
//
// An entry read by a consumer stays in the group's pending entries list
// (PEL) until it is acknowledged. When its consumer dies (crash, kill -9,
// lost host) or stalls, the entry would wait forever; [Reclaimer] finds
// entries idle for longer than MinIdle with XAUTOCLAIM, claims them for its
// own consumer name and handles them. Redis counts each claim as a delivery,
// so an entry that keeps killing its consumers reaches MaxDeliveries and is
// dead-lettered instead of circulating forever.
//
// A pass runs at start and then every MinIdle/2 (with jitter): XAUTOCLAIM
// calls along the group's pending entries list, each taking at most 512
// entries and never more than the free handler slots.
//
// Leases make "idle" mean "abandoned": every entry a consumer holds (in a
// handler, fetched ahead, or waiting for a retry) is renewed once it has
// been held for MinIdle/3, with XCLAIM ... JUSTID, which resets the idle
// time without counting a delivery. So a slow but live job is not taken
// over and run twice; a job is handled twice only when its consumer really
// died or stalled for MinIdle. A consumer that stalled and finds on waking
// that an entry was taken over cancels its handler's context with cause
// handler.ErrLeaseLost and ignores its result.
//
// Every group.Consumer runs this machinery itself; use a standalone
// Reclaimer only to reclaim from dedicated processes
// (with group.Options.DisableReclaim on the consumers). A Reclaimer is the
// same engine as a group.Consumer with reading turned off, so entries it
// takes over get the same failure policy, leases and graceful stop; its
// [Options] hold only what applies to reclaiming. It does not import
// package group; its sentinel errors are group's (the same values).
//
// Delivery is at least once, so handlers must be idempotent.
//
// [Options].Hook lets telemetry see each handler call with its outcome and
// the reclaimer's events (entries reclaimed, leases lost, errors): package
// hook.
package claim
