package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
)

// result is the checker's verdict.
type result struct {
	target                         string // targetStreams or targetLists
	seed                           uint64
	published, handled, lost, dups int64
	dead, pending                  int64
	kills, terms, restarts, cuts   int64
	recovered                      int64 // lists: jobs moved back from processing lists (best effort)
	drain                          time.Duration
	problems                       []string // why the run failed; empty when it passed
}

// summary is the result's line on stdout. For lists, pending counts the
// elements left in the queues and processing lists, and recovered is added.
func (r *result) summary() string {
	line := fmt.Sprintf("chaos: target=%s seed=%d published=%d handled=%d lost=%d duplicates=%d dead=%d pending=%d kills=%d term=%d redis_restarts=%d cuts=%d drain_s=%.1f",
		r.target, r.seed, r.published, r.handled, r.lost, r.dups, r.dead, r.pending, r.kills, r.terms, r.restarts, r.cuts, r.drain.Seconds())
	if r.target == targetLists {
		line += fmt.Sprintf(" recovered=%d", r.recovered)
	}
	return line
}

func (r *result) fail(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// maxDetails bounds the jobs listed per kind of problem.
const maxDetails = 10

// newResult returns a result with the faults injected so far.
func (s *scenario) newResult(target string) *result {
	return &result{
		target: target, seed: s.cfg.seed, kills: s.n.kills.Load(), terms: s.n.terms.Load(),
		restarts: s.n.restarts.Load(), cuts: s.n.cuts.Load(),
	}
}

// check compares the published jobs (ids: the entry ID of each) with the
// ledger, the group's pending entries and the dead-letter stream, once the
// workers are stopped.
func (s *scenario) check(ctx context.Context, ids []string) (*result, error) {
	res := s.newResult(targetStreams)
	if d := s.n.destroys.Load(); d != 1 {
		res.fail("the group was deleted %d times; want once", d)
	}
	ledger, err := s.readLedger(ctx, ledgerKey)
	if err != nil {
		return nil, err
	}
	dead, err := s.deadJobs(ctx)
	if err != nil {
		return nil, err
	}
	known := make(map[string]bool, len(s.jobs))
	var lost []int
	for i, j := range s.jobs {
		known[j.key] = true
		if ids[i] != "" {
			res.published++
		}
		n := ledger[j.key]
		switch {
		case j.kind == kindOK && n == 0:
			res.lost++
			lost = append(lost, i)
		case j.kind == kindOK:
			res.handled++
			res.dups += n - 1
			if dead[j.key] > 0 {
				res.fail("job %s (%s) is not poison but was dead-lettered", j.key, ids[i])
			}
		default:
			if n > 0 {
				res.fail("poison job %s (%s) is counted %d times in the ledger", j.key, ids[i], n)
			}
			if dead[j.key] > 0 {
				res.dead++
			} else {
				res.fail("poison job %s (%s, %s) was not dead-lettered", j.key, ids[i], j.kind)
			}
		}
	}
	if res.published != int64(len(s.jobs)) {
		res.fail("published %d jobs of %d", res.published, len(s.jobs))
	}
	for k := range ledger {
		if !known[k] {
			res.fail("the ledger counts %q, which is no job", k)
		}
	}
	for k := range dead {
		if !known[k] {
			res.fail("the dead-letter stream holds %q, which is no job", k)
		}
	}
	if res.lost > 0 {
		res.fail("%d jobs lost", res.lost)
		for _, i := range lost[:min(len(lost), maxDetails)] {
			res.fail("lost: %s", s.describe(ctx, s.jobs[i], ids[i]))
		}
	}

	p, err := s.admin.XPending(ctx, streamKey, groupName).Result()
	switch {
	case rediserr.IsNoGroup(err):
		res.fail("the consumer group does not exist at the end")
	case err != nil:
		return nil, fmt.Errorf("XPENDING: %w", err)
	default:
		res.pending = p.Count
	}
	if res.pending > 0 {
		res.fail("%d entries still pending after the drain (%v)", res.pending, p.Consumers)
		xs, err := s.admin.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: streamKey, Group: groupName, Start: "-", End: "+", Count: maxDetails,
		}).Result()
		if err == nil {
			for _, x := range xs {
				res.fail("pending: %s owned by %s, idle %v, %d deliveries", x.ID, x.Consumer, x.Idle, x.RetryCount)
			}
		}
	}
	return res, nil
}

// readLedger reads a whole ledger hash.
func (s *scenario) readLedger(ctx context.Context, ledgerKey string) (map[string]int64, error) {
	out := make(map[string]int64, len(s.jobs))
	var cursor uint64
	for {
		kv, next, err := s.admin.HScan(ctx, ledgerKey, cursor, "*", 5000).Result()
		if err != nil {
			return nil, fmt.Errorf("HSCAN %s: %w", ledgerKey, err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			n, err := strconv.ParseInt(kv[i+1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("ledger %s = %q: %w", kv[i], kv[i+1], err)
			}
			out[kv[i]] = n
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// describe says where a lost job's entry is: in the stream or not, pending
// or not.
func (s *scenario) describe(ctx context.Context, j job, id string) string {
	if id == "" {
		return j.key + ": never published"
	}
	d := fmt.Sprintf("%s (%s, entry %s)", j.key, j.kind, id)
	xs, err := s.admin.XRange(ctx, streamKey, id, id).Result()
	switch {
	case err != nil:
		d += fmt.Sprintf(": XRANGE: %v", err)
	case len(xs) == 0:
		d += ": not in the stream"
	default:
		d += ": in the stream"
	}
	ps, err := s.admin.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: streamKey, Group: groupName, Start: id, End: id, Count: 1,
	}).Result()
	switch {
	case err != nil:
		d += fmt.Sprintf("; XPENDING: %v", err)
	case len(ps) == 0:
		d += "; not pending"
	default:
		d += fmt.Sprintf("; pending, owned by %s, %d deliveries", ps[0].Consumer, ps[0].RetryCount)
	}
	return d
}
