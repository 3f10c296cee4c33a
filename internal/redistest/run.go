package redistest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Running is a Run(ctx) error lifecycle (a consumer, a reclaimer) started by
// [Go] and still in progress, or returned.
type Running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// Go runs run in a goroutine with a context of its own. Stop, also run by
// t.Cleanup, cancels that context and returns run's result.
func Go(t testing.TB, run func(context.Context) error) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	t.Cleanup(func() { _ = r.Stop() })
	return r
}

// Cancel cancels run's context without waiting for it to return.
func (r *Running) Cancel() { r.cancel() }

// Stop cancels run's context and returns its result.
func (r *Running) Stop() error {
	r.once.Do(func() {
		r.cancel()
		r.err = <-r.done
	})
	return r.err
}

// Exited reports run's result if it has returned on its own.
func (r *Running) Exited() (error, bool) {
	select {
	case err := <-r.done:
		r.once.Do(func() { r.err = err })
		return err, true
	default:
		return nil, false
	}
}

// Wait waits for run to return on its own within timeout, and fails t if
// it does not.
func (r *Running) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.once.Do(func() { r.err = err })
		return err
	case <-time.After(timeout):
		t.Fatalf("Run did not return within %v", timeout)
		return nil
	}
}

// Eventually polls cond every 10ms until it holds, and fails t if it does
// not within timeout; what says what was awaited.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
