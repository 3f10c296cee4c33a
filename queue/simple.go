package queue

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/blockconn"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

// fetchSimple pops up to n jobs from the queues in priority order (one
// script; see pop.lua) and, when they are all empty, waits for one with
// BRPOP over all the queues for up to PollInterval, on wc.
func (c *Consumer) fetchSimple(ctx context.Context, wc *blockconn.Conn, n int, fair bool) ([]*job, error) {
	res, err := c.s.pop.Run(ctx, c.rdb, c.cfg.queues, n, flag(fair)).Slice()
	if err != nil {
		return nil, err
	}
	pairs, err := c.scriptJobs(res)
	if err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		kv, err := c.brpop(ctx, wc)
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

// brpop waits on wc for a job in any of the queues, for up to PollInterval.
// When ctx ends, the wait is woken with CLIENT UNBLOCK and pops nothing; wc
// is never closed with the BRPOP in flight (see fetchLoop).
func (c *Consumer) brpop(ctx context.Context, wc *blockconn.Conn) (kv []string, err error) {
	d := c.cfg.PollInterval
	err = wc.Block(ctx, func(rdb redis.UniversalClient) error {
		if d%time.Second == 0 {
			kv, err = rdb.BRPop(ctx, d, c.cfg.queues...).Result()
			return err
		}
		args := make([]any, 0, 2+len(c.cfg.queues))
		args = append(args, "brpop")
		for _, q := range c.cfg.queues {
			args = append(args, q)
		}
		args = append(args, seconds(d))
		kv, err = rdb.Do(ctx, args...).StringSlice()
		return err
	})
	return kv, err
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
