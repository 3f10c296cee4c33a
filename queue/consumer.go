package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/health"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/redischeck"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

// Consumer handles the jobs of one or more Redis lists with a
// [handler.Handler] on a bounded pool of goroutines, on the same engine as
// a stream consumer group (package group). It is reliable
// ([NewReliableConsumer]) or simple ([NewSimpleConsumer]); see the package
// documentation. A Consumer is single-use: call [Consumer.Run] once. Its
// methods are safe for concurrent use. The zero value is not usable.
type Consumer struct {
	eng  *engine.Engine
	base *lists
}

// NewReliableConsumer returns a consumer named consumer that moves jobs
// from queues (in priority order, the first queue first) into processing
// lists of its own before handling them, so that no job is lost when the
// process dies (see the package documentation). The name must be unique
// among the queues' consumers and stable across restarts (a host or pod
// name): on start, a consumer first hands back the jobs its name left in
// its processing lists. opts may be nil for defaults.
//
// Invalid arguments (a nil client or handler, no queues, empty names,
// negative or inconsistent options) give an error wrapping
// [ErrInvalidOptions]. The consumer never closes rdb.
func NewReliableConsumer(rdb redis.UniversalClient, queues []string, consumer string, h handler.Handler, opts *Options) (*Consumer, error) {
	l, ecfg, err := newLists(rdb, queues, consumer, true, h, opts)
	if err != nil {
		return nil, err
	}
	s := &reliableSource{lists: l, held: make(map[string]int)}
	for _, q := range queues {
		l.typeKeys = append(l.typeKeys, ProcessingKey(q, consumer))
	}
	return &Consumer{eng: engine.New(s, ecfg), base: l}, nil
}

// NewSimpleConsumer returns a consumer that pops jobs from queues (BRPOP,
// in priority order, the first queue first) and handles them. Delivery is
// at most once: a job is out of Redis while its handler runs, so a crash
// loses it (see the package documentation). opts may be nil for defaults;
// HeartbeatTTL is ignored.
//
// Invalid arguments give an error wrapping [ErrInvalidOptions]. The
// consumer never closes rdb.
func NewSimpleConsumer(rdb redis.UniversalClient, queues []string, h handler.Handler, opts *Options) (*Consumer, error) {
	l, ecfg, err := newLists(rdb, queues, "", false, h, opts)
	if err != nil {
		return nil, err
	}
	return &Consumer{eng: engine.New(&simpleSource{l}, ecfg), base: l}, nil
}

// Run consumes until ctx is cancelled, then shuts down gracefully: it stops
// fetching, hands the jobs no handler runs back to the front of their
// queues, waits up to DrainTimeout for in-flight handlers (their contexts
// are not cancelled until then), settles, deregisters and returns nil;
// past DrainTimeout, an error wrapping [ErrDrainTimeout]. Redis outages
// and OOM refusals are ridden out with capped, jittered backoff; Run
// returns early only for errors that waiting cannot fix: a key of the
// wrong type ([ErrNotList], naming the key), a missing permission. A
// second call returns [ErrAlreadyRun]. docs/semantics.md has the details.
func (c *Consumer) Run(ctx context.Context) error { return c.eng.Run(ctx) }

// Health returns the consumer's health now: ready once Run has checked its
// keys and while Redis answers; live unless Run returned an error or a
// fetch has hung (see [health.Status] for each field). Its name is
// "queue/" and the queues joined by commas, then "/" and the consumer name
// for a reliable consumer. GroupMissing is always false. Health is safe for
// concurrent use, before, during and after Run; serve it to Kubernetes
// with [health.Live] and [health.Ready].
func (c *Consumer) Health() health.Status { return c.eng.Health() }

// healthName is a list consumer's health.Status.Name.
func healthName(queues []string, consumer string) string {
	name := "queue/" + strings.Join(queues, ",")
	if consumer != "" {
		name += "/" + consumer
	}
	return name
}

var _ health.Checker = (*Consumer)(nil)

// Stats returns a snapshot of the consumer's counters.
func (c *Consumer) Stats() Stats {
	e := c.eng.Stats()
	return Stats{
		Delivered:    e.Delivered,
		Acked:        e.Acked,
		Failed:       e.Failed,
		Retried:      e.Retried,
		Requeued:     c.base.requeued.Load(),
		DeadLettered: e.DeadLettered,
		Malformed:    c.base.malformed.Load(),
		Recovered:    c.base.recovered.Load(),
		LeaseLost:    e.LeaseLost,
		Released:     e.Released,
	}
}

// lists is what both list sources share: the configuration, the counters
// only a list source knows, and the parts of engine.Source that do not
// depend on the kind.
type lists struct {
	rdb        redis.UniversalClient
	queues     []string
	dead       []string // dead-letter list of each queue
	consumer   string   // reliable only
	customDead bool     // DeadLetterList was set
	poll, ttl  time.Duration
	log, warn  *slog.Logger // see redischeck.Loggers
	onError    func(error)  // never nil
	typeKeys   []string     // every list the consumer uses, checked at start

	keys                           atomic.Uint64 // Delivery.Key tokens handed out
	requeued, malformed, recovered atomic.Uint64
	evictionChecked                bool // owned by Start
}

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
func (l *lists) delivery(qi int, raw string, el element, n int64) *engine.Delivery {
	d := &engine.Delivery{
		Key: strconv.FormatUint(l.keys.Add(1), 36),
		Msg: stream.Message{ID: el.env.ID, Stream: l.queues[qi], Values: el.env.V, Deliveries: n},
		Ref: &job{q: qi, elem: raw, plain: el.plain},
	}
	if el.bad != "" {
		d.Bad, d.Msg.Deliveries, d.Size = "malformed envelope: "+el.bad, 0, len(raw)
		l.malformed.Add(1)
		l.onError(fmt.Errorf("queue: malformed envelope in %q: %s", l.queues[qi], el.bad))
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
