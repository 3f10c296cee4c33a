package listsrc

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/blockconn"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/listwire"
)

// reliableSource is the engine's source for a reliable consumer: jobs move
// from the queues into its processing lists (one per queue), and leave them
// when settled, dead-lettered or handed back. Fetching is in
// reliable_fetch.go; heartbeat, lost jobs and recovery in reliable_keep.go.
type reliableSource struct {
	*lists

	// fetchMu serializes fetch.lua and resync, which would otherwise adopt
	// the jobs of a fetch whose reply is on its way.
	fetchMu    sync.Mutex
	needResync bool // under fetchMu: a fetch's reply was lost

	mu      sync.Mutex
	held    map[string]int // elements known in the processing lists: held jobs', and bumps being tried
	removed map[string]int // during a resync: elements forgotten since it began

	suspectUntil time.Time // owned by Keep: check held jobs until then
}

var (
	_ engine.Source  = (*reliableSource)(nil)
	_ engine.Keeper  = (*reliableSource)(nil)
	_ engine.Sweeper = (*reliableSource)(nil)
)

func (s *reliableSource) proc(qi int) string { return ProcessingKey(s.queues[qi], s.consumer) }

// Start checks the key types, beats, hands back what this consumer's name
// left in its processing lists, and recovers those of expired consumers.
func (s *reliableSource) Start(ctx context.Context) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	if _, err := s.beat(ctx); err != nil {
		return err
	}
	for qi, q := range s.queues {
		n, err := recoverScript.Run(ctx, s.rdb,
			[]string{q, s.proc(qi), HeartbeatKey(q, s.consumer), ConsumersKey(q)}, s.consumer, "1").Int64()
		if err != nil {
			return err
		}
		if n > 0 {
			s.recovered.Add(uint64(n))
			s.log.Info("handed back jobs this consumer's name left in its processing list", "queue", q, "count", n)
		}
	}
	return s.recoverDead(ctx)
}

// Fetchers returns the one fetch loop (see reliableFetcher).
func (s *reliableSource) Fetchers() []engine.Fetcher {
	return []engine.Fetcher{&reliableFetcher{s: s, wc: blockconn.New(s.rdb, blockconn.UnblockOrClose)}}
}

// Stop deregisters the consumer from the queues whose processing list is
// empty (leave.lua); jobs left in one are recovered once the heartbeat
// expires.
func (s *reliableSource) Stop(ctx context.Context) {
	for qi, q := range s.queues {
		n, err := leaveScript.Run(ctx, s.rdb, []string{s.proc(qi), HeartbeatKey(q, s.consumer), ConsumersKey(q)}, s.consumer).Int64()
		switch {
		case err != nil:
			s.log.Warn("cannot deregister; the heartbeat will expire", "queue", q, "err", err)
		case n == 0:
			s.log.Warn("processing list not empty at exit; its jobs are recovered once the heartbeat expires", "queue", q)
		}
	}
}

// hold counts elem as held; s.mu must be held.
func (s *reliableSource) hold(elem string) { s.held[elem]++ }

// unholdLocked drops one count of elem; s.mu must be held.
func (s *reliableSource) unholdLocked(elem string) {
	if n := s.held[elem]; n > 1 {
		s.held[elem] = n - 1
	} else {
		delete(s.held, elem)
	}
	if s.removed != nil {
		s.removed[elem]++
	}
}

// forgetLocked drops j from the held elements, once; s.mu must be held.
func (s *reliableSource) forgetLocked(j *job) {
	if j.gone {
		return
	}
	j.gone = true
	s.unholdLocked(j.elem)
	if j.next != "" {
		s.unholdLocked(j.next)
		j.next = ""
	}
}

// Settle removes finished jobs from the processing lists, each with LREM
// count -1 of its exact element, in one pipeline: jobs mostly finish in the
// order they were fetched (pushed at the head), so the search from the
// tail finds one near where it starts.
func (s *reliableSource) Settle(ctx context.Context, ds []*engine.Delivery) error {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(ds))
	s.mu.Lock()
	for i, d := range ds {
		if j := jobOf(d); !j.gone { // else removed by an earlier call, or lost
			cmds[i] = pipe.LRem(ctx, s.proc(j.q), -1, j.elem)
		}
	}
	s.mu.Unlock()
	if pipe.Len() == 0 {
		return nil
	}
	_, execErr := pipe.Exec(ctx)
	failed := false
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		j := jobOf(ds[i])
		if cmd.Err() != nil {
			j.removing, failed = true, true
			continue
		}
		if cmd.Val() == 0 && !j.removing {
			s.log.Warn("finished job no longer in the processing list: another consumer recovered it after this consumer's heartbeat expired, and may run it again",
				"queue", s.queues[j.q], "id", ds[i].Msg.ID)
		}
		s.forgetLocked(j)
	}
	if failed {
		return execErr
	}
	return nil
}

// Redeliver rewrites the element of each failed job in its processing
// list with the delivery count incremented (bump.lua, per queue), and
// returns those still there. The new element is held before the rewrite
// is sent (a resync never adopts it), and is tried again after a failure.
func (s *reliableSource) Redeliver(ctx context.Context, ds []*engine.Delivery) ([]*engine.Delivery, error) {
	var out []*engine.Delivery
	for qi, qds := range s.byQueue(ds) {
		if len(qds) == 0 {
			continue
		}
		args := make([]any, 0, 2*len(qds))
		s.mu.Lock()
		for _, d := range qds {
			j := jobOf(d)
			if j.next == "" {
				j.next = listwire.WithDeliveries(j.elem, d.Msg.Deliveries+1)
				s.hold(j.next)
			}
			args = append(args, j.elem, j.next)
		}
		s.mu.Unlock()
		res, err := bumpScript.Run(ctx, s.rdb, []string{s.proc(qi)}, args...).Int64Slice()
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		for i, d := range qds {
			j := jobOf(d)
			if i >= len(res) || res[i] == 0 {
				s.forgetLocked(j)
				s.log.Info("failed job no longer in the processing list (recovered by another consumer); not retried", "queue", s.queues[qi], "id", d.Msg.ID)
				continue
			}
			s.unholdLocked(j.elem)
			j.elem, j.next = j.next, ""
			d.Msg.Deliveries++
			out = append(out, d)
		}
		s.mu.Unlock()
	}
	return out, nil
}

// DeadLetter moves d to the dead-letter list with a record of it, atomically
// with its removal from the processing list (move.lua).
func (s *reliableSource) DeadLetter(ctx context.Context, d *engine.Delivery, reason string) (bool, error) {
	j := jobOf(d)
	s.mu.Lock()
	elem := j.elem
	s.mu.Unlock()
	rec := listwire.EncodeDead(s.queues[j.q], s.consumer, d.Msg.ID, d.Msg.Deliveries, reason, elem)
	n, err := s.move(ctx, j.q, s.dead[j.q], "L", []*engine.Delivery{d}, []string{rec})
	return n == 1, err
}

// Release moves jobs from the processing lists back to their queues (see
// lists.release), each with the delivery count it had before
// (Msg.Deliveries).
func (s *reliableSource) Release(ctx context.Context, ds []*engine.Delivery, now bool) (int, error) {
	return s.release(ds, now, func(qi int, qds []*engine.Delivery, dir string) (int, error) {
		pushed := make([]string, len(qds))
		s.mu.Lock()
		for i, d := range qds {
			pushed[i] = jobOf(d).elem
			if d.Bad == "" && listwire.CheckCanonical(pushed[i]) == "" {
				pushed[i] = listwire.WithDeliveries(pushed[i], d.Msg.Deliveries)
			}
		}
		s.mu.Unlock()
		return s.move(ctx, qi, s.queues[qi], dir, qds, pushed)
	})
}

// move moves the jobs ds of queue qi still in the processing list to the
// list dest, pushing pushed[i] for ds[i] with dir (move.lua), returns how
// many moved, and forgets them all.
func (s *reliableSource) move(ctx context.Context, qi int, dest, dir string, ds []*engine.Delivery, pushed []string) (int, error) {
	args := make([]any, 0, 1+2*len(ds))
	args = append(args, dir)
	s.mu.Lock()
	for i, d := range ds {
		args = append(args, jobOf(d).elem, pushed[i])
	}
	s.mu.Unlock()
	res, err := moveScript.Run(ctx, s.rdb, []string{s.proc(qi), dest}, args...).Int64Slice()
	if err != nil {
		return 0, err
	}
	n := 0
	s.mu.Lock()
	for i, d := range ds {
		if i < len(res) && res[i] == 1 {
			n++
		}
		s.forgetLocked(jobOf(d))
	}
	s.mu.Unlock()
	return n, nil
}
