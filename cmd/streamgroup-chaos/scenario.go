package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/internal/faultproxy"
	"github.com/streamgroup/streamgroup/internal/redisproc"
)

// scenario is one run's moving parts.
type scenario struct {
	*env
	proxy   *faultproxy.Proxy
	workers []*workerProc
	targets []target
	faults  []fault
	n       counters
	start   time.Time
}

// outcome is what the run learns of one target before the check.
type outcome struct {
	ids      []string // the ID each job was published with
	drain    time.Duration
	drainErr error
}

// run runs the scenario and checks the outcome: one result per target.
// Its error means the scenario could not run; what the checker finds is in
// the results.
func run(ctx context.Context, cfg config, log *slog.Logger, t0 time.Time) ([]*result, error) {
	dir, err := os.MkdirTemp("", "streamgroup-chaos-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	readyTimeout := 15 * time.Second
	if cfg.mode == "long" {
		readyTimeout = 2 * time.Minute // loading a big AOF
	}
	srv, err := redisproc.Start(ctx, dir, &redisproc.Options{AOF: true, ReadyTimeout: readyTimeout})
	if err != nil {
		return nil, withLogTail(err)
	}
	defer srv.Kill()
	redis.SetLogger(quietRedis{})
	admin := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), DialTimeout: time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
	})
	defer admin.Close()
	proxy, err := faultproxy.Listen(srv.Addr(), nil)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}

	e := &env{cfg: cfg, log: log, srv: srv, admin: admin, jobs: planJobs(cfg)}
	s := &scenario{env: e, proxy: proxy, targets: newTargets(cfg.target, e), faults: planFaults(cfg)}
	for i := range cfg.workers {
		name := fmt.Sprintf("worker-%d", i+1)
		args := []string{"-addr", proxy.Addr(), "-name", name, "-target", cfg.target, "-min-idle", cfg.minIdle.String(),
			"-t0", strconv.FormatInt(t0.UnixNano(), 10)}
		if cfg.verbose {
			args = append(args, "-v")
		}
		if cfg.sabotage {
			// Every worker, since any of them may get the job.
			args = append(args, "-skip-job", sabotaged(s.jobs))
		}
		s.workers = append(s.workers, newWorkerProc(name, exe, args, os.Stderr, log))
	}
	poison, sleepers := 0, 0
	for _, j := range s.jobs {
		if j.kind != kindOK {
			poison++
		}
		if j.sleep > 0 {
			sleepers++
		}
	}
	attrs := []any{"seed", cfg.seed, "mode", cfg.mode, "target", cfg.target, "jobs", cfg.jobs, "poison", poison, "sleepers", sleepers}
	for _, t := range s.targets {
		attrs = append(attrs, t.plan()...)
	}
	log.Info("scenario", append(attrs, "producers", cfg.producers, "workers", cfg.workers, "faults", len(s.faults), "duration", cfg.duration,
		"redis", srv.Addr(), "proxy", proxy.Addr(), "dir", dir)...)
	for _, f := range s.faults {
		log.Debug("planned fault", "fault", f.String())
	}

	s.start = time.Now()
	outs := make([]outcome, len(s.targets))
	g, gctx := errgroup.WithContext(ctx)
	wctx, stopWorkers := context.WithCancel(gctx)
	defer stopWorkers()
	for _, w := range s.workers {
		g.Go(func() error { return w.supervise(wctx) })
	}
	g.Go(func() error {
		defer stopWorkers()
		ph, pctx := errgroup.WithContext(gctx)
		mctx, stopMonitor := context.WithCancel(pctx)
		defer stopMonitor()
		for i, t := range s.targets {
			ph.Go(func() error {
				var err error
				outs[i].ids, err = s.publish(pctx, t)
				return err
			})
		}
		ph.Go(func() error { return s.inject(pctx) })
		var mon errgroup.Group
		mon.Go(func() error { s.monitor(mctx, "faults", 5*time.Second); return nil })
		err := ph.Wait()
		stopMonitor()
		_ = mon.Wait()
		if err != nil {
			return err
		}
		log.Info("faults over and every job published; draining", "drain_timeout", cfg.drainTimeout)
		var dg errgroup.Group
		for i, t := range s.targets {
			dg.Go(func() error { outs[i].drain, outs[i].drainErr = s.drain(gctx, t); return nil })
		}
		_ = dg.Wait()
		if gctx.Err() != nil {
			return gctx.Err()
		}
		log.Info("stopping the workers (SIGTERM)")
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}

	var results []*result
	for i, t := range s.targets {
		finishErr := t.finish(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res, err := s.check(ctx, t, outs[i].ids)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", t.name(), err)
		}
		res.drain = outs[i].drain
		var first []string
		for _, err := range []error{outs[i].drainErr, finishErr} {
			if err != nil {
				first = append(first, err.Error())
			}
		}
		res.problems = append(first, res.problems...)
		results = append(results, res)
	}
	// Worker exits no fault explains concern every target; they are
	// reported once.
	for _, w := range s.workers {
		results[0].problems = append(results[0].problems, w.problems()...)
	}
	return results, nil
}

// monitor logs every target's progress, a group of attributes each, every
// so often until ctx is done.
func (s *scenario) monitor(ctx context.Context, phase string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		attrs := []any{"phase", phase}
		for _, t := range s.targets {
			p, err := s.progress(ctx, t)
			if err != nil {
				attrs = append(attrs, slog.Group(t.name(), "err", oneLine(err)))
				continue
			}
			attrs = append(attrs, slog.Group(t.name(), append([]any{"handled", p.handled, "dead", p.dead}, p.attrs()...)...))
		}
		s.log.Info("progress", attrs...)
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// withLogTail adds the tail of redis-server's log to the error of a failed
// start, which says why the server refused to run.
func withLogTail(err error) error {
	if se, ok := errors.AsType[*redisproc.StartError](err); ok {
		return fmt.Errorf("%w; log tail:\n%s", err, se.Tail)
	}
	return err
}
