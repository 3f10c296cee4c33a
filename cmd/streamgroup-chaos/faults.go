package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// counters are the faults injected.
type counters struct {
	kills, terms, restarts, cuts atomic.Int64
}

// inject runs the fault schedule, then heals the proxy and waits for the
// end of the window.
func (s *scenario) inject(ctx context.Context) error {
	defer s.proxy.Heal()
	for _, f := range s.faults {
		if err := sleep(ctx, time.Until(s.start.Add(f.at))); err != nil {
			return err
		}
		if err := s.apply(ctx, f); err != nil {
			return err
		}
	}
	s.proxy.Heal()
	s.log.Info("faults over", "kills", s.n.kills.Load(), "terms", s.n.terms.Load(),
		"redis_restarts", s.n.restarts.Load(), "cuts", s.n.cuts.Load(), "proxy", fmt.Sprintf("%+v", s.proxy.Stats()))
	return sleep(ctx, time.Until(s.start.Add(s.cfg.duration)))
}

func (s *scenario) apply(ctx context.Context, f fault) error {
	log := s.log.With("fault", f.kind.String())
	switch f.kind {
	case faultKill, faultTerm:
		sig := syscall.SIGKILL
		if f.kind == faultTerm {
			sig = syscall.SIGTERM
		}
		for n := range s.workers {
			w := s.workers[(f.worker+n)%len(s.workers)]
			if w.signal(sig, f.d) {
				log.Info("signalled", "worker", w.name, "signal", sig, "down", f.d)
				if f.kind == faultKill {
					s.n.kills.Add(1)
				} else {
					s.n.terms.Add(1)
				}
				return nil
			}
		}
		log.Info("skipped: every worker is down")
	case faultRedis:
		log.Info("killing redis-server (SIGKILL)", "down", f.d)
		_ = s.srv.Kill() // not running after a failed restart: nothing to kill
		s.n.restarts.Add(1)
		if err := sleep(ctx, f.d); err != nil {
			return err
		}
		var err error
		for range 5 {
			if err = withLogTail(s.srv.Start(ctx)); err == nil {
				log.Info("redis-server restarted")
				return nil
			}
			log.Warn("redis-server did not start; retrying", "err", err)
			if err := sleep(ctx, time.Second); err != nil {
				return err
			}
		}
		return fmt.Errorf("restart redis-server: %w", err)
	case faultCut:
		n := s.proxy.Cut(f.d)
		s.n.cuts.Add(1)
		log.Info("cut every connection", "connections", n, "refusing", f.d)
	case faultLatency:
		log.Info("latency on", "latency", f.lat, "for", f.d)
		s.proxy.SetLatency(f.lat)
		err := sleep(ctx, f.d)
		s.proxy.SetLatency(0)
		log.Info("latency off")
		return err
	case faultStall:
		log.Info("stalling the proxy", "for", f.d)
		s.proxy.Stall(f.d)
	case faultDestroy:
		var g errgroup.Group
		for _, t := range s.targets {
			g.Go(func() error { return t.disrupt(ctx, log) })
		}
		return g.Wait()
	}
	return nil
}
