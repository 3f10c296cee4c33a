package inspect_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/inspect"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/internal/xinfo"
	"github.com/streamgroup/streamgroup/stream"
)

func do(t testing.TB, rdb redis.UniversalClient, args ...any) any {
	t.Helper()
	v, err := rdb.Do(context.Background(), args...).Result()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

// addN adds entries with IDs 1-0 … n-0 to key.
func addN(t testing.TB, rdb redis.UniversalClient, key string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		do(t, rdb, "XADD", key, strconv.Itoa(i)+"-0", "n", i)
	}
}

// rawGroup returns the lag and entries-read XINFO GROUPS reports for grp,
// -1 for nil.
func rawGroup(t testing.TB, rdb redis.UniversalClient, key, grp string) (lag, entriesRead int64) {
	t.Helper()
	entries, err := xinfo.Entries(do(t, rdb, "XINFO", "GROUPS", key))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range entries {
		if xinfo.Str(f["name"]) == grp {
			return xinfo.IntOr(f["lag"], -1), xinfo.IntOr(f["entries-read"], -1)
		}
	}
	t.Fatalf("no group %q on %q", grp, key)
	return 0, 0
}

// countAfter counts the entries of key after id, the lag by definition.
func countAfter(t testing.TB, rdb redis.UniversalClient, key, id string) int64 {
	t.Helper()
	xs, err := rdb.XRange(context.Background(), key, "("+id, "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(xs))
}

func findGroup(t testing.TB, st inspect.StreamState, name string) inspect.GroupState {
	t.Helper()
	for _, g := range st.Groups {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("stream %q: no group %q in %+v", st.Stream, name, st.Groups)
	return inspect.GroupState{}
}

// TestStreamState builds a stream with a known backlog, pending entries of
// known idle times and ages, consumers and dead letters, and checks every
// number against what the test made and what XINFO, XPENDING and XLEN say.
func TestStreamState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	key := streamKey(t, rdb)
	dead := stream.DeadLetterKey(key)
	otherDead := key + ":failed"

	// Ten entries an hour old, 1 ms apart: their IDs carry their time.
	base := time.Now().Add(-time.Hour).UnixMilli()
	id := func(i int) string { return fmt.Sprintf("%d-0", base+int64(i)) }
	for i := 1; i <= 10; i++ {
		do(t, rdb, "XADD", key, id(i), "n", i)
	}
	do(t, rdb, "XGROUP", "CREATE", key, "workers", "0")
	do(t, rdb, "XGROUP", "CREATE", key, "audit", "$")
	do(t, rdb, "XGROUP", "CREATECONSUMER", key, "workers", "standby") // idlest, but owns nothing
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "a", Streams: []string{key, ">"}, Count: 3}).Err(); err != nil {
		t.Fatal(err)
	}
	// Entry 1: last delivered 90 s ago, 4 deliveries.
	claimBefore := time.Now()
	do(t, rdb, "XCLAIM", key, "workers", "a", 0, id(1), "IDLE", 90000, "RETRYCOUNT", 4, "JUSTID")
	claimAfter := time.Now()
	time.Sleep(100 * time.Millisecond) // a idles; b reads after it
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "workers", Consumer: "b", Streams: []string{key, ">"}, Count: 2}).Err(); err != nil {
		t.Fatal(err)
	}
	do(t, rdb, "XACK", key, "workers", id(5))
	for range 2 {
		do(t, rdb, "XADD", dead, "*", "dlq:id", "x")
	}
	for range 3 {
		do(t, rdb, "XADD", otherDead, "*", "dlq:id", "x")
	}

	in := newInspector(t, rdb, nil)
	before := time.Now()
	states, err := in.Streams(ctx, []inspect.StreamTarget{
		{Stream: key},
		{Stream: key, Groups: []string{"workers", "audit"}, DeadLetterStream: otherDead},
	})
	after := time.Now()
	if err != nil {
		t.Fatalf("Streams: %v", err)
	}
	st := states[0]

	// What the test made.
	if !st.Exists || st.Stream != key || st.Length != 10 || st.FirstID != id(1) || st.LastID != id(10) || st.EntriesAdded != 10 {
		t.Errorf("stream = exists %v, %q, length %d, first %s, last %s, added %d; want true, %q, 10, %s, %s, 10",
			st.Exists, st.Stream, st.Length, st.FirstID, st.LastID, st.EntriesAdded, key, id(1), id(10))
	}
	if st.DeadLetterStream != dead || st.DeadLetters != 2 {
		t.Errorf("dead letters = %q: %d; want %q: 2", st.DeadLetterStream, st.DeadLetters, dead)
	}
	if st.At.Before(before.Add(-5*time.Millisecond)) || st.At.After(after.Add(5*time.Millisecond)) {
		t.Errorf("At = %v; want between %v and %v", st.At, before, after)
	}
	if names := groupNames(st); !slices.Equal(names, []string{"audit", "workers"}) {
		t.Fatalf("groups = %v; want [audit workers]", names)
	}
	audit, workers := st.Groups[0], st.Groups[1]
	if audit.Lag != 0 || audit.LagEstimated || audit.Pending != 0 || audit.LastDeliveredID != id(10) || audit.OldestPending != (inspect.PendingEntry{}) ||
		audit.OldestPendingAge != 0 || audit.IdlestOwner != "" || len(audit.Consumers) != 0 {
		t.Errorf("audit = %+v; want lag 0, nothing pending, at %s, no consumers", audit, id(10))
	}
	if workers.Lag != 5 || workers.LagEstimated || workers.Pending != 4 || workers.LastDeliveredID != id(5) || workers.EntriesRead != 5 {
		t.Errorf("workers = lag %d (estimated %v), pending %d, last delivered %s, entries read %d; want 5 (false), 4, %s, 5",
			workers.Lag, workers.LagEstimated, workers.Pending, workers.LastDeliveredID, workers.EntriesRead, id(5))
	}
	oldest := workers.OldestPending
	if oldest.ID != id(1) || oldest.Consumer != "a" || oldest.Deliveries != 4 {
		t.Errorf("oldest pending = %+v; want %s of a, 4 deliveries", oldest, id(1))
	}
	lo := 90*time.Second + before.Sub(claimAfter) - time.Millisecond
	hi := 90*time.Second + after.Sub(claimBefore) + 2*time.Millisecond
	if oldest.Idle < lo || oldest.Idle > hi {
		t.Errorf("oldest pending idle = %v; want between %v and %v", oldest.Idle, lo, hi)
	}
	if want := st.At.Sub(time.UnixMilli(base + 1)); workers.OldestPendingAge != want {
		t.Errorf("oldest pending age = %v; want At - ID time = %v", workers.OldestPendingAge, want)
	}
	if age := workers.OldestPendingAge; age < time.Hour-time.Second || age > time.Hour+time.Minute {
		t.Errorf("oldest pending age = %v; want about an hour", age)
	}
	var cs []string
	pending := map[string]int64{}
	idle := map[string]time.Duration{}
	for _, c := range workers.Consumers {
		cs = append(cs, c.Name)
		pending[c.Name], idle[c.Name] = c.Pending, c.Idle
	}
	if !slices.Equal(cs, []string{"a", "b", "standby"}) || pending["a"] != 3 || pending["b"] != 1 || pending["standby"] != 0 {
		t.Errorf("consumers = %+v; want a (3 pending), b (1), standby (0)", workers.Consumers)
	}
	if idle["a"] < before.Sub(claimAfter)-time.Millisecond || idle["b"] >= idle["a"] || idle["standby"] < idle["a"] {
		t.Errorf("consumer idle = %v; want a >= %v, b < a <= standby", idle, before.Sub(claimAfter))
	}
	if workers.IdlestOwner != "a" || workers.IdlestOwnerIdle != idle["a"] {
		t.Errorf("idlest owner = %q (%v); want a (%v): standby owns nothing", workers.IdlestOwner, workers.IdlestOwnerIdle, idle["a"])
	}

	// What Redis says.
	xi, err := rdb.XInfoStream(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if st.Length != xi.Length || st.FirstID != xi.FirstEntry.ID || st.LastID != xi.LastEntry.ID || st.EntriesAdded != xi.EntriesAdded {
		t.Errorf("stream = %d, %s, %s, %d; XINFO STREAM says %d, %s, %s, %d",
			st.Length, st.FirstID, st.LastID, st.EntriesAdded, xi.Length, xi.FirstEntry.ID, xi.LastEntry.ID, xi.EntriesAdded)
	}
	if n := rdb.XLen(ctx, dead).Val(); st.DeadLetters != n {
		t.Errorf("dead letters = %d; XLEN says %d", st.DeadLetters, n)
	}
	xg, err := rdb.XInfoGroups(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range xg {
		got := findGroup(t, st, want.Name)
		// go-redis's XInfoGroups reads a nil entries-read as 0: read it raw.
		wantLag, wantRead := rawGroup(t, rdb, key, want.Name)
		if got.Pending != want.Pending || got.LastDeliveredID != want.LastDeliveredID || got.EntriesRead != wantRead || got.Lag != wantLag || int64(len(got.Consumers)) != want.Consumers {
			t.Errorf("group %s = pending %d, last %s, read %d, lag %d, %d consumers; XINFO GROUPS says %d, %s, %d, %d, %d",
				want.Name, got.Pending, got.LastDeliveredID, got.EntriesRead, got.Lag, len(got.Consumers),
				want.Pending, want.LastDeliveredID, wantRead, wantLag, want.Consumers)
		}
		if got.Lag != countAfter(t, rdb, key, got.LastDeliveredID) {
			t.Errorf("group %s lag = %d; XRANGE counts %d after %s", want.Name, got.Lag, countAfter(t, rdb, key, got.LastDeliveredID), got.LastDeliveredID)
		}
	}
	xc, err := rdb.XInfoConsumers(ctx, key, "workers").Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range xc {
		if got := workers.Consumers[i]; got.Name != want.Name || got.Pending != want.Pending {
			t.Errorf("consumer %d = %s (%d pending); XINFO CONSUMERS says %s (%d)", i, got.Name, got.Pending, want.Name, want.Pending)
		}
	}
	xp, err := rdb.XPending(ctx, key, "workers").Result()
	if err != nil {
		t.Fatal(err)
	}
	if xp.Count != workers.Pending || xp.Lower != oldest.ID {
		t.Errorf("pending %d, oldest %s; XPENDING says %d, %s", workers.Pending, oldest.ID, xp.Count, xp.Lower)
	}
	xe, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: "workers", Start: "-", End: "+", Count: 1}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if xe[0].Consumer != oldest.Consumer || xe[0].RetryCount != oldest.Deliveries || xe[0].Idle < oldest.Idle {
		t.Errorf("oldest pending = %+v; XPENDING (later) says %+v", oldest, xe[0])
	}

	// The second target named its groups, in its order, and another
	// dead-letter stream.
	named := states[1]
	if names := groupNames(named); !slices.Equal(names, []string{"workers", "audit"}) {
		t.Errorf("named groups = %v; want [workers audit]", names)
	}
	if named.DeadLetterStream != otherDead || named.DeadLetters != 3 {
		t.Errorf("dead letters = %q: %d; want %q: 3", named.DeadLetterStream, named.DeadLetters, otherDead)
	}
	if len(named.Groups) == 2 {
		a, b := withoutIdle(named.Groups[0]), withoutIdle(workers)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("named workers = %+v; want %+v", a, b)
		}
	}
}

func groupNames(st inspect.StreamState) []string {
	var names []string
	for _, g := range st.Groups {
		names = append(names, g.Name)
	}
	return names
}

// withoutIdle returns g without the fields that change as time passes.
func withoutIdle(g inspect.GroupState) inspect.GroupState {
	g.OldestPending.Idle, g.OldestPendingAge, g.IdlestOwnerIdle = 0, 0, 0
	g.Consumers = slices.Clone(g.Consumers)
	for i := range g.Consumers {
		g.Consumers[i].Idle = 0
	}
	return g
}

// TestStreamLagWhenRedisReportsNone makes Redis 7.0 report a nil lag (and,
// after a trim past the group, a wrong one) and checks the lag Stream
// reports instead, and whether it says it is an estimate. Each stream has
// entries 1-0 … 10-0 and a group g.
func TestStreamLagWhenRedisReportsNone(t *testing.T) {
	t.Parallel()
	readN := func(n int64) func(t testing.TB, rdb redis.UniversalClient, key string) {
		return func(t testing.TB, rdb redis.UniversalClient, key string) {
			do(t, rdb, "XGROUP", "CREATE", key, "g", "0")
			if err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, ">"}, Count: n}).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	then := func(setup func(testing.TB, redis.UniversalClient, string), args ...[]any) func(t testing.TB, rdb redis.UniversalClient, key string) {
		return func(t testing.TB, rdb redis.UniversalClient, key string) {
			setup(t, rdb, key)
			for _, a := range args {
				a = slices.Clone(a)
				for i := range a {
					if a[i] == "_" {
						a[i] = key
					}
				}
				do(t, rdb, a...)
			}
		}
	}
	createAt := func(id string) func(t testing.TB, rdb redis.UniversalClient, key string) {
		return func(t testing.TB, rdb redis.UniversalClient, key string) {
			do(t, rdb, "XGROUP", "CREATE", key, "g", id)
		}
	}
	tests := []struct {
		name        string
		setup       func(t testing.TB, rdb redis.UniversalClient, key string)
		limit       int64
		redisLag    int64 // what XINFO GROUPS says; -1: nil
		entriesRead int64 // -1: nil
		lag         int64
		estimated   bool
		exactLag    int64 // entries after the group, counted by the test
		counted     bool  // Stream needs XRANGE: a second round trip
	}{
		{name: "XDEL of an entry after the group", setup: then(readN(3), []any{"XDEL", "_", "8-0"}),
			redisLag: -1, entriesRead: 3, lag: 6, exactLag: 6, counted: true},
		{name: "XDEL after the group, count capped", setup: then(readN(3), []any{"XDEL", "_", "8-0"}), limit: 3,
			redisLag: -1, entriesRead: 3, lag: 7, estimated: true, exactLag: 6, counted: true}, // entries-added - entries-read counts 8-0
		{name: "group created at an ID", setup: createAt("5-0"),
			redisLag: -1, entriesRead: -1, lag: 5, exactLag: 5, counted: true},
		{name: "group created at an ID, count capped", setup: createAt("5-0"), limit: 3,
			redisLag: -1, entriesRead: -1, lag: 9, estimated: true, exactLag: 5, counted: true}, // the length minus the delivered first entry
		{name: "group created at an ID, count at the cap", setup: createAt("5-0"), limit: 5,
			redisLag: -1, entriesRead: -1, lag: 9, estimated: true, exactLag: 5, counted: true},
		{name: "group created at an ID, cap above the count", setup: createAt("5-0"), limit: 6,
			redisLag: -1, entriesRead: -1, lag: 5, exactLag: 5, counted: true},
		{name: "XGROUP SETID without ENTRIESREAD", setup: then(readN(3), []any{"XGROUP", "SETID", "_", "g", "4-0"}),
			redisLag: -1, entriesRead: -1, lag: 6, exactLag: 6, counted: true},
		{name: "group created at 0, then an XDEL", setup: then(createAt("0"), []any{"XDEL", "_", "8-0"}),
			redisLag: -1, entriesRead: -1, lag: 9, exactLag: 9},
		{name: "XTRIM past the group", setup: then(readN(3), []any{"XTRIM", "_", "MINID", "6-0"}),
			redisLag: 7, entriesRead: 3, lag: 5, exactLag: 5}, // Redis 7.0 counts the trimmed 4-0 and 5-0
		{name: "SETID with a wrong ENTRIESREAD", setup: then(readN(3), []any{"XGROUP", "SETID", "_", "g", "4-0", "ENTRIESREAD", 100}),
			redisLag: -90, entriesRead: 100, lag: 6, exactLag: 6, counted: true},
		{name: "SETID with a too small ENTRIESREAD", setup: then(readN(3), []any{"XGROUP", "SETID", "_", "g", "4-0", "ENTRIESREAD", 0}),
			redisLag: 10, entriesRead: 0, lag: 6, exactLag: 6, counted: true}, // 10 entries cannot follow 4-0 when 1-0 is there
		{name: "XDEL before the group only", setup: then(readN(5), []any{"XDEL", "_", "2-0"}),
			redisLag: 5, entriesRead: 5, lag: 5, exactLag: 5},
		{name: "XDEL of every entry after the group", setup: then(readN(3), []any{"XDEL", "_", "4-0", "5-0", "6-0", "7-0", "8-0", "9-0", "10-0"}),
			redisLag: -1, entriesRead: 3, lag: 0, exactLag: 0},
		{name: "XDEL of every entry", setup: then(readN(3), []any{"XDEL", "_", "1-0", "2-0", "3-0", "4-0", "5-0", "6-0", "7-0", "8-0", "9-0", "10-0"}),
			redisLag: 7, entriesRead: 3, lag: 0, exactLag: 0}, // Redis 7.0 counts the deleted 4-0 … 10-0
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			key := streamKey(t, rdb)
			addN(t, rdb, key, 10)
			tt.setup(t, rdb, key)
			if lag, read := rawGroup(t, rdb, key, "g"); lag != tt.redisLag || read != tt.entriesRead {
				t.Fatalf("precondition: XINFO GROUPS lag %d, entries-read %d; the case wants %d, %d (-1: nil)", lag, read, tt.redisLag, tt.entriesRead)
			}
			reader := redistest.Client(t)
			var c counter
			reader.AddHook(&c)
			in := newInspector(t, reader, &inspect.Options{LagCountLimit: tt.limit})
			st, err := in.Stream(context.Background(), inspect.StreamTarget{Stream: key, Groups: []string{"g"}})
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if want := map[bool]int64{false: 1, true: 2}[tt.counted]; c.pipelines.Load() != want {
				t.Errorf("Stream made %d round trips; want %d (counted: %v)", c.pipelines.Load(), want, tt.counted)
			}
			g := st.Groups[0]
			exact := countAfter(t, rdb, key, g.LastDeliveredID)
			if exact != tt.exactLag {
				t.Fatalf("precondition: %d entries after %s; the case wants %d", exact, g.LastDeliveredID, tt.exactLag)
			}
			if g.Lag != tt.lag || g.LagEstimated != tt.estimated || g.EntriesRead != tt.entriesRead {
				t.Errorf("lag = %d (estimated %v), entries read %d; want %d (%v), %d", g.Lag, g.LagEstimated, g.EntriesRead, tt.lag, tt.estimated, tt.entriesRead)
			}
			if !g.LagEstimated && g.Lag != exact {
				t.Errorf("exact lag = %d; XRANGE counts %d", g.Lag, exact)
			}
			if g.LagEstimated && (g.Lag < exact || g.Lag > st.Length) {
				t.Errorf("estimated lag = %d; want an upper bound: at least %d, at most the length %d", g.Lag, exact, st.Length)
			}
		})
	}
}

// TestStreamsRoundTrips reads 50 streams in one call: one round trip when
// the targets name their groups, two when the groups must be found or a
// lag counted.
func TestStreamsRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := redistest.Client(t)
	var named, all []inspect.StreamTarget
	for i := range 50 {
		key := streamKey(t, setup) + strconv.Itoa(i)
		addN(t, setup, key, 3)
		do(t, setup, "XGROUP", "CREATE", key, "g", "0")
		do(t, setup, "XGROUP", "CREATE", key, "h", "$")
		named = append(named, inspect.StreamTarget{Stream: key, Groups: []string{"g", "h"}})
		all = append(all, inspect.StreamTarget{Stream: key})
	}
	nilLag := slices.Clone(named)
	do(t, setup, "XGROUP", "CREATE", named[7].Stream, "mid", "2-0") // Redis reports no lag: counted
	nilLag[7].Groups = []string{"g", "h", "mid"}

	tests := []struct {
		name      string
		targets   []inspect.StreamTarget
		pipelines int64
	}{
		{"named groups", named, 1},
		{"every group", all, 2},
		{"a lag to count", nilLag, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := redistest.Client(t)
			var c counter
			rdb.AddHook(&c)
			states, err := newInspector(t, rdb, nil).Streams(ctx, tt.targets)
			if err != nil {
				t.Fatalf("Streams: %v", err)
			}
			if p, s := c.pipelines.Load(), c.single.Load(); p != tt.pipelines || s != 0 {
				t.Errorf("Streams of %d targets made %d pipelines and %d single commands; want %d and 0", len(tt.targets), p, s, tt.pipelines)
			}
			for i, st := range states {
				want := tt.targets[i].Groups
				switch {
				case want == nil && i == 7:
					want = []string{"g", "h", "mid"}
				case want == nil:
					want = []string{"g", "h"}
				}
				if st.Length != 3 || !slices.Equal(groupNames(st), want) || st.Groups[0].Lag != 3 || st.Groups[1].Lag != 0 {
					t.Errorf("target %d = %+v; want length 3, groups %v, g with lag 3 and h with lag 0", i, st, want)
				}
			}
			if tt.name != "named groups" {
				if g := findGroup(t, states[7], "mid"); g.Lag != 1 || g.LagEstimated {
					t.Errorf("group mid = %+v; want lag 1, exact", g)
				}
			}
		})
	}
}
