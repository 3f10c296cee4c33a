package stream_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

func itoa(i int) string { return strconv.Itoa(i) }

func newProducer(t *testing.T, rdb redis.UniversalClient, key string, opts *stream.ProducerOptions) *stream.Producer {
	t.Helper()
	p, err := stream.NewProducer(rdb, key, opts)
	if err != nil {
		t.Fatalf("NewProducer(%+v) = %v; want nil", opts, err)
	}
	return p
}

func TestNewProducerOptions(t *testing.T) {
	// NewProducer does no I/O: a client that never connects is enough.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	tests := []struct {
		name    string
		opts    *stream.ProducerOptions
		wantErr bool
	}{
		{"nil", nil, false},
		{"zero", &stream.ProducerOptions{}, false},
		{"MaxLen", &stream.ProducerOptions{MaxLen: 10, TrimInterval: 1}, false},
		{"MinID with seq", &stream.ProducerOptions{MinID: "5-1"}, false},
		{"MinID ms", &stream.ProducerOptions{MinID: "5"}, false},
		{"negative MaxLen", &stream.ProducerOptions{MaxLen: -1}, true},
		{"bad MinID", &stream.ProducerOptions{MinID: "5-x"}, true},
		{"special MinID", &stream.ProducerOptions{MinID: "+"}, true},
		{"MaxLen and MinID", &stream.ProducerOptions{MaxLen: 10, MinID: "5-0"}, true},
		{"negative TrimInterval", &stream.ProducerOptions{TrimInterval: -1}, true},
		{"coalescing knobs", &stream.ProducerOptions{MaxInFlight: 1, MaxBatch: 1}, false},
		{"negative MaxInFlight", &stream.ProducerOptions{MaxInFlight: -1}, true},
		{"negative MaxBatch", &stream.ProducerOptions{MaxBatch: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before stream.ProducerOptions
			if tt.opts != nil {
				before = *tt.opts
			}
			p, err := stream.NewProducer(rdb, "k", tt.opts)
			if tt.wantErr {
				if !errors.Is(err, stream.ErrInvalidOptions) || p != nil {
					t.Errorf("NewProducer(%+v) = %v, %v; want nil, an error wrapping ErrInvalidOptions", tt.opts, p, err)
				}
			} else if err != nil || p == nil {
				t.Errorf("NewProducer(%+v) = %v, %v; want a producer, nil", tt.opts, p, err)
			}
			if tt.opts != nil && !reflect.DeepEqual(*tt.opts, before) {
				t.Errorf("NewProducer changed the options: %+v; was %+v", *tt.opts, before)
			}
		})
	}
}

func TestProducerAddOrder(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	p := newProducer(t, rdb, key, nil)

	first, err := p.Add(ctx, map[string]any{"n": 0, "kind": "single"})
	if err != nil {
		t.Fatalf("Add = %v; want nil", err)
	}
	var entries []stream.Entry
	for i := 1; i <= 5; i++ {
		entries = append(entries, stream.Entry{Values: map[string]any{"n": i, "b": []byte("x"), "ok": true}})
	}
	got, err := p.AddBatch(ctx, entries)
	if err != nil {
		t.Fatalf("AddBatch = %v; want nil", err)
	}
	want := append([]string{first}, got...)
	if all := ids(t, rdb, key); !reflect.DeepEqual(all, want) {
		t.Fatalf("stream IDs = %v; want %v (Add then AddBatch, in order)", all, want)
	}
	msgs, err := rdb.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if m.Values["n"] != itoa(i) {
			t.Errorf("entry %d (%s) n = %v; want %d", i, m.ID, m.Values["n"], i)
		}
	}
	if msgs[1].Values["ok"] != "1" || msgs[1].Values["b"] != "x" {
		t.Errorf("entry 1 values = %v; want ok=1 b=x", msgs[1].Values)
	}
	if empty, err := p.AddBatch(ctx, nil); empty != nil || err != nil {
		t.Errorf("AddBatch(nil) = %v, %v; want nil, nil", empty, err)
	}
}

func TestProducerExplicitIDs(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	p := newProducer(t, rdb, key, nil)
	tests := []struct{ id, want string }{
		{"5-1", "5-1"},
		{"6", "6-0"},
		{"007-3", "7-3"},
		{"8-*", "8-0"},
		{"8-*", "8-1"},
		{"*", ""}, // auto: some ID, checked below
		{"", ""},
	}
	for _, tt := range tests {
		got, err := p.AddEntry(t.Context(), stream.Entry{ID: tt.id, Values: map[string]any{"f": "v"}})
		if err != nil {
			t.Fatalf("AddEntry(ID %q) = %v; want nil", tt.id, err)
		}
		if tt.want != "" && got != tt.want {
			t.Errorf("AddEntry(ID %q) = %q; want %q", tt.id, got, tt.want)
		}
		if _, err := stream.ParseID(got); err != nil {
			t.Errorf("AddEntry(ID %q) = %q, not an ID", tt.id, got)
		}
	}
}

func TestProducerAddErrors(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	p := newProducer(t, rdb, key, nil)
	if _, err := p.AddEntry(ctx, stream.Entry{ID: "10-0", Values: map[string]any{"f": "v"}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		entry stream.Entry
		is    error            // errors.Is target, if any
		check func(error) bool // extra check, if any
	}{
		{"nil values", stream.Entry{}, stream.ErrEmptyEntry, nil},
		{"empty values", stream.Entry{Values: map[string]any{}}, stream.ErrEmptyEntry, nil},
		{"malformed ID", stream.Entry{ID: "x-1", Values: map[string]any{"f": "v"}}, stream.ErrInvalidID, nil},
		{"malformed auto-seq ID", stream.Entry{ID: "x-*", Values: map[string]any{"f": "v"}}, stream.ErrInvalidID, nil},
		{"unwritable value", stream.Entry{Values: map[string]any{"f": struct{}{}}}, nil, nil},
		{"ID not above the top", stream.Entry{ID: "9-0", Values: map[string]any{"f": "v"}}, nil,
			func(err error) bool { var re redis.Error; return errors.As(err, &re) }},
		{"ID 0-0", stream.Entry{ID: "0-0", Values: map[string]any{"f": "v"}}, nil,
			func(err error) bool { var re redis.Error; return errors.As(err, &re) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := p.AddEntry(ctx, tt.entry)
			if err == nil || id != "" {
				t.Fatalf("AddEntry(%+v) = %q, %v; want an error", tt.entry, id, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("AddEntry(%+v) = %v; want an error wrapping %v", tt.entry, err, tt.is)
			}
			if tt.check != nil && !tt.check(err) {
				t.Errorf("AddEntry(%+v) = %v (%T); want a Redis error reply", tt.entry, err, err)
			}
			if !strings.Contains(err.Error(), key) {
				t.Errorf("AddEntry error %q does not name the stream %q", err, key)
			}
		})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if id, err := p.Add(cancelled, map[string]any{"f": "v"}); !errors.Is(err, context.Canceled) || id != "" {
		t.Errorf("Add with a cancelled ctx = %q, %v; want \"\", context.Canceled", id, err)
	}
	if got, err := p.AddBatch(cancelled, []stream.Entry{{Values: map[string]any{"f": "v"}}}); !errors.Is(err, context.Canceled) || got[0] != "" {
		t.Errorf("AddBatch with a cancelled ctx = %q, %v; want [\"\"], context.Canceled", got, err)
	}
	if got := ids(t, rdb, key); !reflect.DeepEqual(got, []string{"10-0"}) {
		t.Errorf("stream IDs after failed adds = %v; want [10-0]", got)
	}
}

// binMarshaler implements encoding.BinaryMarshaler only.
type binMarshaler struct{}

func (binMarshaler) MarshalBinary() ([]byte, error) { return []byte{0xff, 'b'}, nil }

// TestProducerValueText pins the text each Go value type is stored as, as
// docs/wire-format.md ("How Go values are written") documents it.
func TestProducerValueText(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	p := newProducer(t, rdb, key, nil)
	n := -7
	var nilInt *int
	var nilTime *time.Time
	tests := []struct {
		name  string
		value any
		want  string
	}{
		{"string", "ada", "ada"},
		{"empty string", "", ""},
		{"[]byte", []byte{1, 2, 0, 0xff}, "\x01\x02\x00\xff"},
		{"int", -42, "-42"},
		{"int8", int8(-128), "-128"},
		{"int64", int64(math.MinInt64), "-9223372036854775808"},
		{"uint8", uint8(255), "255"},
		{"uint64", uint64(math.MaxUint64), "18446744073709551615"},
		{"uintptr", uintptr(9), "9"},
		{"float64", 1.5, "1.5"},
		{"float64 large", 1e21, "1000000000000000000000"},
		{"float64 small", 1e-7, "0.0000001"},
		{"float64 NaN", math.NaN(), "NaN"},
		{"float64 +Inf", math.Inf(1), "+Inf"},
		{"float32", float32(0.1), "0.10000000149011612"},
		{"bool true", true, "1"},
		{"bool false", false, "0"},
		{"time.Time UTC", time.Date(2024, 5, 1, 12, 0, 0, 500e6, time.UTC), "2024-05-01T12:00:00.5Z"},
		{"time.Time zone", time.Date(2024, 5, 1, 12, 0, 0, 0, time.FixedZone("", 2*3600)), "2024-05-01T12:00:00+02:00"},
		{"time.Duration", 1500 * time.Millisecond, "1500000000"},
		{"time.Duration negative", -time.Second, "-1000000000"},
		{"net.IP v4", net.ParseIP("10.0.0.1").To4(), "\x0a\x00\x00\x01"},
		{"net.IP 16 bytes", net.ParseIP("10.0.0.1"), "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x0a\x00\x00\x01"},
		{"nil", nil, ""},
		{"*int", &n, "-7"},
		{"nil *int", nilInt, "0"},
		{"nil *time.Time", nilTime, "0001-01-01T00:00:00Z"},
		{"BinaryMarshaler", binMarshaler{}, "\xffb"},
	}
	for _, tt := range tests {
		id, err := p.Add(ctx, map[string]any{"v": tt.value})
		if err != nil {
			t.Errorf("%s: Add(%#v) = %v; want nil", tt.name, tt.value, err)
			continue
		}
		msgs, err := rdb.XRange(ctx, key, id, id).Result()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("XRANGE %s = %v, %v", id, msgs, err)
		}
		got, _ := msgs[0].Values["v"].(string)
		if got != tt.want {
			t.Errorf("%s: Add(%#v) stored %q; want %q", tt.name, tt.value, got, tt.want)
		}
	}

	// Anything else is refused before it is sent, naming the field and type.
	type kind string
	for _, v := range []any{kind("a"), struct{}{}, []string{"a"}, map[string]string{}} {
		_, err := p.Add(ctx, map[string]any{"bad": v})
		want := fmt.Sprintf("%T", v)
		if err == nil || !strings.Contains(err.Error(), `"bad"`) || !strings.Contains(err.Error(), want) {
			t.Errorf("Add(%#v) = %v; want an error naming field \"bad\" and type %s", v, err, want)
		}
	}

	// In a typed payload the codec decides: JSON writes durations as numbers
	// of nanoseconds too, []byte as base64, net.IP as text.
	values, err := stream.Encode(stream.JSON, struct {
		D  time.Duration
		T  time.Time
		B  []byte
		F  float32
		IP net.IP
	}{1500 * time.Millisecond, time.Date(2024, 5, 1, 12, 0, 0, 500e6, time.UTC), []byte{1, 2}, 0.1, net.ParseIP("10.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"D":1500000000,"T":"2024-05-01T12:00:00.5Z","B":"AQI=","F":0.1,"IP":"10.0.0.1"}`
	if got := string(values[stream.PayloadField].([]byte)); got != want {
		t.Errorf("Encode(JSON) payload = %s; want %s", got, want)
	}
}

func TestProducerNoMkStream(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	p := newProducer(t, rdb, key, &stream.ProducerOptions{NoMkStream: true})
	id, err := p.Add(ctx, map[string]any{"f": "v"})
	if !errors.Is(err, stream.ErrNoStream) || id != "" {
		t.Fatalf("Add to a missing stream with NoMkStream = %q, %v; want \"\", ErrNoStream", id, err)
	}
	if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS %s = %d, %v; want 0", key, n, err)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"f", "v"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Add(ctx, map[string]any{"f": "v"}); err != nil {
		t.Errorf("Add to an existing stream with NoMkStream = %v; want nil", err)
	}
}

func TestProducerWrongType(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	if err := rdb.Set(ctx, key, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	p := newProducer(t, rdb, key, &stream.ProducerOptions{MaxLen: 1, TrimInterval: 1})
	_, err := p.Add(ctx, map[string]any{"f": "v"})
	if !rediserr.IsWrongType(err) || !strings.Contains(err.Error(), key) {
		t.Errorf("Add to a string key = %v; want a WRONGTYPE error naming %q", err, key)
	}
	if _, err := p.Trim(ctx); !rediserr.IsWrongType(err) {
		t.Errorf("Trim of a string key = %v; want a WRONGTYPE error", err)
	}
}

func TestProducerAddBatchPartialFailure(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	p := newProducer(t, rdb, key, nil)
	got, err := p.AddBatch(ctx, []stream.Entry{
		{ID: "100-0", Values: map[string]any{"i": 0}},
		{ID: "50-0", Values: map[string]any{"i": 1}}, // below the top: Redis refuses it
		{Values: map[string]any{"i": 2}},
		{},                                            // no fields: refused before sending
		{Values: map[string]any{"i": make(chan int)}}, // unwritable: refused before sending
		{Values: map[string]any{"i": 5}},
	})
	var be *stream.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("AddBatch = %v; want a *BatchError", err)
	}
	if len(got) != 6 || len(be.Errs) != 6 {
		t.Fatalf("AddBatch = %d IDs, %d errors; want 6 and 6", len(got), len(be.Errs))
	}
	for i, wantOK := range []bool{true, false, true, false, false, true} {
		if ok := got[i] != "" && be.Errs[i] == nil; ok != wantOK {
			t.Errorf("entry %d: ID %q, error %v; want success %v", i, got[i], be.Errs[i], wantOK)
		}
	}
	if !errors.Is(err, stream.ErrEmptyEntry) {
		t.Errorf("errors.Is(%v, ErrEmptyEntry) = false; want true", err)
	}
	if be.Stream != key || !strings.Contains(be.Error(), "3 of 6") {
		t.Errorf("BatchError = %q (stream %q); want it to say 3 of 6 for %q", be.Error(), be.Stream, key)
	}
	want := []string{got[0], got[2], got[5]}
	if all := ids(t, rdb, key); !reflect.DeepEqual(all, want) {
		t.Errorf("stream IDs = %v; want %v", all, want)
	}
}

func TestProducerAddPayload(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	p := newProducer(t, rdb, key, nil)
	in := email{To: "a@b.c", Subject: "hello"}
	id, err := p.AddPayload(ctx, in)
	if err != nil {
		t.Fatalf("AddPayload = %v; want nil", err)
	}
	xs, err := rdb.XRange(ctx, key, id, id).Result()
	if err != nil || len(xs) != 1 {
		t.Fatalf("XRANGE %s = %v, %v; want 1 entry", id, xs, err)
	}
	m, ok := stream.FromXMessage(key, xs[0])
	if !ok || m.Values[stream.ContentTypeField] != "application/json" {
		t.Fatalf("entry %s = %+v; want a JSON payload entry", id, m)
	}
	var out email
	if err := stream.Decode(&m, nil, &out); err != nil || out != in {
		t.Errorf("Decode = %+v, %v; want %+v, nil", out, err, in)
	}
	if _, err := p.AddPayload(ctx, func() {}); err == nil {
		t.Errorf("AddPayload(func) = nil error; want an encode error")
	}
}

func TestProducerConcurrentAdds(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	// Trimming after every 7 adds, exactly, from many goroutines at once.
	p := newProducer(t, rdb, key, &stream.ProducerOptions{MaxLen: 5, ExactTrim: true, TrimInterval: 7})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				if i%2 == 0 {
					if _, err := p.Add(ctx, map[string]any{"g": g, "i": i}); err != nil {
						t.Errorf("Add = %v", err)
					}
					continue
				}
				if _, err := p.AddBatch(ctx, []stream.Entry{{Values: map[string]any{"g": g}}, {Values: map[string]any{"i": i}}}); err != nil {
					t.Errorf("AddBatch = %v", err)
				}
			}
		})
	}
	wg.Wait()
	// 8 goroutines * (5 single + 5*2 batched) = 120 adds, so a trim was
	// due at the 119th. Adds are counted when queued, not when Redis runs
	// them, so up to 7 other goroutines' adds (2 entries each) may land
	// after that trim: at most 5 + 1 + 14 entries remain.
	if n := rdb.XLen(ctx, key).Val(); n > 20 || n < 5 {
		t.Errorf("XLEN after 120 adds with MaxLen 5, TrimInterval 7 = %d; want 5..20", n)
	}
}

func TestProducerTrimInterval(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	var trimErrs []error
	p := newProducer(t, rdb, key, &stream.ProducerOptions{
		MaxLen: 2, ExactTrim: true, TrimInterval: 5,
		OnError: func(err error) { trimErrs = append(trimErrs, err) },
	})
	add := func(n int) {
		t.Helper()
		var es []stream.Entry
		for range n {
			es = append(es, stream.Entry{Values: map[string]any{"f": "v"}})
		}
		if _, err := p.AddBatch(ctx, es); err != nil {
			t.Fatalf("AddBatch(%d) = %v", n, err)
		}
	}
	steps := []struct {
		add     int
		wantLen int64
	}{
		{4, 4},  // 4 adds: no trim yet
		{1, 2},  // 5th add: trimmed
		{3, 5},  // 8
		{4, 2},  // 12: crossed 10
		{12, 2}, // 24: crossed 15 and 20, trimmed once
		{1, 2},  // 25: crossed 25
		{4, 6},  // 29
	}
	for i, s := range steps {
		add(s.add)
		if n := rdb.XLen(ctx, key).Val(); n != s.wantLen {
			t.Fatalf("step %d: XLEN after %d more adds = %d; want %d", i, s.add, n, s.wantLen)
		}
	}
	if trimErrs != nil {
		t.Errorf("OnError got %v; want no calls", trimErrs)
	}
}

// group describes a consumer group to set up before a trim.
type group struct {
	name  string
	start string   // XGROUP CREATE id
	read  int64    // entries to read with XREADGROUP
	ack   []string // IDs to acknowledge
}

func (g group) create(t *testing.T, rdb redis.UniversalClient, key string) {
	t.Helper()
	ctx := t.Context()
	if err := rdb.XGroupCreate(ctx, key, g.name, g.start).Err(); err != nil {
		t.Fatalf("XGROUP CREATE %s %s: %v", g.name, g.start, err)
	}
	if g.read > 0 {
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: g.name, Consumer: "c", Streams: []string{key, ">"}, Count: g.read, Block: -1,
		}).Err(); err != nil {
			t.Fatalf("XREADGROUP %s: %v", g.name, err)
		}
	}
	if len(g.ack) > 0 {
		if err := rdb.XAck(ctx, key, g.name, g.ack...).Err(); err != nil {
			t.Fatalf("XACK %s: %v", g.name, err)
		}
	}
}

func TestProducerSafeTrim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   stream.ProducerOptions
		groups []group
		want   []string // the IDs left of 1-0 ... 10-0
	}{
		{
			name: "no groups MaxLen",
			opts: stream.ProducerOptions{MaxLen: 3},
			want: span(8, 10),
		},
		{
			name: "no groups MinID",
			opts: stream.ProducerOptions{MinID: "6"},
			want: span(6, 10),
		},
		{
			name: "MaxLen at the length",
			opts: stream.ProducerOptions{MaxLen: 10},
			want: span(1, 10),
		},
		{
			name:   "pending entry holds back",
			opts:   stream.ProducerOptions{MaxLen: 2},
			groups: []group{{name: "g", start: "0", read: 6, ack: []string{"1-0", "2-0", "4-0"}}},
			want:   span(3, 10),
		},
		{
			name:   "undelivered entries hold back",
			opts:   stream.ProducerOptions{MaxLen: 2},
			groups: []group{{name: "g", start: "0", read: 4, ack: span(1, 4)}},
			want:   span(5, 10),
		},
		{
			name:   "new group at the start holds everything",
			opts:   stream.ProducerOptions{MaxLen: 2},
			groups: []group{{name: "g", start: "0"}},
			want:   span(1, 10),
		},
		{
			name:   "caught-up group holds nothing",
			opts:   stream.ProducerOptions{MaxLen: 2},
			groups: []group{{name: "g", start: "0", read: 10, ack: span(1, 10)}},
			want:   span(9, 10),
		},
		{
			name:   "group created at $ holds nothing",
			opts:   stream.ProducerOptions{MaxLen: 2},
			groups: []group{{name: "g", start: "$"}},
			want:   span(9, 10),
		},
		{
			name:   "caught up but one pending",
			opts:   stream.ProducerOptions{MaxLen: 2},
			groups: []group{{name: "g", start: "0", read: 10, ack: slices.Delete(span(1, 10), 6, 7)}},
			want:   span(7, 10),
		},
		{
			name:   "MaxLen floor below the safe floor",
			opts:   stream.ProducerOptions{MaxLen: 9},
			groups: []group{{name: "g", start: "0", read: 6, ack: []string{"1-0", "2-0", "4-0"}}},
			want:   span(2, 10),
		},
		{
			name:   "safe floor below a near MaxLen floor",
			opts:   stream.ProducerOptions{MaxLen: 7},
			groups: []group{{name: "g", start: "0", read: 2, ack: []string{"1-0"}}},
			want:   span(2, 10),
		},
		{
			name: "the slowest of two groups binds",
			opts: stream.ProducerOptions{MaxLen: 2},
			groups: []group{
				{name: "fast", start: "0", read: 10, ack: span(1, 10)},
				{name: "slow", start: "4-0"},
			},
			want: span(5, 10),
		},
		{
			name: "the oldest pending of two groups binds",
			opts: stream.ProducerOptions{MaxLen: 2},
			groups: []group{
				{name: "a", start: "0", read: 10, ack: slices.Delete(span(1, 10), 5, 6)},
				{name: "b", start: "0", read: 10, ack: slices.Delete(span(1, 10), 7, 8)},
			},
			want: span(6, 10),
		},
		{
			name:   "MinID with a pending entry",
			opts:   stream.ProducerOptions{MinID: "8-0"},
			groups: []group{{name: "g", start: "0", read: 5, ack: []string{"1-0", "2-0"}}},
			want:   span(3, 10),
		},
		{
			name:   "MinID below the safe floor",
			opts:   stream.ProducerOptions{MinID: "3-0"},
			groups: []group{{name: "g", start: "0", read: 5, ack: span(1, 5)}},
			want:   span(3, 10),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, key, _ := setup(t)
			seed(t, rdb, key, 10)
			for _, g := range tt.groups {
				g.create(t, rdb, key)
			}
			opts := tt.opts
			opts.ExactTrim = true
			p := newProducer(t, rdb, key, &opts)
			n, err := p.Trim(t.Context())
			if err != nil {
				t.Fatalf("Trim = %v; want nil", err)
			}
			got := ids(t, rdb, key)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("after Trim the stream holds %v; want %v", got, tt.want)
			}
			if want := int64(10 - len(tt.want)); n != want {
				t.Errorf("Trim = %d; want %d removed", n, want)
			}
		})
	}
}

// With default options but MaxLen, the producer's adds trim the stream. With
// no group on the stream, nothing tells the producer what is unconsumed, so
// MaxLen trims like plain XTRIM MAXLEN ~: a consumer group created later
// never sees the trimmed entries. With a group, its undelivered entries are
// kept until it has read and acknowledged them.
func TestProducerMaxLenWithAndWithoutGroup(t *testing.T) {
	t.Parallel()
	const maxLen, adds = 100, 1000
	// Approximate trimming removes whole internal nodes (100 entries by
	// default), and runs once per DefaultTrimInterval adds.
	const slack = 100 + stream.DefaultTrimInterval
	add := func(t *testing.T, p *stream.Producer) {
		t.Helper()
		for range adds / 100 {
			es := make([]stream.Entry, 100)
			for i := range es {
				es[i] = stream.Entry{Values: map[string]any{"f": "v"}}
			}
			if _, err := p.AddBatch(t.Context(), es); err != nil {
				t.Fatalf("AddBatch = %v", err)
			}
		}
	}
	t.Run("without a group", func(t *testing.T) {
		t.Parallel()
		rdb, key, _ := setup(t)
		add(t, newProducer(t, rdb, key, &stream.ProducerOptions{MaxLen: maxLen}))
		if n := rdb.XLen(t.Context(), key).Val(); n < maxLen || n > maxLen+slack {
			t.Errorf("XLEN after %d adds with MaxLen %d and no group = %d; want about %d (trimmed like XTRIM)", adds, maxLen, n, maxLen)
		}
	})
	t.Run("with a group", func(t *testing.T) {
		t.Parallel()
		rdb, key, group := setup(t)
		ctx := t.Context()
		if err := rdb.XGroupCreateMkStream(ctx, key, group, "0").Err(); err != nil {
			t.Fatal(err)
		}
		p := newProducer(t, rdb, key, &stream.ProducerOptions{MaxLen: maxLen})
		add(t, p)
		if n := rdb.XLen(ctx, key).Val(); n != adds {
			t.Fatalf("XLEN after %d adds with MaxLen %d and a group that read nothing = %d; want %d (unconsumed entries kept)", adds, maxLen, n, adds)
		}
		// Once the group has consumed everything, the next trim catches up.
		msgs, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: "c", Streams: []string{key, ">"}, Count: adds, Block: -1,
		}).Result()
		if err != nil {
			t.Fatal(err)
		}
		var read []string
		for _, m := range msgs[0].Messages {
			read = append(read, m.ID)
		}
		if err := rdb.XAck(ctx, key, group, read...).Err(); err != nil {
			t.Fatal(err)
		}
		add(t, p)
		// The new entries are undelivered, so they stay; the old ones go.
		if n := rdb.XLen(ctx, key).Val(); n < adds || n > adds+slack {
			t.Errorf("XLEN after the group acknowledged %d entries and %d more adds = %d; want about %d (the new, undelivered ones)", len(read), adds, n, adds)
		}
	})
}

func TestProducerSafeTrimProgress(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	seed(t, rdb, key, 10)
	group{name: "g", start: "0", read: 6, ack: []string{"1-0", "2-0", "4-0"}}.create(t, rdb, key)
	p := newProducer(t, rdb, key, &stream.ProducerOptions{MaxLen: 2, ExactTrim: true})
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"3, 5 and 6 pending", func() {}, span(3, 10)},
		{"all delivered acknowledged", func() { rdb.XAck(ctx, key, "g", "3-0", "5-0", "6-0") }, span(7, 10)},
		{"all read, 9 pending", func() {
			group{name: "g", read: 10, ack: []string{"7-0", "8-0", "10-0"}}.readAck(t, rdb, key)
		}, span(9, 10)},
		{"idle", func() {}, span(9, 10)},
	}
	for _, s := range steps {
		s.do()
		if _, err := p.Trim(ctx); err != nil {
			t.Fatalf("%s: Trim = %v", s.name, err)
		}
		if got := ids(t, rdb, key); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("%s: stream holds %v; want %v", s.name, got, s.want)
		}
	}
}

// readAck is create without the XGROUP CREATE.
func (g group) readAck(t *testing.T, rdb redis.UniversalClient, key string) {
	t.Helper()
	ctx := t.Context()
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: g.name, Consumer: "c", Streams: []string{key, ">"}, Count: g.read, Block: -1,
	}).Err(); err != nil {
		t.Fatalf("XREADGROUP %s: %v", g.name, err)
	}
	if err := rdb.XAck(ctx, key, g.name, g.ack...).Err(); err != nil {
		t.Fatalf("XACK %s: %v", g.name, err)
	}
}

func TestProducerSafeTrimApprox(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	// 1000 entries fill several internal nodes (100 entries each by default),
	// so approximate trimming has whole nodes to drop.
	seed(t, rdb, key, 1000)
	group{name: "g", start: "0", read: 600, ack: span(1, 600)}.create(t, rdb, key)
	group{name: "h", start: "0", read: 500, ack: slices.Delete(span(1, 500), 399, 400)}.create(t, rdb, key) // 400-0 pending
	p := newProducer(t, rdb, key, &stream.ProducerOptions{MaxLen: 10})
	n, err := p.Trim(ctx)
	if err != nil {
		t.Fatalf("Trim = %v", err)
	}
	got := ids(t, rdb, key)
	if n <= 0 || int(n)+len(got) != 1000 {
		t.Errorf("Trim = %d with %d left; want some removed, of 1000", n, len(got))
	}
	if first, _ := stream.ParseID(got[0]); first.Compare(stream.ID{Ms: 400}) > 0 {
		t.Errorf("approximate safe trim left %s first; want at most 400-0 (pending)", got[0])
	}
}

func TestProducerUnsafeTrim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts stream.ProducerOptions
		want []string
	}{
		{"MaxLen", stream.ProducerOptions{MaxLen: 2}, []string{"11-0", "12-0"}},
		{"MinID", stream.ProducerOptions{MinID: "9-0"}, span(9, 12)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb, key, _ := setup(t)
			ctx := t.Context()
			seed(t, rdb, key, 10)
			group{name: "g", start: "0", read: 6, ack: []string{"1-0"}}.create(t, rdb, key) // 2-0..6-0 pending, 7-0.. undelivered
			opts := tt.opts
			opts.UnsafeTrim, opts.ExactTrim = true, true
			p := newProducer(t, rdb, key, &opts)
			if _, err := p.AddEntry(ctx, stream.Entry{ID: "11-0", Values: map[string]any{"f": "v"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.AddEntry(ctx, stream.Entry{ID: "12-0", Values: map[string]any{"f": "v"}}); err != nil {
				t.Fatal(err)
			}
			if got := ids(t, rdb, key); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("after unsafe adds the stream holds %v; want %v (pending and undelivered entries dropped)", got, tt.want)
			}
			// Trim on demand is unsafe too.
			seed2 := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: "13-0", Values: []any{"f", "v"}}).Err()
			if seed2 != nil {
				t.Fatal(seed2)
			}
			if n, err := p.Trim(ctx); err != nil || (tt.opts.MaxLen > 0 && n != 1) {
				t.Errorf("Trim = %d, %v; want 1 for MaxLen, any for MinID", n, err)
			}
		})
	}
}

func TestProducerTrimOffAndMissing(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	tests := []struct {
		name string
		opts *stream.ProducerOptions
	}{
		{"trimming off", nil},
		{"missing stream safe", &stream.ProducerOptions{MaxLen: 1}},
		{"missing stream unsafe", &stream.ProducerOptions{MaxLen: 1, UnsafeTrim: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProducer(t, rdb, key, tt.opts)
			if n, err := p.Trim(ctx); n != 0 || err != nil {
				t.Errorf("Trim = %d, %v; want 0, nil", n, err)
			}
		})
	}
	if n := rdb.Exists(ctx, key).Val(); n != 0 {
		t.Errorf("EXISTS after Trim = %d; want 0", n)
	}
}

func TestProducerTrimErrorsGoToOnError(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	var got []error
	p := newProducer(t, rdb, key, &stream.ProducerOptions{MaxLen: 1, TrimInterval: 1, OnError: func(err error) { got = append(got, err) }})
	// A hook that fails the trim script only: the add still succeeds.
	rdb.AddHook(failEval{})
	if _, err := p.Add(ctx, map[string]any{"f": "v"}); err != nil {
		t.Fatalf("Add with a failing trim = %v; want nil", err)
	}
	if len(got) != 1 || !errors.Is(got[0], errEvalFailed) {
		t.Errorf("OnError got %v; want one error wrapping %v", got, errEvalFailed)
	}
}

var errEvalFailed = errors.New("test: eval failed")

type failEval struct{}

func (failEval) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (failEval) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (failEval) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if c.Name() == "eval" {
				c.SetErr(errEvalFailed)
			}
		}
		return err
	}
}

func TestProducerSafeTrimLargeSequences(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	// Sequences above 2^53, where float64 (Lua's number) cannot tell
	// neighbours apart: the script must compare IDs as digit strings.
	all := []string{"1-0", "1-9007199254740993", "1-9007199254740994", "1-18446744073709551615", "2-0"}
	for _, id := range all {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: id, Values: []any{"f", "v"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	group{name: "g", start: "0", read: 2, ack: []string{"1-0"}}.create(t, rdb, key) // 1-9007199254740993 pending
	p := newProducer(t, rdb, key, &stream.ProducerOptions{MaxLen: 1, ExactTrim: true})
	if _, err := p.Trim(ctx); err != nil {
		t.Fatalf("Trim = %v", err)
	}
	if got := ids(t, rdb, key); !reflect.DeepEqual(got, all[1:]) {
		t.Errorf("after Trim the stream holds %v; want %v", got, all[1:])
	}
}
