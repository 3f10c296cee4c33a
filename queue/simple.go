package queue

import (
	"context"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/blockconn"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/rediserr"
)

// simpleSource is the engine's source for a simple consumer: jobs are
// popped, so they live in memory only until handled (at most once). A
// retry counts in memory; a dead letter or a hand-back pushes the job.
type simpleSource struct{ *lists }

var _ engine.Source = (*simpleSource)(nil)

func (s *simpleSource) Start(ctx context.Context) error { return s.start(ctx) }
func (s *simpleSource) Stop(context.Context)            {}

// Fetchers returns the one fetch loop. Its BRPOP blocks on a connection of
// its own, never closed with the BRPOP in flight (UnblockOnly): the job
// popped is in the reply and nowhere else, so a stop whose CLIENT UNBLOCK
// is refused waits for the BRPOP to end, up to PollInterval.
func (s *simpleSource) Fetchers() []engine.Fetcher {
	return []engine.Fetcher{&simpleFetcher{s: s, wc: blockconn.New(s.rdb, blockconn.UnblockOnly)}}
}

// Settle has nothing to do: a popped job is out of Redis already.
func (s *simpleSource) Settle(context.Context, []*engine.Delivery) error { return nil }

// Redeliver counts one more delivery, in memory.
func (s *simpleSource) Redeliver(_ context.Context, ds []*engine.Delivery) ([]*engine.Delivery, error) {
	for _, d := range ds {
		d.Msg.Deliveries++
	}
	return ds, nil
}

// DeadLetter pushes a record of d to the dead-letter list.
func (s *simpleSource) DeadLetter(ctx context.Context, d *engine.Delivery, reason string) (bool, error) {
	j := jobOf(d)
	rec := encodeDead(s.cfg.queues[j.q], "", d.Msg.ID, d.Msg.Deliveries, reason, s.element(d, d.Msg.Deliveries))
	if err := s.rdb.LPush(ctx, s.cfg.dead[j.q], rec).Err(); err != nil {
		return false, err
	}
	return true, nil
}

// Release pushes jobs back to their queues, with the delivery count each
// has: with now to the front (RPUSH, the first of ds first in line),
// without to the back (LPUSH).
func (s *simpleSource) Release(ctx context.Context, ds []*engine.Delivery, now bool) (int, error) {
	total := 0
	for qi, qds := range s.byQueue(ds) {
		if len(qds) == 0 {
			continue
		}
		args := make([]any, len(qds))
		for i, d := range qds {
			args[i] = s.element(d, d.Msg.Deliveries)
		}
		var err error
		if now {
			slices.Reverse(args) // so the first ends up at the very front
			err = s.rdb.RPush(ctx, s.cfg.queues[qi], args...).Err()
		} else {
			err = s.rdb.LPush(ctx, s.cfg.queues[qi], args...).Err()
		}
		if err != nil {
			return total, err
		}
		total += len(qds)
		if !now {
			s.requeued.Add(uint64(len(qds)))
		}
	}
	return total, nil
}

// element returns the element that stands for d with delivery count n:
// the original text for a plain string never delivered (n == 0) or a
// malformed envelope, else an envelope.
func (s *simpleSource) element(d *engine.Delivery, n int64) string {
	j := jobOf(d)
	if d.Bad != "" || (j.plain && n == 0) {
		return j.elem
	}
	env := envelope{SG: 1, N: n, ID: d.Msg.ID, V: d.Msg.Values}
	return env.encode()
}

// simpleFetcher is a simple consumer's one fetch loop.
type simpleFetcher struct {
	s    *simpleSource
	wc   *blockconn.Conn
	fair fairness
}

func (f *simpleFetcher) Close() { f.wc.Close() }

// Fetch pops up to n jobs from the queues in priority order (pop.lua) and,
// when they are all empty, waits for one with BRPOP over all the queues
// for up to PollInterval.
func (f *simpleFetcher) Fetch(ctx context.Context, n int) ([]*engine.Delivery, error) {
	s := f.s
	fair := f.fair.next(len(s.cfg.queues))
	res, err := s.s.pop.Run(ctx, s.rdb, s.cfg.queues, n, flag(fair)).Slice()
	if err != nil {
		return nil, err
	}
	jobs, err := s.scriptJobs(res)
	if err != nil {
		return nil, err
	}
	f.fair.fetched(fair, len(jobs))
	if len(jobs) == 0 {
		kv, err := f.brpop(ctx)
		if rediserr.IsNil(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if len(kv) == 2 {
			if i := slices.Index(s.cfg.queues, kv[0]); i >= 0 {
				jobs = append(jobs, scriptJob{q: i, elem: kv[1]})
			}
		}
	}
	ds := make([]*engine.Delivery, len(jobs))
	for i, j := range jobs {
		// A plain string gets an ID of its own here, kept if the job is
		// written back (a requeued retry, a dead letter, a hand-back).
		el := decodeElement(j.elem)
		if el.plain {
			el.env.ID = newID()
		}
		ds[i] = s.delivery(j.q, j.elem, el, el.env.N+1)
	}
	return ds, nil
}

// brpop waits for a job in any of the queues, for up to PollInterval. When
// ctx ends, the wait is woken with CLIENT UNBLOCK and pops nothing.
func (f *simpleFetcher) brpop(ctx context.Context) (kv []string, err error) {
	queues, d := f.s.cfg.queues, f.s.cfg.poll
	err = f.wc.Block(ctx, func(rdb redis.UniversalClient) error {
		if d%time.Second == 0 {
			kv, err = rdb.BRPop(ctx, d, queues...).Result()
			return err
		}
		args := make([]any, 0, 2+len(queues))
		args = append(args, "brpop")
		for _, q := range queues {
			args = append(args, q)
		}
		args = append(args, seconds(d))
		kv, err = rdb.Do(ctx, args...).StringSlice()
		return err
	})
	return kv, err
}
