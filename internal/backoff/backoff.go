package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a capped exponential backoff with "equal jitter": the delay for
// attempt n (0-based) is d = min(Base<<n, Max), and the wait is uniformly
// drawn from [d/2, d]. The zero value is unusable: Base and Max must be > 0.
type Policy struct {
	Base time.Duration
	Max  time.Duration
}

// Ceiling returns min(Base<<n, Max) without jitter.
func (p Policy) Ceiling(n int) time.Duration {
	if n < 0 {
		n = 0
	}
	d := p.Base
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
	}
	if d > p.Max || d <= 0 { // d <= 0: overflow
		d = p.Max
	}
	return d
}

// Delay returns the jittered delay for attempt n.
func (p Policy) Delay(n int) time.Duration {
	d := p.Ceiling(n)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

// Jitter returns d scaled by a random factor in [1-f, 1+f].
func Jitter(d time.Duration, f float64) time.Duration {
	if d <= 0 || f <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 - f + 2*f*rand.Float64()))
}

// Sleep waits for d or until ctx ends, whichever is first, and reports
// whether the full delay passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
