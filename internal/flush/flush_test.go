package flush

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/streamgroup/streamgroup/internal/backoff"
)

// queue is a test double for the caller's buffer.
type queue struct {
	mu      sync.Mutex
	n       int
	fail    int // failures still to return
	flushes []time.Duration
	start   time.Time
	errs    int
}

func (q *queue) pending() int { q.mu.Lock(); defer q.mu.Unlock(); return q.n }
func (q *queue) add(k int)    { q.mu.Lock(); q.n += k; q.mu.Unlock() }
func (q *queue) flush(context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.flushes = append(q.flushes, time.Since(q.start))
	if q.fail > 0 {
		q.fail--
		return errors.New("down")
	}
	q.n = 0
	return nil
}

func TestLoop(t *testing.T) {
	const batch, interval = 10, 50 * time.Millisecond
	retry := backoff.Policy{Base: time.Second, Max: time.Second}
	for _, tc := range []struct {
		name  string
		items int
		fail  int
		want  []time.Duration // times of the flushes
		errs  int
	}{
		{"a full batch flushes at once", batch, 0, []time.Duration{0}, 0},
		{"fewer wait for the interval", 3, 0, []time.Duration{interval}, 0},
		{"a failure backs off, then retries", 3, 1, []time.Duration{interval, interval + time.Second}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := &queue{fail: tc.fail, start: time.Now()}
				wake := make(chan struct{}, 1)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() {
					Loop(ctx, wake, batch, interval, retry, q.pending, q.flush, func(error) { q.errs++ })
					close(done)
				}()
				q.add(tc.items)
				wake <- struct{}{}
				time.Sleep(5 * time.Second) // fake time: every timer due by then has fired
				synctest.Wait()
				cancel()
				<-done
				if len(q.flushes) != len(tc.want) || q.errs != tc.errs {
					t.Fatalf("flushes at %v, %d errors reported; want at %v, %d errors", q.flushes, q.errs, tc.want, tc.errs)
				}
				for i := range tc.want {
					// Jitter of the backoff policy stays within its Base.
					if d := q.flushes[i] - tc.want[i]; d < -time.Second || d > 0 {
						t.Errorf("flush %d at %v; want at most %v (and no earlier than 1s before)", i, q.flushes[i], tc.want[i])
					}
				}
				if q.pending() != 0 {
					t.Errorf("pending after the loop = %d; want 0", q.pending())
				}
			})
		})
	}
}
