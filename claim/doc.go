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
// Leases make "idle" mean "abandoned": while a handler runs longer than a
// fraction of MinIdle, its consumer renews the entry with XCLAIM ... JUSTID,
// which resets the idle time without counting a delivery. So a slow but live
// job is not taken over and run twice; a job is handled twice only when its
// consumer really died or stalled for MinIdle.
//
// Every group.Consumer runs this machinery itself; use a standalone
// Reclaimer only to reclaim from dedicated processes
// (with group.Options.DisableReclaim on the consumers).
//
// Delivery is at least once, so handlers must be idempotent.
package claim
