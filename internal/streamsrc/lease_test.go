package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A LeaseInterval that Normalize accepts must not make Run panic: the lease
// loop ticks every LeaseInterval/2, and time.NewTicker panics on a zero
// interval, so LeaseInterval: 1ns (shorter than MinIdle, hence accepted)
// brings the whole process down from the lease goroutine. Either Normalize
// refuses it with ErrInvalidOptions, or the lease loop runs.
func TestTinyLeaseIntervalDoesNotPanic(t *testing.T) {
	cfg := base()
	cfg.LeaseInterval = time.Nanosecond
	n, err := cfg.Normalize()
	if err != nil {
		if !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("Normalize = %v; want nil or ErrInvalidOptions", err)
		}
		return
	}
	e := New(n)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the loop must return at once, without touching Redis
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("Normalize accepted LeaseInterval %v, then the lease loop panicked: %v", n.LeaseInterval, v)
		}
	}()
	e.leaseLoop(ctx)
}
