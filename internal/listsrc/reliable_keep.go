package listsrc

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/rediserr"
)

// A reliable consumer keeps its jobs with a heartbeat key per queue, with
// a TTL (HeartbeatTTL). Once it has expired, any consumer of the queue
// moves the consumer's processing list back to the queue (recover.lua).

// KeepInterval is HeartbeatTTL: the engine calls Keep every third of it.
func (s *reliableSource) KeepInterval() time.Duration { return s.ttl }

// Keep renews the heartbeat. When it had expired, the processing list may
// have been recovered meanwhile: for a whole KeepInterval, so that jobs
// fetched just before the expiry are checked too, Keep returns the jobs
// of held no longer in it (lost: the engine cancels their handlers).
func (s *reliableSource) Keep(ctx context.Context, held []*engine.Delivery) ([]*engine.Delivery, error) {
	expired, err := s.beat(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if expired {
		s.log.Warn("heartbeat had expired; checking that the held jobs were not recovered by another consumer")
		s.suspectUntil = now.Add(s.KeepInterval())
	}
	if len(held) == 0 || now.After(s.suspectUntil) {
		return nil, nil
	}
	return s.missing(ctx, held)
}

// beat sets the heartbeat key of every queue (SET PX HeartbeatTTL GET) and
// registers the consumer in every queue's consumer set, in one pipeline.
// expired reports a heartbeat key that did not exist before.
func (s *reliableSource) beat(ctx context.Context) (expired bool, err error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	ttl := strconv.FormatInt(s.ttl.Milliseconds(), 10)
	pipe := s.rdb.Pipeline()
	sets := make([]*redis.Cmd, len(s.queues))
	for i, q := range s.queues {
		sets[i] = pipe.Do(ctx, "set", HeartbeatKey(q, s.consumer), now, "px", ttl, "get")
		pipe.SAdd(ctx, ConsumersKey(q), s.consumer)
	}
	if err := execAllowNil(ctx, pipe); err != nil {
		return false, err
	}
	for _, c := range sets {
		expired = expired || rediserr.IsNil(c.Err())
	}
	return expired, nil
}

// missing returns, and forgets, the deliveries of ds whose element (or the
// rewrite a bump is trying) is no longer in their processing list (LPOS).
func (s *reliableSource) missing(ctx context.Context, ds []*engine.Delivery) ([]*engine.Delivery, error) {
	type check struct {
		d          *engine.Delivery
		elem, next *redis.IntCmd
	}
	pipe := s.rdb.Pipeline()
	var checks []check
	s.mu.Lock()
	for _, d := range ds {
		j := jobOf(d)
		if j.gone {
			continue
		}
		c := check{d: d, elem: pipe.LPos(ctx, s.proc(j.q), j.elem, redis.LPosArgs{Rank: -1})}
		if j.next != "" {
			c.next = pipe.LPos(ctx, s.proc(j.q), j.next, redis.LPosArgs{Rank: -1})
		}
		checks = append(checks, c)
	}
	s.mu.Unlock()
	if len(checks) == 0 {
		return nil, nil
	}
	if err := execAllowNil(ctx, pipe); err != nil {
		return nil, err
	}
	found := func(c *redis.IntCmd) bool { return c != nil && c.Err() == nil }
	var lost []*engine.Delivery
	s.mu.Lock()
	for _, c := range checks {
		if !found(c.elem) && !found(c.next) {
			s.forgetLocked(jobOf(c.d))
			lost = append(lost, c.d)
		}
	}
	s.mu.Unlock()
	if len(lost) > 0 {
		s.log.Warn("held jobs were recovered by another consumer while this consumer's heartbeat was expired; their handlers are cancelled", "count", len(lost))
	}
	return lost, nil
}

// SweepInterval is half of HeartbeatTTL.
func (s *reliableSource) SweepInterval() time.Duration { return s.ttl / 2 }

// Sweep recovers the jobs of consumers whose heartbeat expired (back to
// their queues), then adopts and returns up to n jobs sitting in this
// consumer's processing lists unknown to it (see resyncLocked).
func (s *reliableSource) Sweep(ctx context.Context, n int) ([]*engine.Delivery, bool, error) {
	if err := s.recoverDead(ctx); err != nil {
		return nil, false, err
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	return s.resyncLocked(ctx, n)
}

// recoverDead moves the jobs of every registered consumer whose heartbeat
// has expired back to the front of their queue, and deregisters it
// (recover.lua, one call per consumer and queue). It does the same for
// the key names older versions used (plain appending, see
// legacyConsumersKey), so that an upgrade strands none of their jobs;
// they differ only for a queue without a hash tag, which could not run on
// Redis Cluster before, so a cluster client skips them.
func (s *reliableSource) recoverDead(ctx context.Context) error {
	_, cluster := s.rdb.(*redis.ClusterClient)
	for _, q := range s.queues {
		if err := s.recoverFrom(ctx, q, ConsumersKey(q), ProcessingKey, HeartbeatKey, "a consumer"); err != nil {
			return err
		}
		if reg := legacyConsumersKey(q); !cluster && reg != ConsumersKey(q) {
			if err := s.recoverFrom(ctx, q, reg, legacyProcessingKey, legacyHeartbeatKey, "an older version's consumer (old key names)"); err != nil {
				return err
			}
		}
	}
	return nil
}

// recoverFrom recovers the expired consumers of queue q registered in reg,
// whose keys proc and heart name.
func (s *reliableSource) recoverFrom(ctx context.Context, q, reg string, proc, heart func(q, m string) string, what string) error {
	members, err := s.rdb.SMembers(ctx, reg).Result()
	if err != nil {
		return err
	}
	for _, m := range members {
		if m == s.consumer && reg == ConsumersKey(q) {
			continue
		}
		n, err := recoverScript.Run(ctx, s.rdb, []string{q, proc(q, m), heart(q, m), reg}, m, "0").Int64()
		if err != nil {
			return err
		}
		if n > 0 {
			s.recovered.Add(uint64(n))
			s.log.Warn("recovered the jobs of "+what+" whose heartbeat expired", "queue", q, "dead_consumer", m, "count", n)
		}
	}
	return nil
}

// execAllowNil runs pipe and returns the first error of its commands other
// than a nil reply.
func execAllowNil(ctx context.Context, pipe redis.Pipeliner) error {
	cmds, err := pipe.Exec(ctx)
	for _, c := range cmds {
		if cerr := c.Err(); cerr != nil && !rediserr.IsNil(cerr) {
			return cerr
		}
	}
	if rediserr.IsNil(err) {
		return nil
	}
	return err
}
