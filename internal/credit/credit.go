package credit

import (
	"context"
	"sync"
)

// Pool counts the entries (stream entries or list jobs) a consumer may hold
// in memory: in a handler, or fetched and waiting for one. Everything that
// fetches from Redis takes credits first and gives back what it did not
// use, so a backlog of any size costs at most the pool's size in entries.
//
// Waiters are served first come, first served: a reader, which takes every
// free credit and holds them through a blocking read, would otherwise
// starve the reclaimer and the retrier by taking the credits back each time
// before they could. A Pool is safe for concurrent use; the zero value has
// no credits (use [New]).
type Pool struct {
	mu      sync.Mutex
	total   int
	free    int // may be negative for a while after a resize down
	waiters []*waiter
}

type waiter struct {
	lo, hi int
	got    chan int // receives the credits granted; buffered
}

// New returns a pool of n credits.
func New(n int) *Pool { return &Pool{total: n, free: n} }

// Resize sets the number of credits to n. Credits in use stay in use: after
// a resize down, free may be negative until enough are given back.
func (c *Pool) Resize(n int) {
	c.mu.Lock()
	if n == c.total {
		c.mu.Unlock()
		return
	}
	c.free += n - c.total
	c.total = n
	c.mu.Unlock()
	c.Give(0)
}

// Take waits until it is first in line and at least lo credits are free
// (or all of them, when the credits were resized below lo meanwhile), then
// takes up to hi of them. It returns 0 when ctx ends first.
func (c *Pool) Take(ctx context.Context, lo, hi int) int {
	c.mu.Lock()
	if len(c.waiters) == 0 && c.fits(lo) {
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
			c.Give(0) // the next in line may fit now
			return 0
		}
	}
	c.mu.Unlock()
	c.Give(<-w.got) // granted just as ctx ended: give it back
	return 0
}

// Give returns n credits and serves the waiters in order.
func (c *Pool) Give(n int) {
	c.mu.Lock()
	c.free += n
	for len(c.waiters) > 0 && c.fits(c.waiters[0].lo) {
		w := c.waiters[0]
		c.waiters = c.waiters[1:]
		got := min(c.free, w.hi)
		c.free -= got
		w.got <- got
	}
	c.mu.Unlock()
}

// fits reports whether a take of at least lo can be served; c.mu must be
// held.
func (c *Pool) fits(lo int) bool {
	return c.free > 0 && c.free >= min(lo, c.total)
}
