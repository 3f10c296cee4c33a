package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

// The streams target: a group.Consumer per worker on one stream.
const (
	streamKey = "chaos:{jobs}"
	deadKey   = "chaos:{jobs}:dead"
	groupName = "chaos"
	ledgerKey = "chaos:ledger"
)

// streamsTarget is the streams target (see target).
type streamsTarget struct {
	*env                  // nil in a worker process
	destroys atomic.Int64 // consumer group deletions
}

func newStreamsTarget(e *env) *streamsTarget { return &streamsTarget{env: e} }

func (t *streamsTarget) name() string   { return targetStreams }
func (t *streamsTarget) ledger() string { return ledgerKey }
func (t *streamsTarget) plan() []any    { return nil }

// publisher adds the jobs with a stream.Producer: AddEntry for a single
// job, else AddBatch.
func (t *streamsTarget) publisher() (*publisher, error) {
	rdb := t.producerClient(0)
	p, err := stream.NewProducer(rdb, streamKey, nil)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	send := func(ctx context.Context, batch []int, single bool) ([]string, error) {
		entries := make([]stream.Entry, len(batch))
		for n, i := range batch {
			entries[n] = stream.Entry{Values: jobValues(t.jobs[i])}
		}
		if single {
			id, err := p.AddEntry(ctx, entries[0])
			return []string{id}, err
		}
		return p.AddBatch(ctx, entries)
	}
	return &publisher{stream: 10, verb: "add", send: send, close: rdb.Close}, nil
}

// streamsLeft is what the group has in flight.
type streamsLeft struct {
	pending    int64 // the group's PEL
	caughtUp   bool  // the group has been delivered the stream's last entry
	groupFound bool
}

func (l streamsLeft) idle() bool { return l.groupFound && l.caughtUp && l.pending == 0 }
func (l streamsLeft) attrs() []any {
	return []any{"pending", l.pending, "caught_up", l.caughtUp}
}
func (l streamsLeft) String() string {
	return fmt.Sprintf("pending %d, caught up %v, group found %v", l.pending, l.caughtUp, l.groupFound)
}

func (t *streamsTarget) left(ctx context.Context) (leftover, error) {
	var l streamsLeft
	groups, err := t.admin.XInfoGroups(ctx, streamKey).Result()
	if err != nil {
		return l, err
	}
	info, err := t.admin.XInfoStream(ctx, streamKey).Result()
	if err != nil {
		return l, err
	}
	for _, g := range groups {
		if g.Name != groupName {
			continue
		}
		l.groupFound = true
		l.pending = g.Pending
		last, err1 := stream.ParseID(info.LastGeneratedID)
		delivered, err2 := stream.ParseID(g.LastDeliveredID)
		l.caughtUp = err1 == nil && err2 == nil && delivered.Compare(last) >= 0
	}
	return l, nil
}

// deadLetters reads the dead-letter stream.
func (t *streamsTarget) deadLetters(ctx context.Context) ([]deadLetter, error) {
	var out []deadLetter
	start := "-"
	for {
		xs, err := t.admin.XRangeN(ctx, deadKey, start, "+", 1000).Result()
		if err != nil {
			return nil, err
		}
		for _, x := range xs {
			k, _ := x.Values[jobField].(string)
			out = append(out, deadLetter{where: "the dead-letter stream", key: k})
		}
		if len(xs) < 1000 {
			return out, nil
		}
		start = "(" + xs[len(xs)-1].ID
	}
}

// disrupt deletes the consumer group, retrying until it succeeds; the
// workers create it again from 0.
func (t *streamsTarget) disrupt(ctx context.Context, log *slog.Logger) error {
	for {
		n, err := t.admin.XGroupDestroy(ctx, streamKey, groupName).Result()
		if err == nil {
			log.Info("XGROUP DESTROY", "destroyed", n)
			t.destroys.Add(1)
			return nil
		}
		log.Warn("XGROUP DESTROY failed; retrying", "err", err)
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

func (t *streamsTarget) finish(context.Context) error         { return nil }
func (t *streamsTarget) vetDeadLetter(int, deadLetter) string { return "" }

// describe says where a lost job's entry is: in the stream or not, pending
// or not.
func (t *streamsTarget) describe(ctx context.Context, i int, id string) string {
	j := t.jobs[i]
	if id == "" {
		return j.key + ": never published"
	}
	d := fmt.Sprintf("%s (%s, entry %s)", j.key, j.kind, id)
	xs, err := t.admin.XRange(ctx, streamKey, id, id).Result()
	switch {
	case err != nil:
		d += fmt.Sprintf(": XRANGE: %v", err)
	case len(xs) == 0:
		d += ": not in the stream"
	default:
		d += ": in the stream"
	}
	ps, err := t.admin.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: streamKey, Group: groupName, Start: id, End: id, Count: 1,
	}).Result()
	switch {
	case err != nil:
		d += fmt.Sprintf("; XPENDING: %v", err)
	case len(ps) == 0:
		d += "; not pending"
	default:
		d += fmt.Sprintf("; pending, owned by %s, %d deliveries", ps[0].Consumer, ps[0].RetryCount)
	}
	return d
}

// checkLeft checks that the group was deleted once and that nothing is
// pending.
func (t *streamsTarget) checkLeft(ctx context.Context, res *result) error {
	if d := t.destroys.Load(); d != 1 {
		res.fail("the group was deleted %d times; want once", d)
	}
	p, err := t.admin.XPending(ctx, streamKey, groupName).Result()
	switch {
	case rediserr.IsNoGroup(err):
		res.fail("the consumer group does not exist at the end")
	case err != nil:
		return fmt.Errorf("XPENDING: %w", err)
	default:
		res.pending = p.Count
	}
	if res.pending > 0 {
		res.fail("%d entries still pending after the drain (%v)", res.pending, p.Consumers)
		xs, err := t.admin.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: streamKey, Group: groupName, Start: "-", End: "+", Count: maxDetails,
		}).Result()
		if err == nil {
			for _, x := range xs {
				res.fail("pending: %s owned by %s, idle %v, %d deliveries", x.ID, x.Consumer, x.Idle, x.RetryCount)
			}
		}
	}
	return nil
}

// consumer builds a group.Consumer. Odd-numbered workers use a fixed
// Prefetch, the others the adaptive default.
func (t *streamsTarget) consumer(rdb *redis.Client, w workerArgs, h handler.Handler, onError func(error), lib *slog.Logger) (workerConsumer, error) {
	prefetch := 0
	if w.odd() {
		prefetch = workerConcurrency
	}
	c, err := group.NewConsumer(rdb, streamKey, groupName, w.name, h, &group.Options{
		Concurrency:     workerConcurrency,
		Prefetch:        prefetch,
		Block:           500 * time.Millisecond,
		MinIdle:         w.minIdle,
		MaxDeliveries:   maxDeliveries,
		RetryBackoff:    50 * time.Millisecond,
		MaxRetryBackoff: 300 * time.Millisecond,
		DrainTimeout:    workerDrain,
		OnError:         onError,
		Logger:          lib,
	})
	if err != nil {
		return workerConsumer{}, err
	}
	stats := func() []any {
		st := c.Stats()
		return []any{"delivered", st.Delivered, "acked", st.Acked, "failed", st.Failed,
			"dead", st.DeadLettered, "reclaimed", st.Reclaimed, "leases", st.LeaseRenewals, "groups_created", st.GroupsCreated}
	}
	return workerConsumer{run: c.Run, stats: stats}, nil
}
