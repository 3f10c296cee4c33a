package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/engine/enginetest"
	"github.com/streamgroup/streamgroup/stream"
)

// failFirst returns a Faults func that fails op n times (with err, or a
// transient error when err is nil), then lets it through.
func failFirst(op string, n int, err error) (func(op, consumer string) error, *atomic.Int64) {
	var failed atomic.Int64
	return func(o, _ string) error {
		if o != op || failed.Load() >= int64(n) {
			return nil
		}
		failed.Add(1)
		return cmpErr(err, fmt.Errorf("fake %s down", op))
	}, &failed
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// counting is a handler that counts its calls and fails with err (nil:
// succeeds).
type counting struct {
	mu    sync.Mutex
	calls map[string]int
	err   error
}

func (c *counting) Handle(_ context.Context, msg *stream.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = make(map[string]int)
	}
	c.calls[msg.Values["n"]]++
	return c.err
}

func (c *counting) count(n string) int { c.mu.Lock(); defer c.mu.Unlock(); return c.calls[n] }

func publish(t *testing.T, q *enginetest.Fake, ns ...string) {
	for _, n := range ns {
		q.Publish(t, map[string]string{"n": n})
	}
}

// start runs c; the returned func stops it and returns Run's error.
func start(c enginetest.Consumer) (stop func() error, done <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- c.Run(ctx) }()
	return func() error { cancel(); return <-ch }, ch
}

// A Settle that fails with an error waiting fixes is tried again: every job
// is settled once, and its handler runs once.
func TestSettleRetriedAfterTransientFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := enginetest.NewFake(t.Name())
		var failed *atomic.Int64
		q.Faults, failed = failFirst("settle", 3, nil)
		publish(t, q, "0", "1", "2", "3", "4")
		h := &counting{}
		var reported atomic.Int64
		c := q.NewConsumer(t, "c", h, enginetest.Options{OnError: func(error) { reported.Add(1) }})
		stop, _ := start(c)
		time.Sleep(time.Minute)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
		if got := q.Counts(t); got.Left() != 0 || failed.Load() != 3 {
			t.Errorf("after 3 failed settles: left %+v, %d failures; want nothing left", got, failed.Load())
		}
		for _, n := range []string{"0", "1", "2", "3", "4"} {
			if h.count(n) != 1 {
				t.Errorf("job %s handled %d times; want 1", n, h.count(n))
			}
		}
		if st := c.(*engine.Engine).Stats(); st.Acked != 5 {
			t.Errorf("Stats().Acked = %d; want 5", st.Acked)
		}
		if reported.Load() < 3 {
			t.Errorf("OnError called %d times; want each failed settle reported", reported.Load())
		}
	})
}

// A dead-lettering that fails is tried again, whatever the error (one
// nothing fixes, a dead-letter key of another type, waits for an
// operator), without running the handler again and without stopping.
func TestDeadLetterRetriedAfterFailure(t *testing.T) {
	for name, err := range map[string]error{"transient": nil, "stop": enginetest.ErrBroken} {
		t.Run(name, func(t *testing.T) { testDeadLetterRetried(t, err) })
	}
}

func testDeadLetterRetried(t *testing.T, fault error) {
	synctest.Test(t, func(t *testing.T) {
		q := enginetest.NewFake(t.Name())
		q.Faults, _ = failFirst("dead-letter", 2, fault)
		publish(t, q, "p")
		h := &counting{err: handler.Permanent(errors.New("bad p"))}
		c := q.NewConsumer(t, "c", h, enginetest.Options{})
		stop, _ := start(c)
		time.Sleep(time.Minute)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
		if dl := q.DeadLetters(t); len(dl) != 1 || h.count("p") != 1 {
			t.Errorf("dead letters %+v after %d calls; want one after one call", dl, h.count("p"))
		}
	})
}

// A dead-lettering still failing at the stop hands the job back with its
// delivery count, not lost and not dead-lettered.
func TestDeadLetterFailingAtStopHandsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := enginetest.NewFake(t.Name())
		q.Faults, _ = failFirst("dead-letter", 1<<30, nil)
		publish(t, q, "p")
		h := &counting{err: handler.Permanent(errors.New("bad p"))}
		stop, _ := start(q.NewConsumer(t, "c", h, enginetest.Options{}))
		time.Sleep(time.Minute)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
		if got := q.Counts(t); got.Waiting != 1 || got.Held != 0 || len(q.DeadLetters(t)) != 0 {
			t.Errorf("left %+v, dead letters %v; want the job handed back", got, q.DeadLetters(t))
		}
	})
}

// An error nothing fixes (Classify: Stop) ends Run with that error, whatever
// operation met it.
func TestStopErrorEndsRun(t *testing.T) {
	for _, op := range []string{"start", "fetch", "settle", "keep"} {
		t.Run(op, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := enginetest.NewFake(t.Name())
				q.Faults, _ = failFirst(op, 1, fmt.Errorf("wrong type: %w", enginetest.ErrBroken))
				publish(t, q, "p")
				h := &counting{}
				_, done := start(q.NewConsumer(t, "c", h, enginetest.Options{KeepAlive: time.Second}))
				select {
				case err := <-done:
					if !errors.Is(err, enginetest.ErrBroken) {
						t.Errorf("Run = %v; want the error that stopped it", err)
					}
				case <-time.After(time.Hour):
					t.Fatal("Run did not return after an error nothing fixes")
				}
			})
		})
	}
}

// Transient fetch failures are waited out; the consumer goes on.
func TestFetchFailureWaitedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := enginetest.NewFake(t.Name())
		q.Faults, _ = failFirst("fetch", 5, nil)
		publish(t, q, "0")
		h := &counting{}
		stop, _ := start(q.NewConsumer(t, "c", h, enginetest.Options{}))
		time.Sleep(time.Minute)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
		if h.count("0") != 1 || q.Counts(t).Left() != 0 {
			t.Errorf("job handled %d times, left %+v; want handled once, nothing left", h.count("0"), q.Counts(t))
		}
	})
}

func TestRunTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := enginetest.NewFake(t.Name())
		c := q.NewConsumer(t, "c", &counting{}, enginetest.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Run(ctx); err != nil {
			t.Fatalf("first Run = %v; want nil", err)
		}
		if err := c.Run(ctx); !errors.Is(err, engine.ErrAlreadyRun) {
			t.Errorf("second Run = %v; want ErrAlreadyRun", err)
		}
	})
}

func TestNormalize(t *testing.T) {
	h := &counting{}
	for _, tc := range []struct {
		name string
		cfg  engine.Config
		ok   bool
	}{
		{"defaults", engine.Config{Handler: h}, true},
		{"nil handler", engine.Config{}, false},
		{"negative Concurrency", engine.Config{Handler: h, Concurrency: -1}, false},
		{"negative DrainTimeout", engine.Config{Handler: h, DrainTimeout: -1}, false},
		{"Concurrency too large", engine.Config{Handler: h, Concurrency: engine.MaxConcurrency + 1}, false},
		{"MaxRetryBackoff below RetryBackoff", engine.Config{Handler: h, RetryBackoff: time.Minute, MaxRetryBackoff: time.Second}, false},
		{"RetryBackoff above the default MaxRetryBackoff", engine.Config{Handler: h, RetryBackoff: time.Hour}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.cfg
			got, err := tc.cfg.Normalize()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, engine.ErrInvalidOptions)) {
				t.Fatalf("Normalize() = %v; want ok %v (else ErrInvalidOptions)", err, tc.ok)
			}
			if tc.cfg.Concurrency != before.Concurrency || tc.cfg.Logger != before.Logger {
				t.Errorf("Normalize changed its receiver")
			}
			if tc.ok && (got.Concurrency == 0 || got.MaxDeliveries == 0 || got.RetryBackoff == 0 ||
				got.MaxRetryBackoff < got.RetryBackoff || got.DrainTimeout == 0 || got.MaxBytes == 0 || got.Logger == nil) {
				t.Errorf("Normalize() = %+v; want every default filled", got)
			}
		})
	}
}

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
