package integration_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// TestReplayFromOldID consumes ten entries, moves the group back with
// Manager.SetID to the fourth one, and checks that a new consumer run
// delivers exactly the entries after it, in order, and that stream.Reader
// returns the same entries from the stream's history.
func TestReplayFromOldID(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := t.Context()
	key, grp := redistest.Names(t)
	t.Cleanup(func() { rdb.Del(context.Background(), key) })
	mgr, err := group.NewManager(rdb)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}

	const total, from = 10, 3 // replay the entries after ids[3]
	ids := publish(t, rdb, key, total, map[string]any{"kind": "replay"})

	first := newRecorder(nil)
	c1 := newConsumer(t, rdb, key, grp, "first", first.as("first"), fastOptions())
	r1 := start(t, c1.Run)
	eventually(t, 15*time.Second, "the first run to handle and acknowledge every entry", func() bool {
		return first.distinct() == total && pending(t, rdb, key, grp) == 0
	})
	if err := r1.Stop(); err != nil {
		t.Fatalf("first run: Run = %v; want nil", err)
	}

	if err := mgr.SetID(ctx, key, grp, ids[from]); err != nil {
		t.Fatalf("SetID(%s) = %v; want nil", ids[from], err)
	}
	if gs, err := mgr.Groups(ctx, key); err != nil || len(gs) != 1 || gs[0].LastDeliveredID != ids[from] {
		t.Fatalf("Groups after SetID = %+v, %v; want one group with LastDeliveredID %s", gs, err, ids[from])
	}

	// One slot, so entries are handled one after the other, in read order.
	var (
		mu       sync.Mutex
		replayed []stream.Message
	)
	second := newRecorder(func(_ context.Context, m *stream.Message) error {
		mu.Lock()
		defer mu.Unlock()
		replayed = append(replayed, *m)
		return nil
	})
	opts := fastOptions()
	opts.Concurrency = 1
	c2 := newConsumer(t, rdb, key, grp, "replayer", second.as("replayer"), opts)
	r2 := start(t, c2.Run)
	want := ids[from+1:]
	eventually(t, 15*time.Second, "the replay to handle and acknowledge the entries after the new position", func() bool {
		return second.distinct() >= len(want) && pending(t, rdb, key, grp) == 0
	})
	if err := r2.Stop(); err != nil {
		t.Fatalf("replay run: Run = %v; want nil", err)
	}

	calls, _, _ := first.snapshot()
	for i, id := range ids {
		if calls[id] != 1 {
			t.Errorf("first run handled entry %d (%s) %d times; want once", i, id, calls[id])
		}
	}
	mu.Lock()
	got := slices.Clone(replayed)
	mu.Unlock()
	var gotIDs []string
	for _, m := range got {
		gotIDs = append(gotIDs, m.ID)
		if m.Deliveries != 1 {
			t.Errorf("replayed %s with Deliveries %d; want 1 (a new delivery)", m.ID, m.Deliveries)
		}
	}
	if !slices.Equal(gotIDs, want) {
		t.Fatalf("replayed %v; want %v, in order", gotIDs, want)
	}
	if st := c2.Stats(); st.Delivered != uint64(len(want)) || st.Acked != uint64(len(want)) {
		t.Errorf("replay run Stats = %+v; want Delivered=Acked=%d", st, len(want))
	}
	if gs, err := mgr.Groups(ctx, key); err != nil || len(gs) != 1 || gs[0].LastDeliveredID != ids[total-1] || gs[0].Pending != 0 {
		t.Errorf("Groups after the replay = %+v, %v; want one group, LastDeliveredID %s, 0 pending", gs, err, ids[total-1])
	}

	// The history reader, 3 entries a page (so the 6 entries end exactly on
	// a page boundary), sees the same entries with the same values.
	r, err := stream.NewReader(rdb, key, &stream.ReaderOptions{PageSize: 3})
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var hist []*stream.Message
	for m, err := range r.Range(ctx, "("+ids[from], "+") {
		if err != nil {
			t.Fatalf("Range(%q, +): %v", "("+ids[from], err)
		}
		hist = append(hist, m)
	}
	if len(hist) != len(got) {
		t.Fatalf("Range(%q, +) gave %d entries; want the %d replayed", "("+ids[from], len(hist), len(got))
	}
	for i, h := range hist {
		g := got[i]
		if h.ID != g.ID || h.Stream != key || g.Stream != key || !maps.Equal(h.Values, g.Values) {
			t.Errorf("Range entry %d = {%s %s %v}; want the replayed {%s %s %v}", i, h.ID, h.Stream, h.Values, g.ID, g.Stream, g.Values)
		}
		if n := h.Values["n"]; n != strconv.Itoa(from+1+i) || h.Values["kind"] != "replay" {
			t.Errorf("Range entry %d values = %v; want n=%d kind=replay", i, h.Values, from+1+i)
		}
	}
}
