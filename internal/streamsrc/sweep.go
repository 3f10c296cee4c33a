package streamsrc

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/stream"
)

// SweepInterval is the pause between two XAUTOCLAIM passes; zero (no
// sweeping) when the consumer leaves reclaiming to a claim.Reclaimer.
func (s *Source) SweepInterval() time.Duration {
	if !s.cfg.Reclaim {
		return 0
	}
	return s.cfg.reclaimInterval()
}

// Sweep takes over entries idle longer than MinIdle with XAUTOCLAIM, from
// consumers that died or stalled: one call of a cursor pass over the
// group's pending entries, for up to n entries (at most reclaimCount).
// Entries XAUTOCLAIM reports deleted from the stream are counted and
// dropped, never handed to the handler. more is true until the pass is
// over.
func (s *Source) Sweep(ctx context.Context, n int) ([]*engine.Delivery, bool, error) {
	res, err := s.claim(ctx, s.cursor, min(n, reclaimCount))
	if err != nil {
		s.cursor = "0-0"
		return nil, false, fmt.Errorf("XAUTOCLAIM: %w", err)
	}
	next, ds, err := s.claimed(ctx, res)
	if err != nil || next == "0-0" || next == "" {
		s.cursor = "0-0"
		return ds, false, err
	}
	s.cursor = next
	return ds, true, nil
}

// claim runs XAUTOCLAIM from cursor for up to n entries and returns
// {next cursor, entries, delivery counts, deleted IDs}, as deliverClaimed
// reads it. The counts come from an XPENDING of this consumer's entries from
// cursor on, pipelined with the claim: one round trip, and no Lua (a script
// would copy every claimed entry into Lua tables and back). This consumer
// may hold other entries in that range, hence the margin; an entry the
// range missed is looked up alone.
func (s *Source) claim(ctx context.Context, cursor string, n int) ([]any, error) {
	pipe := s.rdb.Pipeline()
	claimCmd := pipe.Do(ctx, "XAUTOCLAIM", s.cfg.Stream, s.cfg.Group, s.cfg.Consumer,
		s.cfg.MinIdle.Milliseconds(), cursor, "COUNT", n)
	pendCmd := pipe.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Start: cursor, End: "+",
		Count: int64(2*n + 100), Consumer: s.cfg.Consumer,
	})
	_, _ = pipe.Exec(ctx)
	res, err := claimCmd.Slice()
	if err != nil {
		return nil, err
	}
	if len(res) < 2 {
		return nil, fmt.Errorf("group: unexpected XAUTOCLAIM reply of %d elements", len(res))
	}
	var deleted any = []any{}
	if len(res) > 2 {
		deleted = res[2] // Redis >= 7.0
	}
	entries, _ := res[1].([]any)
	byID := make(map[string]int64, len(entries))
	if ps, err := pendCmd.Result(); err == nil {
		for _, p := range ps {
			byID[p.ID] = p.RetryCount
		}
	}
	var missing []string
	for _, v := range entries {
		if arr, ok := v.([]any); ok && len(arr) > 0 {
			if id, _ := arr[0].(string); id != "" {
				if _, found := byID[id]; !found {
					missing = append(missing, id)
				}
			}
		}
	}
	if len(missing) > 0 {
		lp := s.rdb.Pipeline()
		cmds := make([]*redis.XPendingExtCmd, len(missing))
		for i, id := range missing {
			cmds[i] = lp.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.cfg.Stream, Group: s.cfg.Group, Start: id, End: id, Count: 1})
		}
		_, _ = lp.Exec(ctx)
		for _, c := range cmds {
			if ps, err := c.Result(); err == nil && len(ps) == 1 {
				byID[ps[0].ID] = ps[0].RetryCount
			}
		}
	}
	counts := make([]any, len(entries))
	for i, v := range entries {
		counts[i] = int64(0) // unknown: a tombstone, or no longer pending
		if arr, ok := v.([]any); ok && len(arr) > 0 {
			if id, _ := arr[0].(string); id != "" {
				counts[i] = byID[id]
			}
		}
	}
	return []any{res[0], entries, counts, deleted}, nil
}

func (s *Source) claimed(ctx context.Context, res []any) (next string, ds []*engine.Delivery, err error) {
	if len(res) < 4 {
		return "", nil, fmt.Errorf("group: unexpected XAUTOCLAIM reply of %d elements", len(res))
	}
	next, _ = res[0].(string)
	entries, _ := res[1].([]any)
	counts, _ := res[2].([]any)
	deleted, _ := res[3].([]any)
	if len(deleted) > 0 {
		s.deletedInPEL.Add(uint64(len(deleted)))
		ids := make([]string, 0, len(deleted))
		for _, d := range deleted {
			if id, ok := d.(string); ok {
				ids = append(ids, id)
			}
		}
		s.warnDeleted("entries deleted from the stream while pending were never handled; XAUTOCLAIM removed them from the PEL", ids)
	}
	for i, v := range entries {
		id, values, ok, perr := parseEntry(v)
		if perr != nil {
			return next, ds, perr
		}
		if !ok {
			if id != "" {
				s.dropDeleted(ctx, []string{id})
			}
			continue
		}
		m := stream.Message{ID: id, Stream: s.cfg.Stream, Values: values}
		if i < len(counts) {
			m.Deliveries, _ = counts[i].(int64)
		}
		ds = append(ds, s.delivery(m))
	}
	return next, ds, nil
}
