package backoff_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgroup/streamgroup/internal/backoff"
)

func TestCeiling(t *testing.T) {
	p := backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		n    int
		want time.Duration
	}{
		{-1, 100 * time.Millisecond},
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, time.Second},
		{1000, time.Second},
	}
	for _, tt := range tests {
		if got := p.Ceiling(tt.n); got != tt.want {
			t.Errorf("Ceiling(%d) = %v; want %v", tt.n, got, tt.want)
		}
	}
}

func TestDelayWithinBounds(t *testing.T) {
	p := backoff.Policy{Base: 10 * time.Millisecond, Max: 5 * time.Second}
	for n := 0; n < 20; n++ {
		c := p.Ceiling(n)
		for i := 0; i < 200; i++ {
			if d := p.Delay(n); d < c/2 || d > c {
				t.Fatalf("Delay(%d) = %v; want within [%v, %v]", n, d, c/2, c)
			}
		}
	}
}

func TestJitter(t *testing.T) {
	for i := 0; i < 200; i++ {
		if d := backoff.Jitter(time.Second, 0.2); d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("Jitter(1s, 0.2) = %v; want within [0.8s, 1.2s]", d)
		}
	}
	if d := backoff.Jitter(time.Second, 0); d != time.Second {
		t.Errorf("Jitter(1s, 0) = %v; want 1s", d)
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if !backoff.Sleep(context.Background(), 3*time.Second) {
			t.Fatal("Sleep(3s) = false; want true")
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("Sleep took %v; want 3s", got)
		}

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start = time.Now()
		if backoff.Sleep(ctx, time.Hour) {
			t.Fatal("Sleep with cancelled ctx = true; want false")
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("cancelled Sleep took %v; want 1s", got)
		}
	})
}
