// Package credit bounds the work a consumer holds in memory: a pool of
// credits, taken before fetching from Redis and given back when an entry is
// done, served to waiters first come, first served. The stream engine
// (internal/engine) and the list queue (queue) share it.
package credit
