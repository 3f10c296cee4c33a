package queue

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

// KeepInterval is HeartbeatTTL, how long a beat keeps the jobs safe: the
// engine calls Keep every third of it.
func (s *reliableSource) KeepInterval() time.Duration { return s.cfg.ttl }

// Keep renews the heartbeat, and returns the held jobs that another
// consumer recovered: when the heartbeat had expired before this beat, the
// processing list may have been recovered meanwhile, and the jobs of held
// that are no longer in it are lost (their handlers are cancelled). The
// engine passes the jobs not kept for a third of KeepInterval; jobs
// fetched just before the expiry are passed within two thirds of it, so
// they are checked for a whole KeepInterval after an expiry was seen.
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
	ttl := strconv.FormatInt(s.cfg.ttl.Milliseconds(), 10)
	pipe := s.rdb.Pipeline()
	sets := make([]*redis.Cmd, len(s.cfg.queues))
	for i, q := range s.cfg.queues {
		sets[i] = pipe.Do(ctx, "set", HeartbeatKey(q, s.cfg.consumer), now, "px", ttl, "get")
		pipe.SAdd(ctx, ConsumersKey(q), s.cfg.consumer)
	}
	if err := execAllowNil(ctx, pipe); err != nil {
		return false, err
	}
	for _, c := range sets {
		expired = expired || rediserr.IsNil(c.Err())
	}
	return expired, nil
}

// missing returns the deliveries of ds whose element (or the rewrite a
// bump is trying) is no longer in their processing list (LPOS, in one
// pipeline), and forgets them.
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
func (s *reliableSource) SweepInterval() time.Duration { return s.cfg.ttl / 2 }

// Sweep recovers the jobs of consumers whose heartbeat expired (back to
// their queues, for any consumer to fetch), then adopts up to n jobs
// sitting in this consumer's processing lists unknown to it (see
// resyncLocked) and returns them.
func (s *reliableSource) Sweep(ctx context.Context, n int) ([]*engine.Delivery, bool, error) {
	if err := s.recoverDead(ctx); err != nil {
		return nil, false, err
	}
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	return s.resyncLocked(ctx, n)
}

// recoverDead moves the jobs of every registered consumer whose heartbeat
// has expired back to the front of their queue, and deregisters it (one
// script per consumer and queue; see recover.lua). It does the same for
// the keys named as before the helper keys were derived with keys.Beside
// ("<queue>:processing:<consumer>", "<queue>:heartbeat:<consumer>",
// registered in "<queue>:consumers"), so that an upgrade strands none of
// the jobs of an older version's consumer. Those names differ only for a
// queue without a hash tag, which could not run on Redis Cluster before
// (CROSSSLOT), so a cluster client skips them.
func (s *reliableSource) recoverDead(ctx context.Context) error {
	_, cluster := s.rdb.(*redis.ClusterClient)
	for _, q := range s.cfg.queues {
		for _, k := range []struct {
			reg, what   string
			proc, heart func(q, m string) string
		}{
			{ConsumersKey(q), "a consumer", ProcessingKey, HeartbeatKey},
			{legacyConsumersKey(q), "an older version's consumer (old key names)", legacyProcessingKey, legacyHeartbeatKey},
		} {
			if k.what != "a consumer" && (cluster || k.reg == ConsumersKey(q)) {
				continue
			}
			members, err := s.rdb.SMembers(ctx, k.reg).Result()
			if err != nil {
				return err
			}
			for _, m := range members {
				if m == s.cfg.consumer && k.reg == ConsumersKey(q) {
					continue
				}
				n, err := s.s.recover.Run(ctx, s.rdb, []string{q, k.proc(q, m), k.heart(q, m), k.reg}, m, "0").Int64()
				if err != nil {
					return err
				}
				if n > 0 {
					s.recovered.Add(uint64(n))
					s.log.Warn("recovered the jobs of "+k.what+" whose heartbeat expired", "queue", q, "dead_consumer", m, "count", n)
				}
			}
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
	if err != nil && !rediserr.IsNil(err) {
		return err
	}
	return nil
}
