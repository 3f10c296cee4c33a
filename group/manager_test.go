package group_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/internal/streamsrc"
	"github.com/streamgroup/streamgroup/stream"
)

// managerEnv gives a test its own client, Manager, stream key and group
// name; the key is deleted when the test ends.
func managerEnv(t *testing.T) (context.Context, *redis.Client, *group.Manager, string, string) {
	t.Helper()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	t.Cleanup(func() { rdb.Del(context.WithoutCancel(t.Context()), key) })
	return t.Context(), rdb, newManager(t, rdb), key, grp
}

// newManager returns a Manager of rdb, failing the test if NewManager
// refuses it.
func newManager(t *testing.T, rdb redis.UniversalClient) *group.Manager {
	t.Helper()
	m, err := group.NewManager(rdb)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

// addEntries adds entries with the given explicit IDs (or "*") and returns
// the IDs Redis assigned.
func addEntries(t *testing.T, rdb *redis.Client, key string, ids ...string) []string {
	t.Helper()
	out := make([]string, len(ids))
	for i, id := range ids {
		got, err := rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: key, ID: id, Values: []any{"n", i}}).Result()
		if err != nil {
			t.Fatalf("XADD %s %s: %v", key, id, err)
		}
		out[i] = got
	}
	return out
}

// readNew reads up to count new entries for consumer, without blocking, and
// returns their IDs.
func readNew(t *testing.T, rdb *redis.Client, key, grp, consumer string, count int64) []string {
	t.Helper()
	return readFrom(t, rdb, key, grp, consumer, ">", count)
}

func readFrom(t *testing.T, rdb *redis.Client, key, grp, consumer, from string, count int64) []string {
	t.Helper()
	res, err := rdb.XReadGroup(t.Context(), &redis.XReadGroupArgs{
		Group: grp, Consumer: consumer, Streams: []string{key, from}, Count: count,
		Block: -1, // no BLOCK argument: return at once
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		t.Fatalf("XREADGROUP %s %s %s: %v", key, grp, from, err)
	}
	var ids []string
	for _, s := range res {
		for _, m := range s.Messages {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

func mustEnsure(t *testing.T, m *group.Manager, key, grp, start string) {
	t.Helper()
	if _, err := m.EnsureGroup(t.Context(), key, grp, start); err != nil {
		t.Fatalf("EnsureGroup(%q, %q, %q) = %v", key, grp, start, err)
	}
}

// serverAtLeast reports whether the server's version is at least major.minor.
func serverAtLeast(t *testing.T, rdb *redis.Client, major, minor int) bool {
	t.Helper()
	info, err := rdb.Info(t.Context(), "server").Result()
	if err != nil {
		t.Fatalf("INFO server: %v", err)
	}
	for line := range strings.Lines(info) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		parts := strings.SplitN(v, ".", 3)
		maj, _ := strconv.Atoi(parts[0])
		var mnr int
		if len(parts) > 1 {
			mnr, _ = strconv.Atoi(parts[1])
		}
		return maj > major || maj == major && mnr >= minor
	}
	t.Fatalf("INFO server has no redis_version")
	return false
}

func TestManagerEnsureGroupStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		start func(ids []string) string
		want  func(ids []string) []string // entries delivered after the group is created and one more is added
	}{
		{"StartNew", func([]string) string { return group.StartNew }, func(ids []string) []string { return ids[3:] }},
		{"StartAll", func([]string) string { return group.StartAll }, func(ids []string) []string { return ids }},
		{"ID", func(ids []string) string { return ids[0] }, func(ids []string) []string { return ids[1:] }},
		{"MsOnlyID", func([]string) string { return "2" }, func(ids []string) []string { return ids[1:] }}, // "2" is 2-0
		{"ZeroID", func([]string) string { return "0-0" }, func(ids []string) []string { return ids }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, rdb, m, key, grp := managerEnv(t)
			ids := addEntries(t, rdb, key, "1-1", "2-1", "3-1")
			start := tt.start(ids)
			created, err := m.EnsureGroup(ctx, key, grp, start)
			if err != nil || !created {
				t.Fatalf("EnsureGroup(%q) = %v, %v; want true, nil", start, created, err)
			}
			ids = append(ids, addEntries(t, rdb, key, "4-1")...)
			got := readNew(t, rdb, key, grp, "c1", 10)
			if want := tt.want(ids); !reflect.DeepEqual(got, want) {
				t.Errorf("EnsureGroup(%q) then XREADGROUP = %v; want %v", start, got, want)
			}
		})
	}
}

func TestManagerEnsureGroupIdempotent(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	addEntries(t, rdb, key, "*", "*")

	created, err := m.EnsureGroup(ctx, key, grp, group.StartNew)
	if err != nil || !created {
		t.Fatalf("first EnsureGroup = %v, %v; want true, nil", created, err)
	}
	// A second call, even with another start, leaves the group where it is.
	created, err = m.EnsureGroup(ctx, key, grp, group.StartAll)
	if err != nil || created {
		t.Fatalf("second EnsureGroup = %v, %v; want false, nil", created, err)
	}
	if got := readNew(t, rdb, key, grp, "c1", 10); len(got) != 0 {
		t.Errorf("XREADGROUP after second EnsureGroup = %v; want nothing (group not moved)", got)
	}
}

func TestManagerEnsureGroupMakesStream(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	created, err := m.EnsureGroup(ctx, key, grp, group.StartAll)
	if err != nil || !created {
		t.Fatalf("EnsureGroup on a missing key = %v, %v; want true, nil", created, err)
	}
	if typ := rdb.Type(ctx, key).Val(); typ != "stream" {
		t.Errorf("TYPE %s = %q; want stream", key, typ)
	}
}

func TestManagerInvalidArguments(t *testing.T) {
	t.Parallel()
	ctx, _, m, key, grp := managerEnv(t)
	tests := []struct {
		name      string
		call      func() error
		invalidID bool // also wraps stream.ErrInvalidID
	}{
		{"EnsureGroup empty stream", func() error { _, err := m.EnsureGroup(ctx, "", grp, group.StartAll); return err }, false},
		{"EnsureGroup empty group", func() error { _, err := m.EnsureGroup(ctx, key, "", group.StartAll); return err }, false},
		{"EnsureGroup empty start", func() error { _, err := m.EnsureGroup(ctx, key, grp, ""); return err }, true},
		{"EnsureGroup text start", func() error { _, err := m.EnsureGroup(ctx, key, grp, "abc"); return err }, true},
		{"EnsureGroup bad seq", func() error { _, err := m.EnsureGroup(ctx, key, grp, "1-x"); return err }, true},
		{"EnsureGroup minus", func() error { _, err := m.EnsureGroup(ctx, key, grp, "-"); return err }, true},
		{"EnsureGroup plus", func() error { _, err := m.EnsureGroup(ctx, key, grp, "+"); return err }, true},
		{"EnsureGroup new-only marker", func() error { _, err := m.EnsureGroup(ctx, key, grp, ">"); return err }, true},
		{"SetID bad id", func() error { return m.SetID(ctx, key, grp, "x-1") }, true},
		{"SetID empty group", func() error { return m.SetID(ctx, key, "", group.StartAll) }, false},
		{"Destroy empty stream", func() error { _, err := m.Destroy(ctx, "", grp); return err }, false},
		{"Groups empty stream", func() error { _, err := m.Groups(ctx, ""); return err }, false},
		{"Consumers empty group", func() error { _, err := m.Consumers(ctx, key, ""); return err }, false},
		{"Pending empty stream", func() error { _, err := m.Pending(ctx, "", grp); return err }, false},
		{"PendingEntries negative count", func() error {
			_, err := m.PendingEntries(ctx, key, grp, &group.PendingOptions{Count: -1})
			return err
		}, false},
		{"PendingEntries negative idle", func() error {
			_, err := m.PendingEntries(ctx, key, grp, &group.PendingOptions{MinIdle: -time.Second})
			return err
		}, false},
		{"PendingEntries bad start", func() error {
			_, err := m.PendingEntries(ctx, key, grp, &group.PendingOptions{Start: "+"})
			return err
		}, true},
		{"PendingEntries bad end", func() error {
			_, err := m.PendingEntries(ctx, key, grp, &group.PendingOptions{End: "(x"})
			return err
		}, true},
		{"DeleteConsumer empty consumer", func() error { return m.DeleteConsumer(ctx, key, grp, "") }, false},
		{"SweepConsumers zero idle", func() error { _, err := m.SweepConsumers(ctx, key, grp, 0); return err }, false},
		{"SweepConsumers negative idle", func() error { _, err := m.SweepConsumers(ctx, key, grp, -time.Minute); return err }, false},
	}
	for _, tt := range tests {
		err := tt.call()
		if !errors.Is(err, group.ErrInvalidOptions) {
			t.Errorf("%s: err = %v; want ErrInvalidOptions", tt.name, err)
		}
		if tt.invalidID && !errors.Is(err, stream.ErrInvalidID) {
			t.Errorf("%s: err = %v; want it to wrap stream.ErrInvalidID", tt.name, err)
		}
	}
	// Nothing was sent to Redis: the key was never created.
	if n, err := m.Groups(ctx, key); err != nil || len(n) != 0 {
		t.Errorf("Groups after invalid calls = %v, %v; want none", n, err)
	}
}

func TestManagerWrongType(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	if err := rdb.Set(ctx, key, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"EnsureGroup", func() error { _, err := m.EnsureGroup(ctx, key, grp, group.StartAll); return err }},
		{"SetID", func() error { return m.SetID(ctx, key, grp, group.StartAll) }},
		{"Destroy", func() error { _, err := m.Destroy(ctx, key, grp); return err }},
		{"Groups", func() error { _, err := m.Groups(ctx, key); return err }},
		{"Consumers", func() error { _, err := m.Consumers(ctx, key, grp); return err }},
		{"Pending", func() error { _, err := m.Pending(ctx, key, grp); return err }},
		{"PendingEntries", func() error { _, err := m.PendingEntries(ctx, key, grp, nil); return err }},
		{"DeleteConsumer", func() error { return m.DeleteConsumer(ctx, key, grp, "c1") }},
		{"SweepConsumers", func() error { _, err := m.SweepConsumers(ctx, key, grp, time.Minute); return err }},
	}
	for _, tt := range tests {
		err := tt.call()
		if !errors.Is(err, group.ErrNotStream) || !rediserr.IsWrongType(err) {
			t.Errorf("%s on a string key: err = %v; want ErrNotStream wrapping WRONGTYPE", tt.name, err)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Quote(key)) {
			t.Errorf("%s on a string key: err = %q; want it to name the key %q", tt.name, err, key)
		}
	}
}

func TestManagerNoGroup(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, _ := managerEnv(t)
	addEntries(t, rdb, key, "*") // the stream exists, the group "nope" does not
	missingKey := key + ":missing"
	calls := []struct {
		name string
		call func(key string) error
	}{
		{"SetID", func(k string) error { return m.SetID(ctx, k, "nope", group.StartAll) }},
		{"Consumers", func(k string) error { _, err := m.Consumers(ctx, k, "nope"); return err }},
		{"Pending", func(k string) error { _, err := m.Pending(ctx, k, "nope"); return err }},
		{"PendingEntries", func(k string) error { _, err := m.PendingEntries(ctx, k, "nope", nil); return err }},
		{"DeleteConsumer", func(k string) error { return m.DeleteConsumer(ctx, k, "nope", "c1") }},
		{"SweepConsumers", func(k string) error { _, err := m.SweepConsumers(ctx, k, "nope", time.Minute); return err }},
	}
	for _, c := range calls {
		if err := c.call(key); !errors.Is(err, group.ErrNoGroup) || !rediserr.IsNoGroup(err) {
			t.Errorf("%s(missing group) = %v; want ErrNoGroup wrapping NOGROUP", c.name, err)
		}
		if err := c.call(missingKey); !errors.Is(err, group.ErrNoGroup) {
			t.Errorf("%s(missing key) = %v; want ErrNoGroup", c.name, err)
		}
	}
	if ok, err := m.Destroy(ctx, key, "nope"); ok || err != nil {
		t.Errorf("Destroy(missing group) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := m.Destroy(ctx, missingKey, "nope"); ok || err != nil {
		t.Errorf("Destroy(missing key) = %v, %v; want false, nil", ok, err)
	}
	if gs, err := m.Groups(ctx, missingKey); len(gs) != 0 || err != nil {
		t.Errorf("Groups(missing key) = %v, %v; want none, nil", gs, err)
	}
	if n := rdb.Exists(ctx, missingKey).Val(); n != 0 {
		t.Errorf("EXISTS %s = %d after the calls; want 0 (nothing creates the key)", missingKey, n)
	}
}

func TestManagerSetIDReplays(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	ids := addEntries(t, rdb, key, "1-1", "2-1", "3-1")
	mustEnsure(t, m, key, grp, group.StartAll)
	if got := readNew(t, rdb, key, grp, "c1", 10); !reflect.DeepEqual(got, ids) {
		t.Fatalf("first read = %v; want %v", got, ids)
	}
	if err := rdb.XAck(ctx, key, grp, ids...).Err(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id   string
		want []string
	}{
		{group.StartAll, ids},
		{ids[1], ids[2:]},
		{"1", ids},
		{group.StartNew, nil},
	}
	for _, tt := range tests {
		if err := m.SetID(ctx, key, grp, tt.id); err != nil {
			t.Fatalf("SetID(%q) = %v", tt.id, err)
		}
		if got := readNew(t, rdb, key, grp, "c1", 10); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("SetID(%q) then XREADGROUP = %v; want %v", tt.id, got, tt.want)
		}
	}
}

func TestManagerDestroy(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	addEntries(t, rdb, key, "*", "*")
	mustEnsure(t, m, key, grp, group.StartAll)
	readNew(t, rdb, key, grp, "c1", 1)
	// The group consumers keep on the stream's announcements of
	// handed-back entries goes with it.
	released := streamsrc.ReleasedKey(key)
	if err := rdb.XGroupCreateMkStream(ctx, released, grp, "$").Err(); err != nil {
		t.Fatal(err)
	}

	if ok, err := m.Destroy(ctx, key, grp); !ok || err != nil {
		t.Fatalf("Destroy = %v, %v; want true, nil", ok, err)
	}
	if gs, err := rdb.XInfoGroups(ctx, released).Result(); len(gs) != 0 || err != nil {
		t.Errorf("groups on %s after Destroy = %v, %v; want none", released, gs, err)
	}
	if ok, err := m.Destroy(ctx, key, grp); ok || err != nil {
		t.Errorf("second Destroy = %v, %v; want false, nil", ok, err)
	}
	if gs, err := m.Groups(ctx, key); len(gs) != 0 || err != nil {
		t.Errorf("Groups after Destroy = %v, %v; want none", gs, err)
	}
	if n := rdb.XLen(ctx, key).Val(); n != 2 {
		t.Errorf("XLEN after Destroy = %d; want 2 (entries kept)", n)
	}
}

func TestManagerGroups(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, _ := managerEnv(t)
	addEntries(t, rdb, key, "1-1", "2-1", "3-1")
	mustEnsure(t, m, key, "a", group.StartAll)
	mustEnsure(t, m, key, "b", group.StartNew)
	mustEnsure(t, m, key, "c", "2-1") // an ID in the middle: Redis cannot tell entries-read or lag
	readNew(t, rdb, key, "a", "c1", 2)

	want := []group.GroupInfo{
		{Name: "a", Consumers: 1, Pending: 2, LastDeliveredID: "2-1", EntriesRead: 2, Lag: 1},
		// Created without ENTRIESREAD, so entries-read is unknown; at the end, so the lag is 0.
		{Name: "b", Consumers: 0, Pending: 0, LastDeliveredID: "3-1", EntriesRead: -1, Lag: 0},
		{Name: "c", Consumers: 0, Pending: 0, LastDeliveredID: "2-1", EntriesRead: -1, Lag: -1},
	}
	for _, proto := range []int{2, 3} {
		got, err := withProtocol(t, rdb, proto).Groups(ctx, key)
		if err != nil {
			t.Fatalf("RESP%d: Groups = %v", proto, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("RESP%d: Groups =\n%+v\nwant\n%+v", proto, got, want)
		}
	}
}

// withProtocol returns a Manager whose client speaks RESP proto to rdb's
// server: XINFO replies are maps under RESP3 and flat arrays under RESP2.
func withProtocol(t *testing.T, rdb *redis.Client, proto int) *group.Manager {
	t.Helper()
	opts := *rdb.Options()
	opts.Protocol = proto
	c := redis.NewClient(&opts)
	t.Cleanup(func() { c.Close() })
	return newManager(t, c)
}

func TestManagerConsumers(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	addEntries(t, rdb, key, "*", "*", "*")
	mustEnsure(t, m, key, grp, group.StartAll)
	readNew(t, rdb, key, grp, "c1", 2)
	if err := rdb.XGroupCreateConsumer(ctx, key, grp, "c2").Err(); err != nil {
		t.Fatal(err)
	}

	for _, proto := range []int{2, 3} {
		checkConsumers(t, rdb, withProtocol(t, rdb, proto), key, grp)
	}
}

func checkConsumers(t *testing.T, rdb *redis.Client, m *group.Manager, key, grp string) {
	t.Helper()
	got, err := m.Consumers(t.Context(), key, grp)
	if err != nil {
		t.Fatalf("Consumers = %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("Consumers = %+v; want c1 and c2", got)
	}
	// c1 has read: Redis 7.2+ reports how long ago; older servers do not.
	c1Inactive := time.Duration(-1)
	if serverAtLeast(t, rdb, 7, 2) {
		c1Inactive = got[0].Inactive // checked below to be a real duration
		if c1Inactive < 0 {
			t.Errorf("c1.Inactive = %v; want >= 0 on Redis 7.2+", c1Inactive)
		}
	}
	want := []group.ConsumerInfo{
		{Name: "c1", Pending: 2, Idle: got[0].Idle, Inactive: c1Inactive},
		{Name: "c2", Pending: 0, Idle: got[1].Idle, Inactive: -1}, // never read anything
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Consumers =\n%+v\nwant\n%+v", got, want)
	}
	for _, c := range got {
		if c.Idle < 0 || c.Idle > time.Minute {
			t.Errorf("%s.Idle = %v; want between 0 and a minute", c.Name, c.Idle)
		}
	}
}

func TestManagerPending(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	addEntries(t, rdb, key, "1-1", "2-1", "3-1")
	mustEnsure(t, m, key, grp, group.StartAll)

	got, err := m.Pending(ctx, key, grp)
	if want := (group.PendingSummary{Consumers: map[string]int64{}}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Pending(empty) = %+v, %v; want %+v, nil", got, err, want)
	}

	readNew(t, rdb, key, grp, "c1", 2)
	readNew(t, rdb, key, grp, "c2", 1)
	got, err = m.Pending(ctx, key, grp)
	want := group.PendingSummary{Count: 3, Lower: "1-1", Higher: "3-1", Consumers: map[string]int64{"c1": 2, "c2": 1}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Pending = %+v, %v; want %+v, nil", got, err, want)
	}
}

func TestManagerPendingEntries(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	addEntries(t, rdb, key, "1-1", "2-1", "3-1")
	mustEnsure(t, m, key, grp, group.StartAll)
	readNew(t, rdb, key, grp, "c1", 2)
	readFrom(t, rdb, key, grp, "c1", "0", 10) // c1 re-reads its history: 2 deliveries each
	readNew(t, rdb, key, grp, "c2", 1)

	e1 := group.PendingEntry{ID: "1-1", Consumer: "c1", Deliveries: 2}
	e2 := group.PendingEntry{ID: "2-1", Consumer: "c1", Deliveries: 2}
	e3 := group.PendingEntry{ID: "3-1", Consumer: "c2", Deliveries: 1}
	tests := []struct {
		name string
		opts *group.PendingOptions
		want []group.PendingEntry
	}{
		{"nil", nil, []group.PendingEntry{e1, e2, e3}},
		{"zero", &group.PendingOptions{}, []group.PendingEntry{e1, e2, e3}},
		{"Count", &group.PendingOptions{Count: 1}, []group.PendingEntry{e1}},
		{"Consumer", &group.PendingOptions{Consumer: "c2"}, []group.PendingEntry{e3}},
		{"exclusive Start", &group.PendingOptions{Start: "(1-1"}, []group.PendingEntry{e2, e3}},
		{"End", &group.PendingOptions{End: "2-1"}, []group.PendingEntry{e1, e2}},
		{"MinIdle", &group.PendingOptions{MinIdle: time.Hour}, []group.PendingEntry{}},
	}
	for _, tt := range tests {
		got, err := m.PendingEntries(ctx, key, grp, tt.opts)
		if err != nil {
			t.Errorf("PendingEntries(%s) = %v", tt.name, err)
			continue
		}
		for i := range got {
			if got[i].Idle < 0 || got[i].Idle > time.Minute {
				t.Errorf("PendingEntries(%s)[%d].Idle = %v; want between 0 and a minute", tt.name, i, got[i].Idle)
			}
			got[i].Idle = 0
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("PendingEntries(%s) = %+v; want %+v", tt.name, got, tt.want)
		}
	}
}

func consumerNames(t *testing.T, m *group.Manager, key, grp string) []string {
	t.Helper()
	cs, err := m.Consumers(t.Context(), key, grp)
	if err != nil {
		t.Fatalf("Consumers = %v", err)
	}
	names := []string{}
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func TestManagerDeleteConsumer(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	addEntries(t, rdb, key, "*")
	mustEnsure(t, m, key, grp, group.StartAll)
	ids := readNew(t, rdb, key, grp, "c1", 1)

	err := m.DeleteConsumer(ctx, key, grp, "c1")
	if !errors.Is(err, group.ErrConsumerHasPending) {
		t.Fatalf("DeleteConsumer(with pending) = %v; want ErrConsumerHasPending", err)
	}
	var pe *group.ConsumerPendingError
	if !errors.As(err, &pe) || pe.Pending != 1 || pe.Consumer != "c1" || pe.Group != grp || pe.Stream != key {
		t.Errorf("DeleteConsumer(with pending) = %#v; want *ConsumerPendingError{%q, %q, c1, 1}", err, key, grp)
	}
	if got := consumerNames(t, m, key, grp); !reflect.DeepEqual(got, []string{"c1"}) {
		t.Errorf("consumers after refused delete = %v; want [c1]", got)
	}

	if err := rdb.XAck(ctx, key, grp, ids...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteConsumer(ctx, key, grp, "c1"); err != nil {
		t.Fatalf("DeleteConsumer(after XACK) = %v; want nil", err)
	}
	if got := consumerNames(t, m, key, grp); len(got) != 0 {
		t.Errorf("consumers after delete = %v; want none", got)
	}
	if err := m.DeleteConsumer(ctx, key, grp, "ghost"); err != nil {
		t.Errorf("DeleteConsumer(unknown) = %v; want nil", err)
	}
}

func TestManagerSweepConsumers(t *testing.T) {
	t.Parallel()
	ctx, rdb, m, key, grp := managerEnv(t)
	addEntries(t, rdb, key, "*")
	mustEnsure(t, m, key, grp, group.StartAll)
	if err := rdb.XGroupCreateConsumer(ctx, key, grp, "idle").Err(); err != nil {
		t.Fatal(err)
	}
	readNew(t, rdb, key, grp, "busy", 1) // owns a pending entry

	// Nothing has been idle for an hour.
	if got, err := m.SweepConsumers(ctx, key, grp, time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("SweepConsumers(1h) = %v, %v; want none, nil", got, err)
	}

	// Wait, bounded, until both consumers are idle past the threshold.
	const threshold = 500 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs, err := m.Consumers(ctx, key, grp)
		if err != nil {
			t.Fatal(err)
		}
		idle := 0
		for _, c := range cs {
			if c.Idle >= threshold {
				idle++
			}
		}
		if idle == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumers not idle for %v after 10s: %+v", threshold, cs)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// A consumer that just showed up is not idle.
	if err := rdb.XGroupCreateConsumer(ctx, key, grp, "fresh").Err(); err != nil {
		t.Fatal(err)
	}

	got, err := m.SweepConsumers(ctx, key, grp, threshold)
	if err != nil || !reflect.DeepEqual(got, []string{"idle"}) {
		t.Fatalf("SweepConsumers(%v) = %v, %v; want [idle], nil", threshold, got, err)
	}
	if got := consumerNames(t, m, key, grp); !reflect.DeepEqual(got, []string{"busy", "fresh"}) {
		t.Errorf("consumers after sweep = %v; want [busy fresh]", got)
	}
	// However small the threshold, a consumer that owns entries stays.
	if got, err := m.SweepConsumers(ctx, key, grp, time.Millisecond); err != nil || slices.Contains(got, "busy") {
		t.Errorf("SweepConsumers(1ms) = %v, %v; want busy kept", got, err)
	}
	if names := consumerNames(t, m, key, grp); !slices.Contains(names, "busy") {
		t.Errorf("consumers after SweepConsumers(1ms) = %v; want busy kept", names)
	}
}

// TestManagerNoPermNamesCommand runs each Manager method that uses MULTI/EXEC
// as an ACL user refused one command of the transaction: the error must be
// the refused command's own NOPERM, naming it, not EXECABORT.
func TestManagerNoPermNamesCommand(t *testing.T) {
	t.Parallel()
	ctx, admin, _, key, grp := managerEnv(t)
	mustEnsure(t, newManager(t, admin), key, grp, group.StartAll)
	all := []string{"exists", "multi", "exec", "xgroup|setid", "xgroup|destroy", "xinfo|groups", "xinfo|consumers"}
	calls := map[string]func(m *group.Manager) error{
		"SetID":     func(m *group.Manager) error { return m.SetID(ctx, key, grp, group.StartAll) },
		"Destroy":   func(m *group.Manager) error { _, err := m.Destroy(ctx, key, grp+"-none"); return err },
		"Groups":    func(m *group.Manager) error { _, err := m.Groups(ctx, key); return err },
		"Consumers": func(m *group.Manager) error { _, err := m.Consumers(ctx, key, grp); return err },
	}
	tests := []struct {
		without string
		calls   []string
	}{
		{"xgroup|destroy", []string{"Destroy"}},
		{"xgroup|setid", []string{"SetID"}},
		{"xinfo|groups", []string{"Groups"}},
		{"xinfo|consumers", []string{"Consumers"}},
		{"exists", []string{"SetID", "Destroy", "Groups", "Consumers"}},
	}
	for i, tt := range tests {
		user := "sg-noperm-" + strconv.Itoa(i) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		args := []any{"ACL", "SETUSER", user, "reset", "on", ">pw-" + user, "~" + key, "resetchannels", "-@all"}
		for _, c := range all {
			if c != tt.without {
				args = append(args, "+"+c)
			}
		}
		if err := admin.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("ACL SETUSER: %v", err)
		}
		t.Cleanup(func() { admin.ACLDelUser(context.WithoutCancel(ctx), user) })
		opts := *admin.Options()
		opts.Username, opts.Password = user, "pw-"+user
		rdb := redis.NewClient(&opts)
		t.Cleanup(func() { _ = rdb.Close() })
		m := newManager(t, rdb)
		for _, name := range tt.calls {
			err := calls[name](m)
			if err == nil || !rediserr.IsNoPerm(err) || !strings.Contains(err.Error(), "'"+tt.without+"'") {
				t.Errorf("without %s: %s = %v; want the NOPERM naming '%s'", tt.without, name, err, tt.without)
			}
		}
	}
}
