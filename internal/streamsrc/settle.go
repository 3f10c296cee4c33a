package streamsrc

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/stream"
)

// Settle acknowledges finished entries: XACK commands of up to ackBatch
// IDs, pipelined in one round trip.
func (s *Source) Settle(ctx context.Context, ds []*engine.Delivery) error {
	pipe := s.rdb.Pipeline()
	for start := 0; start < len(ds); start += ackBatch {
		batch := ds[start:min(start+ackBatch, len(ds))]
		pipe.XAck(ctx, s.cfg.Stream, s.cfg.Group, ids(batch)...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("XACK of %d entries: %w", len(ds), err)
	}
	return nil
}

func ids(ds []*engine.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Key
	}
	return out
}

// scriptArgs returns group, consumer, then the IDs of ds.
func (s *Source) scriptArgs(ds []*engine.Delivery, extra ...any) []any {
	args := make([]any, 0, 2+len(extra)+len(ds))
	args = append(args, s.cfg.Group, s.cfg.Consumer)
	args = append(args, extra...)
	for _, d := range ds {
		args = append(args, d.Key)
	}
	return args
}

// Redeliver re-delivers failed entries this consumer still owns (XCLAIM
// without JUSTID, which counts a delivery) with their current fields. An
// entry deleted from the stream meanwhile is acknowledged and dropped.
func (s *Source) Redeliver(ctx context.Context, ds []*engine.Delivery) ([]*engine.Delivery, error) {
	res, err := retryScript.Run(ctx, s.rdb, []string{s.cfg.Stream}, s.scriptArgs(ds)...).Slice()
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*engine.Delivery, len(ds))
	for _, d := range ds {
		byID[d.Key] = d
	}
	var again []*engine.Delivery
	for _, v := range res {
		arr, _ := v.([]any)
		if len(arr) < 3 {
			continue
		}
		id, values, _, _ := parseEntry(arr[:2])
		n, _ := arr[2].(int64)
		d := byID[id]
		if d == nil {
			continue
		}
		if n < 0 {
			s.deletedInPEL.Add(1)
			s.warnDeleted("an entry waiting for its retry was deleted from the stream; it will not run again", []string{id})
			continue
		}
		d.Msg.Values = values
		d.Msg.Deliveries = n
		again = append(again, d)
	}
	return again, nil
}

// KeepInterval is the lease interval: an entry held that long is renewed.
func (s *Source) KeepInterval() time.Duration { return s.cfg.leaseInterval() }

// Keep renews the leases of held entries (XCLAIM JUSTID resets their idle
// time without counting a delivery) before they could look idle to another
// consumer's reclaimer, and returns those this consumer no longer owns.
func (s *Source) Keep(ctx context.Context, held []*engine.Delivery) ([]*engine.Delivery, error) {
	var lost []*engine.Delivery
	for start := 0; start < len(held); start += scriptBatch {
		batch := held[start:min(start+scriptBatch, len(held))]
		gone, err := renewScript.Run(ctx, s.rdb, []string{s.cfg.Stream}, s.scriptArgs(batch)...).StringSlice()
		if err != nil {
			return lost, err
		}
		if len(gone) == 0 {
			continue
		}
		isGone := make(map[string]bool, len(gone))
		for _, id := range gone {
			isGone[id] = true
		}
		for _, d := range batch {
			if isGone[d.Key] {
				lost = append(lost, d)
			}
		}
	}
	return lost, nil
}

// scriptBatch is the most IDs one renew script call handles, so that no
// single script keeps Redis busy for long.
const scriptBatch = 100

// Release gives entries back to the group, each with the delivery count in
// its Msg.Deliveries. With now set, XCLAIM JUSTID also sets their idle time
// to MinIdle, so that any consumer may claim them at once, and the release
// is announced to the consumers waiting for work, which take the entries
// within a read's round trip (see takeScript); without now, nothing needs
// doing: they stay pending, and a reclaimer takes them once MinIdle
// passes, as for a consumer that died.
func (s *Source) Release(ctx context.Context, ds []*engine.Delivery, now bool) (int, error) {
	if !now {
		return len(ds), nil
	}
	args := make([]any, 0, 4+2*len(ds))
	args = append(args, s.cfg.Group, s.cfg.Consumer, s.cfg.MinIdle.Milliseconds(), int64(s.handlerTime()))
	for _, d := range ds {
		args = append(args, d.Key, d.Msg.Deliveries)
	}
	keys := []string{s.cfg.Stream}
	if s.signals.Load() {
		keys = append(keys, s.released)
	}
	n, err := releaseScript.Run(ctx, s.rdb, keys, args...).Int64()
	return int(n), err
}

// DeadLetter moves an entry to the dead-letter stream with its metadata,
// atomically with its XACK (see deadLetterScript). It reports false when
// this consumer no longer owns the entry.
func (s *Source) DeadLetter(ctx context.Context, d *engine.Delivery, reason string) (bool, error) {
	msg := &d.Msg
	// The message's fields are used only when the entry is gone from the
	// stream: both paths copy the entry's own field list.
	orig := make([]any, 0, 2*len(msg.Values))
	for k, v := range msg.Values {
		orig = append(orig, k, v)
	}
	meta := []any{
		stream.DeadIDField, msg.ID,
		stream.DeadStreamField, s.cfg.Stream,
		stream.DeadGroupField, s.cfg.Group,
		stream.DeadConsumerField, s.cfg.Consumer,
		stream.DeadDeliveriesField, strconv.FormatInt(max(msg.Deliveries, 1), 10),
		stream.DeadErrorField, reason,
		stream.DeadTimeField, strconv.FormatInt(time.Now().UnixMilli(), 10),
	}
	args := make([]any, 0, 4+len(orig)+len(meta))
	args = append(args, s.cfg.Group, s.cfg.Consumer, msg.ID, len(orig))
	args = append(args, orig...)
	args = append(args, meta...)
	var err error
	if len(args) <= maxScriptArgs {
		err = deadLetterScript.Run(ctx, s.rdb, []string{s.cfg.Stream, s.cfg.DeadLetterStream}, args...).Err()
	} else {
		err = s.deadLetterLarge(ctx, msg.ID, orig, meta)
	}
	switch {
	case err == redis.Nil:
		return false, nil
	case err != nil:
		return false, fmt.Errorf("to %q: %w", s.cfg.DeadLetterStream, err)
	}
	return true, nil
}

// maxScriptArgs bounds the arguments of the dead-letter script: Lua's
// unpack stops at about 8000 values.
const maxScriptArgs = 7000

// deadLetterLarge dead-letters an entry too large for the script (thousands
// of fields) in three steps: check that this consumer owns it, XADD, XACK.
// The XACK still follows only a successful XADD; between the check and the
// XACK another consumer may take the entry over, which can make one more
// dead letter for it, never none. Like the script, it copies the entry's own
// field list (orig, the message's fields, only when the entry is gone), then
// the dead-letter fields meta.
func (s *Source) deadLetterLarge(ctx context.Context, id string, orig, meta []any) error {
	ps, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Start: id, End: id, Count: 1,
	}).Result()
	if err != nil {
		return err
	}
	if len(ps) == 0 || ps[0].Consumer != s.cfg.Consumer {
		return redis.Nil
	}
	entries, err := s.rdb.Do(ctx, "XRANGE", s.cfg.Stream, id, id).Slice()
	if err != nil {
		return err
	}
	if len(entries) == 1 {
		if entry, _ := entries[0].([]any); len(entry) == 2 {
			if raw, _ := entry[1].([]any); len(raw) > 0 {
				orig = raw
			}
		}
	}
	fields := append(slices.Clip(orig), meta...)
	if err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.cfg.DeadLetterStream, Values: fields}).Err(); err != nil {
		return err
	}
	return s.rdb.XAck(ctx, s.cfg.Stream, s.cfg.Group, id).Err()
}
