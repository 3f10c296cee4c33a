package queue

import (
	"context"
	"sync"
)

// credits counts the jobs a consumer may hold in memory: in a handler, or
// fetched and waiting for one. The fetcher and the retry loop take credits
// before they fetch or re-deliver and give back what they did not use, so
// a backlog of any size costs at most Concurrency+Prefetch jobs.
//
// Waiters are served first come, first served, so the fetcher, which takes
// every free credit, cannot starve the retry loop. (A copy of the streams
// engine's internal type, which is not exported.)
type credits struct {
	mu      sync.Mutex
	free    int
	waiters []*waiter
}

type waiter struct {
	lo, hi int
	got    chan int // receives the credits granted; buffered
}

func newCredits(n int) *credits { return &credits{free: n} }

// take waits until it is first in line and at least lo credits are free,
// then takes up to hi of them. It returns 0 when ctx ends first.
func (c *credits) take(ctx context.Context, lo, hi int) int {
	c.mu.Lock()
	if len(c.waiters) == 0 && c.free >= lo {
		n := min(c.free, hi)
		c.free -= n
		c.mu.Unlock()
		return n
	}
	w := &waiter{lo: lo, hi: hi, got: make(chan int, 1)}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	select {
	case n := <-w.got:
		return n
	case <-ctx.Done():
	}
	c.mu.Lock()
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			c.mu.Unlock()
			c.give(0) // the next in line may fit now
			return 0
		}
	}
	c.mu.Unlock()
	c.give(<-w.got) // granted just as ctx ended: give it back
	return 0
}

// give returns n credits and serves the waiters in order.
func (c *credits) give(n int) {
	c.mu.Lock()
	c.free += n
	for len(c.waiters) > 0 && c.free >= c.waiters[0].lo {
		w := c.waiters[0]
		c.waiters = c.waiters[1:]
		got := min(c.free, w.hi)
		c.free -= got
		w.got <- got
	}
	c.mu.Unlock()
}
