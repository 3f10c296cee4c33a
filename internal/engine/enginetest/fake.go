package enginetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/stream"
)

// Fake is an in-memory queue with the semantics of a reliable queue, and
// the [Queue] of [FakeHarness]: a fetch moves jobs from waiting to held by
// the fetching consumer; Settle removes them (whoever holds them, as XACK
// does); Redeliver counts one more delivery; DeadLetter moves a job to the
// dead list; Release puts jobs back, first in line or last; Keep reports
// the jobs another consumer took; Sweep takes over jobs whose holder has
// not kept them for a KeepAlive. A Fake is safe for concurrent use; make it
// with [NewFake], inside the synctest bubble that uses it.
type Fake struct {
	name string

	// Faults, when set, is called first by every source method with the
	// operation's name ("fetch", "settle", "redeliver", "dead-letter",
	// "release", "keep", "sweep") and the consumer's name; an error it
	// returns is returned by the method, which then does nothing. Errors
	// wrapping [ErrBroken] are classified Stop, others Wait. Set it before
	// a consumer runs.
	Faults func(op, consumer string) error

	mu      sync.Mutex
	seq     int
	waiting []*fakeJob
	held    map[string]*fakeJob // by ID
	dead    []DeadLetter
	changed chan struct{} // closed and replaced when jobs start waiting
}

type fakeJob struct {
	seq        int
	id         string
	values     map[string]string
	deliveries int64
	holder     string    // the consumer holding it, or thief
	kept       time.Time // when its holder last fetched or kept it
}

// ErrBroken is the error a [Fake.Faults] returns (wrapped) for a failure
// that waiting cannot fix: the fake classifies it Stop.
var ErrBroken = errors.New("enginetest: fake broken")

// thief holds the jobs Take took: it keeps them for good.
const thief = "enginetest-thief"

// fakeBlock is how long a fake Fetch waits for work.
const fakeBlock = time.Second

// defaultKeepAlive is the fake's KeepAlive when Options leave it zero.
const defaultKeepAlive = 30 * time.Second

// NewFake returns an empty fake queue.
func NewFake(name string) *Fake {
	return &Fake{name: name, held: make(map[string]*fakeJob), changed: make(chan struct{})}
}

// FakeHarness returns a harness of fresh [Fake] queues, lacking nothing.
// Set its Bubble to run the suite under testing/synctest.
func FakeHarness() Harness {
	return Harness{NewQueue: func(t *testing.T) Queue { return NewFake(t.Name()) }}
}

// Publish appends jobs.
func (q *Fake) Publish(t *testing.T, jobs ...map[string]string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, v := range jobs {
		q.seq++
		q.waiting = append(q.waiting, &fakeJob{seq: q.seq, id: fmt.Sprintf("%d-0", q.seq), values: v})
	}
	q.wakeLocked()
}

func (q *Fake) wakeLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

// DeadLetters returns the dead-lettered jobs.
func (q *Fake) DeadLetters(t *testing.T) []DeadLetter {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.dead)
}

// Counts counts waiting and held jobs.
func (q *Fake) Counts(t *testing.T) Counts {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Counts{Waiting: len(q.waiting), Held: len(q.held)}
}

// Take gives the job msg to a consumer that keeps it for good.
func (q *Fake) Take(t *testing.T, consumer string, msg *stream.Message) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	j := q.held[msg.ID]
	if j == nil || j.holder != consumer {
		t.Fatalf("Take(%q, %s): the job is not held by %s", consumer, msg.ID, consumer)
	}
	j.holder = thief
	j.deliveries++
}

// NewConsumer returns the engine running h on a fake source of q.
func (q *Fake) NewConsumer(t *testing.T, name string, h handler.Handler, o Options) Consumer {
	t.Helper()
	var hc hook.Consumer
	if o.Hook != nil {
		hc = o.Hook.Consumer(hook.Target{Kind: hook.List, Name: q.name, Consumer: name})
	}
	cfg, err := engine.Config{
		Hook:          hc,
		Handler:       h,
		Concurrency:   o.Concurrency,
		Prefetch:      o.Prefetch,
		MaxBytes:      o.MaxBytes,
		MaxDeliveries: o.MaxDeliveries,
		RetryBackoff:  o.RetryBackoff,
		DrainTimeout:  o.DrainTimeout,
		OnError:       o.OnError,
		Prefix:        "fake",
	}.Normalize()
	if err != nil {
		t.Fatalf("Normalize(%+v) = %v", o, err)
	}
	keep := cmp.Or(o.KeepAlive, defaultKeepAlive)
	return engine.New(&fakeSource{q: q, name: name, keep: keep, fetchers: min(cfg.Concurrency, 2)}, cfg)
}

// fakeSource is one consumer's view of a Fake.
type fakeSource struct {
	q        *Fake
	name     string
	keep     time.Duration
	fetchers int
}

var (
	_ engine.Source  = (*fakeSource)(nil)
	_ engine.Keeper  = (*fakeSource)(nil)
	_ engine.Sweeper = (*fakeSource)(nil)
)

func (s *fakeSource) fault(op string) error {
	if s.q.Faults == nil {
		return nil
	}
	return s.q.Faults(op, s.name)
}

func (s *fakeSource) Start(context.Context) error { return s.fault("start") }
func (s *fakeSource) Stop(context.Context)        {}

func (s *fakeSource) Fetchers() []engine.Fetcher {
	fs := make([]engine.Fetcher, s.fetchers)
	for i := range fs {
		fs[i] = fakeFetcher{s}
	}
	return fs
}

func (s *fakeSource) Classify(op string, err error) (engine.Action, error) {
	if errors.Is(err, ErrBroken) {
		return engine.Stop, fmt.Errorf("fake: %s: %w", op, err)
	}
	return engine.Wait, nil
}

// deliver makes j, now held by this consumer, a delivery; s.q.mu is held.
func (s *fakeSource) deliverLocked(j *fakeJob, now time.Time) *engine.Delivery {
	j.holder, j.kept = s.name, now
	j.deliveries++
	s.q.held[j.id] = j
	return &engine.Delivery{ // Size zero: the engine counts the values
		Msg: stream.Message{ID: j.id, Stream: s.q.name, Values: j.values, Deliveries: j.deliveries},
		Key: j.id,
	}
}

// ownedLocked returns the job d names when this consumer holds it; s.q.mu
// is held.
func (s *fakeSource) ownedLocked(d *engine.Delivery) *fakeJob {
	if j := s.q.held[d.Key]; j != nil && j.holder == s.name {
		return j
	}
	return nil
}

type fakeFetcher struct{ s *fakeSource }

func (f fakeFetcher) Close() {}

// Fetch takes up to max waiting jobs, waiting up to fakeBlock for some.
func (f fakeFetcher) Fetch(ctx context.Context, max int) ([]*engine.Delivery, error) {
	s := f.s
	if err := s.fault("fetch"); err != nil {
		return nil, err
	}
	timer := time.NewTimer(fakeBlock)
	defer timer.Stop()
	for {
		s.q.mu.Lock()
		if n := min(max, len(s.q.waiting)); n > 0 {
			now := time.Now()
			ds := make([]*engine.Delivery, n)
			for i, j := range s.q.waiting[:n] {
				ds[i] = s.deliverLocked(j, now)
			}
			s.q.waiting = slices.Delete(s.q.waiting, 0, n)
			s.q.mu.Unlock()
			return ds, nil
		}
		changed := s.q.changed
		s.q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, nil
		case <-timer.C:
			return nil, nil
		case <-changed:
		}
	}
}

// Settle removes the jobs, whoever holds them (as XACK does: a consumer
// that settles a job it lost makes the job vanish, which the suite sees).
func (s *fakeSource) Settle(_ context.Context, ds []*engine.Delivery) error {
	if err := s.fault("settle"); err != nil {
		return err
	}
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	for _, d := range ds {
		delete(s.q.held, d.Key)
	}
	return nil
}

// Redeliver counts one more delivery of the jobs still held here.
func (s *fakeSource) Redeliver(_ context.Context, ds []*engine.Delivery) ([]*engine.Delivery, error) {
	if err := s.fault("redeliver"); err != nil {
		return nil, err
	}
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	var again []*engine.Delivery
	now := time.Now()
	for _, d := range ds {
		if j := s.ownedLocked(d); j != nil {
			j.deliveries++
			j.kept = now
			d.Msg.Deliveries = j.deliveries
			again = append(again, d)
		}
	}
	return again, nil
}

// DeadLetter moves a job held here to the dead list.
func (s *fakeSource) DeadLetter(_ context.Context, d *engine.Delivery, reason string) (bool, error) {
	if err := s.fault("dead-letter"); err != nil {
		return false, err
	}
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	j := s.ownedLocked(d)
	if j == nil {
		return false, nil
	}
	delete(s.q.held, j.id)
	s.q.dead = append(s.q.dead, DeadLetter{Values: j.values, Reason: reason, Deliveries: j.deliveries})
	return true, nil
}

// Release puts the jobs held here back, with their deliveries' counts:
// first in line (in the order given) when now, else last.
func (s *fakeSource) Release(_ context.Context, ds []*engine.Delivery, now bool) (int, error) {
	if err := s.fault("release"); err != nil {
		return 0, err
	}
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	var back []*fakeJob
	for _, d := range ds {
		if j := s.ownedLocked(d); j != nil {
			delete(s.q.held, j.id)
			j.holder = ""
			j.deliveries = d.Msg.Deliveries
			back = append(back, j)
		}
	}
	if len(back) == 0 {
		return 0, nil
	}
	if now {
		s.q.waiting = append(back, s.q.waiting...)
	} else {
		s.q.waiting = append(s.q.waiting, back...)
	}
	s.q.wakeLocked()
	return len(back), nil
}

func (s *fakeSource) KeepInterval() time.Duration  { return s.keep }
func (s *fakeSource) SweepInterval() time.Duration { return s.keep }

// Keep keeps the jobs still held here and reports the others lost.
func (s *fakeSource) Keep(_ context.Context, held []*engine.Delivery) ([]*engine.Delivery, error) {
	if err := s.fault("keep"); err != nil {
		return nil, err
	}
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	now := time.Now()
	var lost []*engine.Delivery
	for _, d := range held {
		if j := s.ownedLocked(d); j != nil {
			j.kept = now
		} else {
			lost = append(lost, d)
		}
	}
	return lost, nil
}

// Sweep takes over, oldest first, up to max jobs whose holder has not kept
// them for a KeepAlive (jobs Take took are kept for good).
func (s *fakeSource) Sweep(_ context.Context, max int) ([]*engine.Delivery, bool, error) {
	if err := s.fault("sweep"); err != nil {
		return nil, false, err
	}
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	now := time.Now()
	var idle []*fakeJob
	for _, j := range s.q.held {
		if j.holder != thief && now.Sub(j.kept) > s.keep {
			idle = append(idle, j)
		}
	}
	slices.SortFunc(idle, func(a, b *fakeJob) int { return cmp.Compare(a.seq, b.seq) })
	more := len(idle) > max
	ds := make([]*engine.Delivery, 0, min(max, len(idle)))
	for _, j := range idle[:min(max, len(idle))] {
		ds = append(ds, s.deliverLocked(j, now))
	}
	return ds, more, nil
}
