package main

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// publish publishes every job to t, with cfg.producers producers spread
// over 80% of the fault window, and returns the ID of each job (the last
// one, for a job published more than once after an ambiguous failure).
// Producer k takes every cfg.producers-th job from the k-th, in batches
// whose sizes it draws from the seed: a quarter single jobs, sent with the
// call for one, the rest 1 to 100 jobs.
func (s *scenario) publish(ctx context.Context, t target) ([]string, error) {
	p, err := t.publisher()
	if err != nil {
		return nil, err
	}
	defer p.close()
	split := p.split
	if split == nil {
		split = func(batch []int) [][]int { return [][]int{batch} }
	}
	ids := make([]string, len(s.jobs))
	window := s.cfg.duration * 8 / 10
	var retries atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for k := range s.cfg.producers {
		g.Go(func() error {
			r := rand.New(rand.NewPCG(s.cfg.seed, p.stream+uint64(k)))
			var mine []int
			for i := k; i < len(s.jobs); i += s.cfg.producers {
				mine = append(mine, i)
			}
			for pos := 0; pos < len(mine); {
				size := 1
				single := r.IntN(4) == 0
				if !single {
					size = 1 + r.IntN(100)
				}
				batch := mine[pos:min(pos+size, len(mine))]
				for _, part := range split(batch) {
					send := func(batch []int) ([]string, error) { return p.send(ctx, batch, single) }
					if err := s.sendAll(ctx, p.verb, part, ids, &retries, send); err != nil {
						return err
					}
				}
				pos += len(batch)
				due := s.start.Add(time.Duration(float64(window) * float64(pos) / float64(len(mine))))
				if err := sleep(ctx, time.Until(due)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	s.log.Info("published every job", "target", t.name(), "jobs", len(ids), "retried", retries.Load())
	return ids, nil
}

// producerClient returns the producers' client, straight to Redis; a
// maxRetries of 0 means go-redis's default, -1 none.
func (e *env) producerClient(maxRetries int) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: e.srv.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		PoolSize: 2 * e.cfg.producers, MaxRetries: maxRetries,
	})
}

// sendAll sends the jobs at indices batch with send, which returns an ID
// per job ("" for a job that failed), and sends the failed ones again, with
// a backoff, until every job has an ID in ids. The last ID of a job sent
// more than once after an ambiguous failure wins.
func (s *scenario) sendAll(ctx context.Context, what string, batch []int, ids []string, retries *atomic.Int64, send func(batch []int) ([]string, error)) error {
	backoff := 50 * time.Millisecond
	for len(batch) > 0 {
		got, err := send(batch)
		var failed []int
		for n, i := range batch {
			if n < len(got) && got[n] != "" {
				ids[i] = got[n]
			} else {
				failed = append(failed, i)
			}
		}
		if err == nil && len(failed) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		retries.Add(int64(len(failed)))
		s.log.Debug(what+" failed; retrying", "jobs", len(failed), "err", oneLine(err))
		batch = failed
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
	return nil
}
