package listsrc

import (
	"context"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/blockconn"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/listwire"
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
// its own, never closed in flight (UnblockOnly): the popped job is only in
// the reply, so a stop whose CLIENT UNBLOCK is refused waits for it.
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
	rec := listwire.EncodeDead(s.queues[j.q], "", d.Msg.ID, d.Msg.Deliveries, reason, s.element(d))
	return true, s.rdb.LPush(ctx, s.dead[j.q], rec).Err()
}

// Release pushes jobs back to their queues (see lists.release), with the
// delivery count each has.
func (s *simpleSource) Release(ctx context.Context, ds []*engine.Delivery, now bool) (int, error) {
	return s.release(ds, now, func(qi int, qds []*engine.Delivery, dir string) (int, error) {
		args := make([]any, len(qds))
		for i, d := range qds {
			args[i] = s.element(d)
		}
		push := s.rdb.LPush
		if dir == "R" {
			push = s.rdb.RPush
		}
		if err := push(ctx, s.queues[qi], args...).Err(); err != nil {
			return 0, err
		}
		return len(qds), nil
	})
}

// element returns the element that stands for d: the original text for a
// plain string never delivered or a malformed envelope, else an envelope
// with d's delivery count.
func (s *simpleSource) element(d *engine.Delivery) string {
	if j := jobOf(d); d.Bad != "" || (j.plain && d.Msg.Deliveries == 0) {
		return j.elem
	}
	env := listwire.Envelope{SG: 1, N: d.Msg.Deliveries, ID: d.Msg.ID, V: d.Msg.Values}
	return env.Encode()
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
// for up to PollInterval. When ctx ends, the wait is woken with CLIENT
// UNBLOCK and pops nothing.
func (f *simpleFetcher) Fetch(ctx context.Context, n int) ([]*engine.Delivery, error) {
	s := f.s
	fair := f.fair.next(len(s.queues))
	res, err := popScript.Run(ctx, s.rdb, s.queues, n, fair).Slice()
	if err != nil {
		return nil, err
	}
	jobs, err := s.scriptJobs(res)
	if err != nil {
		return nil, err
	}
	f.fair.fetched(fair, len(jobs))
	if len(jobs) == 0 {
		var kv []string
		err := f.wc.Block(ctx, func(rdb redis.UniversalClient) (err error) {
			if s.poll%time.Second == 0 {
				kv, err = rdb.BRPop(ctx, s.poll, s.queues...).Result()
				return err
			}
			args := []any{"brpop"}
			for _, q := range s.queues {
				args = append(args, q)
			}
			kv, err = rdb.Do(ctx, append(args, seconds(s.poll))...).StringSlice()
			return err
		})
		if err != nil && !rediserr.IsNil(err) {
			return nil, err
		}
		if len(kv) == 2 && slices.Contains(s.queues, kv[0]) {
			jobs = append(jobs, scriptJob{q: slices.Index(s.queues, kv[0]), elem: kv[1]})
		}
	}
	ds := make([]*engine.Delivery, len(jobs))
	for i, j := range jobs {
		el := listwire.Decode(j.elem)
		// A plain string gets an ID, kept if the job is written back.
		if el.Plain {
			el.Env.ID = listwire.NewIDs(1)[0]
		}
		ds[i] = s.delivery(j.q, j.elem, el, el.Env.N+1)
	}
	return ds, nil
}
