package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/engine/enginetest"
	"github.com/streamgroup/streamgroup/stream"
)

// A handler that ignores its cancelled ctx past DrainTimeout and a grace is
// abandoned: Run returns an error wrapping ErrDrainTimeout, and the job
// stays held (for another consumer once the keep-alive stops); the late
// result is not settled.
func TestDrainTimeoutAbandonsHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := enginetest.NewFake(t.Name())
		publish(t, q, "stuck")
		release := make(chan struct{})
		started := make(chan struct{})
		h := handler.Func(func(context.Context, *stream.Message) error {
			close(started)
			<-release // ignores ctx
			return nil
		})
		stop, _ := start(q.NewConsumer(t, "c", h, enginetest.Options{DrainTimeout: time.Second}))
		<-started
		err := stop()
		if !errors.Is(err, engine.ErrDrainTimeout) || !strings.Contains(err.Error(), "1 handlers still running") {
			t.Errorf("Run = %v; want ErrDrainTimeout naming 1 handler still running", err)
		}
		close(release)
		synctest.Wait()
		if got := q.Counts(t); got.Held != 1 {
			t.Errorf("left %+v after the abandoned handler returned; want the job still held (not settled)", got)
		}
	})
}

// Past the failures it may hold for a retry (10 × (Concurrency+Prefetch)),
// a consumer hands failed jobs back behind the waiting work; MaxDeliveries
// still dead-letters them.
func TestRetryOverflowHandedBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const held, extra = 20, 5 // Concurrency 1 + Prefetch 1
		q := enginetest.NewFake(t.Name())
		for range held + extra {
			publish(t, q, "x")
		}
		h := &counting{err: errors.New("fails")}
		c := q.NewConsumer(t, "c", h, enginetest.Options{Concurrency: 1, Prefetch: 1, MaxDeliveries: 3, RetryBackoff: time.Hour})
		stop, _ := start(c)
		time.Sleep(time.Minute)
		synctest.Wait()
		got := q.Counts(t)
		dl := q.DeadLetters(t)
		if got.Held != held || got.Waiting != 0 || len(dl) != extra {
			t.Errorf("held %d, waiting %d, dead %d; want %d held for a retry, the %d others dead-lettered after MaxDeliveries", got.Held, got.Waiting, len(dl), held, extra)
		}
		for _, d := range dl {
			if d.Deliveries != 3 {
				t.Errorf("dead letter after %d deliveries; want 3", d.Deliveries)
			}
		}
		if err := stop(); err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
		if got := q.Counts(t); got.Waiting != held || got.Held != 0 {
			t.Errorf("after the stop: %+v; want the %d jobs waiting for a retry handed back", got, held)
		}
	})
}
