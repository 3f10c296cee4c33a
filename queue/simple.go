package queue

import (
	"context"
	"time"

	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

// fetchSimple pops up to n jobs from the queues in priority order (one
// script; see pop.lua) and, when they are all empty, waits for one with
// BRPOP over all the queues for up to PollInterval.
func (c *Consumer) fetchSimple(ctx context.Context, n int, fair bool) ([]*job, error) {
	res, err := c.s.pop.Run(ctx, c.rdb, c.cfg.queues, n, flag(fair)).Slice()
	if err != nil {
		return nil, err
	}
	pairs, err := c.scriptJobs(res)
	if err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		kv, err := c.brpop(ctx)
		if rediserr.IsNil(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for i, q := range c.cfg.queues {
			if len(kv) == 2 && kv[0] == q {
				pairs = append(pairs, scriptJob{q: i, elem: kv[1]})
			}
		}
	}
	jobs := make([]*job, len(pairs))
	for i, p := range pairs {
		jobs[i] = c.simpleJob(p.q, p.elem)
	}
	return jobs, nil
}

func (c *Consumer) brpop(ctx context.Context) ([]string, error) {
	d := c.cfg.PollInterval
	if d%time.Second == 0 {
		return c.rdb.BRPop(ctx, d, c.cfg.queues...).Result()
	}
	args := make([]any, 0, 2+len(c.cfg.queues))
	args = append(args, "brpop")
	for _, q := range c.cfg.queues {
		args = append(args, q)
	}
	args = append(args, seconds(d))
	return c.rdb.Do(ctx, args...).StringSlice()
}

// simpleJob decodes a popped element. A plain string gets an ID of its own
// here, kept if the job is written back (a retry that is requeued, a
// dead letter, a hand-back at shutdown).
func (c *Consumer) simpleJob(qi int, raw string) *job {
	el := decodeElement(raw)
	j := &job{q: qi, elem: raw, bad: el.bad, plain: el.plain}
	j.msg = stream.Message{ID: el.env.ID, Stream: c.cfg.queues[qi], Values: el.env.V, Deliveries: el.env.N + 1}
	if el.plain {
		j.msg.ID = newID()
	}
	if el.bad != "" {
		j.msg.Deliveries = 0
	}
	return j
}
