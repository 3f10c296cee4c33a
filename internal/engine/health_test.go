package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/health"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/stream"
)

// The errors of a scripted source, classified Wait, Repair and Stop.
var (
	errDown    = errors.New("scripted: redis down")
	errNoGroup = errors.New("scripted: NOGROUP")
	errBroken  = errors.New("scripted: broken")
)

// scripted is a source whose fetches, repairs and starts do what the test
// sets: succeed (after blockTime, with the jobs in jobs), fail with an
// error, or hang until released. It is safe for concurrent use.
type scripted struct {
	mu        sync.Mutex
	startErr  error
	fetchErr  error
	repairErr error
	hang      chan struct{} // not nil: Fetch waits for it to close
	jobs      []*engine.Delivery
}

const blockTime = 100 * time.Millisecond

func (s *scripted) set(f func(s *scripted)) { s.mu.Lock(); f(s); s.mu.Unlock() }

func (s *scripted) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startErr
}
func (s *scripted) Fetchers() []engine.Fetcher { return []engine.Fetcher{scriptedFetcher{s}} }
func (s *scripted) Settle(context.Context, []*engine.Delivery) error {
	return nil
}
func (s *scripted) Redeliver(_ context.Context, ds []*engine.Delivery) ([]*engine.Delivery, error) {
	return ds, nil
}
func (s *scripted) DeadLetter(context.Context, *engine.Delivery, string) (bool, error) {
	return true, nil
}
func (s *scripted) Release(_ context.Context, ds []*engine.Delivery, _ bool) (int, error) {
	return len(ds), nil
}
func (s *scripted) Classify(op string, err error) (engine.Action, error) {
	switch {
	case errors.Is(err, errDown):
		return engine.Wait, nil
	case errors.Is(err, errNoGroup):
		return engine.Repair, nil
	}
	return engine.Stop, err
}
func (s *scripted) Stop(context.Context) {}
func (s *scripted) Repair(context.Context, error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.repairErr == nil {
		s.fetchErr = nil // the group exists again
	}
	return s.repairErr
}

type scriptedFetcher struct{ s *scripted }

func (f scriptedFetcher) Close() {}
func (f scriptedFetcher) Fetch(ctx context.Context, max int) ([]*engine.Delivery, error) {
	s := f.s
	s.mu.Lock()
	err, hang := s.fetchErr, s.hang
	var ds []*engine.Delivery
	if err == nil && hang == nil {
		n := min(max, len(s.jobs))
		ds, s.jobs = s.jobs[:n], s.jobs[n:]
	}
	s.mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case hang != nil:
		<-hang // a call that no timeout ends, nor ctx
		return nil, nil
	case len(ds) > 0:
		return ds, nil
	}
	select {
	case <-ctx.Done():
	case <-time.After(blockTime):
	}
	return nil, nil
}

func newScripted(t *testing.T, s *scripted, h handler.Handler) *engine.Engine {
	t.Helper()
	if h == nil {
		h = handler.Func(func(context.Context, *stream.Message) error { return nil })
	}
	cfg, err := engine.Config{Handler: h, Concurrency: 2, Prefetch: 2, Name: "scripted/q", FetchWait: blockTime, DrainTimeout: time.Minute}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return engine.New(s, cfg)
}

// wantHealth checks the verdicts of st and that its Reason holds each of
// reasons (none when ready).
func wantHealth(t *testing.T, when string, st health.Status, ready, live bool, reasons ...string) {
	t.Helper()
	if st.Ready != ready || st.Live != live {
		t.Fatalf("%s: Health() = ready %v, live %v (reason %q); want ready %v, live %v", when, st.Ready, st.Live, st.Reason, ready, live)
	}
	if ready != (st.Reason == "") {
		t.Fatalf("%s: Health().Reason = %q with ready %v", when, st.Reason, ready)
	}
	for _, r := range reasons {
		if !strings.Contains(st.Reason, r) {
			t.Fatalf("%s: Health().Reason = %q; want it to name %q", when, st.Reason, r)
		}
	}
	if st.Name != "scripted/q" {
		t.Fatalf("%s: Health().Name = %q; want scripted/q", when, st.Name)
	}
}

// TestHealthLifecycle walks one consumer through every state Health
// reports, on fake time: before Run, started, an outage, a group that
// vanished and could not be created again at once, a wedged fetch, a drain
// with a handler running, a stop.
func TestHealthLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		busy := make(chan struct{}, 1)
		s := &scripted{startErr: errDown}
		e := newScripted(t, s, handler.Func(func(context.Context, *stream.Message) error {
			busy <- struct{}{}
			<-release
			return nil
		}))
		wantHealth(t, "before Run", e.Health(), false, true, "not running")

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		synctest.Wait()
		st := e.Health()
		wantHealth(t, "Run waiting for Redis at start", st, false, true, "starting", "redis unavailable")
		if st.UnreachableSince.IsZero() || !errors.Is(st.Err, errDown) || !st.Started.IsZero() {
			t.Fatalf("Run waiting at start: UnreachableSince %v, Err %v, Started %v; want set, errDown, zero", st.UnreachableSince, st.Err, st.Started)
		}
		down := st.UnreachableSince

		time.Sleep(time.Second)
		if got := e.Health().UnreachableSince; !got.Equal(down) {
			t.Fatalf("UnreachableSince moved from %v to %v during one outage; want the first failure's time", down, got)
		}
		s.set(func(s *scripted) { s.startErr = nil })
		time.Sleep(10 * time.Second) // past the longest backoff
		st = e.Health()
		wantHealth(t, "started", st, true, true)
		if st.Started.IsZero() || st.LastFetch.IsZero() || !st.UnreachableSince.IsZero() || st.Err != nil {
			t.Fatalf("started: Started %v, LastFetch %v, UnreachableSince %v, Err %v; want set, set, zero, nil", st.Started, st.LastFetch, st.UnreachableSince, st.Err)
		}

		s.set(func(s *scripted) { s.fetchErr = errDown })
		time.Sleep(blockTime * 2)
		st = e.Health()
		wantHealth(t, "fetches failing", st, false, true, "redis unavailable", errDown.Error())
		last := st.LastFetch
		s.set(func(s *scripted) { s.fetchErr = nil })
		time.Sleep(10 * time.Second)
		st = e.Health()
		wantHealth(t, "fetches back", st, true, true)
		if !st.LastFetch.After(last) {
			t.Fatalf("LastFetch = %v after the outage; want after %v", st.LastFetch, last)
		}

		s.set(func(s *scripted) { s.fetchErr, s.repairErr = errNoGroup, errDown })
		time.Sleep(blockTime * 2)
		st = e.Health()
		wantHealth(t, "group missing, repair failing", st, false, true, "consumer group missing", "redis unavailable")
		if !st.GroupMissing {
			t.Fatal("GroupMissing = false while the repair fails")
		}
		s.set(func(s *scripted) { s.repairErr = nil })
		time.Sleep(10 * time.Second)
		st = e.Health()
		wantHealth(t, "group repaired", st, true, true)
		if st.GroupMissing {
			t.Fatal("GroupMissing = true after the repair succeeded")
		}

		hang := make(chan struct{})
		s.set(func(s *scripted) { s.hang = hang })
		time.Sleep(2 * blockTime) // the fetch under way returns, the next one hangs
		wantHealth(t, "fetch in flight, within its limit", e.Health(), true, true)
		time.Sleep(health.WedgedAfter + blockTime)
		st = e.Health()
		wantHealth(t, "fetch in flight past its limit", st, false, false, "wedged: a fetch has been in flight")
		if !st.Wedged {
			t.Fatal("Wedged = false with a fetch hung past its limit")
		}
		s.set(func(s *scripted) { s.hang = nil })
		close(hang)
		time.Sleep(blockTime)
		wantHealth(t, "hung fetch returned", e.Health(), true, true)

		s.set(func(s *scripted) {
			s.jobs = append(s.jobs, &engine.Delivery{Key: "1", Msg: stream.Message{ID: "1-0", Values: map[string]string{"n": "1"}}})
		})
		<-busy
		cancel()
		synctest.Wait()
		st = e.Health()
		wantHealth(t, "draining with a handler running", st, false, true, "draining")
		if !st.Draining || st.Stopped {
			t.Fatalf("draining: Draining %v, Stopped %v; want true, false", st.Draining, st.Stopped)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
		st = e.Health()
		wantHealth(t, "after Run returned nil", st, false, true, "stopped")
		if !st.Stopped || st.Draining || st.Err != nil {
			t.Fatalf("stopped: Stopped %v, Draining %v, Err %v; want true, false, nil", st.Stopped, st.Draining, st.Err)
		}
		if err := e.Run(context.Background()); !errors.Is(err, engine.ErrAlreadyRun) {
			t.Fatalf("second Run = %v; want ErrAlreadyRun", err)
		}
		if st := e.Health(); st.Err != nil || !st.Live {
			t.Fatalf("a second Run's ErrAlreadyRun changed Health to live %v, Err %v", st.Live, st.Err)
		}
	})
}

// TestHealthRunError: a Run that returned an error is not live, and says
// why.
func TestHealthRunError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &scripted{}
		e := newScripted(t, s, nil)
		done := make(chan error, 1)
		go func() { done <- e.Run(context.Background()) }()
		time.Sleep(blockTime / 2)
		wantHealth(t, "running", e.Health(), true, true)
		s.set(func(s *scripted) { s.fetchErr = errBroken })
		err := <-done
		if !errors.Is(err, errBroken) {
			t.Fatalf("Run = %v; want errBroken", err)
		}
		st := e.Health()
		wantHealth(t, "Run returned an error", st, false, false, "stopped: ", errBroken.Error())
		if !st.Stopped || !errors.Is(st.Err, errBroken) {
			t.Fatalf("Stopped %v, Err %v; want true, errBroken", st.Stopped, st.Err)
		}
	})
}
