package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/blockconn"
	"github.com/streamgroup/streamgroup/internal/flush"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

// errStop ends a loop without an error.
var errStop = errors.New("stop")

// handleErr decides what a loop does about a Redis error: nil to carry on
// (after a NOGROUP repair or a backoff pause), errStop when ctx ended, or a
// permanent error that stops the consumer.
func (e *Engine) handleErr(ctx context.Context, op string, err error, attempt *int) error {
	if ctx.Err() != nil {
		return errStop
	}
	switch {
	case rediserr.IsNoGroup(err):
		rerr := e.recreateGroup(ctx, err)
		if rerr == nil {
			*attempt = 0
			return nil
		}
		err = rerr
		if !waitable(err) {
			return e.permanent("recreate group", err)
		}
	case !waitable(err):
		return e.permanent(op, err)
	}
	e.transient(op, err)
	d := e.transientBackoff.Delay(*attempt)
	*attempt++
	if !backoff.Sleep(ctx, d) {
		return errStop
	}
	return nil
}

func stopped(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// readLoop reads with XREADGROUP: first this consumer's own pending entries
// (ID 0, left over from an earlier run), then new ones (">"). It reads once
// at least half of the prefetch fits in the free credits, and asks for as
// many entries as there are free credits: reads are batches, and the
// workers have entries queued while the next batch is on its way.
//
// New entries are read by two readers when Concurrency is above 1, so that
// Redis prepares one reply while the other is being decoded and
// dispatched. With Concurrency 1 one reader keeps entries in stream order.
// Each reader reads on a connection of its own (see package blockconn),
// closed when readLoop returns; a stop wakes a blocked read, and a read
// whose reply is lost when its connection had to be closed leaves its
// entries pending for this consumer, to be re-read at its next start or
// reclaimed after MinIdle.
func (e *Engine) readLoop(ctx context.Context) error {
	readers := 1
	if e.cfg.Concurrency > 1 {
		readers = 2
	}
	conns := make([]*blockconn.Conn, readers)
	for i := range conns {
		conns[i] = blockconn.New(e.cfg.Client, blockconn.UnblockOrClose)
		defer conns[i].Close()
	}
	cursor := "0"
	attempt := 0
	for cursor != ">" {
		xs, n, ok, err := e.read(ctx, conns[0], cursor, &attempt, false)
		if !ok {
			return err
		}
		if len(xs) == 0 {
			e.log.Debug("own pending entries done; reading new entries")
			e.credits.Give(n)
			break
		}
		cursor = xs[len(xs)-1].ID
		e.credits.Give(n - e.deliverRead(ctx, xs, false))
	}
	var g errgroup.Group
	for _, rc := range conns {
		g.Go(func() error {
			attempt, idle := 0, false
			for {
				xs, n, ok, err := e.read(ctx, rc, ">", &attempt, idle)
				if !ok {
					return err
				}
				idle = len(xs) < n
				e.credits.Give(n - e.deliverRead(ctx, xs, true))
			}
		})
	}
	return g.Wait()
}

// read takes credits and reads up to that many entries from cursor. The
// caller gives back the n credits it does not use. ok is false when the
// loop must end, with err nil when ctx ended.
//
// A reader whose last read was not full (idle: no backlog) asks for half
// the prefetch only. Its read will most likely block for up to Block
// holding the credits it took, and credits held so are credits the other
// reader, the retrier and the reclaimer cannot have: with both readers
// taking everything, a retry waited up to two Blocks for a credit.
func (e *Engine) read(ctx context.Context, rc *blockconn.Conn, cursor string, attempt *int, idle bool) (xs []redis.XMessage, n int, ok bool, err error) {
	for {
		p := e.prefetch()
		lo, hi := (p+1)/2, e.cfg.Concurrency+p
		if idle {
			hi = lo
		}
		n = e.credits.Take(ctx, lo, hi)
		if n == 0 {
			return nil, 0, false, nil
		}
		args := &redis.XReadGroupArgs{
			Group:    e.cfg.Group,
			Consumer: e.cfg.Consumer,
			Streams:  []string{e.cfg.Stream, cursor},
			Count:    int64(n),
			Block:    e.cfg.Block,
		}
		if cursor != ">" {
			args.Block = -1 // history reads never block
		}
		start := time.Now()
		res, err := xreadgroup(ctx, rc, args)
		if err != nil && !errors.Is(err, redis.Nil) {
			e.credits.Give(n)
			if err := e.handleErr(ctx, "XREADGROUP", err, attempt); err != nil {
				return nil, 0, false, stopped(err)
			}
			continue
		}
		*attempt = 0
		if len(res) > 0 {
			xs = res[0].Messages
		}
		if len(xs) == n || cursor != ">" {
			observe(&e.fetchNs, time.Since(start)) // a read that did not block
		}
		return xs, n, true, nil
	}
}

// xreadgroup runs XREADGROUP on a reader's connection: a blocking read is
// woken when ctx ends, and then returns no entries (or an error if its
// connection had to be closed).
func xreadgroup(ctx context.Context, rc *blockconn.Conn, args *redis.XReadGroupArgs) (res []redis.XStream, err error) {
	if args.Block < 0 {
		return rc.Client().XReadGroup(ctx, args).Result()
	}
	err = rc.Block(ctx, func(c redis.UniversalClient) error {
		res, err = c.XReadGroup(ctx, args).Result()
		return err
	})
	return res, err
}

// deliverRead dispatches what XREADGROUP returned and reports how many
// credits it used.
func (e *Engine) deliverRead(ctx context.Context, xs []redis.XMessage, fresh bool) int {
	if len(xs) == 0 {
		return 0
	}
	var counts map[string]int64
	if !fresh {
		counts = e.pendingCounts(ctx, xs[0].ID, xs[len(xs)-1].ID, len(xs))
	}
	ms := make([]stream.Message, 0, len(xs))
	var tombstones []string
	for _, x := range xs {
		m, ok := stream.FromXMessage(e.cfg.Stream, x)
		if !ok {
			tombstones = append(tombstones, x.ID)
			continue
		}
		m.Deliveries = 1
		if !fresh {
			m.Deliveries = counts[x.ID]
		}
		ms = append(ms, m)
	}
	used := e.dispatchAll(ms)
	e.dropDeleted(ctx, tombstones)
	if used > 0 {
		// Let a worker start on this processor now, before this reader
		// sends its next read: the entries' handlers start about 20µs
		// sooner at the median (docs/performance.md).
		runtime.Gosched()
	}
	return used
}

// pendingCounts returns the delivery counts of this consumer's pending
// entries between start and end. Missing counts read as 0 (unknown).
func (e *Engine) pendingCounts(ctx context.Context, start, end string, n int) map[string]int64 {
	ps, err := e.cfg.Client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: e.cfg.Stream, Group: e.cfg.Group, Start: start, End: end, Count: int64(n), Consumer: e.cfg.Consumer,
	}).Result()
	if err != nil {
		e.log.Warn("cannot read delivery counts", "err", err)
		return nil
	}
	counts := make(map[string]int64, len(ps))
	for _, p := range ps {
		counts[p.ID] = p.RetryCount
	}
	return counts
}

// dropDeleted acknowledges entries that were deleted from the stream while
// pending (XREADGROUP returns them with no fields), so they leave the PEL
// and never reach a handler. It counts only those its XACK removed: a
// concurrent XAUTOCLAIM may have removed (and counted) some already.
func (e *Engine) dropDeleted(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	n, err := e.cfg.Client.XAck(ctx, e.cfg.Stream, e.cfg.Group, ids...).Result()
	if err != nil {
		n = int64(len(ids))
		for _, id := range ids {
			e.ack(id) // the batched path retries
		}
	}
	e.c.deletedInPEL.Add(uint64(n))
	e.warnDeleted("entries deleted from the stream while pending were never handled; removed them from the PEL", ids)
}

// warnDeleted logs entries found deleted from the stream while pending: a
// job that was never finished and is gone (XDEL, or trimming that did not
// wait for the group), which is data loss, so at Warn, with their IDs.
func (e *Engine) warnDeleted(msg string, ids []string) {
	const most = 100 // IDs named in one record
	named := ids[:min(len(ids), most)]
	e.log.Warn(msg, "count", len(ids), "ids", named)
}

// reclaimLoop takes over entries idle longer than MinIdle with XAUTOCLAIM,
// from consumers that died or stalled, in full cursor passes every
// ReclaimInterval (with jitter). The first pass runs at once.
func (e *Engine) reclaimLoop(ctx context.Context) error {
	attempt := 0
	for {
		if err := e.reclaimPass(ctx, &attempt); err != nil {
			return stopped(err)
		}
		if !backoff.Sleep(ctx, backoff.Jitter(e.cfg.ReclaimInterval, 0.2)) {
			return nil
		}
	}
}

func (e *Engine) reclaimPass(ctx context.Context, attempt *int) error {
	cursor := "0-0"
	for {
		// Like the reader, claim once half of the prefetch fits (or
		// Concurrency, what idle readers leave free), not for every credit
		// a worker gives back.
		p := e.prefetch()
		n := e.credits.Take(ctx, min((p+1)/2, e.cfg.Concurrency, e.cfg.ReclaimCount), e.cfg.ReclaimCount)
		if n == 0 {
			return errStop
		}
		start := time.Now()
		res, err := e.claim(ctx, cursor, n)
		if err != nil {
			e.credits.Give(n)
			if err := e.handleErr(ctx, "XAUTOCLAIM", err, attempt); err != nil {
				return err
			}
			return nil // try again next interval
		}
		*attempt = 0
		if len(res) > 1 {
			if entries, _ := res[1].([]any); len(entries) == n {
				observe(&e.fetchNs, time.Since(start))
			}
		}
		next, used, err := e.deliverClaimed(ctx, res)
		e.credits.Give(n - used)
		if err != nil {
			return err
		}
		if next == "0-0" || next == "" {
			return nil
		}
		cursor = next
	}
}

// claim runs XAUTOCLAIM from cursor for up to n entries and returns
// {next cursor, entries, delivery counts, deleted IDs}, as deliverClaimed
// reads it. The counts come from an XPENDING of this consumer's entries from
// cursor on, pipelined with the claim: one round trip, and no Lua (a script
// would copy every claimed entry into Lua tables and back). This consumer
// may hold other entries in that range, hence the margin; an entry the
// range missed is looked up alone.
func (e *Engine) claim(ctx context.Context, cursor string, n int) ([]any, error) {
	pipe := e.cfg.Client.Pipeline()
	claimCmd := pipe.Do(ctx, "XAUTOCLAIM", e.cfg.Stream, e.cfg.Group, e.cfg.Consumer,
		e.cfg.MinIdle.Milliseconds(), cursor, "COUNT", n)
	pendCmd := pipe.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: e.cfg.Stream, Group: e.cfg.Group, Start: cursor, End: "+",
		Count: int64(2*n + 100), Consumer: e.cfg.Consumer,
	})
	_, _ = pipe.Exec(ctx)
	res, err := claimCmd.Slice()
	if err != nil {
		return nil, err
	}
	if len(res) < 2 {
		return nil, fmt.Errorf("group: unexpected XAUTOCLAIM reply of %d elements", len(res))
	}
	var deleted any = []any{}
	if len(res) > 2 {
		deleted = res[2] // Redis >= 7.0
	}
	entries, _ := res[1].([]any)
	byID := make(map[string]int64, len(entries))
	if ps, err := pendCmd.Result(); err == nil {
		for _, p := range ps {
			byID[p.ID] = p.RetryCount
		}
	}
	var missing []string
	for _, v := range entries {
		if arr, ok := v.([]any); ok && len(arr) > 0 {
			if id, _ := arr[0].(string); id != "" {
				if _, found := byID[id]; !found {
					missing = append(missing, id)
				}
			}
		}
	}
	if len(missing) > 0 {
		lp := e.cfg.Client.Pipeline()
		cmds := make([]*redis.XPendingExtCmd, len(missing))
		for i, id := range missing {
			cmds[i] = lp.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: e.cfg.Stream, Group: e.cfg.Group, Start: id, End: id, Count: 1})
		}
		_, _ = lp.Exec(ctx)
		for _, c := range cmds {
			if ps, err := c.Result(); err == nil && len(ps) == 1 {
				byID[ps[0].ID] = ps[0].RetryCount
			}
		}
	}
	counts := make([]any, len(entries))
	for i, v := range entries {
		counts[i] = int64(0) // unknown: a tombstone, or no longer pending
		if arr, ok := v.([]any); ok && len(arr) > 0 {
			if id, _ := arr[0].(string); id != "" {
				counts[i] = byID[id]
			}
		}
	}
	return []any{res[0], entries, counts, deleted}, nil
}

func (e *Engine) deliverClaimed(ctx context.Context, res []any) (next string, used int, err error) {
	if len(res) < 4 {
		return "", 0, fmt.Errorf("group: unexpected XAUTOCLAIM reply of %d elements", len(res))
	}
	next, _ = res[0].(string)
	entries, _ := res[1].([]any)
	counts, _ := res[2].([]any)
	deleted, _ := res[3].([]any)
	if len(deleted) > 0 {
		e.c.deletedInPEL.Add(uint64(len(deleted)))
		ids := make([]string, 0, len(deleted))
		for _, d := range deleted {
			if id, ok := d.(string); ok {
				ids = append(ids, id)
			}
		}
		e.warnDeleted("entries deleted from the stream while pending were never handled; XAUTOCLAIM removed them from the PEL", ids)
	}
	for i, v := range entries {
		id, values, ok, perr := parseEntry(v)
		if perr != nil {
			return next, used, perr
		}
		if !ok {
			if id != "" {
				e.dropDeleted(ctx, []string{id})
			}
			continue
		}
		m := stream.Message{ID: id, Stream: e.cfg.Stream, Values: values}
		if i < len(counts) {
			m.Deliveries, _ = counts[i].(int64)
		}
		if e.dispatch(m) {
			used++
			e.c.reclaimed.Add(1)
		}
	}
	return next, used, nil
}

// retryLoop re-delivers entries whose handler failed, when their backoff is
// due. Until then the lease loop keeps them owned by this consumer.
func (e *Engine) retryLoop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	attempt := 0
	for {
		due, next := e.dueRetries()
		if len(due) == 0 {
			wait := time.Hour
			if !next.IsZero() {
				wait = time.Until(next)
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-e.retryWake:
			case <-timer.C:
			}
			continue
		}
		n := e.credits.Take(ctx, 1, min(len(due), scriptBatch))
		if n == 0 {
			return nil
		}
		due = due[:n]
		args := make([]any, 0, 2+n)
		args = append(args, e.cfg.Group, e.cfg.Consumer)
		for _, id := range due {
			args = append(args, id)
		}
		res, err := retryScript.Run(ctx, e.cfg.Client, []string{e.cfg.Stream}, args...).Slice()
		if err != nil {
			e.credits.Give(n)
			if err := e.handleErr(ctx, "retry", err, &attempt); err != nil {
				return stopped(err)
			}
			continue
		}
		attempt = 0
		// Entries not in the reply are no longer ours: forget them.
		got := make(map[string]bool, len(res))
		used := 0
		for _, v := range res {
			arr, _ := v.([]any)
			if len(arr) < 3 {
				continue
			}
			id, values, _, _ := parseEntry(arr[:2])
			d, _ := arr[2].(int64)
			got[id] = true
			if d < 0 {
				e.unholdRetry(id)
				e.c.deletedInPEL.Add(1)
				e.warnDeleted("an entry waiting for its retry was deleted from the stream; it will not run again", []string{id})
				continue
			}
			if e.dispatch(stream.Message{ID: id, Stream: e.cfg.Stream, Values: values, Deliveries: d}) {
				used++
			}
		}
		for _, id := range due {
			if !got[id] {
				e.unholdRetry(id)
			}
		}
		e.credits.Give(n - used)
	}
}

// dueRetries returns the IDs of retries that are due, oldest first, and the
// time the next one falls due.
func (e *Engine) dueRetries() (due []string, next time.Time) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, h := range e.holds {
		if h.state != awaitRetry {
			continue
		}
		if !h.due.After(now) {
			due = append(due, id)
		} else if next.IsZero() || h.due.Before(next) {
			next = h.due
		}
	}
	sortIDs(due)
	return due, next
}

func sortIDs(ids []string) {
	parsed := make(map[string]stream.ID, len(ids))
	for _, id := range ids {
		p, _ := stream.ParseID(id)
		parsed[id] = p
	}
	slices.SortFunc(ids, func(a, b string) int { return parsed[a].Compare(parsed[b]) })
}

// leaseLoop renews the lease of every entry this consumer holds (in a
// handler, or waiting for a retry) before it could look idle to another
// consumer's reclaimer: XCLAIM JUSTID resets the idle time without counting
// a delivery.
func (e *Engine) leaseLoop(ctx context.Context) {
	tick := time.NewTicker(max(e.cfg.LeaseInterval/2, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ids := e.staleLeases()
		for start := 0; start < len(ids); start += scriptBatch {
			e.renew(ctx, ids[start:min(start+scriptBatch, len(ids))])
		}
	}
}

// scriptBatch is the most IDs one renew or retry script call handles, so
// that no single script keeps Redis busy for long.
const scriptBatch = 100

func (e *Engine) renew(ctx context.Context, ids []string) {
	args := make([]any, 0, 2+len(ids))
	args = append(args, e.cfg.Group, e.cfg.Consumer)
	for _, id := range ids {
		args = append(args, id)
	}
	lost, err := renewScript.Run(ctx, e.cfg.Client, []string{e.cfg.Stream}, args...).StringSlice()
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("lease renewal failed", "err", err)
			e.report(fmt.Errorf("group: renew leases: %w", err))
		}
		return
	}
	now := time.Now()
	lostSet := make(map[string]bool, len(lost))
	for _, id := range lost {
		lostSet[id] = true
	}
	e.mu.Lock()
	for _, id := range ids {
		h, ok := e.holds[id]
		if !ok {
			continue
		}
		if lostSet[id] {
			if h.state != inHandler { // acknowledged, or another consumer has it now
				e.dropHold(id)
			}
			continue
		}
		h.renewed = now
		e.holds[id] = h
	}
	e.mu.Unlock()
	e.c.leaseRenewals.Add(uint64(len(ids) - len(lost)))
	if len(lost) > 0 {
		e.log.Warn("lost the lease on entries: another consumer claimed them or they were acknowledged", "count", len(lost))
	}
}

func (e *Engine) staleLeases() []string {
	limit := time.Now().Add(-e.cfg.LeaseInterval)
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for id, h := range e.holds {
		if h.renewed.Before(limit) {
			ids = append(ids, id)
		}
	}
	return ids
}

// ack queues id for a batched XACK; a hold on id waits for it (awaitAck).
func (e *Engine) ack(id string) {
	e.mu.Lock()
	if h, ok := e.holds[id]; ok {
		if h.state == awaitRetry {
			e.retries--
		}
		h.state = awaitAck
		e.holds[id] = h
	}
	e.ackBuf = append(e.ackBuf, id)
	n := len(e.ackBuf)
	e.mu.Unlock()
	if n == 1 || n >= e.cfg.AckBatch {
		select {
		case e.ackWake <- struct{}{}:
		default:
		}
	}
}

// ackLoop flushes queued acks in batches: when AckBatch are queued, else
// AckInterval after the first one queued, and a last time when ctx ends,
// with a context of its own (AckTimeout) so finished work is acknowledged
// even during shutdown.
func (e *Engine) ackLoop(ctx context.Context) {
	flush.Loop(ctx, e.ackWake, e.cfg.AckBatch, e.cfg.AckInterval, e.transientBackoff,
		e.ackPending, e.flushAcks, func(err error) { e.transient("XACK", err) })
	e.finalFlush()
}

// ackPending returns how many acks are queued.
func (e *Engine) ackPending() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.ackBuf)
}

func (e *Engine) finalFlush() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.AckTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		err := e.flushAcks(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			e.mu.Lock()
			n := len(e.ackBuf)
			e.mu.Unlock()
			e.log.Error("could not acknowledge finished entries before AckTimeout; they stay pending and will be delivered again", "count", n, "err", err)
			e.report(fmt.Errorf("group: final XACK of %d entries: %w", n, err))
			return
		}
		e.transient("final XACK", err)
		backoff.Sleep(ctx, e.transientBackoff.Delay(attempt))
	}
}

// flushAcks sends every queued ack: XACK commands of up to AckBatch IDs,
// pipelined in one round trip. On any error but an error reply from the
// server (NOGROUP, NOPERM...) the IDs go back to the queue.
func (e *Engine) flushAcks(ctx context.Context) error {
	e.mu.Lock()
	ids := e.ackBuf
	e.ackBuf = nil
	e.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	pipe := e.cfg.Client.Pipeline()
	var cmds []*redis.IntCmd
	for start := 0; start < len(ids); start += e.cfg.AckBatch {
		end := min(start+e.cfg.AckBatch, len(ids))
		cmds = append(cmds, pipe.XAck(ctx, e.cfg.Stream, e.cfg.Group, ids[start:end]...))
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		for _, c := range cmds {
			e.c.acked.Add(uint64(c.Val()))
		}
		e.unholdAll(ids)
		return nil
	}
	// Keep the IDs for the next flush unless the XACK cannot work: a
	// transient failure, and one that ended with the loop's context (a stop
	// during go-redis's own retries reports context.Canceled), leave the
	// entries pending, and the final flush must still send them. An error
	// reply from the server, or a client its owner closed, cannot be
	// waited out.
	if rediserr.IsTransient(err) || !rediserr.IsReply(err) && !errors.Is(err, redis.ErrClosed) {
		e.mu.Lock()
		e.ackBuf = append(ids, e.ackBuf...)
		e.mu.Unlock()
		return err
	}
	e.unholdAll(ids)
	if rediserr.IsNoGroup(err) {
		// The group is gone, and its PEL with it: the entries are delivered
		// again by the recreated group.
		e.log.Warn("acknowledgement found no group; the entries will be delivered again", "count", len(ids), "err", err)
		e.report(fmt.Errorf("group: XACK %d entries on stream %q (group %q): %w", len(ids), e.cfg.Stream, e.cfg.Group, err))
		return nil
	}
	// NOPERM, WRONGTYPE...: acknowledging cannot work, so consuming must
	// stop (the entries stay pending and are handled again later).
	perr := e.permanent(fmt.Sprintf("XACK of %d entries", len(ids)), err)
	e.log.Error("acknowledgement failed; stopping", "count", len(ids), "err", err)
	e.report(perr)
	if e.fail != nil {
		e.fail(perr)
	}
	return nil
}

func (e *Engine) unholdAll(ids []string) {
	e.mu.Lock()
	for _, id := range ids {
		if h, ok := e.holds[id]; ok && h.state == awaitAck {
			delete(e.holds, id) // not awaitRetry: the retry count stays
		}
	}
	e.mu.Unlock()
}

// unholdRetry forgets id if it is still waiting for a retry: a reclaim may
// have dispatched it to a handler meanwhile, and that hold must stay.
func (e *Engine) unholdRetry(id string) {
	e.mu.Lock()
	if h, ok := e.holds[id]; ok && h.state == awaitRetry {
		e.dropHold(id)
	}
	e.mu.Unlock()
}
