package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/internal/faultproxy"
	"github.com/streamgroup/streamgroup/internal/redisproc"
	"github.com/streamgroup/streamgroup/stream"
)

// job is one job of the scenario.
type job struct {
	key   string
	kind  string // kindOK, kindPoison or kindPermanent
	sleep int    // milliseconds the handler sleeps first
}

// planJobs draws the jobs from the seed: about one in 500 is a poison job
// (half of them permanent), about one in 400 sleeps between half and 1.6
// times MinIdle.
func planJobs(cfg config) []job {
	r := rand.New(rand.NewPCG(cfg.seed, 1))
	jobs := make([]job, cfg.jobs)
	for i := range jobs {
		jobs[i] = job{key: fmt.Sprintf("job-%07d", i), kind: kindOK}
	}
	perm := r.Perm(cfg.jobs)
	poison := max(4, cfg.jobs/500)
	for n, i := range perm[:poison] {
		jobs[i].kind = kindPoison
		if n%2 == 1 {
			jobs[i].kind = kindPermanent
		}
	}
	lo, hi := int(cfg.minIdle.Milliseconds()/2), int(cfg.minIdle.Milliseconds()*16/10)
	for _, i := range perm[poison : poison+max(4, cfg.jobs/400)] {
		jobs[i].sleep = lo + r.IntN(hi-lo+1)
	}
	return jobs
}

// faultKind is what a fault does.
type faultKind int

const (
	faultKill    faultKind = iota // SIGKILL a worker; restart it after d
	faultTerm                     // SIGTERM a worker (graceful drain); restart it after d
	faultRedis                    // SIGKILL redis-server; start it again after d
	faultCut                      // cut every proxied connection; refuse new ones for d
	faultLatency                  // add latency lat to the proxy for d
	faultStall                    // stall the proxy for d
	faultDestroy                  // XGROUP DESTROY the consumer group
	numFaultKinds
)

func (k faultKind) String() string {
	return [...]string{"kill", "term", "redis-restart", "cut", "latency", "stall", "group-destroy"}[k]
}

// fault is one scheduled fault.
type fault struct {
	at     time.Duration // from the start of the scenario
	kind   faultKind
	worker int // index of the worker, for kill and term
	d      time.Duration
	lat    time.Duration
}

func (f fault) String() string {
	s := fmt.Sprintf("%6.2fs %s", f.at.Seconds(), f.kind)
	switch f.kind {
	case faultKill, faultTerm:
		s += fmt.Sprintf(" worker-%d, down %v", f.worker+1, f.d)
	case faultRedis:
		s += fmt.Sprintf(", down %v", f.d)
	case faultCut:
		s += fmt.Sprintf(", refusing %v", f.d)
	case faultLatency:
		s += fmt.Sprintf(" %v for %v", f.lat, f.d)
	case faultStall:
		s += fmt.Sprintf(" %v", f.d)
	}
	return s
}

// planFaults draws the fault schedule from the seed: one fault about every
// two seconds of the window, at least one of each kind, and exactly one
// group deletion, in the middle third.
func planFaults(cfg config) []fault {
	r := rand.New(rand.NewPCG(cfg.seed, 2))
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(r.Int64N(int64(hi-lo)+1)).Round(time.Millisecond)
	}
	n := max(int(cfg.duration/(2*time.Second)), int(faultDestroy))
	kinds := make([]faultKind, 0, n)
	for k := range faultDestroy {
		kinds = append(kinds, k)
	}
	weights := []int{faultKill: 25, faultTerm: 15, faultRedis: 10, faultCut: 15, faultLatency: 15, faultStall: 20}
	for len(kinds) < n {
		x := r.IntN(100)
		for k, w := range weights {
			if x < w {
				kinds = append(kinds, faultKind(k))
				break
			}
			x -= w
		}
	}
	r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })

	slot := cfg.duration / time.Duration(n)
	faults := make([]fault, 0, n+1)
	for i, k := range kinds {
		f := fault{at: time.Duration(i)*slot + between(0, slot/2), kind: k}
		switch k {
		case faultKill, faultTerm:
			f.worker = r.IntN(cfg.workers)
			f.d = between(200*time.Millisecond, 2*time.Second)
		case faultRedis:
			f.d = between(200*time.Millisecond, 1500*time.Millisecond)
		case faultCut:
			f.d = between(time.Second, 3*time.Second)
		case faultLatency:
			f.lat = between(5*time.Millisecond, 60*time.Millisecond)
			f.d = between(2*time.Second, 5*time.Second)
		case faultStall:
			f.d = between(300*time.Millisecond, 2500*time.Millisecond)
		}
		faults = append(faults, f)
	}
	faults = append(faults, fault{at: between(cfg.duration/3, cfg.duration*2/3), kind: faultDestroy})
	slices.SortStableFunc(faults, func(a, b fault) int { return int(a.at - b.at) })
	return faults
}

// counters are the faults injected.
type counters struct {
	kills, terms, restarts, cuts, destroys, wipes atomic.Int64
}

// scenario is one run's moving parts.
type scenario struct {
	cfg     config
	log     *slog.Logger
	srv     *redisproc.Server
	admin   *redis.Client // straight to Redis, not through the proxy
	proxy   *faultproxy.Proxy
	workers []*workerProc
	jobs    []job
	// listQueue is the index in listQueues of each job's queue (list
	// target).
	listQueue []int
	faults    []fault
	n         counters
	start     time.Time
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

	s := &scenario{cfg: cfg, log: log, srv: srv, admin: admin, proxy: proxy, jobs: planJobs(cfg), faults: planFaults(cfg)}
	if hasLists(cfg.target) {
		s.listQueue = planQueues(cfg)
	}
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
	poison, sleepers, high := 0, 0, 0
	for i, j := range s.jobs {
		if j.kind != kindOK {
			poison++
		}
		if j.sleep > 0 {
			sleepers++
		}
		if s.listQueue != nil && s.listQueue[i] == 0 {
			high++
		}
	}
	log.Info("scenario", "seed", cfg.seed, "mode", cfg.mode, "target", cfg.target, "jobs", cfg.jobs, "poison", poison, "sleepers", sleepers,
		"high_priority", high, "producers", cfg.producers, "workers", cfg.workers, "faults", len(s.faults), "duration", cfg.duration,
		"redis", srv.Addr(), "proxy", proxy.Addr(), "dir", dir)
	for _, f := range s.faults {
		log.Debug("planned fault", "fault", f.String())
	}

	s.start = time.Now()
	var (
		ids, listIDs           []string
		drain, listDrain       time.Duration
		drainErr, listDrainErr error
	)
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
		if hasStreams(cfg.target) {
			ph.Go(func() error {
				var err error
				ids, err = s.publish(pctx)
				return err
			})
		}
		if hasLists(cfg.target) {
			ph.Go(func() error {
				var err error
				listIDs, err = s.publishLists(pctx)
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
		if hasStreams(cfg.target) {
			dg.Go(func() error { drain, drainErr = s.drain(gctx); return nil })
		}
		if hasLists(cfg.target) {
			dg.Go(func() error { listDrain, listDrainErr = s.drainLists(gctx); return nil })
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
	if hasStreams(cfg.target) {
		res, err := s.check(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		res.drain = drain
		if drainErr != nil {
			res.problems = append([]string{drainErr.Error()}, res.problems...)
		}
		results = append(results, res)
	}
	if hasLists(cfg.target) {
		recovered, finalErr := s.finishLists(ctx)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		res, err := s.checkLists(ctx, listIDs)
		if err != nil {
			return nil, fmt.Errorf("check lists: %w", err)
		}
		res.drain = listDrain
		res.recovered += int64(recovered)
		if finalErr != nil {
			res.problems = append([]string{finalErr.Error()}, res.problems...)
		}
		if listDrainErr != nil {
			res.problems = append([]string{listDrainErr.Error()}, res.problems...)
		}
		results = append(results, res)
	}
	// Worker exits no fault explains concern every target; they are
	// reported once.
	for _, w := range s.workers {
		results[0].problems = append(results[0].problems, w.problems()...)
	}
	return results, nil
}

// sabotaged is the job the workers lose on purpose under -sabotage: the
// first one that is not poison.
func sabotaged(jobs []job) string {
	for _, j := range jobs {
		if j.kind == kindOK {
			return j.key
		}
	}
	return ""
}

// publish publishes every job, with cfg.producers producers spread over
// 80% of the fault window, and returns the entry ID of each job (the last
// one, for a job added more than once after an ambiguous failure).
func (s *scenario) publish(ctx context.Context) ([]string, error) {
	rdb := redis.NewClient(&redis.Options{
		Addr: s.srv.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		PoolSize: 2 * s.cfg.producers,
	})
	defer rdb.Close()
	p, err := stream.NewProducer(rdb, streamKey, nil)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(s.jobs))
	window := s.cfg.duration * 8 / 10
	var retries atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for k := range s.cfg.producers {
		g.Go(func() error {
			r := rand.New(rand.NewPCG(s.cfg.seed, uint64(10+k)))
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
				if err := s.add(ctx, p, batch, single, ids, &retries); err != nil {
					return err
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
	s.log.Info("published every job", "jobs", len(ids), "retried_adds", retries.Load())
	return ids, nil
}

// add adds the jobs at indices batch (one Add when single, else AddBatch),
// retrying failed entries until each is added.
func (s *scenario) add(ctx context.Context, p *stream.Producer, batch []int, single bool, ids []string, retries *atomic.Int64) error {
	return s.sendAll(ctx, "add", batch, ids, retries, func(batch []int) ([]string, error) {
		entries := make([]stream.Entry, len(batch))
		for n, i := range batch {
			entries[n] = stream.Entry{Values: jobValues(s.jobs[i])}
		}
		if single {
			id, err := p.AddEntry(ctx, entries[0])
			return []string{id}, err
		}
		return p.AddBatch(ctx, entries)
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
		if hasLists(s.cfg.target) {
			g.Go(func() error {
				n, err := s.wipeHeartbeats(ctx, heartbeatWipe)
				log.Info("heartbeats wiped", "for", heartbeatWipe, "deleted", n)
				s.n.wipes.Add(1)
				return err
			})
		}
		if hasStreams(s.cfg.target) {
			g.Go(func() error { return s.destroyGroup(ctx, log) })
		}
		return g.Wait()
	}
	return nil
}

// heartbeatWipe is how long the group-destroy fault keeps deleting the
// list consumers' heartbeats.
const heartbeatWipe = 1500 * time.Millisecond

// destroyGroup deletes the consumer group, retrying until it succeeds.
func (s *scenario) destroyGroup(ctx context.Context, log *slog.Logger) error {
	for {
		n, err := s.admin.XGroupDestroy(ctx, streamKey, groupName).Result()
		if err == nil {
			log.Info("XGROUP DESTROY", "destroyed", n)
			s.n.destroys.Add(1)
			return nil
		}
		log.Warn("XGROUP DESTROY failed; retrying", "err", err)
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// status is what the drain waits for.
type status struct {
	handled    int64 // distinct jobs in the ledger
	pending    int64 // the group's PEL
	dead       int   // distinct poison jobs dead-lettered
	caughtUp   bool  // the group has been delivered the stream's last entry
	groupFound bool
}

func (s *scenario) status(ctx context.Context) (status, error) {
	var st status
	var err error
	if st.handled, err = s.admin.HLen(ctx, ledgerKey).Result(); err != nil {
		return st, err
	}
	groups, err := s.admin.XInfoGroups(ctx, streamKey).Result()
	if err != nil {
		return st, err
	}
	info, err := s.admin.XInfoStream(ctx, streamKey).Result()
	if err != nil {
		return st, err
	}
	for _, g := range groups {
		if g.Name != groupName {
			continue
		}
		st.groupFound = true
		st.pending = g.Pending
		last, err1 := stream.ParseID(info.LastGeneratedID)
		delivered, err2 := stream.ParseID(g.LastDeliveredID)
		st.caughtUp = err1 == nil && err2 == nil && delivered.Compare(last) >= 0
	}
	dead, err := s.deadJobs(ctx)
	if err != nil {
		return st, err
	}
	for _, j := range s.jobs {
		if j.kind != kindOK && dead[j.key] > 0 {
			st.dead++
		}
	}
	return st, nil
}

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
		if hasStreams(s.cfg.target) {
			if st, err := s.status(ctx); err != nil {
				attrs = append(attrs, "status_err", oneLine(err))
			} else {
				attrs = append(attrs, "handled", st.handled, "pending", st.pending, "dead", st.dead, "caught_up", st.caughtUp)
			}
		}
		if hasLists(s.cfg.target) {
			attrs = append(attrs, s.listMonitorLine(ctx)...)
		}
		s.log.Info("progress", attrs...)
	}
}

// drain waits until the group has been delivered every entry, nothing is
// pending, every job that is not poison is in the ledger and every poison
// job is dead-lettered, for at most cfg.drainTimeout.
func (s *scenario) drain(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	var ok, poison int64
	for _, j := range s.jobs {
		if j.kind == kindOK {
			ok++
		} else {
			poison++
		}
	}
	deadline := start.Add(s.cfg.drainTimeout)
	lastLog := start
	var last, prev status
	var lastErr error
	settled := 0 // polls in a row with nothing left that could change the outcome
	for {
		prev = last
		last, lastErr = s.status(ctx)
		final := lastErr == nil && last.groupFound && last.caughtUp && last.pending == 0
		if final && last.handled >= ok && int64(last.dead) == poison {
			d := time.Since(start)
			s.log.Info("drained", "target", targetStreams, "in", d.Round(time.Millisecond))
			return d, nil
		}
		// Everything delivered and nothing pending: no handler runs, no
		// retry waits, so what is missing now stays missing. Three polls in
		// a row, because the status is not read atomically.
		if final && last == prev {
			settled++
		} else {
			settled = 0
		}
		if settled >= 3 {
			return time.Since(start), fmt.Errorf("drain settled with nothing pending and everything delivered, but only %d/%d jobs handled and %d/%d poison jobs dead-lettered",
				last.handled, ok, last.dead, poison)
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("drain timed out after %v: handled %d/%d, dead %d/%d, pending %d, caught up %v, group found %v (last error: %v)",
				s.cfg.drainTimeout, last.handled, ok, last.dead, poison, last.pending, last.caughtUp, last.groupFound, lastErr)
		}
		if time.Since(lastLog) >= 2*time.Second {
			lastLog = time.Now()
			s.log.Info("draining", "target", targetStreams, "handled", last.handled, "of", ok, "dead", last.dead, "of", poison,
				"pending", last.pending, "caught_up", last.caughtUp, "err", lastErr)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return time.Since(start), err
		}
	}
}

// deadJobs returns how many dead letters each job key has.
func (s *scenario) deadJobs(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	start := "-"
	for {
		xs, err := s.admin.XRangeN(ctx, deadKey, start, "+", 1000).Result()
		if err != nil {
			return nil, err
		}
		for _, x := range xs {
			k, _ := x.Values[jobField].(string)
			out[k]++
		}
		if len(xs) < 1000 {
			return out, nil
		}
		start = "(" + xs[len(xs)-1].ID
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
