// Command streamgroup-chaos runs a bounded, seeded, randomized fault
// scenario against streamgroup and checks that no job was lost.
//
//	go run ./cmd/streamgroup-chaos -mode ci -seed 42
//	go run ./cmd/streamgroup-chaos -mode long -jobs 200000
//	go run ./cmd/streamgroup-chaos -mode ci -target lists -seed 42
//
// It starts its own redis-server (from PATH, on a free loopback port, with
// appendonly yes and appendfsync always, in a temporary directory), a TCP
// fault proxy in front of it (internal/faultproxy), and K worker processes
// (this binary re-executed with the hidden subcommand "worker") named
// worker-1..worker-K that reach Redis through the proxy.
//
// -target says what the workers run: "streams", a group.Consumer on a
// stream, fed by P producer goroutines with stream.Producer (AddBatch and
// Add); "lists", a reliable queue.Consumer (queue.NewReliableConsumer) on
// two priority queues, chaos:jobs:high and chaos:jobs:low, fed with
// queue.Producer (PushBatch and Push), with a HeartbeatTTL of 1s so that
// the jobs of killed workers are recovered within the run; or "both" (the
// default), each worker process running both consumers at once, under the
// same faults, with separate keys and ledgers. Each job has a unique job
// key; a fixed set of them (chosen by the seed) are poison jobs that always
// fail, and a few sleep around MinIdle.
//
// Each handling is counted in a ledger hash (HINCRBY chaos:ledger <job> 1,
// chaos:lists:ledger for lists) by the worker; a failed ledger write fails
// the handling, so the job is retried. Meanwhile a fault schedule drawn
// from the seed SIGKILLs and SIGTERMs workers (restarting them under the
// same name after a pause), kills redis-server with SIGKILL and starts it
// again, cuts every proxied connection and refuses new ones, adds latency,
// stalls the proxy, and once deletes the consumer group and (lists) keeps
// deleting the list consumers' heartbeats for 1.5s.
//
// At the end the faults stop, the workers drain until every job is
// accounted for (streams: nothing pending; lists: the queues and processing
// lists empty), bounded by -drain-timeout, the workers are stopped
// gracefully, a final list consumer recovers and finishes whatever the
// workers left in the lists, and a checker compares the published job keys
// with the ledgers, the pending entries list, the queues, the processing
// lists and the dead letters. It prints one line per target to stdout:
//
//	chaos: target=streams seed=S published=N handled=H lost=0 duplicates=D dead=X pending=0 kills=K term=T redis_restarts=R cuts=C drain_s=Z
//	chaos: target=lists seed=S published=N handled=H lost=0 duplicates=D dead=X pending=0 kills=K term=T redis_restarts=R cuts=C drain_s=Z recovered=V
//
// and exits 1 when a job was lost, a job that is not poison was
// dead-lettered, a poison job was not (or was handled, or dead-lettered
// twice, or without its reason), an entry is still pending, a job is left
// in a queue or a processing list, or a worker stopped for a reason other
// than the faults; 2 when the scenario could not run; 130 when
// interrupted. Logs go to stderr. The run is reproducible in what it does
// (jobs, poison set, queues, fault schedule), not in its timing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// config is the scenario's parameters.
type config struct {
	mode         string
	target       string // targetStreams, targetLists or targetBoth
	seed         uint64
	jobs         int
	producers    int
	workers      int
	duration     time.Duration // how long faults are injected (and jobs published)
	drainTimeout time.Duration // bound of the drain after the faults
	minIdle      time.Duration // consumers' MinIdle
	verbose      bool
	sabotage     bool // the workers ack one job unhandled: the run must fail
}

// Targets: what the scenario exercises.
const (
	targetStreams = "streams" // group.Consumer on a stream
	targetLists   = "lists"   // queue.NewReliableConsumer on two priority lists
	targetBoth    = "both"    // both at once, in the same worker processes, under the same faults
)

func validTarget(t string) bool { return t == targetStreams || t == targetLists || t == targetBoth }
func hasStreams(t string) bool  { return t == targetStreams || t == targetBoth }
func hasLists(t string) bool    { return t == targetLists || t == targetBoth }

// Exit codes of the command.
const (
	exitOK          = 0
	exitFailed      = 1 // the checker found a problem
	exitCannotRun   = 2 // bad flags, no redis-server, ...
	exitInterrupted = 130
)

// longRate is the publishing rate, in jobs per second, from which long mode
// derives -jobs from -duration or the other way round.
const longRate = 2000

func main() {
	if len(os.Args) > 1 && os.Args[1] == workerCommand {
		os.Exit(workerMain(os.Args[2:]))
	}
	os.Exit(chaosMain(os.Args[1:], os.Stdout, os.Stderr))
}

func chaosMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, "streamgroup-chaos:", err)
		return exitCannotRun
	}
	t0 := time.Now()
	log := newLogger(stderr, "chaos", cfg.verbose, t0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res, err := run(ctx, cfg, log, t0)
	if ctx.Err() != nil {
		log.Error("interrupted", "seed", cfg.seed)
		return exitInterrupted
	}
	if err != nil {
		log.Error("the scenario could not run", "seed", cfg.seed, "err", err)
		return exitCannotRun
	}
	failed := false
	for _, r := range res {
		fmt.Fprintln(stdout, r.summary())
	}
	for _, r := range res {
		for _, p := range r.problems {
			log.Error("FAIL: "+p, "target", r.target)
			failed = true
		}
	}
	if failed {
		log.Error("FAILED; replay with the command below", "elapsed", time.Since(t0).Round(time.Millisecond),
			"cmd", cfg.replay())
		return exitFailed
	}
	log.Info("passed", "elapsed", time.Since(t0).Round(time.Millisecond), "cmd", cfg.replay())
	return exitOK
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("streamgroup-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	seed := fs.Int64("seed", 0, "seed of the scenario (jobs, poison set, fault schedule); 0 picks one from the clock")
	fs.StringVar(&cfg.target, "target", targetBoth, `what to exercise: "streams" (group.Consumer), "lists" (reliable queue.Consumer) or "both" at once`)
	fs.StringVar(&cfg.mode, "mode", "ci", `"ci" (20,000 jobs per target, 30s of faults, 1 to 1.5 minutes in all) or "long" (1,000,000 jobs per target by default)`)
	fs.IntVar(&cfg.jobs, "jobs", 0, "jobs to publish per target; 0 means the mode's default (ci: 20000; long: 1000000, or -duration × 2000/s)")
	fs.IntVar(&cfg.producers, "producers", 4, "producer goroutines")
	fs.IntVar(&cfg.workers, "workers", 4, "worker processes")
	fs.DurationVar(&cfg.duration, "duration", 0, "how long faults are injected while jobs are published; 0 means the mode's default (ci: 30s; long: -jobs / 2000/s)")
	fs.DurationVar(&cfg.drainTimeout, "drain-timeout", 0, "longest wait, after the faults, for every job to be handled; 0 means 60s (ci) or 10m (long)")
	fs.DurationVar(&cfg.minIdle, "min-idle", time.Second, "the consumers' MinIdle")
	fs.BoolVar(&cfg.verbose, "v", false, "debug logs, including the library's own logs in the workers")
	fs.BoolVar(&cfg.sabotage, "sabotage", false, "make the workers acknowledge one job without handling it, to check that the checker catches a loss (the run must fail with lost=1)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.seed = uint64(*seed)
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano()%1_000_000 + 1)
	}
	switch cfg.mode {
	case "ci":
		if cfg.jobs == 0 {
			cfg.jobs = 20000
		}
		if cfg.duration == 0 {
			cfg.duration = 30 * time.Second
		}
		if cfg.drainTimeout == 0 {
			cfg.drainTimeout = 60 * time.Second
		}
	case "long":
		switch {
		case cfg.jobs == 0 && cfg.duration == 0:
			cfg.jobs = 1_000_000
		case cfg.jobs == 0:
			cfg.jobs = int(cfg.duration.Seconds() * longRate)
		}
		if cfg.duration == 0 {
			cfg.duration = time.Duration(float64(cfg.jobs) / longRate * float64(time.Second))
		}
		if cfg.drainTimeout == 0 {
			cfg.drainTimeout = 10 * time.Minute
		}
	default:
		return cfg, fmt.Errorf(`-mode %q: want "ci" or "long"`, cfg.mode)
	}
	switch {
	case !validTarget(cfg.target):
		return cfg, fmt.Errorf(`-target %q: want "streams", "lists" or "both"`, cfg.target)
	case cfg.jobs < 100:
		return cfg, fmt.Errorf("-jobs %d: want at least 100", cfg.jobs)
	case cfg.producers < 1 || cfg.workers < 1:
		return cfg, errors.New("-producers and -workers must be at least 1")
	case cfg.duration < 5*time.Second:
		return cfg, fmt.Errorf("-duration %v: want at least 5s", cfg.duration)
	case cfg.minIdle < 100*time.Millisecond:
		return cfg, fmt.Errorf("-min-idle %v: want at least 100ms", cfg.minIdle)
	}
	return cfg, nil
}

// replay is the command line that runs the same scenario again.
func (c config) replay() string {
	cmd := fmt.Sprintf("go run ./cmd/streamgroup-chaos -mode %s -target %s -seed %d -jobs %d -producers %d -workers %d -duration %v -min-idle %v",
		c.mode, c.target, c.seed, c.jobs, c.producers, c.workers, c.duration, c.minIdle)
	if c.sabotage {
		cmd += " -sabotage"
	}
	return cmd
}

// newLogger returns a text logger to w whose time is the time elapsed since
// start, with component as an attribute.
func newLogger(w io.Writer, component string, verbose bool, start time.Time) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.String("t", fmt.Sprintf("%.2fs", time.Since(start).Seconds()))
			}
			return a
		},
	})
	return slog.New(h).With("c", component)
}

// oneLine keeps the first line of an error text, for logs.
func oneLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
