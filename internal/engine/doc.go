// Package engine is the one consumer engine every consumer kind runs on:
// group.Consumer and claim.Reclaimer (a stream source), and the reliable and
// simple queue.Consumer (list sources).
//
// The engine decides what happens to a job; a [Source] knows how Redis
// holds it. The engine owns credits and the adaptive prefetch, the memory
// bound, the workers, the handler call (panics, runtime.Goexit), the
// outcome (settle, retry with backoff by delivery count, dead-letter), the
// one schedule of retries, batched settling, keep-alive of held jobs (and
// cancelling a handler whose job another consumer took), sweeping for
// abandoned work, the drain with DrainTimeout, the hand-back of everything
// no handler runs at shutdown, Stats, logs and OnError. It calls no Redis
// command: every Redis operation goes through the source, and optional
// abilities ([Keeper], [Sweeper], [Repairer], [Housekeeper]) are found by
// type assertion. Package enginetest holds the behaviour every source must
// pass.
package engine
