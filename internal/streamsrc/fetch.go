package streamsrc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/blockconn"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/stream"
)

// reader is one XREADGROUP fetcher, on a connection of its own (see
// package blockconn): a stop wakes its blocked read, and a read whose
// reply is lost when its connection had to be closed leaves its entries
// pending for this consumer, to be re-read at its next start or reclaimed
// after MinIdle.
type reader struct {
	s      *Source
	conn   *blockconn.Conn
	cursor string // "0...": this consumer's own pending entries; ">": new ones
}

// Fetchers returns the readers: the first reads this consumer's own
// pending entries (left from an earlier run) before new ones, and the
// second waits for that. New entries are read by two readers (Readers 2)
// so that Redis prepares one reply while the other is decoded and
// dispatched; with one reader entries are handled in stream order when
// Concurrency is 1. A reclaimer has no readers.
func (s *Source) Fetchers() []engine.Fetcher {
	if !s.cfg.Read {
		return nil
	}
	fs := make([]engine.Fetcher, s.cfg.Readers)
	for i := range fs {
		cursor := ">"
		if i == 0 {
			cursor = "0"
		}
		fs[i] = &reader{s: s, conn: blockconn.New(s.rdb, blockconn.UnblockOrClose), cursor: cursor}
	}
	return fs
}

func (r *reader) Close() { r.conn.Close() }

// Ready implements engine.Gated: the readers of new entries start once the
// first reader has read this consumer's own pending entries.
func (r *reader) Ready() <-chan struct{} {
	if r.cursor == ">" {
		return r.s.historyDone
	}
	return closed
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (r *reader) Fetch(ctx context.Context, n int) ([]*engine.Delivery, error) {
	s := r.s
	args := &redis.XReadGroupArgs{
		Group:    s.cfg.Group,
		Consumer: s.cfg.Consumer,
		Streams:  []string{s.cfg.Stream, r.cursor},
		Count:    int64(n),
		Block:    s.cfg.Block,
	}
	if r.cursor == ">" && s.signals.Load() && s.room(0) > 0 {
		// Also wait for announcements of entries handed back, while
		// this consumer's workers have room for them.
		args.Streams = []string{s.cfg.Stream, s.released, ">", ">"}
	}
	if r.cursor != ">" {
		args.Block = -1 // history reads never block
	}
	res, err := r.read(ctx, args)
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("XREADGROUP: %w", err)
	}
	var xs, announced []redis.XMessage
	for _, st := range res {
		if st.Stream == s.released {
			announced = st.Messages
		} else {
			xs = st.Messages
		}
	}
	if r.cursor == ">" {
		ds := s.deliveries(ctx, xs, nil)
		for _, a := range announced {
			taken, err := s.take(ctx, a, n-len(ds))
			if err != nil {
				return ds, err
			}
			ds = append(ds, taken...)
		}
		return ds, nil
	}
	if len(xs) == 0 {
		s.log.Debug("own pending entries done; reading new entries")
		r.cursor = ">"
		s.historyOnce.Do(func() { close(s.historyDone) })
		return nil, nil
	}
	r.cursor = xs[len(xs)-1].ID
	return s.deliveries(ctx, xs, s.pendingCounts(ctx, xs[0].ID, xs[len(xs)-1].ID, len(xs))), nil
}

// take takes the released entries announcement a lists (see takeScript),
// up to most and to what this consumer's workers start soon at the handler
// time the announcer measured, announcing the rest again.
func (s *Source) take(ctx context.Context, a redis.XMessage, most int) ([]*engine.Delivery, error) {
	ids := strings.Fields(fmt.Sprint(a.Values["ids"]))
	h, _ := strconv.ParseInt(fmt.Sprint(a.Values["h"]), 10, 64)
	most = max(min(most, s.room(time.Duration(h))), 0)
	args := make([]any, 0, 6+len(ids))
	args = append(args, s.cfg.Group, s.cfg.Consumer, s.cfg.MinIdle.Milliseconds(), most, a.ID, h)
	for _, id := range ids {
		args = append(args, id)
	}
	res, err := takeScript.Run(ctx, s.rdb, []string{s.cfg.Stream, s.released}, args...).Slice()
	if err != nil {
		return nil, err
	}
	ds := make([]*engine.Delivery, 0, len(res))
	for _, v := range res {
		arr, _ := v.([]any)
		if len(arr) < 3 {
			continue
		}
		id, values, ok, _ := parseEntry(arr[:2])
		if !ok {
			continue
		}
		n, _ := arr[2].(int64)
		ds = append(ds, s.delivery(stream.Message{ID: id, Stream: s.cfg.Stream, Values: values, Deliveries: n}))
	}
	if len(ds) > 0 {
		s.log.Debug("took entries another consumer handed back", "count", len(ds))
	}
	return ds, nil
}

// read runs XREADGROUP on the reader's connection: a blocking read is
// woken when ctx ends, and then returns no entries (or an error if its
// connection had to be closed).
func (r *reader) read(ctx context.Context, args *redis.XReadGroupArgs) (res []redis.XStream, err error) {
	if args.Block < 0 {
		return r.conn.Client().XReadGroup(ctx, args).Result()
	}
	err = r.conn.Block(ctx, func(c redis.UniversalClient) error {
		res, err = c.XReadGroup(ctx, args).Result()
		return err
	})
	return res, err
}

// deliveries turns what XREADGROUP returned into deliveries: fresh entries
// (counts nil) were delivered once, re-read ones as often as counts says.
// Entries deleted from the stream while pending come back without fields:
// they are acknowledged and dropped, never handed to a handler.
func (s *Source) deliveries(ctx context.Context, xs []redis.XMessage, counts map[string]int64) []*engine.Delivery {
	if len(xs) == 0 {
		return nil
	}
	ds := make([]*engine.Delivery, 0, len(xs))
	var tombstones []string
	for _, x := range xs {
		m, ok := stream.FromXMessage(s.cfg.Stream, x)
		if !ok {
			tombstones = append(tombstones, x.ID)
			continue
		}
		m.Deliveries = 1
		if counts != nil {
			m.Deliveries = counts[x.ID]
		}
		ds = append(ds, s.delivery(m))
	}
	s.dropDeleted(ctx, tombstones)
	return ds
}

func (s *Source) delivery(m stream.Message) *engine.Delivery {
	return &engine.Delivery{Msg: m, Key: m.ID}
}

// pendingCounts returns the delivery counts of this consumer's pending
// entries between start and end. Missing counts read as 0 (unknown).
func (s *Source) pendingCounts(ctx context.Context, start, end string, n int) map[string]int64 {
	ps, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Start: start, End: end, Count: int64(n), Consumer: s.cfg.Consumer,
	}).Result()
	counts := make(map[string]int64, len(ps))
	if err != nil {
		s.log.Warn("cannot read delivery counts", "err", err)
		return counts
	}
	for _, p := range ps {
		counts[p.ID] = p.RetryCount
	}
	return counts
}

// dropDeleted acknowledges entries that were deleted from the stream while
// pending, so they leave the PEL and never reach a handler. It counts only
// those its XACK removed: a concurrent XAUTOCLAIM may have removed (and
// counted) some already. If the XACK fails they stay pending, and come
// back here at the next read of them.
func (s *Source) dropDeleted(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	n, err := s.rdb.XAck(ctx, s.cfg.Stream, s.cfg.Group, ids...).Result()
	if err != nil {
		s.log.Warn("could not drop entries deleted while pending; they stay pending", "count", len(ids), "err", err)
		return
	}
	s.deletedInPEL.Add(uint64(n))
	s.warnDeleted("entries deleted from the stream while pending were never handled; removed them from the PEL", ids)
}

// warnDeleted logs entries found deleted from the stream while pending: a
// job that was never finished and is gone (XDEL, or trimming that did not
// wait for the group), which is data loss, so at Warn, with their IDs.
func (s *Source) warnDeleted(msg string, ids []string) {
	const most = 100 // IDs named in one record
	s.log.Warn(msg, "count", len(ids), "ids", ids[:min(len(ids), most)])
}
