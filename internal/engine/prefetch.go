package engine

import (
	"sync/atomic"
	"time"
)

// The adaptive prefetch (Prefetch zero) sizes the entries fetched ahead so
// that the workers never wait for a read, without fetching more than they
// need: a consumer that hoards slow jobs leaves its peers idle.
//
// While the reader waits for one read's round trip (RTT), Concurrency
// workers each handling an entry in H get through Concurrency×RTT/H
// entries. A read is made once half of Prefetch fits, so Prefetch is twice
// that, clamped to [Concurrency, cap]: fast handlers get large batched
// reads, and slow handlers (H well above RTT) keep the prefetch at
// Concurrency, so a burst of slow jobs is shared among the consumers.

// sampleEvery is how often a worker times its handler: one entry in
// sampleEvery, the first included.
const sampleEvery = 8

// initialPrefetch is the prefetch before anything was measured.
func initialPrefetch(cfg Config) int {
	if cfg.adaptive {
		return cfg.Concurrency
	}
	return cfg.Prefetch
}

// prefetchFor returns the adaptive prefetch for a fetch round trip and a
// handler time (0 when not measured yet), between concurrency and max.
func prefetchFor(concurrency, max int, fetch, handle time.Duration) int {
	if fetch <= 0 || handle <= 0 {
		return concurrency
	}
	p := 2 * float64(concurrency) * float64(fetch) / float64(handle)
	switch {
	case p >= float64(max):
		return max
	case p <= float64(concurrency):
		return concurrency
	}
	return int(p)
}

// prefetch returns the current prefetch and sizes the credits to match.
func (e *Engine) prefetch() int {
	if !e.cfg.adaptive {
		return e.cfg.Prefetch
	}
	p := prefetchFor(e.cfg.Concurrency, e.cfg.Prefetch,
		time.Duration(e.fetchNs.Load()), time.Duration(e.handlerNs.Load()))
	e.credits.Resize(e.cfg.Concurrency + p)
	return p
}

// observe folds v into the moving average a (weight 1/8). Concurrent
// updates may lose one another; an estimate does not need them all.
func observe(a *atomic.Int64, v int64) {
	n := max(v, 1)
	old := a.Load()
	if old == 0 {
		a.Store(n)
		return
	}
	a.Store(old + (n-old)/8)
}
