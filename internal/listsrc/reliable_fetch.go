package listsrc

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/blockconn"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/listwire"
	"github.com/streamgroup/streamgroup/internal/rediserr"
)

// reliableFetcher is a reliable consumer's one fetch loop. Its waits block
// on a connection of its own, closed when the stop's CLIENT UNBLOCK fails:
// its BLMOVE moves nothing, so a lost reply loses nothing.
type reliableFetcher struct {
	s    *reliableSource
	wc   *blockconn.Conn
	fair fairness
}

func (f *reliableFetcher) Close() { f.wc.Close() }

// Fetch first adopts the jobs a fetch whose reply was lost left in the
// processing lists, then moves up to n jobs from the queues into the
// processing lists (fetch.lua). When there were none, it waits up to
// PollInterval for a job in the first queue and returns nothing; when ctx
// ends, the wait is woken.
func (f *reliableFetcher) Fetch(ctx context.Context, n int) ([]*engine.Delivery, error) {
	s := f.s
	s.fetchMu.Lock()
	if s.needResync {
		ds, more, err := s.resyncLocked(ctx, n)
		if err == nil {
			s.needResync = more
		}
		if err != nil || len(ds) > 0 {
			s.fetchMu.Unlock()
			return ds, err
		}
	}
	fair := f.fair.next(len(s.queues))
	ds, err := s.fetch(ctx, n, fair)
	s.fetchMu.Unlock()
	if err != nil {
		return nil, err
	}
	f.fair.fetched(fair, len(ds))
	if len(ds) > 0 {
		return ds, nil
	}
	// Wait until the first queue has a job or PollInterval passes, without
	// moving anything: BLMOVE from the queue to itself, tail to tail.
	// Lower-priority queues are not watched; the next fetch looks at them.
	q, d := s.queues[0], s.poll
	err = f.wc.Block(ctx, func(rdb redis.UniversalClient) error {
		if d%time.Second == 0 {
			return rdb.BLMove(ctx, q, q, "RIGHT", "RIGHT", d).Err()
		}
		return rdb.Do(ctx, "blmove", q, q, "RIGHT", "RIGHT", seconds(d)).Err()
	})
	if err != nil && !rediserr.IsNil(err) {
		return nil, err
	}
	return nil, nil
}

// fetch runs fetch.lua for up to n jobs; s.fetchMu must be held.
func (s *reliableSource) fetch(ctx context.Context, n int, fair string) ([]*engine.Delivery, error) {
	keys := make([]string, 0, 3*len(s.queues))
	for qi, q := range s.queues {
		keys = append(keys, q, s.proc(qi), ConsumersKey(q))
	}
	args := []any{s.consumer, n, fair}
	for _, id := range listwire.NewIDs(n) {
		args = append(args, id)
	}
	res, err := fetchScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		// The script may have run and its reply been lost: the next fetch
		// first adopts the jobs it moved.
		s.needResync = true
		return nil, err
	}
	jobs, err := s.scriptJobs(res)
	if err != nil {
		return nil, err
	}
	ds := make([]*engine.Delivery, len(jobs))
	s.mu.Lock()
	for i, j := range jobs {
		s.hold(j.elem)
		ds[i] = s.reliableDelivery(j.q, j.elem)
	}
	s.mu.Unlock()
	return ds, nil
}

// reliableDelivery decodes an element of queue qi's processing list.
func (s *reliableSource) reliableDelivery(qi int, elem string) *engine.Delivery {
	el := listwire.Decode(elem)
	if el.Plain { // only if another program wrote into the processing list
		el.Bad = "plain string in a processing list"
	}
	return s.delivery(qi, elem, el, el.Env.N)
}

// resyncLocked adopts up to n jobs in this consumer's processing lists it
// does not know: those moved by a fetch whose reply was lost (also one
// go-redis retried by itself). It runs after a fetch failed and in every
// sweep; more reports that there were more than n. An element is known
// while held, and when forgotten after the resync began (its removal may
// have reached Redis after the LRANGE). s.fetchMu must be held.
func (s *reliableSource) resyncLocked(ctx context.Context, n int) (ds []*engine.Delivery, more bool, err error) {
	s.mu.Lock()
	s.removed = make(map[string]int)
	s.mu.Unlock()
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(s.queues))
	for qi := range s.queues {
		cmds[qi] = pipe.LRange(ctx, s.proc(qi), 0, -1)
	}
	_, err = pipe.Exec(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	removed := s.removed
	s.removed = nil
	if err != nil {
		return nil, false, err
	}
	seen := make(map[string]int)
	for qi, cmd := range cmds {
		for _, e := range cmd.Val() {
			seen[e]++
			if seen[e] <= s.held[e]+removed[e] {
				continue
			}
			if len(ds) == n {
				more = true
				continue
			}
			removed[e]++ // counts as known from now on in this pass
			ds = append(ds, s.reliableDelivery(qi, e))
		}
	}
	for _, d := range ds {
		s.hold(jobOf(d).elem)
	}
	if len(ds) > 0 {
		s.log.Warn("adopted jobs left in the processing list by a fetch whose reply was lost", "count", len(ds))
	}
	return ds, more, nil
}
