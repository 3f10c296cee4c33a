package group

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/argerr"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/script"
	"github.com/streamgroup/streamgroup/internal/streamsrc"
	"github.com/streamgroup/streamgroup/internal/xinfo"
	"github.com/streamgroup/streamgroup/stream"
)

// Start positions for [Manager.EnsureGroup] and [Manager.SetID]. Besides these
// two, any entry ID ("<ms>-<seq>" or "<ms>", see [stream.ParseID]) is
// accepted: the group then delivers the entries after that ID.
const (
	// StartNew delivers only entries added after the group is created (or,
	// for SetID, after the call): Redis's "$".
	StartNew = "$"
	// StartAll delivers every entry in the stream, from the oldest: "0".
	StartAll = "0"
)

var (
	// ErrNoGroup is returned (wrapped) when the consumer group, or the
	// stream key itself, does not exist. When Redis reported it, the error
	// also wraps Redis's NOGROUP reply.
	ErrNoGroup = errors.New("group: no such consumer group")

	// ErrNotStream is returned (wrapped) when the key exists but holds
	// something other than a stream. The error also wraps Redis's WRONGTYPE
	// reply and its text names the key.
	ErrNotStream = streamsrc.ErrNotStream

	// ErrConsumerHasPending is returned (wrapped in a
	// [*ConsumerPendingError]) by [Manager.DeleteConsumer] when the consumer
	// still owns pending entries.
	ErrConsumerHasPending = errors.New("group: consumer has pending entries")
)

// ConsumerPendingError reports that [Manager.DeleteConsumer] refused to
// delete a consumer because it still owns pending entries. It unwraps to
// [ErrConsumerHasPending].
type ConsumerPendingError struct {
	Stream   string
	Group    string
	Consumer string
	// Pending is how many entries the consumer owned when the delete was
	// refused.
	Pending int64
}

func (e *ConsumerPendingError) Error() string {
	return fmt.Sprintf("group: consumer %q of group %q on stream %q still owns %d pending entries",
		e.Consumer, e.Group, e.Stream, e.Pending)
}

// Unwrap returns [ErrConsumerHasPending].
func (e *ConsumerPendingError) Unwrap() error { return ErrConsumerHasPending }

// Manager administers consumer groups on streams: it creates, repositions and
// destroys groups, reports on them, and removes consumers that are no longer
// needed. It is what operators and deployment code use; a [Consumer] does not
// need it to run.
//
// Its methods return an error wrapping [ErrInvalidOptions], and naming the
// problem, when given an empty stream, group or consumer name, an invalid
// start ID, a non-positive idle threshold or invalid [PendingOptions]; an
// invalid ID also wraps [stream.ErrInvalidID].
//
// A Manager is safe for concurrent use. It never closes the client it was
// given. The zero value is not usable; call [NewManager].
type Manager struct {
	rdb redis.UniversalClient
}

// NewManager returns a Manager that uses rdb. It returns an error wrapping
// [ErrInvalidOptions] when rdb is nil.
func NewManager(rdb redis.UniversalClient) (*Manager, error) {
	if err := argerr.Client(rdb); err != nil {
		return nil, err
	}
	return &Manager{rdb: rdb}, nil
}

// GroupInfo describes one consumer group, as reported by XINFO GROUPS.
type GroupInfo struct {
	Name string
	// Consumers is the number of consumers known to the group.
	Consumers int64
	// Pending is the number of entries delivered but not yet acknowledged.
	Pending int64
	// LastDeliveredID is the ID of the last entry delivered to the group.
	LastDeliveredID string
	// EntriesRead is the logical read counter of the group: how many stream
	// entries it has read. It is -1 when Redis cannot tell, for example after
	// the group was created or moved to an arbitrary ID.
	EntriesRead int64
	// Lag is the number of entries in the stream not yet delivered to the
	// group. It is -1 when Redis cannot tell (it reports nil, for example
	// when entries were deleted or the group was positioned at an
	// arbitrary ID); treat -1 as "unknown", not as "caught up".
	Lag int64
}

// ConsumerInfo describes one consumer of a group, as reported by XINFO
// CONSUMERS.
type ConsumerInfo struct {
	Name string
	// Pending is the number of entries delivered to this consumer and not yet
	// acknowledged.
	Pending int64
	// Idle is the time since the consumer's last attempted interaction
	// (XREADGROUP, XCLAIM, XAUTOCLAIM), successful or not.
	Idle time.Duration
	// Inactive is the time since the consumer's last successful interaction
	// (one that actually read or claimed entries). It is -1 when unknown:
	// Redis before 7.2 does not report it, and 7.2+ reports -1 for a
	// consumer that never read anything.
	Inactive time.Duration
}

// PendingSummary is the summary form of XPENDING for a group.
type PendingSummary struct {
	// Count is the number of pending entries in the group.
	Count int64
	// Lower and Higher are the smallest and largest pending IDs; both are
	// empty when Count is 0.
	Lower, Higher string
	// Consumers maps each consumer that owns pending entries to how many it
	// owns. It is never nil.
	Consumers map[string]int64
}

// PendingOptions selects entries for [Manager.PendingEntries]. A nil
// *PendingOptions means all defaults.
type PendingOptions struct {
	// Start is the smallest ID to report, inclusive, or exclusive when
	// prefixed with "(". The zero value means "-", the smallest ID.
	Start string
	// End is the largest ID to report, inclusive, or exclusive when prefixed
	// with "(". The zero value means "+", the largest ID.
	End string
	// Count is the maximum number of entries to report. The zero value
	// means 100; it must not be negative.
	Count int64
	// Consumer restricts the report to one consumer's entries. The zero
	// value means all consumers.
	Consumer string
	// MinIdle restricts the report to entries not delivered for at least
	// this long. The zero value means no restriction; it must not be
	// negative.
	MinIdle time.Duration
}

// PendingEntry is one delivered but unacknowledged entry.
type PendingEntry struct {
	ID string
	// Consumer is the consumer that owns the entry.
	Consumer string
	// Idle is the time since the entry was last delivered.
	Idle time.Duration
	// Deliveries is how many times the entry has been delivered.
	Deliveries int64
}

// EnsureGroup creates group on streamKey, positioned at start ([StartNew],
// [StartAll] or an entry ID), creating an empty stream if the key does not
// exist. It reports whether it created the group; if the group already
// exists it is left where it is and created is false.
//
// It returns an error wrapping [ErrNotStream] when the key holds another
// type, and [ErrInvalidOptions] for empty names or an invalid start.
func (m *Manager) EnsureGroup(ctx context.Context, streamKey, group, start string) (created bool, err error) {
	if err := checkNames(streamKey, group); err != nil {
		return false, err
	}
	if err := checkStart(start); err != nil {
		return false, err
	}
	err = m.rdb.XGroupCreateMkStream(ctx, streamKey, group, start).Err()
	switch {
	case err == nil:
		return true, nil
	case rediserr.IsBusyGroup(err):
		return false, nil
	}
	return false, wrapErr("EnsureGroup", streamKey, group, err)
}

// SetID moves group's last-delivered position to id ([StartNew], [StartAll]
// or an entry ID): entries after it are delivered again to new reads, which
// is how history is replayed. Entries already pending stay pending.
//
// It returns an error wrapping [ErrNoGroup] when the group or the stream
// does not exist.
func (m *Manager) SetID(ctx context.Context, streamKey, group, id string) error {
	if err := checkNames(streamKey, group); err != nil {
		return err
	}
	if err := checkStart(id); err != nil {
		return err
	}
	var exists *redis.IntCmd
	var setid *redis.StatusCmd
	cmds, err := m.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, streamKey)
		setid = p.XGroupSetID(ctx, streamKey, group, id)
		return nil
	})
	err = rediserr.TxErr(err, cmds)
	if exists.Err() == nil && exists.Val() == 0 {
		return noGroup(streamKey, group, nil)
	}
	if err != nil {
		return wrapErr("SetID", streamKey, group, err)
	}
	return wrapErr("SetID", streamKey, group, setid.Err())
}

// Destroy deletes group and all its consumers and pending entries; the
// stream's entries are not touched. It reports whether the group existed.
// A missing stream is not an error: Destroy returns false. The group of the
// same name on the stream's announcements of handed-back entries
// (docs/wire-format.md) goes too, when there is one.
func (m *Manager) Destroy(ctx context.Context, streamKey, group string) (bool, error) {
	if err := checkNames(streamKey, group); err != nil {
		return false, err
	}
	var exists, destroy *redis.IntCmd
	cmds, err := m.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.Exists(ctx, streamKey)
		destroy = p.XGroupDestroy(ctx, streamKey, group)
		return nil
	})
	err = rediserr.TxErr(err, cmds)
	if exists.Err() == nil && exists.Val() == 0 {
		return false, nil
	}
	if err != nil {
		return false, wrapErr("Destroy", streamKey, group, err)
	}
	// Best effort: consumers make it again, and a group left there holds
	// nothing but announcements, trimmed to about 1000.
	_ = m.rdb.XGroupDestroy(ctx, streamsrc.ReleasedKey(streamKey), group).Err()
	return destroy.Val() > 0, nil
}

// Groups reports the consumer groups of streamKey, ordered by name. A missing
// stream has no groups: the result is empty and the error nil.
func (m *Manager) Groups(ctx context.Context, streamKey string) ([]GroupInfo, error) {
	if streamKey == "" {
		return nil, fmt.Errorf("%w: empty stream key", ErrInvalidOptions)
	}
	exists, info, err := m.existsAndDo(ctx, streamKey, "XINFO", "GROUPS", streamKey)
	if exists == 0 && err == nil {
		return nil, nil
	}
	if err != nil {
		return nil, wrapErr("Groups", streamKey, "", err)
	}
	entries, err := xinfo.Entries(info)
	if err != nil {
		return nil, fmt.Errorf("group: Groups %q: %w", streamKey, err)
	}
	out := make([]GroupInfo, 0, len(entries))
	for _, f := range entries {
		out = append(out, GroupInfo{
			Name:            xinfo.Str(f["name"]),
			Consumers:       xinfo.IntOr(f["consumers"], 0),
			Pending:         xinfo.IntOr(f["pending"], 0),
			LastDeliveredID: xinfo.Str(f["last-delivered-id"]),
			EntriesRead:     xinfo.IntOr(f["entries-read"], -1),
			Lag:             xinfo.IntOr(f["lag"], -1),
		})
	}
	return out, nil
}

// Consumers reports the consumers of group, ordered by name. It returns an
// error wrapping [ErrNoGroup] when the group or the stream does not exist.
func (m *Manager) Consumers(ctx context.Context, streamKey, group string) ([]ConsumerInfo, error) {
	if err := checkNames(streamKey, group); err != nil {
		return nil, err
	}
	exists, info, err := m.existsAndDo(ctx, streamKey, "XINFO", "CONSUMERS", streamKey, group)
	if exists == 0 && err == nil {
		return nil, noGroup(streamKey, group, nil)
	}
	if err != nil {
		return nil, wrapErr("Consumers", streamKey, group, err)
	}
	entries, err := xinfo.Entries(info)
	if err != nil {
		return nil, fmt.Errorf("group: Consumers %q/%q: %w", streamKey, group, err)
	}
	out := make([]ConsumerInfo, 0, len(entries))
	for _, f := range entries {
		out = append(out, ConsumerInfo{
			Name:     xinfo.Str(f["name"]),
			Pending:  xinfo.IntOr(f["pending"], 0),
			Idle:     msOr(f["idle"], 0),
			Inactive: msOr(f["inactive"], -1),
		})
	}
	return out, nil
}

// Pending returns the XPENDING summary of group. It returns an error
// wrapping [ErrNoGroup] when the group or the stream does not exist.
func (m *Manager) Pending(ctx context.Context, streamKey, group string) (PendingSummary, error) {
	if err := checkNames(streamKey, group); err != nil {
		return PendingSummary{}, err
	}
	p, err := m.rdb.XPending(ctx, streamKey, group).Result()
	if err != nil {
		return PendingSummary{}, wrapErr("Pending", streamKey, group, err)
	}
	s := PendingSummary{Count: p.Count, Lower: p.Lower, Higher: p.Higher, Consumers: p.Consumers}
	if s.Consumers == nil {
		s.Consumers = map[string]int64{}
	}
	return s, nil
}

// PendingEntries lists pending entries of group in ID order, selected by
// opts (nil means all defaults: the first 100 entries of every consumer).
// It returns an error wrapping [ErrNoGroup] when the group or the stream
// does not exist, and [ErrInvalidOptions] for invalid options.
func (m *Manager) PendingEntries(ctx context.Context, streamKey, group string, opts *PendingOptions) ([]PendingEntry, error) {
	if err := checkNames(streamKey, group); err != nil {
		return nil, err
	}
	var o PendingOptions
	if opts != nil {
		o = *opts
	}
	if o.Start == "" {
		o.Start = "-"
	}
	if o.End == "" {
		o.End = "+"
	}
	if o.Count == 0 {
		o.Count = 100
	}
	if err := checkRangeID(o.Start, "-"); err != nil {
		return nil, err
	}
	if err := checkRangeID(o.End, "+"); err != nil {
		return nil, err
	}
	if o.Count < 0 {
		return nil, fmt.Errorf("%w: negative PendingOptions.Count %d", ErrInvalidOptions, o.Count)
	}
	if o.MinIdle < 0 {
		return nil, fmt.Errorf("%w: negative PendingOptions.MinIdle %v", ErrInvalidOptions, o.MinIdle)
	}
	if o.MinIdle > 0 && o.MinIdle < time.Millisecond {
		o.MinIdle = time.Millisecond // Redis counts in milliseconds; 0 would mean "no filter"
	}
	xs, err := m.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   streamKey,
		Group:    group,
		Idle:     o.MinIdle,
		Start:    o.Start,
		End:      o.End,
		Count:    o.Count,
		Consumer: o.Consumer,
	}).Result()
	if err != nil {
		return nil, wrapErr("PendingEntries", streamKey, group, err)
	}
	out := make([]PendingEntry, len(xs))
	for i, x := range xs {
		out[i] = PendingEntry{ID: x.ID, Consumer: x.Consumer, Idle: x.Idle, Deliveries: x.RetryCount}
	}
	return out, nil
}

// DeleteConsumer removes consumer from group, refusing when the consumer
// still owns pending entries: it then returns a [*ConsumerPendingError],
// which wraps [ErrConsumerHasPending]. Acknowledge or claim the entries
// first. The check and the delete run as one Lua script, so the consumer
// cannot be given an entry in between.
//
// Deleting a consumer that does not exist is not an error: DeleteConsumer
// returns nil, so it can be retried safely. It returns an error wrapping
// [ErrNoGroup] when the group or the stream does not exist.
func (m *Manager) DeleteConsumer(ctx context.Context, streamKey, group, consumer string) error {
	if err := checkNames(streamKey, group); err != nil {
		return err
	}
	if consumer == "" {
		return fmt.Errorf("%w: empty consumer name", ErrInvalidOptions)
	}
	res, n, err := m.deleteConsumer(ctx, streamKey, group, consumer, 0)
	if err != nil {
		return wrapErr("DeleteConsumer", streamKey, group, err)
	}
	if res == delHasPending {
		return &ConsumerPendingError{Stream: streamKey, Group: group, Consumer: consumer, Pending: n}
	}
	return nil
}

// SweepConsumers removes the consumers of group that have been idle (see
// [ConsumerInfo.Idle]) for at least idle and own no pending entries, and
// returns the names it removed, ordered by name. Each consumer is checked
// and deleted in one Lua script, so a consumer that reads or is given an
// entry meanwhile is kept. Consumers with pending entries are never removed.
//
// A running [Consumer] blocked in XREADGROUP looks idle for as long as it
// blocks, so idle must be well above the consumers' block time. A removed
// consumer that comes back is simply recreated by Redis on its next read.
//
// idle must be positive. It returns an error wrapping [ErrNoGroup] when the
// group or the stream does not exist. On an error part-way through, the
// names already removed are returned with it.
func (m *Manager) SweepConsumers(ctx context.Context, streamKey, group string, idle time.Duration) ([]string, error) {
	if err := checkNames(streamKey, group); err != nil {
		return nil, err
	}
	if idle <= 0 {
		return nil, fmt.Errorf("%w: idle threshold %v must be positive", ErrInvalidOptions, idle)
	}
	cs, err := m.Consumers(ctx, streamKey, group)
	if err != nil {
		return nil, err
	}
	minIdleMs := int64((idle + time.Millisecond - 1) / time.Millisecond) // round up: never remove early
	var removed []string
	for _, c := range cs {
		if c.Pending > 0 {
			continue // the script would refuse it; skip the round trip
		}
		// The idle check is left to the script, which sees the current value.
		res, _, err := m.deleteConsumer(ctx, streamKey, group, c.Name, minIdleMs)
		if err != nil {
			return removed, wrapErr("SweepConsumers", streamKey, group, err)
		}
		if res == delDeleted {
			removed = append(removed, c.Name)
		}
	}
	return removed, nil
}

// Results of deleteConsumerScript.
const (
	delNoConsumer = 0 // no such consumer: nothing done
	delDeleted    = 1 // deleted
	delHasPending = 2 // refused: second element is the pending count
	delNotIdle    = 3 // refused: second element is the idle time in ms
)

// deleteConsumerScript deletes consumer ARGV[2] of group ARGV[1] on stream
// KEYS[1] only if it owns no pending entries and, when ARGV[3] > 0, has been
// idle for at least ARGV[3] milliseconds. It returns {result, detail}.
// Scripts see RESP2 replies, so XINFO CONSUMERS entries are flat
// field/value arrays.
var deleteConsumerScript = script.New("delete consumer", []string{"EXISTS", "XINFO CONSUMERS", "XGROUP DELCONSUMER"}, `
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOGROUP No such key or consumer group')
end
local minIdle = tonumber(ARGV[3])
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['name'] == ARGV[2] then
    if f['pending'] > 0 then return {2, f['pending']} end
    if minIdle > 0 and f['idle'] < minIdle then return {3, f['idle']} end
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
    return {1, 0}
  end
end
return {0, 0}
`)

func (m *Manager) deleteConsumer(ctx context.Context, streamKey, group, consumer string, minIdleMs int64) (result, detail int64, err error) {
	v, err := deleteConsumerScript.Run(ctx, m.rdb, []string{streamKey}, group, consumer, minIdleMs).Int64Slice()
	if err != nil {
		return 0, 0, err
	}
	if len(v) != 2 {
		return 0, 0, fmt.Errorf("group: unexpected delete-consumer script reply %v", v)
	}
	return v[0], v[1], nil
}

// existsAndDo runs EXISTS key and args in one MULTI/EXEC, so that a missing
// key (which XINFO reports as a generic error) can be told apart without
// comparing error strings.
func (m *Manager) existsAndDo(ctx context.Context, key string, args ...any) (exists int64, val any, err error) {
	var ex *redis.IntCmd
	var cmd *redis.Cmd
	cmds, err := m.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ex = p.Exists(ctx, key)
		cmd = p.Do(ctx, args...)
		return nil
	})
	err = rediserr.TxErr(err, cmds)
	if ex.Err() != nil {
		return -1, nil, err
	}
	if ex.Val() == 0 {
		return 0, nil, nil
	}
	if err != nil {
		return ex.Val(), nil, err
	}
	return ex.Val(), cmd.Val(), nil
}

func checkNames(streamKey, group string) error {
	switch {
	case streamKey == "":
		return fmt.Errorf("%w: empty stream key", ErrInvalidOptions)
	case group == "":
		return fmt.Errorf("%w: empty group name", ErrInvalidOptions)
	}
	return nil
}

// checkStart accepts StartNew, StartAll and entry IDs.
func checkStart(start string) error {
	if start == StartNew || start == StartAll {
		return nil
	}
	if _, err := stream.ParseID(start); err != nil {
		return fmt.Errorf("%w: start position: %w", ErrInvalidOptions, err)
	}
	return nil
}

// checkRangeID accepts special ("-" or "+"), an ID, or "(" and an ID.
func checkRangeID(id, special string) error {
	if id == special {
		return nil
	}
	if _, err := stream.ParseID(strings.TrimPrefix(id, "(")); err != nil {
		return fmt.Errorf("%w: pending range: %w", ErrInvalidOptions, err)
	}
	return nil
}

func noGroup(streamKey, group string, redisErr error) error {
	if redisErr == nil {
		return fmt.Errorf("%w: group %q on stream %q (no such key)", ErrNoGroup, group, streamKey)
	}
	return fmt.Errorf("%w: group %q on stream %q: %w", ErrNoGroup, group, streamKey, redisErr)
}

// wrapErr classifies a Redis error; it returns nil for nil.
func wrapErr(op, streamKey, group string, err error) error {
	switch {
	case err == nil:
		return nil
	case rediserr.IsNoGroup(err):
		return noGroup(streamKey, group, err)
	case rediserr.IsWrongType(err):
		return fmt.Errorf("%w: key %q: %w", ErrNotStream, streamKey, err)
	case group == "":
		return fmt.Errorf("group: %s stream %q: %w", op, streamKey, err)
	}
	return fmt.Errorf("group: %s group %q on stream %q: %w", op, group, streamKey, err)
}

// msOr returns v, in milliseconds, as a Duration, or def when it is absent,
// nil or negative.
func msOr(v any, def time.Duration) time.Duration {
	n := xinfo.IntOr(v, -1)
	if n < 0 {
		return def
	}
	return time.Duration(n) * time.Millisecond
}
