package queue_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// A handler that calls runtime.Goexit (as t.FailNow does) counts as a
// failed delivery, as for streams: the job is retried (here it then
// succeeds), OnError hears of it, and the pool keeps its size.
func TestQueueHandlerGoexit(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			q := names(t, rdb)
			ids := push(t, rdb, q, 20)
			var exited atomic.Bool
			rec := newRecorder(func(ctx context.Context, msg *stream.Message) error {
				if msg.ID == ids[3] && exited.CompareAndSwap(false, true) {
					runtime.Goexit()
				}
				return nil
			})
			var sawGoexit atomic.Bool
			opts := fastOptions()
			opts.Concurrency, opts.Prefetch = 2, 2
			opts.OnError = func(err error) {
				if strings.Contains(err.Error(), "Goexit") {
					sawGoexit.Store(true)
				}
			}
			c := m.new(t, rdb, []string{q}, rec, opts)
			run := start(t, c.Run)
			eventually(t, 10*time.Second, "every job acknowledged", func() bool { return c.Stats().Acked == uint64(len(ids)) })
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			_, deliv, _ := rec.snapshot()
			if !slices.Equal(deliv[ids[3]], []int64{1, 2}) {
				t.Errorf("job after Goexit deliveries = %v; want [1 2]", deliv[ids[3]])
			}
			if st := c.Stats(); st.Failed != 1 || st.Retried != 1 || st.DeadLettered != 0 {
				t.Errorf("Stats = %+v; want Failed 1, Retried 1, no dead letters", st)
			}
			if !sawGoexit.Load() {
				t.Error("OnError was not told about the Goexit")
			}
		})
	}
}

// A reliable consumer whose heartbeat expired, and whose processing list
// another consumer recovered meanwhile, cancels the handler of the job it
// lost (context.Cause: handler.ErrLeaseLost) and does not remove that job
// from anywhere; fetched again, the job runs with its delivery counted.
func TestQueueLostJobCancelsHandler(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	q := names(t, rdb)
	ids := push(t, rdb, q, 1)
	started := make(chan struct{})
	cause := make(chan error, 1)
	var calls atomic.Int64
	rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
		if calls.Add(1) > 1 {
			return nil
		}
		close(started)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return ctx.Err()
	})
	opts := fastOptions()
	opts.HeartbeatTTL = 300 * time.Millisecond
	c := reliable(t, rdb, []string{q}, "a", rec, opts)
	run := start(t, c.Run)
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not start")
	}
	// What another consumer's sweep does once a's heartbeat expired,
	// at once: the heartbeat is gone and the job back in the queue.
	const recover = `redis.call('DEL', KEYS[1])
while redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', 'RIGHT') do end`
	if err := rdb.Eval(context.Background(), recover, []string{queue.HeartbeatKey(q, "a"), queue.ProcessingKey(q, "a"), q}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	select {
	case err := <-cause:
		if !errors.Is(err, handler.ErrLeaseLost) {
			t.Errorf("handler context cause = %v; want ErrLeaseLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler of the lost job was not cancelled")
	}
	eventually(t, 10*time.Second, "the job fetched again and acknowledged", func() bool { return c.Stats().Acked == 1 })
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	_, deliv, _ := rec.snapshot()
	if !slices.Equal(deliv[ids[0]], []int64{1, 2}) {
		t.Errorf("deliveries = %v; want [1 2]", deliv[ids[0]])
	}
	if st := c.Stats(); st.LeaseLost != 1 || st.Failed != 0 || st.Retried != 0 {
		t.Errorf("Stats = %+v; want LeaseLost 1, no failure counted", st)
	}
	if n := llen(t, rdb, q) + llen(t, rdb, queue.ProcessingKey(q, "a")) + llen(t, rdb, queue.DeadLetterKey(q)); n != 0 {
		t.Errorf("jobs left = %d; want 0", n)
	}
}

// A stop hands the fetched, unstarted jobs back to the front of the queue
// in their order, however many (the engine releases them in batches), and
// counts them in Stats().Released.
func TestQueueLargeHandBackKeepsOrder(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			q := names(t, rdb)
			ids := push(t, rdb, q, 300)
			release := make(chan struct{})
			rec := newRecorder(func(ctx context.Context, msg *stream.Message) error {
				<-release
				return nil
			})
			opts := fastOptions()
			opts.Concurrency, opts.Prefetch = 1, 250
			c := m.new(t, rdb, []string{q}, rec, opts)
			run := start(t, c.Run)
			eventually(t, 10*time.Second, "251 jobs fetched", func() bool { return llen(t, rdb, q) == 49 && rec.calls() == 1 })
			run.Cancel()
			eventually(t, 10*time.Second, "the unstarted jobs handed back", func() bool { return llen(t, rdb, q) == 299 })
			close(release)
			if err := run.Wait(t, 10*time.Second); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			if st := c.Stats(); st.Released != 250 || st.Acked != 1 {
				t.Errorf("Stats = %+v; want Released 250 (fetched, never started), Acked 1", st)
			}
			left, _ := rdb.LRange(context.Background(), q, 0, -1).Result()
			var leftIDs []string
			for i := len(left) - 1; i >= 0; i-- {
				var env struct {
					ID string `json:"id"`
				}
				_ = jsonUnmarshal(left[i], &env)
				leftIDs = append(leftIDs, env.ID)
			}
			if !slices.Equal(leftIDs, ids[1:]) {
				for i := range min(len(leftIDs), len(ids)-1) {
					if leftIDs[i] != ids[i+1] {
						t.Errorf("queue after the hand-back differs from the push order at %d of %d (%s, want %s)", i, len(leftIDs), leftIDs[i], ids[i+1])
						break
					}
				}
			}
		})
	}
}
