package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// The list target: reliable queue consumers on two priority queues.
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
)

// listQueues are the queues in priority order.
var listQueues = []string{listHigh, listLow}

// listOptions are the options of the workers' reliable consumers.
// Odd-numbered workers prefetch as many jobs as they handle at once; the
// others prefetch 2 and serve the low queue more often.
func listOptions(odd bool) *queue.Options {
	o := &queue.Options{
		Concurrency:     workerConcurrency,
		PollInterval:    500 * time.Millisecond, // below the clients' 1s ReadTimeout
		MaxAttempts:     maxDeliveries,
		HeartbeatTTL:    listHeartbeatTTL,
		RetryBackoff:    50 * time.Millisecond,
		MaxRetryBackoff: 300 * time.Millisecond,
		DrainTimeout:    workerDrain,
		AckTimeout:      3 * time.Second,
	}
	if odd {
		o.Prefetch = workerConcurrency
	} else {
		o.Prefetch, o.StarvationLimit = 2, 5
	}
	return o
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

// jobValues are the fields of job j.
func jobValues(j job) map[string]any {
	v := map[string]any{jobField: j.key, kindField: j.kind, padField: "0123456789abcdef0123456789abcdef"}
	if j.sleep > 0 {
		v[sleepField] = strconv.Itoa(j.sleep)
	}
	return v
}

// publishLists pushes every job to its queue, with cfg.producers producers
// spread over 80% of the fault window, as publish does for the stream, and
// returns the ID of each job (the last one, for a job pushed more than once
// after an ambiguous failure).
func (s *scenario) publishLists(ctx context.Context) ([]string, error) {
	// No retries inside go-redis: it would send an LPUSH again after a
	// lost reply, pushing a second copy of the same envelope (same ID).
	// push retries itself, with new IDs, so that an ID found twice in the
	// dead-letter lists means the consumer duplicated a job.
	rdb := redis.NewClient(&redis.Options{
		Addr: s.srv.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		PoolSize: 2 * s.cfg.producers, MaxRetries: -1,
	})
	defer rdb.Close()
	producers := make([]*queue.Producer, len(listQueues))
	for i, q := range listQueues {
		p, err := queue.NewProducer(rdb, q, nil)
		if err != nil {
			return nil, err
		}
		producers[i] = p
	}
	ids := make([]string, len(s.jobs))
	window := s.cfg.duration * 8 / 10
	var retries atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	for k := range s.cfg.producers {
		g.Go(func() error {
			r := rand.New(rand.NewPCG(s.cfg.seed, uint64(100+k)))
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
				for qi, p := range producers {
					var sub []int
					for _, i := range batch {
						if s.listQueue[i] == qi {
							sub = append(sub, i)
						}
					}
					if err := s.push(ctx, p, sub, single, ids, &retries); err != nil {
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
	s.log.Info("pushed every job", "target", targetLists, "jobs", len(ids), "retried_pushes", retries.Load())
	return ids, nil
}

// push pushes the jobs at indices batch (Push when single, else PushBatch),
// retrying failed ones until each is pushed. A retried push may duplicate
// a job whose first push reached Redis: that copy has an ID of its own.
func (s *scenario) push(ctx context.Context, p *queue.Producer, batch []int, single bool, ids []string, retries *atomic.Int64) error {
	return s.sendAll(ctx, "push", batch, ids, retries, func(batch []int) ([]string, error) {
		if single && len(batch) == 1 {
			id, err := p.Push(ctx, jobValues(s.jobs[batch[0]]))
			return []string{id}, err
		}
		values := make([]map[string]any, len(batch))
		for n, i := range batch {
			values[n] = jobValues(s.jobs[i])
		}
		return p.PushBatch(ctx, values)
	})
}

// wipeHeartbeats deletes every heartbeat key of the list target every 50ms
// for d: the live consumers' jobs are recovered by the others' sweeps while
// their handlers still run them (legitimate duplicates), and acks, retries
// and dead-letterings of those jobs find them gone.
func (s *scenario) wipeHeartbeats(ctx context.Context, d time.Duration) (int, error) {
	end := time.Now().Add(d)
	deleted := 0
	for time.Now().Before(end) {
		keys, err := s.scanKeys(ctx, listHeartbeatPattern)
		if err == nil && len(keys) > 0 {
			var n int64
			n, err = s.admin.Del(ctx, keys...).Result()
			deleted += int(n)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("heartbeat wipe failed; retrying", "err", oneLine(err))
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

// scanKeys returns the keys that match pattern.
func (s *scenario) scanKeys(ctx context.Context, pattern string) ([]string, error) {
	var keys []string
	var cursor uint64
	for {
		ks, next, err := s.admin.Scan(ctx, cursor, pattern, 1000).Result()
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

// listStatus is what the list drain waits for.
type listStatus struct {
	handled    int64 // distinct jobs in the ledger
	dead       int   // distinct poison jobs dead-lettered
	queued     int64 // elements in the queues
	processing int64 // elements in the processing lists
}

func (s *scenario) listStatus(ctx context.Context) (listStatus, error) {
	var st listStatus
	var err error
	if st.handled, err = s.admin.HLen(ctx, listLedgerKey).Result(); err != nil {
		return st, err
	}
	if st.queued, st.processing, err = s.listLeft(ctx); err != nil {
		return st, err
	}
	dead, err := s.listDead(ctx)
	if err != nil {
		return st, err
	}
	keys := map[string]bool{}
	for _, d := range dead {
		keys[d.key] = true
	}
	for _, j := range s.jobs {
		if j.kind != kindOK && keys[j.key] {
			st.dead++
		}
	}
	return st, nil
}

// listLeft counts the elements in the queues and in every processing list.
func (s *scenario) listLeft(ctx context.Context) (queued, processing int64, err error) {
	for _, q := range listQueues {
		n, err := s.admin.LLen(ctx, q).Result()
		if err != nil {
			return 0, 0, err
		}
		queued += n
	}
	procs, err := s.scanKeys(ctx, listProcessingPattern)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range procs {
		n, err := s.admin.LLen(ctx, p).Result()
		if err != nil {
			return 0, 0, err
		}
		processing += n
	}
	return queued, processing, nil
}

// deadRecord is one record of a dead-letter list, as the checker reads it.
type deadRecord struct {
	list string // the dead-letter list
	raw  string
	key  string // the job key, "" when unreadable
	id   string // the job's ID
	rec  stream.DeadLetter
	bad  string // why the record is not as expected; "" when it is
}

// listDead reads every record of both dead-letter lists.
func (s *scenario) listDead(ctx context.Context) ([]deadRecord, error) {
	var out []deadRecord
	for _, q := range listQueues {
		dl := queue.DeadLetterKey(q)
		xs, err := s.admin.LRange(ctx, dl, 0, -1).Result()
		if err != nil {
			return nil, err
		}
		for _, x := range xs {
			d := deadRecord{list: dl, raw: x}
			rec, err := queue.ParseDeadLetter(x)
			if err != nil {
				d.bad = err.Error()
				out = append(out, d)
				continue
			}
			d.rec = rec
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

func (s *scenario) listMonitorLine(ctx context.Context) []any {
	st, err := s.listStatus(ctx)
	if err != nil {
		return []any{"lists_err", oneLine(err)}
	}
	return []any{"lists_handled", st.handled, "lists_dead", st.dead, "queued", st.queued, "processing", st.processing}
}

// drainLists waits until every job that is not poison is in the list
// ledger, every poison job is dead-lettered, and the queues and processing
// lists are empty, for at most cfg.drainTimeout.
func (s *scenario) drainLists(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	ok, poison := s.kinds()
	deadline := start.Add(s.cfg.drainTimeout)
	lastLog := start
	var last, prev listStatus
	var lastErr error
	settled := 0
	for {
		prev = last
		last, lastErr = s.listStatus(ctx)
		empty := lastErr == nil && last.queued == 0 && last.processing == 0
		if empty && last.handled >= ok && int64(last.dead) == poison {
			d := time.Since(start)
			s.log.Info("drained", "target", targetLists, "in", d.Round(time.Millisecond))
			return d, nil
		}
		// Nothing in a queue or a processing list: no handler runs and no
		// retry waits (a job waiting for its retry stays in a processing
		// list), so what is missing now stays missing.
		if empty && last == prev {
			settled++
		} else {
			settled = 0
		}
		if settled >= 3 {
			return time.Since(start), fmt.Errorf("lists: drain settled with the queues and processing lists empty, but only %d/%d jobs handled and %d/%d poison jobs dead-lettered",
				last.handled, ok, last.dead, poison)
		}
		if time.Now().After(deadline) {
			return time.Since(start), fmt.Errorf("lists: drain timed out after %v: handled %d/%d, dead %d/%d, queued %d, in processing lists %d (last error: %v)",
				s.cfg.drainTimeout, last.handled, ok, last.dead, poison, last.queued, last.processing, lastErr)
		}
		if time.Since(lastLog) >= 2*time.Second {
			lastLog = time.Now()
			s.log.Info("draining", "target", targetLists, "handled", last.handled, "of", ok, "dead", last.dead, "of", poison,
				"queued", last.queued, "processing", last.processing, "err", lastErr)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return time.Since(start), err
		}
	}
}

// finishLists runs once the workers have stopped: a reliable consumer of
// its own, straight to Redis, which sweeps the registrations the workers
// left, recovers the processing lists of stopped workers once their
// heartbeats expire and handles what is left (when a worker's drain timed
// out, or the drain did not finish), until the queues and processing lists
// are empty or finalTimeout passes. It returns the jobs that consumer
// recovered; its error means something is left.
func (s *scenario) finishLists(ctx context.Context) (uint64, error) {
	queued, processing, err := s.listLeft(ctx)
	if err != nil {
		return 0, err
	}
	if queued > 0 || processing > 0 {
		s.log.Warn("jobs left after the workers stopped; the final consumer recovers them",
			"target", targetLists, "queued", queued, "processing", processing)
	}
	rdb := redis.NewClient(&redis.Options{
		Addr: s.srv.Addr(), DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	defer rdb.Close()
	opts := listOptions(true)
	opts.OnError = func(err error) {
		if !errors.Is(err, errPoison) {
			s.log.Debug("final consumer", "err", oneLine(err))
		}
	}
	c, err := queue.NewReliableConsumer(rdb, listQueues, finalConsumer, chaosHandler(rdb, listLedgerKey, ""), opts)
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	deadline := time.Now().Add(finalTimeout)
	for {
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			cancel()
			<-done
			return c.Stats().Recovered, err
		}
		queued, processing, err = s.listLeft(ctx)
		if err == nil && queued == 0 && processing == 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			return c.Stats().Recovered, fmt.Errorf("lists: the final consumer did not empty the queues and processing lists within %v: %d queued, %d in processing lists (last error: %v)",
				finalTimeout, queued, processing, err)
		}
	}
	cancel()
	runErr := <-done
	st := c.Stats()
	s.log.Info("final consumer stopped", "target", targetLists, "run", runErr, "delivered", st.Delivered, "acked", st.Acked,
		"dead", st.DeadLettered, "recovered", st.Recovered)
	if runErr != nil {
		return st.Recovered, fmt.Errorf("lists: the final consumer: %w", runErr)
	}
	return st.Recovered, nil
}

// kinds counts the jobs that are not poison and the poison ones.
func (s *scenario) kinds() (ok, poison int64) {
	for _, j := range s.jobs {
		if j.kind == kindOK {
			ok++
		} else {
			poison++
		}
	}
	return ok, poison
}

// checkLists compares the pushed jobs (ids: the ID of each) with the list
// ledger, the dead-letter lists, the queues and the processing lists, once
// the workers and the final consumer have stopped.
func (s *scenario) checkLists(ctx context.Context, ids []string) (*result, error) {
	res := s.newResult(targetLists)
	ledger, err := s.readLedger(ctx, listLedgerKey)
	if err != nil {
		return nil, err
	}
	records, err := s.listDead(ctx)
	if err != nil {
		return nil, err
	}
	known := make(map[string]int, len(s.jobs)) // job key -> index
	for i, j := range s.jobs {
		known[j.key] = i
	}
	dead := map[string]int{}     // dead letters per job key
	deadIDs := map[string]bool{} // job IDs dead-lettered
	for _, d := range records {
		i, ok := known[d.key]
		switch {
		case d.bad != "":
			res.fail("dead-letter list %s holds an unexpected record (%s): %.200s", d.list, d.bad, d.raw)
			continue
		case !ok:
			res.fail("dead-letter list %s holds %q, which is no job", d.list, d.key)
			continue
		case s.jobs[i].kind == kindOK:
			res.fail("job %s is not poison but was dead-lettered from %s: %s", d.key, d.rec.Stream, d.rec.Error)
		case !strings.Contains(d.rec.Error, errPoison.Error()) && !strings.Contains(d.rec.Error, "MaxAttempts"):
			res.fail("poison job %s was dead-lettered for an unexpected reason: %s", d.key, d.rec.Error)
		case listQueues[s.listQueue[i]] != d.rec.Stream:
			res.fail("poison job %s was dead-lettered from %s, not from the queue it was pushed to", d.key, d.rec.Stream)
		}
		if deadIDs[d.id] {
			// A job pushed twice (a retried push) has two IDs: one ID dead
			// twice means one job was in two places.
			res.fail("job %s (ID %s) was dead-lettered twice", d.key, d.id)
		}
		deadIDs[d.id] = true
		dead[d.key]++
	}
	var lost []int
	for i, j := range s.jobs {
		if ids[i] != "" {
			res.published++
		}
		n := ledger[j.key]
		switch {
		case j.kind == kindOK && n == 0:
			res.lost++
			lost = append(lost, i)
		case j.kind == kindOK:
			res.handled++
			res.dups += n - 1
		default:
			if n > 0 {
				res.fail("poison job %s (%s) is counted %d times in the list ledger", j.key, ids[i], n)
			}
			if dead[j.key] > 0 {
				res.dead++
			} else {
				res.fail("poison job %s (%s, %s) was not dead-lettered", j.key, ids[i], j.kind)
			}
		}
	}
	if res.published != int64(len(s.jobs)) {
		res.fail("pushed %d jobs of %d", res.published, len(s.jobs))
	}
	for k := range ledger {
		if _, ok := known[k]; !ok {
			res.fail("the list ledger counts %q, which is no job", k)
		}
	}
	if res.lost > 0 {
		res.fail("%d jobs lost", res.lost)
		for _, i := range lost[:min(len(lost), maxDetails)] {
			res.fail("lost: %s (%s, ID %s, queue %s)", s.jobs[i].key, s.jobs[i].kind, ids[i], listQueues[s.listQueue[i]])
		}
	}

	queued, processing, err := s.listLeft(ctx)
	if err != nil {
		return nil, err
	}
	res.pending = queued + processing
	if res.pending > 0 {
		res.fail("%d jobs left in the queues and %d in processing lists at the end", queued, processing)
		procs, _ := s.scanKeys(ctx, listProcessingPattern)
		for _, p := range procs {
			if n, _ := s.admin.LLen(ctx, p).Result(); n > 0 {
				res.fail("left: %d in %s", n, p)
			}
		}
	}
	recovered, err := s.admin.HGet(ctx, listStatsKey, "recovered").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	res.recovered = recovered
	// Registrations and heartbeats left behind are harmless (a sweep drops
	// them), but every worker stopped gracefully at the end.
	for _, q := range listQueues {
		if m, err := s.admin.SMembers(ctx, queue.ConsumersKey(q)).Result(); err == nil && len(m) > 0 {
			s.log.Warn("consumers still registered at the end", "queue", q, "consumers", m)
		}
	}
	return res, nil
}
