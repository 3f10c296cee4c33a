package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/blockconn"
	"github.com/streamgroup/streamgroup/internal/flush"
	"github.com/streamgroup/streamgroup/stream"
)

// fetchReliable moves up to n jobs from the queues into this consumer's
// processing lists (one script; see fetch.lua) and returns them.
func (c *Consumer) fetchReliable(ctx context.Context, n int, fair bool) ([]*job, error) {
	keys := make([]string, 0, 3*len(c.cfg.queues))
	for _, q := range c.cfg.queues {
		keys = append(keys, q, ProcessingKey(q, c.cfg.consumer), ConsumersKey(q))
	}
	args := make([]any, 0, 3+n)
	args = append(args, c.cfg.consumer, n, flag(fair))
	for _, id := range newIDs(n) {
		args = append(args, id)
	}
	res, err := c.s.fetch.Run(ctx, c.rdb, keys, args...).Slice()
	if err != nil {
		// The script may have run and its reply been lost: the jobs it
		// moved would sit in the processing list unknown to this consumer.
		// The next fetch first adopts them.
		c.needResync = true
		return nil, err
	}
	pairs, err := c.scriptJobs(res)
	if err != nil {
		return nil, err
	}
	jobs := make([]*job, 0, len(pairs))
	c.mu.Lock()
	for _, p := range pairs {
		c.held[p.elem]++
		jobs = append(jobs, c.reliableJob(p.q, p.elem))
	}
	c.mu.Unlock()
	return jobs, nil
}

type scriptJob struct {
	q    int
	elem string
}

// scriptJobs parses the reply of fetch.lua and pop.lua: {"", i1, e1, ...}
// or {badKey}.
func (c *Consumer) scriptJobs(res []any) ([]scriptJob, error) {
	if len(res) == 0 {
		return nil, fmt.Errorf("queue: empty script reply")
	}
	if bad, _ := res[0].(string); bad != "" {
		return nil, notList(bad, "")
	}
	out := make([]scriptJob, 0, (len(res)-1)/2)
	for i := 1; i+1 < len(res); i += 2 {
		qi, ok1 := res[i].(int64)
		elem, ok2 := res[i+1].(string)
		if !ok1 || !ok2 || qi < 1 || int(qi) > len(c.cfg.queues) {
			return nil, fmt.Errorf("queue: unexpected script reply element %T %T", res[i], res[i+1])
		}
		out = append(out, scriptJob{q: int(qi) - 1, elem: elem})
	}
	return out, nil
}

// reliableJob decodes an element of queue qi's processing list.
func (c *Consumer) reliableJob(qi int, elem string) *job {
	el := decodeElement(elem)
	j := &job{q: qi, elem: elem, bad: el.bad}
	j.msg = stream.Message{ID: el.env.ID, Stream: c.cfg.queues[qi], Values: el.env.V, Deliveries: el.env.N}
	if el.plain { // only if another program wrote into the processing list
		j.bad = "plain string in a processing list"
	}
	return j
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// seconds formats d for a blocking command's timeout argument.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// wait blocks on wc until the first queue has a job or PollInterval
// passes, without moving anything: BLMOVE from the queue to itself, tail
// to tail. Lower-priority queues are not watched; the next fetch looks at
// them. When ctx ends, the wait is woken (CLIENT UNBLOCK, or by closing
// wc: the job a lost reply named is still where it was).
func (c *Consumer) wait(ctx context.Context, wc *blockconn.Conn) error {
	q := c.cfg.queues[0]
	d := c.cfg.PollInterval
	return wc.Block(ctx, func(rdb redis.UniversalClient) error {
		if d%time.Second == 0 {
			return rdb.BLMove(ctx, q, q, "RIGHT", "RIGHT", d).Err()
		}
		return rdb.Do(ctx, "blmove", q, q, "RIGHT", "RIGHT", seconds(d)).Err()
	})
}

// resync adopts up to n jobs that sit in this consumer's processing lists
// without the consumer knowing them: those moved by a fetch whose reply was
// lost (including one that go-redis retried by itself after a network
// error, so that no error ever surfaced). It runs after a fetch failed and
// every SweepInterval. An element counts as known while it is held, and
// also when it was forgotten after the resync began (its removal may have
// reached Redis after the LRANGE).
func (c *Consumer) resync(ctx context.Context, n int) ([]*job, error) {
	c.mu.Lock()
	c.removed = make(map[string]int)
	c.mu.Unlock()
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.StringSliceCmd, len(c.cfg.queues))
	for i, q := range c.cfg.queues {
		cmds[i] = pipe.LRange(ctx, ProcessingKey(q, c.cfg.consumer), 0, -1)
	}
	_, err := pipe.Exec(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	removed := c.removed
	c.removed = nil
	if err != nil {
		return nil, err
	}
	var jobs []*job
	more := false
	seen := make(map[string]int)
	for qi, cmd := range cmds {
		for _, e := range cmd.Val() {
			seen[e]++
			if seen[e] <= c.held[e]+removed[e] {
				continue
			}
			if len(jobs) == n {
				more = true
				continue
			}
			removed[e]++ // counts as known from now on in this pass
			jobs = append(jobs, c.reliableJob(qi, e))
		}
	}
	for _, j := range jobs {
		c.held[j.elem]++
	}
	c.needResync = more
	if len(jobs) > 0 {
		c.log.Warn("adopted jobs left in the processing list by a fetch whose reply was lost", "count", len(jobs))
	}
	return jobs, nil
}

// ackLoop flushes queued removals in batches: when AckBatch are queued,
// else AckInterval after the first one queued, and a last time when ctx
// ends, with a context of its own (AckTimeout), so finished work is removed
// even during shutdown.
func (c *Consumer) ackLoop(ctx context.Context) {
	flush.Loop(ctx, c.ackWake, c.cfg.AckBatch, c.cfg.AckInterval, c.transientBackoff,
		c.ackPending, c.flushAcks, func(err error) { c.transient("LREM", err) })
	c.finalFlush()
}

// ackPending returns how many removals are queued.
func (c *Consumer) ackPending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ackBuf)
}

func (c *Consumer) finalFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.AckTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := c.flushAcks(ctx)
		if err == nil {
			c.mu.Lock()
			n := len(c.ackBuf)
			c.mu.Unlock()
			if n == 0 {
				return
			}
			continue
		}
		if ctx.Err() != nil {
			c.mu.Lock()
			n := len(c.ackBuf)
			c.mu.Unlock()
			c.log.Error("final removal of finished jobs failed; they stay in the processing list and will run again after recovery", "count", n, "err", err)
			c.report(fmt.Errorf("queue: final removal of %d finished jobs: %w", n, err))
			return
		}
		if !backoff.Sleep(ctx, c.transientBackoff.Delay(attempt)) {
			return
		}
	}
}

// flushAcks removes up to AckBatch finished jobs from the processing lists,
// each with LREM count -1 of its exact element, in one pipeline. Jobs whose
// removal failed go back to the buffer. A fetch pushes jobs at the head of
// the processing list and jobs mostly finish in the order they were
// fetched, so searching from the tail (-1) finds a finished job near where
// it starts instead of after every job fetched since.
func (c *Consumer) flushAcks(ctx context.Context) error {
	c.mu.Lock()
	n := min(len(c.ackBuf), c.cfg.AckBatch)
	batch := append([]*job(nil), c.ackBuf[:n]...)
	c.ackBuf = c.ackBuf[n:]
	c.mu.Unlock()
	if n == 0 {
		return nil
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, n)
	for i, j := range batch {
		cmds[i] = pipe.LRem(ctx, ProcessingKey(c.cfg.queues[j.q], c.cfg.consumer), -1, j.elem)
	}
	_, execErr := pipe.Exec(ctx)
	var failed []*job
	c.mu.Lock()
	for i, cmd := range cmds {
		j := batch[i]
		if cmd.Err() != nil {
			j.acked = true
			failed = append(failed, j)
			continue
		}
		c.forgetLocked(j.elem)
		c.c.acked.Add(1)
		if cmd.Val() == 0 && !j.acked {
			c.log.Warn("finished job no longer in the processing list: another consumer recovered it after this consumer's heartbeat expired, and may run it again",
				"queue", c.cfg.queues[j.q], "id", j.msg.ID)
		}
	}
	if len(failed) > 0 {
		c.ackBuf = append(failed, c.ackBuf...)
	}
	c.mu.Unlock()
	if len(failed) > 0 {
		return execErr
	}
	return nil
}

// heartbeatLoop renews the heartbeat every HeartbeatInterval until ctx
// ends.
func (c *Consumer) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.beat(ctx); err != nil && ctx.Err() == nil {
			c.transient("heartbeat", err)
		}
	}
}

// beat sets the heartbeat key of every queue (SET PX HeartbeatTTL) and
// registers the consumer in every queue's consumer set, in one pipeline.
func (c *Consumer) beat(ctx context.Context) error {
	now := time.Now().UnixMilli()
	pipe := c.rdb.Pipeline()
	for _, q := range c.cfg.queues {
		pipe.Set(ctx, HeartbeatKey(q, c.cfg.consumer), now, c.cfg.HeartbeatTTL)
		pipe.SAdd(ctx, ConsumersKey(q), c.cfg.consumer)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// sweepLoop runs a recovery sweep every SweepInterval (±20%).
func (c *Consumer) sweepLoop(ctx context.Context) {
	for {
		if !backoff.Sleep(ctx, backoff.Jitter(c.cfg.SweepInterval, 0.2)) {
			return
		}
		if err := c.sweep(ctx); err != nil && ctx.Err() == nil {
			c.transient("recovery sweep", err)
		}
	}
}

// sweep moves the jobs of every registered consumer whose heartbeat has
// expired back to the front of their queue, and deregisters it (one script
// per consumer and queue; see recover.lua).
func (c *Consumer) sweep(ctx context.Context) error {
	for _, q := range c.cfg.queues {
		members, err := c.rdb.SMembers(ctx, ConsumersKey(q)).Result()
		if err != nil {
			return err
		}
		for _, m := range members {
			if m == c.cfg.consumer {
				continue
			}
			n, err := c.s.recover.Run(ctx, c.rdb,
				[]string{q, ProcessingKey(q, m), HeartbeatKey(q, m), ConsumersKey(q)}, m, "0").Int64()
			if err != nil {
				return err
			}
			if n > 0 {
				c.c.recovered.Add(uint64(n))
				c.log.Warn("recovered the jobs of a consumer whose heartbeat expired", "queue", q, "dead_consumer", m, "count", n)
			}
		}
	}
	return c.sweepLegacy(ctx)
}

// sweepLegacy does what sweep does for the keys named as before the helper
// keys were derived with keys.Beside: "<queue>:processing:<consumer>",
// "<queue>:heartbeat:<consumer>", registered in "<queue>:consumers". A
// consumer of an older version that is still running, or that died, keeps
// its jobs there; once its heartbeat has expired they go back to the queue,
// so an upgrade strands none. The names differ only for a queue without a
// hash tag, which could not run on Redis Cluster before (CROSSSLOT), so a
// cluster client skips it.
func (c *Consumer) sweepLegacy(ctx context.Context) error {
	if _, ok := c.rdb.(*redis.ClusterClient); ok {
		return nil
	}
	for _, q := range c.cfg.queues {
		reg := legacyConsumersKey(q)
		if reg == ConsumersKey(q) {
			continue
		}
		members, err := c.rdb.SMembers(ctx, reg).Result()
		if err != nil {
			return err
		}
		for _, m := range members {
			n, err := c.s.recover.Run(ctx, c.rdb,
				[]string{q, legacyProcessingKey(q, m), legacyHeartbeatKey(q, m), reg}, m, "0").Int64()
			if err != nil {
				return err
			}
			if n > 0 {
				c.c.recovered.Add(uint64(n))
				c.log.Warn("recovered the jobs of an older version's consumer whose heartbeat expired (old key names)", "queue", q, "dead_consumer", m, "count", n)
			}
		}
	}
	return nil
}

// leave deregisters the consumer from the queues whose processing list is
// empty (see leave.lua). Jobs left in a processing list (a handler that
// outlived DrainTimeout, a removal that failed) are recovered once the
// heartbeat expires.
func (c *Consumer) leave() {
	if !c.reliable() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.AckTimeout)
	defer cancel()
	for _, q := range c.cfg.queues {
		n, err := c.s.leave.Run(ctx, c.rdb,
			[]string{ProcessingKey(q, c.cfg.consumer), HeartbeatKey(q, c.cfg.consumer), ConsumersKey(q)}, c.cfg.consumer).Int64()
		switch {
		case err != nil:
			c.log.Warn("cannot deregister; the heartbeat will expire", "queue", q, "err", err)
		case n == 0:
			c.log.Warn("processing list not empty at exit; its jobs are recovered once the heartbeat expires", "queue", q)
		}
	}
}
