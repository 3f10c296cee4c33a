package inspect

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/xinfo"
	"github.com/streamgroup/streamgroup/stream"
)

// StreamTarget names a stream to read, and which of its consumer groups.
// The zero value names no stream and is invalid.
type StreamTarget struct {
	// Stream is the stream key. It must not be empty.
	Stream string
	// Groups names the consumer groups to report, in this order. A group
	// the stream does not have is an error wrapping [ErrNoGroup]. Nil
	// means every group of the stream, ordered by name; their names are
	// learned first, which costs a second round trip.
	Groups []string
	// DeadLetterStream is the dead-letter stream whose length is reported.
	// Zero ("") means stream.DeadLetterKey(Stream), the consumers' default.
	DeadLetterStream string
}

// StreamState is what was read of one stream. It is a plain value; the
// zero value describes nothing.
type StreamState struct {
	// Stream is the stream key.
	Stream string
	// Exists reports whether the stream key exists. A stream that does not
	// has Length 0 and no groups.
	Exists bool
	// Length is the number of entries in the stream (XLEN).
	Length int64
	// FirstID and LastID are the IDs of the first and last entries; both
	// are empty when the stream is empty.
	FirstID, LastID string
	// EntriesAdded is how many entries were ever added to the stream,
	// deleted or trimmed ones included (XINFO STREAM's entries-added).
	EntriesAdded int64
	// DeadLetterStream is the dead-letter stream key that was read.
	DeadLetterStream string
	// DeadLetters is the length of DeadLetterStream; 0 when it does not
	// exist.
	DeadLetters int64
	// Groups holds the groups read: those the target named, in its order,
	// or every group, ordered by name.
	Groups []GroupState
	// At is Redis's clock when the stream was read (TIME). Ages are taken
	// against it, as entry IDs carry Redis's clock, so the reading host's
	// clock does not matter.
	At time.Time
}

// GroupState is what was read of one consumer group. It is a plain value;
// the zero value describes nothing.
type GroupState struct {
	// Name is the group's name.
	Name string
	// Pending is the number of entries delivered to the group's consumers
	// and not yet acknowledged (its pending entries list).
	Pending int64
	// LastDeliveredID is the ID of the last entry delivered to the group
	// (or the ID it was created or set at).
	LastDeliveredID string
	// EntriesRead is the group's logical read counter as Redis reports it:
	// how many entries of the stream, deleted ones included, come up to
	// LastDeliveredID. It is -1 when Redis does not know it, as after the
	// group was created or set at an ID other than the first or last, or
	// without ENTRIESREAD.
	EntriesRead int64
	// Lag is the number of entries in the stream after LastDeliveredID:
	// those not yet delivered to the group. It is exact unless
	// LagEstimated, and read as follows.
	//
	// An empty stream, or a group at or past the last entry, has lag 0. A
	// group before the first entry has the stream's length as lag: this
	// corrects the lag Redis 7.0 reports after the stream was trimmed past
	// the group, which still counts the entries trimmed away. Otherwise
	// the lag Redis reports (XINFO GROUPS) is used when it is possible (at
	// least 1, below the stream's length). Redis reports none (nil) when it
	// cannot tell: after an entry after LastDeliveredID was deleted (XDEL),
	// or while EntriesRead is unknown and the group is neither at the
	// start nor at the end of the stream. Then the entries after
	// LastDeliveredID are counted with one XRANGE of at most
	// [Options.LagCountLimit] entries. When they are more than that, Lag is
	// an upper bound and LagEstimated is true: the stream's length minus
	// one (the first entry was delivered), or, when EntriesRead is known
	// and smaller, the entries added after LastDeliveredID, deleted ones
	// included.
	Lag int64
	// LagEstimated reports that Lag is an upper bound, not an exact count
	// (see Lag).
	LagEstimated bool
	// OldestPending is the pending entry with the smallest ID: the entry
	// delivered longest ago by stream order (XPENDING - + 1). It is the
	// zero value when nothing is pending.
	OldestPending PendingEntry
	// OldestPendingAge is the age of OldestPending: At minus the time in
	// its ID, which for an ID Redis generated (XADD *) is when the entry
	// was added. It is 0 when nothing is pending, and meaningless for IDs
	// a producer chose that carry no time. It grows while the oldest
	// entry stays unacknowledged (retried, or held by a consumer that is
	// gone), and also while a backlog is worked through, since it counts
	// the time the entry waited before its first delivery.
	OldestPendingAge time.Duration
	// IdlestOwner is the consumer, among those with pending entries, that
	// has been idle longest (XINFO CONSUMERS idle), and IdlestOwnerIdle its
	// idle time: a consumer that is gone with entries in hand shows here
	// until a reclaimer takes them. Both are zero when nothing is pending.
	// A running consumer reads or renews its leases often (see
	// docs/semantics.md), so its idle time stays below about MinIdle/2.
	IdlestOwner     string
	IdlestOwnerIdle time.Duration
	// Consumers holds the group's consumers, ordered by name.
	Consumers []ConsumerState
}

// ConsumerState is one consumer of a group, as XINFO CONSUMERS reports it.
// It is a plain value.
type ConsumerState struct {
	// Name is the consumer's name.
	Name string
	// Pending is the number of entries it owns, delivered and not
	// acknowledged.
	Pending int64
	// Idle is the time since its last interaction with the group (reading,
	// claiming), as Redis reports it.
	Idle time.Duration
}

// PendingEntry is one delivered but unacknowledged entry of a group. It is
// a plain value; the zero value describes nothing.
type PendingEntry struct {
	// ID is the entry's ID.
	ID string
	// Consumer is the consumer that owns it.
	Consumer string
	// Idle is the time since it was last delivered or claimed. A running
	// consumer renews the entries it holds (XCLAIM ... JUSTID, a lease),
	// which resets Idle without counting a delivery: an Idle above the
	// consumers' MinIdle means the owner is gone or stalled and no
	// reclaimer has taken the entry.
	Idle time.Duration
	// Deliveries is how many times it was delivered.
	Deliveries int64
}

// Stream reads one stream, as [Inspector.Streams] does. Its error is the
// target's own (not a [*BatchError]).
func (in *Inspector) Stream(ctx context.Context, t StreamTarget) (StreamState, error) {
	states, err := in.Streams(ctx, []StreamTarget{t})
	if len(states) == 0 {
		return StreamState{}, err
	}
	return states[0], one(err)
}

// Streams reads the streams named by targets, and their groups, pipelining
// the commands of all targets: one round trip when every target names its
// groups, two when a target lets its groups be found or a group's lag must
// be counted (see [GroupState.Lag]), whatever the number of targets. It
// runs only read commands, on one key each (TIME, TYPE, XINFO STREAM,
// XINFO GROUPS, XINFO CONSUMERS, XPENDING, XRANGE, XLEN), so it works on
// Redis Cluster with keys in any slots. The commands form a pipeline, not
// a transaction: under traffic, numbers read by different commands (a
// group's Pending and its consumers' sum) may differ slightly.
//
// It returns one state per target, in order. When some targets could not
// be read it returns a [*BatchError] holding each one's error, and their
// states hold only the keys (Stream and DeadLetterStream). A missing
// stream is no error, unless the target names groups ([ErrNoGroup]). It
// returns an error wrapping [ErrInvalidOptions], and no states, when a
// target has an empty stream key or group name. An empty targets makes no
// round trip and returns (nil, nil).
func (in *Inspector) Streams(ctx context.Context, targets []StreamTarget) ([]StreamState, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	for i, t := range targets {
		if t.Stream == "" {
			return nil, fmt.Errorf("%w: target %d: empty stream key", ErrInvalidOptions, i)
		}
		if slices.Contains(t.Groups, "") {
			return nil, fmt.Errorf("%w: stream %q: empty group name", ErrInvalidOptions, t.Stream)
		}
	}
	first := in.rdb.Pipeline()
	now := first.Time(ctx)
	reads := make([]*streamRead, len(targets))
	for i, t := range targets {
		reads[i] = readStream(ctx, first, t)
	}
	_, _ = first.Exec(ctx) // each command's error is looked at below

	states := make([]StreamState, len(targets))
	errs := make([]error, len(targets))
	second := in.rdb.Pipeline()
	for i, r := range reads {
		states[i], errs[i] = r.firstReplies(ctx, second, now, in.countLimit)
	}
	if second.Len() > 0 {
		_, _ = second.Exec(ctx)
	}
	for i, r := range reads {
		if errs[i] == nil {
			errs[i] = r.secondReplies(&states[i])
		}
		if errs[i] != nil {
			states[i] = StreamState{Stream: r.t.Stream, DeadLetterStream: r.t.DeadLetterStream}
		}
	}
	return states, batchErr(errs)
}

// streamRead holds the commands that read one stream target.
type streamRead struct {
	t      StreamTarget // DeadLetterStream filled in
	typ    *redis.StatusCmd
	info   *redis.XInfoStreamCmd
	groups *redis.Cmd // XINFO GROUPS, read raw: a nil lag stays nil
	dead   *redis.IntCmd
	named  []*groupRead // the target's groups, queued with the above
	read   []*groupRead // the groups reported
}

// groupRead holds the commands that read one group.
type groupRead struct {
	state     GroupState
	named     bool // the target named it: a missing group is an error
	consumers *redis.XInfoConsumersCmd
	oldest    *redis.XPendingExtCmd
	count     *redis.XMessageSliceCmd // nil: the lag is known
	plan      lagPlan
}

// readStream queues the first commands of t on p.
func readStream(ctx context.Context, p redis.Pipeliner, t StreamTarget) *streamRead {
	t.DeadLetterStream = cmp.Or(t.DeadLetterStream, stream.DeadLetterKey(t.Stream))
	r := &streamRead{t: t}
	r.typ = p.Type(ctx, t.Stream)
	r.info = p.XInfoStream(ctx, t.Stream)
	r.groups = p.Do(ctx, "xinfo", "groups", t.Stream)
	r.dead = p.XLen(ctx, t.DeadLetterStream)
	for _, name := range t.Groups {
		g := &groupRead{state: GroupState{Name: name}, named: true}
		g.queue(ctx, p, t.Stream)
		r.named = append(r.named, g)
	}
	return r
}

// queue queues the commands reading the group's consumers and oldest
// pending entry on p.
func (g *groupRead) queue(ctx context.Context, p redis.Pipeliner, key string) {
	g.consumers = p.XInfoConsumers(ctx, key, g.state.Name)
	g.oldest = p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: g.state.Name, Start: "-", End: "+", Count: 1})
}

// firstReplies reads the replies of the first round trip into a state, and
// queues on p what the second must read.
func (r *streamRead) firstReplies(ctx context.Context, p redis.Pipeliner, now *redis.TimeCmd, limit int64) (StreamState, error) {
	key := r.t.Stream
	s := StreamState{Stream: key, DeadLetterStream: r.t.DeadLetterStream, At: now.Val()}
	if err := now.Err(); err != nil {
		return s, fmt.Errorf("inspect: stream %q: TIME: %w", key, err)
	}
	if err := r.typ.Err(); err != nil {
		return s, cmdErr("stream", key, key, r.typ)
	}
	if err := r.dead.Err(); err != nil {
		if rediserr.IsWrongType(err) {
			return s, fmt.Errorf("inspect: stream %q: dead-letter stream %q: %w: %w", key, r.t.DeadLetterStream, ErrNotStream, err)
		}
		return s, cmdErr("stream", key, r.t.DeadLetterStream, r.dead)
	}
	s.DeadLetters = r.dead.Val()
	switch typ := r.typ.Val(); typ {
	case "stream":
	case "none":
		if len(r.named) > 0 {
			return s, fmt.Errorf("inspect: stream %q: %w %q (no such key)", key, ErrNoGroup, r.named[0].state.Name)
		}
		return s, nil
	default:
		return s, fmt.Errorf("inspect: stream %q: %w: it holds a %s", key, ErrNotStream, typ)
	}
	s.Exists = true
	if err := r.info.Err(); err != nil {
		return s, cmdErr("stream", key, key, r.info)
	}
	if err := r.groups.Err(); err != nil {
		return s, cmdErr("stream", key, key, r.groups)
	}
	info := r.info.Val()
	s.Length, s.EntriesAdded = info.Length, info.EntriesAdded
	s.FirstID, s.LastID = info.FirstEntry.ID, info.LastEntry.ID
	raw, err := xinfo.Entries(r.groups.Val())
	if err != nil {
		return s, fmt.Errorf("inspect: stream %q: XINFO GROUPS: %w", key, err)
	}
	byName := make(map[string]map[string]any, len(raw))
	for _, f := range raw {
		byName[xinfo.Str(f["name"])] = f
	}
	if len(r.named) > 0 {
		r.read = r.named
	} else {
		names := make([]string, 0, len(byName))
		for name := range byName {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			g := &groupRead{state: GroupState{Name: name}}
			g.queue(ctx, p, key)
			r.read = append(r.read, g)
		}
	}
	var first, last stream.ID
	if s.Length > 0 {
		if first, err = stream.ParseID(s.FirstID); err == nil {
			last, err = stream.ParseID(s.LastID)
		}
		if err != nil {
			return s, fmt.Errorf("inspect: stream %q: XINFO STREAM: %w", key, err)
		}
	}
	for _, g := range r.read {
		f, ok := byName[g.state.Name]
		if !ok {
			return s, fmt.Errorf("inspect: stream %q: %w %q", key, ErrNoGroup, g.state.Name)
		}
		g.state.Pending = xinfo.IntOr(f["pending"], 0)
		g.state.LastDeliveredID = xinfo.Str(f["last-delivered-id"])
		g.state.EntriesRead = xinfo.IntOr(f["entries-read"], -1)
		delivered, err := stream.ParseID(g.state.LastDeliveredID)
		if err != nil {
			return s, fmt.Errorf("inspect: stream %q: group %q: XINFO GROUPS last-delivered-id: %w", key, g.state.Name, err)
		}
		g.plan = planLag(lagInput{
			length: s.Length, added: s.EntriesAdded,
			first: first, last: last, delivered: delivered,
			entriesRead: g.state.EntriesRead, reported: xinfo.IntOr(f["lag"], -1),
		}, limit)
		g.state.Lag = g.plan.lag
		if g.plan.count > 0 {
			g.count = p.XRangeN(ctx, key, "("+g.state.LastDeliveredID, "+", g.plan.count)
		}
	}
	return s, nil
}

// secondReplies reads the groups' replies into s.
func (r *streamRead) secondReplies(s *StreamState) error {
	key := s.Stream
	for _, g := range r.read {
		if err := cmp.Or(g.consumers.Err(), g.oldest.Err()); err != nil {
			switch {
			case rediserr.IsNoGroup(err) && !g.named:
				continue // destroyed since XINFO GROUPS listed it
			case rediserr.IsNoGroup(err):
				return fmt.Errorf("inspect: stream %q: %w %q: %w", key, ErrNoGroup, g.state.Name, err)
			case g.consumers.Err() != nil:
				return cmdErr("stream", key, key, g.consumers)
			}
			return cmdErr("stream", key, key, g.oldest)
		}
		if g.count != nil {
			if g.count.Err() != nil {
				return cmdErr("stream", key, key, g.count)
			}
			g.state.Lag, g.state.LagEstimated = g.plan.resolve(int64(len(g.count.Val())))
		}
		for _, c := range g.consumers.Val() {
			g.state.Consumers = append(g.state.Consumers, ConsumerState{Name: c.Name, Pending: c.Pending, Idle: c.Idle})
			if c.Pending > 0 && (g.state.IdlestOwner == "" || c.Idle > g.state.IdlestOwnerIdle) {
				g.state.IdlestOwner, g.state.IdlestOwnerIdle = c.Name, c.Idle
			}
		}
		slices.SortFunc(g.state.Consumers, func(a, b ConsumerState) int { return cmp.Compare(a.Name, b.Name) })
		if xs := g.oldest.Val(); len(xs) > 0 {
			x := xs[0]
			g.state.OldestPending = PendingEntry{ID: x.ID, Consumer: x.Consumer, Idle: x.Idle, Deliveries: x.RetryCount}
			if id, err := stream.ParseID(x.ID); err == nil {
				g.state.OldestPendingAge = max(s.At.Sub(id.Time()), 0)
			}
		}
		s.Groups = append(s.Groups, g.state)
	}
	return nil
}

// lagInput is what a group's lag is worked out from. IDs are valid only
// when length > 0.
type lagInput struct {
	length, added          int64
	first, last, delivered stream.ID
	entriesRead            int64 // -1: unknown
	reported               int64 // Redis's lag; -1: none
}

// lagPlan is how a group's lag is had: known (count == 0), or by counting
// up to count entries after the last-delivered ID.
type lagPlan struct {
	lag   int64 // the lag; when count > 0, its upper bound
	count int64 // entries to count (XRANGE COUNT); 0: none
	whole bool  // count covers every entry that can follow
}

// planLag works out the lag from what XINFO STREAM and XINFO GROUPS said
// (see GroupState.Lag), or how to count it, reading at most limit entries.
func planLag(in lagInput, limit int64) lagPlan {
	switch {
	case in.length == 0 || in.delivered.Compare(in.last) >= 0:
		return lagPlan{}
	case in.delivered.Compare(in.first) < 0:
		return lagPlan{lag: in.length}
	}
	// The first entry was delivered and the last was not: between 1 and
	// length-1 entries follow.
	most := in.length - 1
	if in.reported >= 1 && in.reported <= most {
		return lagPlan{lag: in.reported}
	}
	upper := most
	if d := in.added - in.entriesRead; in.entriesRead >= 0 && d >= 1 && d < upper {
		upper = d // counts deleted entries: still an upper bound
	}
	return lagPlan{lag: upper, count: min(most, limit), whole: limit >= most}
}

// resolve returns the lag given n, the entries the count found, and
// whether it is only an upper bound.
func (p lagPlan) resolve(n int64) (lag int64, estimated bool) {
	if n < p.count || p.whole {
		return n, false
	}
	return max(p.lag, n), true
}
