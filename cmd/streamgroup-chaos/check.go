package main

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// result is the checker's verdict on one target.
type result struct {
	target                         string // targetStreams or targetLists
	seed                           uint64
	published, handled, lost, dups int64
	dead, pending                  int64 // pending: what the target has in flight at the end
	kills, terms, restarts, cuts   int64
	drain                          time.Duration
	extra                          string   // the target's own figures, " key=value" each, at the end of the line
	problems                       []string // why the run failed; empty when it passed
}

// summary is the result's line on stdout.
func (r *result) summary() string {
	return fmt.Sprintf("chaos: target=%s seed=%d published=%d handled=%d lost=%d duplicates=%d dead=%d pending=%d kills=%d term=%d redis_restarts=%d cuts=%d drain_s=%.1f",
		r.target, r.seed, r.published, r.handled, r.lost, r.dups, r.dead, r.pending, r.kills, r.terms, r.restarts, r.cuts, r.drain.Seconds()) + r.extra
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

// check compares the jobs published to t (ids: the ID of each) with its
// ledger, its dead letters and what it has in flight, once the workers
// are stopped and t has finished.
func (s *scenario) check(ctx context.Context, t target, ids []string) (*result, error) {
	res := s.newResult(t.name())
	ledger, err := s.readLedger(ctx, t.ledger())
	if err != nil {
		return nil, err
	}
	letters, err := t.deadLetters(ctx)
	if err != nil {
		return nil, err
	}
	lost := res.tally(s.jobs, ids, t.ledger(), ledger, letters, t.vetDeadLetter)
	if res.lost > 0 {
		res.fail("%d jobs lost", res.lost)
		for _, i := range lost[:min(len(lost), maxDetails)] {
			res.fail("lost: %s", t.describe(ctx, i, ids[i]))
		}
	}
	if err := t.checkLeft(ctx, res); err != nil {
		return nil, err
	}
	return res, nil
}

// tally applies the checker's rules to the jobs (ids: the ID each was
// published with, "" for none), the ledger (ledgerKey: its name) and the
// dead letters, with vet for the target's own rules on the dead letter of
// a poison job. Every job must have been published; a job that is not
// poison must be in the ledger (else it is lost; each count above one is a
// duplicate) and not be dead-lettered; a poison job must be dead-lettered
// and not be in the ledger; no ID may be dead-lettered twice; the ledger
// and the dead letters may hold only jobs. It returns the indices of the
// lost jobs.
func (r *result) tally(jobs []job, ids []string, ledgerKey string, ledger map[string]int64, letters []deadLetter, vet func(i int, d deadLetter) string) []int {
	known := make(map[string]int, len(jobs)) // job key -> index
	for i, j := range jobs {
		known[j.key] = i
	}
	dead := map[string]int{}     // dead letters per job key
	deadIDs := map[string]bool{} // job IDs dead-lettered
	for _, d := range letters {
		i, ok := known[d.key]
		switch {
		case d.bad != "":
			r.fail("%s holds an unexpected record (%s): %.200s", d.where, d.bad, d.raw)
			continue
		case !ok:
			r.fail("%s holds %q, which is no job", d.where, d.key)
			continue
		case jobs[i].kind == kindOK && d.from != "":
			r.fail("job %s (%s) is not poison but was dead-lettered from %s: %s", d.key, ids[i], d.from, d.reason)
		case jobs[i].kind == kindOK:
			r.fail("job %s (%s) is not poison but was dead-lettered", d.key, ids[i])
		default:
			if p := vet(i, d); p != "" {
				r.fail("%s", p)
			}
		}
		if d.id != "" {
			if deadIDs[d.id] {
				// A job published twice (a retried push) has two IDs: one
				// ID dead twice means one job was in two places.
				r.fail("job %s (ID %s) was dead-lettered twice", d.key, d.id)
			}
			deadIDs[d.id] = true
		}
		dead[d.key]++
	}
	var lost []int
	for i, j := range jobs {
		if ids[i] != "" {
			r.published++
		}
		n := ledger[j.key]
		switch {
		case j.kind == kindOK && n == 0:
			r.lost++
			lost = append(lost, i)
		case j.kind == kindOK:
			r.handled++
			r.dups += n - 1
		default:
			if n > 0 {
				r.fail("poison job %s (%s) is counted %d times in the ledger %s", j.key, ids[i], n, ledgerKey)
			}
			if dead[j.key] > 0 {
				r.dead++
			} else {
				r.fail("poison job %s (%s, %s) was not dead-lettered", j.key, ids[i], j.kind)
			}
		}
	}
	if r.published != int64(len(jobs)) {
		r.fail("published %d jobs of %d", r.published, len(jobs))
	}
	for k := range ledger {
		if _, ok := known[k]; !ok {
			r.fail("the ledger %s counts %q, which is no job", ledgerKey, k)
		}
	}
	return lost
}

// readLedger reads a whole ledger hash.
func (e *env) readLedger(ctx context.Context, ledgerKey string) (map[string]int64, error) {
	out := make(map[string]int64, len(e.jobs))
	var cursor uint64
	for {
		kv, next, err := e.admin.HScan(ctx, ledgerKey, cursor, "*", 5000).Result()
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
