package credit

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestCreditsTakeGive(t *testing.T) {
	c := New(10)
	if n := c.Take(context.Background(), 4, 6); n != 6 {
		t.Fatalf("take(4, 6) with 10 free = %d; want 6", n)
	}
	if n := c.Take(context.Background(), 1, 100); n != 4 {
		t.Fatalf("take(1, 100) with 4 free = %d; want 4", n)
	}
	c.Give(10)
	if c.free != 10 {
		t.Fatalf("free = %d; want 10", c.free)
	}
}

// A waiter first in line is served before a later take, even one that could
// be served at once: the reader cannot starve the reclaimer.
func TestCreditsFirstComeFirstServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(4)
		ctx := context.Background()
		reader := c.Take(ctx, 4, 4) // the reader holds everything
		got := make(chan int, 1)
		go func() { got <- c.Take(ctx, 1, 100) }() // the reclaimer waits
		synctest.Wait()
		c.Give(reader) // the read returned nothing; the reader comes back at once
		c.mu.Lock()
		free := c.free
		c.mu.Unlock()
		if free != 0 {
			t.Fatalf("free after give = %d; want 0: the waiter is served before anyone else", free)
		}
		if n := <-got; n != 4 {
			t.Errorf("waiter got %d; want 4", n)
		}
	})
}

func TestCreditsCancelledWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(2)
		held := c.Take(context.Background(), 2, 2)
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan int, 1)
		go func() { got <- c.Take(ctx, 2, 2) }()
		synctest.Wait()
		cancel()
		if n := <-got; n != 0 {
			t.Fatalf("cancelled take = %d; want 0", n)
		}
		c.Give(held)
		if c.free != 2 || len(c.waiters) != 0 {
			t.Errorf("free = %d, waiters = %d; want 2, 0", c.free, len(c.waiters))
		}
	})
}

// A resize down below what a waiter asked for must not strand it: it is
// served once every credit is free. Credits in use stay in use.
func TestCreditsResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(20)
		ctx := context.Background()
		held := c.Take(ctx, 1, 18) // 18 in use, 2 free
		got := make(chan int, 1)
		go func() { got <- c.Take(ctx, 10, 20) }() // waits for 10
		synctest.Wait()
		c.Resize(4) // 2-16 = -14 free
		c.Give(14)
		synctest.Wait()
		select {
		case n := <-got:
			t.Fatalf("waiter served with %d credits while none were free", n)
		default:
		}
		c.Give(held - 14) // everything back: 4 free, the new total
		if n := <-got; n != 4 {
			t.Fatalf("waiter for 10 after resize to 4 got %d; want 4", n)
		}
		c.Give(4)
		c.Resize(8)
		if n := c.Take(ctx, 8, 100); n != 8 {
			t.Fatalf("take after resize up to 8 = %d; want 8", n)
		}
	})
}

// Credits are served first come, first served, and a waiter whose context
// ends gives up without losing credits.
func TestCreditsServedInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(4)
		if got := c.Take(t.Context(), 2, 4); got != 4 {
			t.Fatalf("take(2, 4) = %d; want 4", got)
		}
		big, small := make(chan int, 1), make(chan int, 1)
		go func() { big <- c.Take(context.Background(), 3, 3) }()
		synctest.Wait()
		go func() { small <- c.Take(context.Background(), 1, 1) }()
		synctest.Wait()
		c.Give(1) // enough for the second in line only: nobody is served
		synctest.Wait()
		if len(big)+len(small) != 0 {
			t.Fatalf("a waiter was served out of order")
		}
		c.Give(3)
		if b, s := <-big, <-small; b != 3 || s != 1 {
			t.Fatalf("served big %d, small %d; want 3 and 1", b, s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if got := c.Take(ctx, 1, 1); got != 0 {
			t.Fatalf("take with no credits free = %d after the deadline; want 0", got)
		}
		c.Give(4)
		if got := c.Take(t.Context(), 4, 4); got != 4 {
			t.Fatalf("take(4, 4) after giving all back = %d; want 4", got)
		}
	})
}
