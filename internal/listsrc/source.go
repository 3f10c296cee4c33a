// Package listsrc is the engine source of the list queues: a reliable
// source (the fetch script moves jobs into a processing list of the
// consumer's own, LREM settles them, a heartbeat keeps them, the recover
// script hands back a dead consumer's) and a simple one (the pop script and
// BRPOP, at most once), with their Lua scripts and keys. queue.Consumer
// runs them on internal/engine; internal/listwire holds the wire format.
package listsrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/listwire"
	"github.com/streamgroup/streamgroup/internal/redischeck"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

// ErrNotList is re-exported by queue.
var ErrNotList = errors.New("queue: key is not a list")

// Stats are the counters only a list source knows.
type Stats struct {
	Requeued  uint64 // failed jobs pushed back to the end of their queue (too many retries waiting)
	Malformed uint64 // malformed envelopes found (each is also dead-lettered)
	Recovered uint64 // reliable: jobs moved back to a queue from a dead consumer's (or this name's earlier) processing list
}

// Source is a list consumer's engine source, reliable or simple. The
// engine finds what it can do besides engine.Source (a reliable source is
// a Keeper and a Sweeper) by type assertion.
type Source interface {
	engine.Source
	// Stats returns the source's counters.
	Stats() Stats
	// Logger returns the source's logger (with the consumer attribute for
	// a reliable consumer), for the engine.
	Logger() *slog.Logger
}

// New returns the source for a normalized cfg: a reliable one when
// cfg.Reliable, else a simple one.
func New(cfg Config) Source {
	l := &lists{rdb: cfg.Client, queues: cfg.Queues, dead: cfg.dead, consumer: cfg.Consumer,
		poll: cfg.PollInterval, ttl: cfg.HeartbeatTTL, onError: cfg.OnError}
	l.typeKeys = append(append([]string(nil), l.queues...), l.dead...)
	if l.onError == nil {
		l.onError = func(error) {}
	}
	if hc, onError := cfg.Hook, l.onError; hc != nil {
		// What the source reports goes to the hook too, as the engine's
		// errors do.
		l.onError = func(err error) {
			hc.Event(hook.Event{Kind: hook.Error, Err: err})
			onError(err)
		}
	}
	var attrs []any
	if cfg.Reliable {
		attrs = []any{"consumer", cfg.Consumer}
	}
	l.log, l.warn = redischeck.Loggers(cfg.Logger, attrs...)
	if !cfg.Reliable {
		return &simpleSource{l}
	}
	for _, q := range l.queues {
		l.typeKeys = append(l.typeKeys, ProcessingKey(q, l.consumer))
	}
	return &reliableSource{lists: l, held: make(map[string]int)}
}

// lists is what both list sources share: the configuration, the counters
// only a list source knows, and the parts of engine.Source that do not
// depend on the kind.
type lists struct {
	rdb       redis.UniversalClient
	queues    []string
	dead      []string // dead-letter list of each queue
	consumer  string   // reliable only
	poll, ttl time.Duration
	log, warn *slog.Logger // see redischeck.Loggers
	onError   func(error)  // never nil
	typeKeys  []string     // every list the consumer uses, checked at start

	keys                           atomic.Uint64 // Delivery.Key tokens handed out
	requeued, malformed, recovered atomic.Uint64
	evictionChecked                bool // owned by Start
}

// Stats returns the source's counters.
func (l *lists) Stats() Stats {
	return Stats{Requeued: l.requeued.Load(), Malformed: l.malformed.Load(), Recovered: l.recovered.Load()}
}

// Logger returns the source's logger.
func (l *lists) Logger() *slog.Logger { return l.log }

// start checks the maxmemory-policy (once) and the types of the keys.
func (l *lists) start(ctx context.Context) error {
	if !l.evictionChecked {
		l.evictionChecked = true
		redischeck.AtStart(ctx, l.rdb, l.warn, l.log, l.onError, "queue")
	}
	return l.checkTypes(ctx)
}

// checkTypes returns an error wrapping ErrNotList, naming the key, when a
// list the consumer uses holds another type.
func (l *lists) checkTypes(ctx context.Context) error {
	pipe := l.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, len(l.typeKeys))
	for i, k := range l.typeKeys {
		cmds[i] = pipe.Type(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for i, cmd := range cmds {
		if t := cmd.Val(); t != "list" && t != "none" {
			return notList(l.typeKeys[i], "a "+t)
		}
	}
	return nil
}

func notList(key, what string) error {
	return fmt.Errorf("%w: key %q holds %s", ErrNotList, key, what)
}

// Classify waits out an outage or a Redis out of memory (OOM), and stops
// on anything else, naming the key of the wrong type for WRONGTYPE.
func (l *lists) Classify(op string, err error) (engine.Action, error) {
	switch {
	case errors.Is(err, ErrNotList):
		return engine.Stop, fmt.Errorf("queue: %s: %w", op, err)
	case rediserr.IsWrongType(err):
		ctx, cancel := context.WithTimeout(context.Background(), engine.SettleTimeout)
		defer cancel()
		if terr := l.checkTypes(ctx); errors.Is(terr, ErrNotList) {
			return engine.Stop, fmt.Errorf("queue: %s: %w", op, terr)
		}
		return engine.Stop, fmt.Errorf("queue: %s: %w: %w", op, ErrNotList, err)
	case rediserr.Waitable(err):
		return engine.Wait, nil
	}
	return engine.Stop, fmt.Errorf("queue: %s on %q: %w", op, l.queues, err)
}

// job is a list source's own data about a delivery (engine.Delivery.Ref);
// a reliable source changes it under its mutex.
type job struct {
	q        int    // index of its queue
	elem     string // reliable: its element in the processing list now; simple: as popped
	plain    bool   // simple: a plain string, not rewritten
	next     string // reliable: the element a bump being tried writes (counted as held)
	gone     bool   // reliable: no longer counted as held
	removing bool   // reliable: a removal was tried before: a 0 result is then no news
}

func jobOf(d *engine.Delivery) *job { return d.Ref.(*job) }

// delivery makes the engine's delivery of element raw of queue qi, decoded
// as el, whose handler sees n deliveries.
func (l *lists) delivery(qi int, raw string, el listwire.Element, n int64) *engine.Delivery {
	d := &engine.Delivery{
		Key: strconv.FormatUint(l.keys.Add(1), 36),
		Msg: stream.Message{ID: el.Env.ID, Stream: l.queues[qi], Values: el.Env.V, Deliveries: n},
		Ref: &job{q: qi, elem: raw, plain: el.Plain},
	}
	if el.Bad != "" {
		d.Bad, d.Msg.Deliveries, d.Size = "malformed envelope: "+el.Bad, 0, len(raw)
		l.malformed.Add(1)
		l.onError(fmt.Errorf("queue: malformed envelope in %q: %s", l.queues[qi], el.Bad))
	}
	return d
}

// byQueue splits ds by queue, keeping their order.
func (l *lists) byQueue(ds []*engine.Delivery) [][]*engine.Delivery {
	out := make([][]*engine.Delivery, len(l.queues))
	for _, d := range ds {
		q := jobOf(d).q
		out[q] = append(out[q], d)
	}
	return out
}

// release hands ds back with push, per queue: with now to the front (RPUSH
// in reverse, the first of ds first in line), else to the back (LPUSH).
func (l *lists) release(ds []*engine.Delivery, now bool, push func(qi int, qds []*engine.Delivery, dir string) (int, error)) (int, error) {
	total := 0
	for qi, qds := range l.byQueue(ds) {
		if len(qds) == 0 {
			continue
		}
		dir := "L"
		if now {
			dir = "R"
			slices.Reverse(qds) // byQueue's own slice
		}
		n, err := push(qi, qds, dir)
		if err != nil {
			return total, err
		}
		total += n
		if !now {
			l.requeued.Add(uint64(n))
			l.log.Info("too many retries waiting; failed jobs pushed back to the end of their queue", "queue", l.queues[qi], "count", n)
		}
	}
	return total, nil
}

// scriptJob is one job in the reply of fetch.lua or pop.lua.
type scriptJob struct {
	q    int
	elem string
}

// scriptJobs parses a reply of fetch.lua or pop.lua: {"", i1, e1, ...} or
// {badKey}.
func (l *lists) scriptJobs(res []any) ([]scriptJob, error) {
	if len(res) == 0 {
		return nil, errors.New("queue: empty script reply")
	}
	if bad, _ := res[0].(string); bad != "" {
		return nil, notList(bad, "another type")
	}
	out := make([]scriptJob, 0, (len(res)-1)/2)
	for i := 1; i+1 < len(res); i += 2 {
		qi, ok1 := res[i].(int64)
		elem, ok2 := res[i+1].(string)
		if !ok1 || !ok2 || qi < 1 || int(qi) > len(l.queues) {
			return nil, fmt.Errorf("queue: unexpected script reply element %T %T", res[i], res[i+1])
		}
		out = append(out, scriptJob{q: int(qi) - 1, elem: elem})
	}
	return out, nil
}

// fairness is the priority rule of one fetch loop (see fairEvery).
type fairness struct{ since int }

// next returns the scripts' flag: "1" when the next fetch is a fair one.
func (f *fairness) next(queues int) string {
	if queues > 1 && f.since >= fairEvery {
		return "1"
	}
	return "0"
}

// fetched records a fetch of n jobs.
func (f *fairness) fetched(fair string, n int) {
	if fair == "1" {
		f.since = 0
	} else {
		f.since += n
	}
}

// seconds formats d for a blocking command's timeout argument.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
