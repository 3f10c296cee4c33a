// Command bench compares streamgroup with a hand-written go-redis loop and
// with other Go job queues on Redis, on the workloads of issue 4, against a
// redis-server it starts itself (loopback, no persistence, a free port).
//
//	go run . -workloads a,b,c,d,e   # full sizes, all systems
//	go run . -quick                 # small sizes, a smoke run
//	go run . -rounds 3              # each workload 3 times, medians
//
// Each system runs the same workloads in this one process, one after
// another, with FLUSHALL between runs. A run that did not handle every job
// at least once is reported as FAILED, without a rate.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

type sizes struct {
	backlog    int           // (a) jobs
	rate       int           // (b) jobs/s
	rateFor    time.Duration // (b) duration
	ioJobs     int           // (c) jobs
	reclaim    int           // (d) stranded entries
	publish    int           // (e) jobs
	publishers int           // (e) goroutines
}

func main() {
	var (
		workloads = flag.String("workloads", "a,b,c,d,e", "comma-separated workloads to run: a (drain backlog), b (latency at a fixed rate), c (I/O-bound), d (reclaim), e (concurrent single publishing)")
		systems   = flag.String("systems", "baseline,streamgroup,watermill,redisqueue,asynq,lists-reliable,lists-simple", "comma-separated systems to run")
		quick     = flag.Bool("quick", false, "small sizes, for a smoke run")
		bin       = flag.String("redis-server", "redis-server", "redis-server binary")
		timeout   = flag.Duration("timeout", 3*time.Minute, "longest a single run may take before it is reported as failed")
		rounds    = flag.Int("rounds", 1, "run each workload this many times, the systems taking turns, and report each system's median run (by rate; for latency, the median of each percentile)")
		cpuprof   = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		memprof   = flag.String("memprofile", "", "write an allocation profile of the whole run to this file")
	)
	flag.Parse()

	sz := sizes{backlog: 200_000, rate: 5_000, rateFor: 10 * time.Second, ioJobs: 100_000, reclaim: 200_000, publish: 200_000, publishers: 64}
	if *quick {
		sz = sizes{backlog: 20_000, rate: 5_000, rateFor: 2 * time.Second, ioJobs: 10_000, reclaim: 20_000, publish: 20_000, publishers: 64}
	}

	if *memprof != "" {
		runtime.MemProfileRate = 4096
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			logf("%v", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			logf("%v", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, *bin, *workloads, *systems, sz, *timeout, max(*rounds, 1))
	stop()
	if *cpuprof != "" {
		pprof.StopCPUProfile()
	}
	if *memprof != "" {
		if f, err := os.Create(*memprof); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
	if err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

type entry struct {
	name string
	sys  system // nil: unavailable
	why  string
}

var allSystems = []entry{
	{"baseline", baseline{}, ""},
	{"streamgroup", streamgroupSys{}, ""},
	{"watermill", watermillSys{}, ""},
	{"redisqueue", redisqueueSys{}, ""},
	{"asynq", asynqSys{}, ""},
	{"lists-reliable", listsSys{reliable: true}, ""},
	{"lists-simple", listsSys{}, ""},
}

type row struct {
	label string // workload and its parameters
	res   []result
}

func run(ctx context.Context, bin, workloads, systems string, sz sizes, timeout time.Duration, rounds int) error {
	srv, err := startRedis(ctx, bin)
	if err != nil {
		return err
	}
	defer srv.stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.addr, PoolSize: 256})
	defer rdb.Close()
	e := &env{rdb: rdb, addr: srv.addr, timeout: timeout, minIdle: 500 * time.Millisecond}

	var chosen []entry
	for _, name := range strings.Split(systems, ",") {
		found := false
		for _, s := range allSystems {
			if s.name == strings.TrimSpace(name) {
				chosen = append(chosen, s)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("unknown system %q", name)
		}
	}

	var rows []row
	each := func(label string, f func(system) result) {
		if rounds > 1 {
			label += fmt.Sprintf(" [median of %d rounds]", rounds)
		}
		all := make([][]result, len(chosen)) // by system, one per round
		for round := range rounds {
			for i, s := range chosen {
				if ctx.Err() != nil {
					return
				}
				if s.sys == nil {
					all[i] = append(all[i], result{system: s.name, skipped: s.why})
					continue
				}
				if err := rdb.FlushAll(ctx).Err(); err != nil {
					all[i] = append(all[i], result{system: s.sys.name(), failed: "FAILED: FLUSHALL: " + err.Error()})
					continue
				}
				runtime.GC()
				logf("%s: %s (round %d)", label, s.sys.name(), round+1)
				res := f(s.sys)
				res.system = s.sys.name()
				all[i] = append(all[i], res)
			}
		}
		r := row{label: label}
		for _, rs := range all {
			r.res = append(r.res, median(rs))
		}
		rows = append(rows, r)
	}
	for _, w := range strings.Split(workloads, ",") {
		switch strings.TrimSpace(w) {
		case "a":
			for _, workers := range []int{4, 16} {
				each(fmt.Sprintf("(a) drain %d jobs with ack, %d workers", sz.backlog, workers), func(s system) result {
					return drain(ctx, e, s, sz.backlog, workers, 0)
				})
			}
		case "b":
			each(fmt.Sprintf("(b) %d jobs/s for %s, 16 workers, publish→handler latency", sz.rate, sz.rateFor), func(s system) result {
				return offered(ctx, e, s, sz.rate, sz.rateFor, 16)
			})
		case "c":
			each(fmt.Sprintf("(c) %d jobs, handler sleeps 1ms, concurrency 64 (ideal 64000/s at exactly 1ms)", sz.ioJobs), func(s system) result {
				slept.ns.Store(0)
				slept.n.Store(0)
				r := drain(ctx, e, s, sz.ioJobs, 64, time.Millisecond)
				if n := slept.n.Load(); n > 0 && r.failed == "" && r.skipped == "" {
					mean := time.Duration(slept.ns.Load() / n)
					ideal := 64 / mean.Seconds()
					r.note = fmt.Sprintf("1ms sleeps took %s on average: ideal %.0f/s, this is %.2f× it", fmtDur(mean), ideal, r.rate()/ideal)
				}
				return r
			})
		case "d":
			each(fmt.Sprintf("(d) reclaim %d entries of a dead consumer (min idle %s)", sz.reclaim, e.minIdle), func(s system) result {
				return reclaim(ctx, e, s, sz.reclaim)
			})
		case "e":
			each(fmt.Sprintf("(e) publish %d single jobs from %d goroutines (baseline: 4 goroutines, pipelines of 100)", sz.publish, sz.publishers), func(s system) result {
				return publish(ctx, e, s, sz.publish, sz.publishers)
			})
		default:
			return fmt.Errorf("unknown workload %q", w)
		}
	}

	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s %s/%s, redis-server %s\n\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, redisVersion(ctx, rdb))
	printTable(os.Stdout, rows)
	return ctx.Err()
}

func skipOrFail(err error) result {
	switch {
	case errors.Is(err, errNA):
		return result{skipped: "n/a"}
	case errors.Is(err, errNotYet):
		return result{skipped: "not yet"}
	default:
		return result{failed: "FAILED: " + err.Error()}
	}
}

// finish waits until every job was seen and acknowledged, then takes the
// closing snapshot.
func finish(ctx context.Context, e *env, s system, t *tracker, start snapshot, n int) result {
	var r result
	tctx, cancel := context.WithDeadline(ctx, start.wall.Add(e.timeout))
	defer cancel()
	select {
	case <-t.done:
	case <-tctx.Done():
	}
	ackErr := waitFor(tctx, func(ctx context.Context) (bool, error) { return s.acked(ctx, e) })
	end, err := take(ctx, e.rdb)
	if err != nil {
		return result{failed: "FAILED: " + err.Error()}
	}
	r.fill(start, end, n)
	r.verify(t)
	if r.failed != "" && tctx.Err() != nil {
		r.failed += fmt.Sprintf(" within the -timeout %s", e.timeout)
	}
	if r.failed == "" && ackErr != nil {
		r.failed = "FAILED: not all acknowledged: " + ackErr.Error()
	}
	return r
}

func drain(ctx context.Context, e *env, s system, n, workers int, sleep time.Duration) result {
	if err := s.backlog(ctx, e, n); err != nil {
		return skipOrFail(err)
	}
	t := newTracker(n, false)
	start, err := take(ctx, e.rdb)
	if err != nil {
		return skipOrFail(err)
	}
	stop, err := s.consume(ctx, e, workers, t, sleep)
	if err != nil {
		return skipOrFail(err)
	}
	r := finish(ctx, e, s, t, start, n)
	stop()
	return r
}

func offered(ctx context.Context, e *env, s system, rate int, dur time.Duration, workers int) result {
	n := int(float64(rate) * dur.Seconds())
	t := newTracker(n, true)
	pub, err := s.publisher(ctx, e)
	if err != nil {
		return skipOrFail(err)
	}
	stop, err := s.consume(ctx, e, workers, t, 0)
	if err != nil {
		return skipOrFail(err)
	}
	defer stop()
	time.Sleep(200 * time.Millisecond) // let consumers settle into their blocking reads
	start, err := take(ctx, e.rdb)
	if err != nil {
		return skipOrFail(err)
	}
	const publishers = 4
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	var pubErrs atomic.Int64
	for g := range publishers {
		wg.Go(func() {
			for i := g; i < n && ctx.Err() == nil; i += publishers {
				if d := time.Until(start.wall.Add(time.Duration(i) * interval)); d > 0 {
					time.Sleep(d)
				}
				if err := pub(ctx, payload(i, time.Now().UnixNano())); err != nil {
					pubErrs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	r := finish(ctx, e, s, t, start, n)
	r.latency = true
	r.p50, r.p99, r.p999 = t.percentiles()
	if c := pubErrs.Load(); c > 0 && r.failed == "" {
		r.failed = fmt.Sprintf("FAILED: %d publish errors", c)
	}
	return r
}

func reclaim(ctx context.Context, e *env, s system, n int) result {
	if err := s.strand(ctx, e, n); err != nil {
		return skipOrFail(err)
	}
	time.Sleep(e.minIdle + 100*time.Millisecond)
	t := newTracker(n, false)
	start, err := take(ctx, e.rdb)
	if err != nil {
		return skipOrFail(err)
	}
	stop, err := s.reclaim(ctx, e, t)
	if err != nil {
		return skipOrFail(err)
	}
	r := finish(ctx, e, s, t, start, n)
	stop()
	return r
}

func publish(ctx context.Context, e *env, s system, n, goroutines int) result {
	var r result
	start, err := take(ctx, e.rdb)
	if err != nil {
		return skipOrFail(err)
	}
	var pubErrs atomic.Int64
	if bp, ok := s.(batchPublisher); ok {
		if err := bp.publishBatches(ctx, e, n); err != nil {
			return skipOrFail(err)
		}
	} else {
		pub, err := s.publisher(ctx, e)
		if err != nil {
			return skipOrFail(err)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		for range goroutines {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					if err := pub(ctx, payload(i, 0)); err != nil {
						pubErrs.Add(1)
					}
				}
			})
		}
		wg.Wait()
	}
	end, err := take(ctx, e.rdb)
	if err != nil {
		return skipOrFail(err)
	}
	r.fill(start, end, n)
	got, err := s.published(ctx, e)
	switch {
	case err != nil:
		r.failed = "FAILED: " + err.Error()
	case pubErrs.Load() > 0:
		r.failed = fmt.Sprintf("FAILED: %d publish errors", pubErrs.Load())
	case got != int64(n):
		r.failed = fmt.Sprintf("FAILED: %d of %d jobs stored", got, n)
	}
	return r
}

func printTable(f *os.File, rows []row) {
	w := tabwriter.NewWriter(f, 0, 0, 2, ' ', tabwriter.AlignRight)
	defer w.Flush()
	for _, rw := range rows {
		fmt.Fprintf(w, "%s\n", rw.label)
		fmt.Fprintln(w, "system\tjobs\tmsgs/s\t×baseline\tp50\tp99\tp99.9\tGo CPU µs/msg\tredis CPU µs/msg\tallocs/msg\tcmds/msg\t note")
		var base float64
		for _, r := range rw.res {
			if strings.HasPrefix(r.system, "baseline") && r.failed == "" && r.skipped == "" {
				base = r.rate()
			}
		}
		for _, r := range rw.res {
			switch {
			case r.skipped != "":
				fmt.Fprintf(w, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t %s\n", r.system, r.skipped)
				continue
			case r.failed != "":
				fmt.Fprintf(w, "%s\t-\tFAILED\t-\t-\t-\t-\t-\t-\t-\t-\t %s\n", r.system, r.failed)
				continue
			}
			ratio := "-"
			if base > 0 {
				ratio = fmt.Sprintf("%.2f", r.rate()/base)
			}
			p50, p99, p999 := "-", "-", "-"
			if r.latency {
				p50, p99, p999 = fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.p999)
			}
			per := float64(r.msgs)
			fmt.Fprintf(w, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.3f\t",
				r.system, r.msgs, r.rate(), ratio, p50, p99, p999,
				float64(r.goCPU.Microseconds())/per, r.redisCPU*1e6/per, float64(r.mallocs)/per, float64(r.cmds)/per)
			if r.note != "" {
				fmt.Fprintf(w, " %s", r.note)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "\t\t\t\t\t\t\t\t\t\t\t")
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}

// median returns the run with the median rate; a failed or skipped run
// wins over any rate, so that one failure is never hidden by the others.
// For a latency workload each percentile is the median of the rounds'
// (rates there are all the offered rate, so the median-rate round would be
// any round), and the note gives the range of the rounds' p50 and p99.
func median(rs []result) result {
	for _, r := range rs {
		if r.failed != "" || r.skipped != "" {
			return r
		}
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b result) int { return cmp.Compare(a.rate(), b.rate()) })
	m := sorted[len(sorted)/2]
	if len(rs) > 1 {
		lo, hi := sorted[0].rate(), sorted[len(sorted)-1].rate()
		note := fmt.Sprintf("rounds %.0f–%.0f/s", lo, hi)
		if m.note != "" {
			note = m.note + "; " + note
		}
		if m.latency {
			p50s := percentileOf(rs, func(r result) time.Duration { return r.p50 })
			p99s := percentileOf(rs, func(r result) time.Duration { return r.p99 })
			p999s := percentileOf(rs, func(r result) time.Duration { return r.p999 })
			m.p50, m.p99, m.p999 = p50s[len(p50s)/2], p99s[len(p99s)/2], p999s[len(p999s)/2]
			note += fmt.Sprintf("; p50 %s–%s, p99 %s–%s", fmtDur(p50s[0]), fmtDur(p50s[len(p50s)-1]), fmtDur(p99s[0]), fmtDur(p99s[len(p99s)-1]))
		}
		m.note = note
	}
	return m
}

// percentileOf returns one latency percentile of every round, sorted.
func percentileOf(rs []result, f func(result) time.Duration) []time.Duration {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = f(r)
	}
	slices.Sort(ds)
	return ds
}
