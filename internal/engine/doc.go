// Package engine is the machinery shared by group.Consumer and
// claim.Reclaimer: bounded dispatch to a handler, the failure policy (retry
// with backoff, dead letters), batched acknowledgements, leases, the
// XREADGROUP reader and the XAUTOCLAIM reclaimer.
package engine
