package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/queue"
)

// The lists target: reliable queue consumers on two priority queues.
const (
	listHigh      = "chaos:jobs:high"
	listLow       = "chaos:jobs:low"
	listLedgerKey = "chaos:lists:ledger"
	// listStatsKey is a hash of counters the workers add to (best effort:
	// a SIGKILLed worker loses its last half second).
	listStatsKey = "chaos:lists:stats"
	// listProcessingPattern matches every processing list of both queues
	// (queue.ProcessingKey: "{chaos:jobs:high}:processing:<consumer>"; braces
	// are literal in a SCAN pattern), listHeartbeatPattern every heartbeat.
	listProcessingPattern = "{chaos:jobs:*}:processing:*"
	listHeartbeatPattern  = "{chaos:jobs:*}:heartbeat:*"
	// finalConsumer is the name of the consumer that runs after the workers
	// stopped, when something is left, to recover and finish it.
	finalConsumer = "chaos-final"
	// listHeartbeatTTL is short, so that the jobs of SIGKILLed workers (and
	// of workers cut off or stalled for longer) are recovered within the run.
	listHeartbeatTTL = time.Second
	// finalTimeout bounds the final recovery.
	finalTimeout = 30 * time.Second
	// heartbeatWipe is how long the group-destroy fault keeps deleting the
	// list consumers' heartbeats.
	heartbeatWipe = 1500 * time.Millisecond
)

// listQueues are the queues in priority order.
var listQueues = []string{listHigh, listLow}

// listsTarget is the lists target (see target).
type listsTarget struct {
	*env          // nil in a worker process
	queueOf []int // the index in listQueues of each job's queue
	// recovered is what the final consumer recovered.
	recovered uint64
}

func newListsTarget(e *env) *listsTarget {
	t := &listsTarget{env: e}
	if e != nil {
		t.queueOf = planQueues(e.cfg)
	}
	return t
}

func (t *listsTarget) name() string   { return targetLists }
func (t *listsTarget) ledger() string { return listLedgerKey }

// plan counts the jobs of the high-priority queue.
func (t *listsTarget) plan() []any {
	high := 0
	for _, q := range t.queueOf {
		if q == 0 {
			high++
		}
	}
	return []any{"high_priority", high}
}

// planQueues draws, from the seed, the queue of each job for the list
// target: about one in three goes to the high-priority queue.
func planQueues(cfg config) []int {
	r := rand.New(rand.NewPCG(cfg.seed, 3))
	qs := make([]int, cfg.jobs)
	for i := range qs {
		if r.IntN(3) != 0 {
			qs[i] = 1
		}
	}
	return qs
}

// listOptions are the options of the workers' reliable consumers.
// Odd-numbered workers prefetch as many jobs as they handle at once; the
// others prefetch 2.
func listOptions(odd bool) *queue.Options {
	o := &queue.Options{
		Concurrency:     workerConcurrency,
		PollInterval:    500 * time.Millisecond, // below the clients' 1s ReadTimeout
		MaxDeliveries:   maxDeliveries,
		HeartbeatTTL:    listHeartbeatTTL,
		RetryBackoff:    50 * time.Millisecond,
		MaxRetryBackoff: 300 * time.Millisecond,
		DrainTimeout:    workerDrain,
	}
	if odd {
		o.Prefetch = workerConcurrency
	} else {
		o.Prefetch = 2
	}
	return o
}

// publisher pushes each job to its queue with a queue.Producer per queue:
// Push for a single job, else PushBatch, a batch split by queue.
func (t *listsTarget) publisher() (*publisher, error) {
	// No retries inside go-redis: it would send an LPUSH again after a
	// lost reply, pushing a second copy of the same envelope (same ID).
	// The publish loop retries itself, with new IDs, so that an ID found
	// twice in the dead-letter lists means the consumer duplicated a job.
	rdb := t.producerClient(-1)
	producers := make([]*queue.Producer, len(listQueues))
	for i, q := range listQueues {
		p, err := queue.NewProducer(rdb, q, nil)
		if err != nil {
			rdb.Close()
			return nil, err
		}
		producers[i] = p
	}
	split := func(batch []int) [][]int {
		parts := make([][]int, len(listQueues))
		for _, i := range batch {
			parts[t.queueOf[i]] = append(parts[t.queueOf[i]], i)
		}
		return parts
	}
	// A retried push may duplicate a job whose first push reached Redis:
	// that copy has an ID of its own.
	send := func(ctx context.Context, batch []int, single bool) ([]string, error) {
		p := producers[t.queueOf[batch[0]]]
		if single && len(batch) == 1 {
			id, err := p.Push(ctx, jobValues(t.jobs[batch[0]]))
			return []string{id}, err
		}
		values := make([]map[string]any, len(batch))
		for n, i := range batch {
			values[n] = jobValues(t.jobs[i])
		}
		return p.PushBatch(ctx, values)
	}
	return &publisher{stream: 100, verb: "push", split: split, send: send, close: rdb.Close}, nil
}

// listsLeft is what the lists hold.
type listsLeft struct {
	queued     int64 // elements in the queues
	processing int64 // elements in the processing lists
}

// idle: a job waiting for its retry stays in a processing list.
func (l listsLeft) idle() bool { return l.queued == 0 && l.processing == 0 }
func (l listsLeft) attrs() []any {
	return []any{"queued", l.queued, "processing", l.processing}
}
func (l listsLeft) String() string {
	return fmt.Sprintf("queued %d, in processing lists %d", l.queued, l.processing)
}

func (t *listsTarget) left(ctx context.Context) (leftover, error) { return t.listsLeft(ctx) }

// listsLeft counts the elements in the queues and in every processing
// list.
func (t *listsTarget) listsLeft(ctx context.Context) (listsLeft, error) {
	var l listsLeft
	for _, q := range listQueues {
		n, err := t.admin.LLen(ctx, q).Result()
		if err != nil {
			return l, err
		}
		l.queued += n
	}
	procs, err := t.scanKeys(ctx, listProcessingPattern)
	if err != nil {
		return l, err
	}
	for _, p := range procs {
		n, err := t.admin.LLen(ctx, p).Result()
		if err != nil {
			return l, err
		}
		l.processing += n
	}
	return l, nil
}

// scanKeys returns the keys that match pattern.
func (t *listsTarget) scanKeys(ctx context.Context, pattern string) ([]string, error) {
	var keys []string
	var cursor uint64
	for {
		ks, next, err := t.admin.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
		if cursor = next; cursor == 0 {
			slices.Sort(keys)
			return slices.Compact(keys), nil
		}
	}
}

// deadLetters reads every record of both dead-letter lists. A record must
// parse, carry a reason and name the queue whose dead-letter list holds it.
func (t *listsTarget) deadLetters(ctx context.Context) ([]deadLetter, error) {
	var out []deadLetter
	for _, q := range listQueues {
		dl := queue.DeadLetterKey(q)
		xs, err := t.admin.LRange(ctx, dl, 0, -1).Result()
		if err != nil {
			return nil, err
		}
		for _, x := range xs {
			d := deadLetter{where: "dead-letter list " + dl, raw: x}
			rec, err := queue.ParseDeadLetter(x)
			if err != nil {
				d.bad = err.Error()
				out = append(out, d)
				continue
			}
			d.from, d.reason = rec.Stream, rec.Error
			switch {
			case rec.Values == nil:
				d.bad = "the dead job is a malformed envelope"
			case rec.Stream != q:
				d.bad = fmt.Sprintf("record names queue %q", rec.Stream)
			case rec.Error == "":
				d.bad = "no reason"
			default:
				d.key, d.id = rec.Values[jobField], rec.OriginalID
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// disrupt deletes every heartbeat key of the list target every 50ms for
// heartbeatWipe: the live consumers' jobs are recovered by the others'
// sweeps while their handlers still run them (legitimate duplicates), and
// acks, retries and dead-letterings of those jobs find them gone.
func (t *listsTarget) disrupt(ctx context.Context, log *slog.Logger) error {
	end := time.Now().Add(heartbeatWipe)
	deleted := 0
	defer func() { log.Info("heartbeats wiped", "for", heartbeatWipe, "deleted", deleted) }()
	for time.Now().Before(end) {
		keys, err := t.scanKeys(ctx, listHeartbeatPattern)
		if err == nil && len(keys) > 0 {
			var n int64
			n, err = t.admin.Del(ctx, keys...).Result()
			deleted += int(n)
		}
		if err != nil && ctx.Err() == nil {
			t.log.Warn("heartbeat wipe failed; retrying", "err", oneLine(err))
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// vetDeadLetter checks that a poison job was dead-lettered for its own
// failure (or for MaxDeliveries) from the queue it was pushed to.
func (t *listsTarget) vetDeadLetter(i int, d deadLetter) string {
	switch {
	case !strings.Contains(d.reason, errPoison.Error()) && !strings.Contains(d.reason, "MaxDeliveries"):
		return fmt.Sprintf("poison job %s was dead-lettered for an unexpected reason: %s", d.key, d.reason)
	case listQueues[t.queueOf[i]] != d.from:
		return fmt.Sprintf("poison job %s was dead-lettered from %s, not from the queue it was pushed to", d.key, d.from)
	}
	return ""
}

func (t *listsTarget) describe(_ context.Context, i int, id string) string {
	return fmt.Sprintf("%s (%s, ID %s, queue %s)", t.jobs[i].key, t.jobs[i].kind, id, listQueues[t.queueOf[i]])
}

// finish runs a reliable consumer of its own, straight to Redis, which
// sweeps the registrations the workers left, recovers the processing
// lists of stopped workers once their heartbeats expire and handles what
// is left (when a worker's drain timed out, or the drain did not finish),
// until the queues and processing lists are empty or finalTimeout passes.
// It keeps the jobs that consumer recovered for checkLeft; its error means
// something is left.
func (t *listsTarget) finish(ctx context.Context) error {
	l, err := t.listsLeft(ctx)
	if err != nil {
		return err
	}
	if !l.idle() {
		t.log.Warn("jobs left after the workers stopped; the final consumer recovers them",
			"target", targetLists, "queued", l.queued, "processing", l.processing)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr: t.srv.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	defer rdb.Close()
	opts := listOptions(true)
	opts.OnError = func(err error) {
		if !errors.Is(err, errPoison) {
			t.log.Debug("final consumer", "err", oneLine(err))
		}
	}
	c, err := queue.NewReliableConsumer(rdb, listQueues, finalConsumer, chaosHandler(rdb, listLedgerKey, ""), opts)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	stop := func() (queue.Stats, error) {
		cancel()
		err := <-done
		st := c.Stats()
		t.recovered = st.Recovered
		return st, err
	}
	deadline := time.Now().Add(finalTimeout)
	for {
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			_, _ = stop()
			return err
		}
		l, err = t.listsLeft(ctx)
		if err == nil && l.idle() {
			break
		}
		if time.Now().After(deadline) {
			_, _ = stop()
			return fmt.Errorf("lists: the final consumer did not empty the queues and processing lists within %v: %d queued, %d in processing lists (last error: %v)",
				finalTimeout, l.queued, l.processing, err)
		}
	}
	st, runErr := stop()
	t.log.Info("final consumer stopped", "target", targetLists, "run", runErr, "delivered", st.Delivered, "acked", st.Acked,
		"dead", st.DeadLettered, "recovered", st.Recovered)
	if runErr != nil {
		return fmt.Errorf("lists: the final consumer: %w", runErr)
	}
	return nil
}

// checkLeft checks that the queues and processing lists are empty, and
// adds the jobs recovered, by the workers (as they reported them) and by
// the final consumer.
func (t *listsTarget) checkLeft(ctx context.Context, res *result) error {
	l, err := t.listsLeft(ctx)
	if err != nil {
		return err
	}
	res.pending = l.queued + l.processing
	if res.pending > 0 {
		res.fail("%d jobs left in the queues and %d in processing lists at the end", l.queued, l.processing)
		procs, _ := t.scanKeys(ctx, listProcessingPattern)
		for _, p := range procs {
			if n, _ := t.admin.LLen(ctx, p).Result(); n > 0 {
				res.fail("left: %d in %s", n, p)
			}
		}
	}
	recovered, err := t.admin.HGet(ctx, listStatsKey, "recovered").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	res.extra = fmt.Sprintf(" recovered=%d", recovered+int64(t.recovered))
	// Registrations and heartbeats left behind are harmless (a sweep drops
	// them), but every worker stopped gracefully at the end.
	for _, q := range listQueues {
		if m, err := t.admin.SMembers(ctx, queue.ConsumersKey(q)).Result(); err == nil && len(m) > 0 {
			t.log.Warn("consumers still registered at the end", "queue", q, "consumers", m)
		}
	}
	return nil
}

// consumer builds a reliable queue.Consumer on both queues, and its
// reporter of recovered jobs.
func (t *listsTarget) consumer(rdb *redis.Client, w workerArgs, h handler.Handler, onError func(error), lib *slog.Logger) (workerConsumer, error) {
	opts := listOptions(w.odd())
	opts.OnError, opts.Logger = onError, lib
	c, err := queue.NewReliableConsumer(rdb, listQueues, w.name, h, opts)
	if err != nil {
		return workerConsumer{}, err
	}
	stats := func() []any {
		st := c.Stats()
		return []any{"delivered", st.Delivered, "acked", st.Acked, "failed", st.Failed, "retried", st.Retried,
			"requeued", st.Requeued, "dead", st.DeadLettered, "malformed", st.Malformed,
			"recovered", st.Recovered, "released", st.Released}
	}
	report := func(ctx context.Context) { reportRecovered(ctx, rdb, c) }
	return workerConsumer{run: c.Run, stats: stats, report: report}, nil
}

// reportRecovered adds the consumer's Recovered count to listStatsKey
// every half second, and once more when ctx ends.
func reportRecovered(ctx context.Context, rdb *redis.Client, c *queue.Consumer) {
	var sent uint64
	send := func(ctx context.Context) {
		n := c.Stats().Recovered
		if n == sent {
			return
		}
		if rdb.HIncrBy(ctx, listStatsKey, "recovered", int64(n-sent)).Err() == nil {
			sent = n
		}
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			send(sctx)
			cancel()
			return
		case <-tick.C:
			send(ctx)
		}
	}
}
