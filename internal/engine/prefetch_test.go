package engine

import (
	"testing"
	"time"
)

func TestPrefetchFor(t *testing.T) {
	const c, cap = 4, 1024
	for _, tc := range []struct {
		name          string
		fetch, handle time.Duration
		want          int
	}{
		{"nothing measured", 0, 0, c},
		{"no handler time yet", time.Millisecond, 0, c},
		{"slow jobs keep it at Concurrency", 500 * time.Microsecond, 100 * time.Millisecond, c},
		{"handler as long as the fetch", time.Millisecond, time.Millisecond, 2 * c},
		{"fast handlers", time.Millisecond, 40 * time.Microsecond, 200},
		{"near-free handlers hit the cap", time.Millisecond, time.Microsecond, cap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := prefetchFor(c, cap, tc.fetch, tc.handle); got != tc.want {
				t.Errorf("prefetchFor(%d, %d, %v, %v) = %d; want %d", c, cap, tc.fetch, tc.handle, got, tc.want)
			}
		})
	}
}
