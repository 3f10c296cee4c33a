// Package backoff computes capped, jittered exponential delays and waits for
// them without ignoring a context.
package backoff
