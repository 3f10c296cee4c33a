package stream_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

func newReader(t *testing.T, rdb redis.UniversalClient, key string, pageSize int64) *stream.Reader {
	t.Helper()
	r, err := stream.NewReader(rdb, key, &stream.ReaderOptions{PageSize: pageSize})
	if err != nil {
		t.Fatalf("NewReader = %v", err)
	}
	return r
}

// collect drains seq, failing t on an error.
func collect(t *testing.T, seq func(func(*stream.Message, error) bool)) []string {
	t.Helper()
	got := []string{}
	for m, err := range seq {
		if err != nil {
			t.Fatalf("range yielded error %v", err)
		}
		got = append(got, m.ID)
	}
	return got
}

func TestReaderPaging(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	seed(t, rdb, key, 10)
	rev := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }
	tests := []struct {
		name       string
		start, end string
		pageSize   int64
		want       []string
	}{
		{"all, pages of 3", "-", "+", 3, span(1, 10)},
		{"all, default page", "-", "+", 0, span(1, 10)},
		{"exact pages", "-", "9-0", 3, span(1, 9)},
		{"page of 1", "-", "+", 1, span(1, 10)},
		{"inner range", "3-0", "7-0", 3, span(3, 7)},
		{"ms-only bounds", "3", "7", 3, span(3, 7)},
		{"exclusive start", "(3-0", "+", 3, span(4, 10)},
		{"exclusive end", "-", "(4-0", 3, span(1, 3)},
		{"one entry", "5-0", "5-0", 3, span(5, 5)},
		{"empty range", "7-0", "3-0", 3, []string{}},
		{"beyond the end", "11-0", "+", 3, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReader(t, rdb, key, tt.pageSize)
			if got := collect(t, r.Range(t.Context(), tt.start, tt.end)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Range(%q, %q) = %v; want %v", tt.start, tt.end, got, tt.want)
			}
			if got := collect(t, r.RevRange(t.Context(), tt.end, tt.start)); !reflect.DeepEqual(got, rev(tt.want)) {
				t.Errorf("RevRange(%q, %q) = %v; want %v", tt.end, tt.start, got, rev(tt.want))
			}
		})
	}
}

func TestReaderMessages(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	seed(t, rdb, key, 2)
	r := newReader(t, rdb, key, 0)
	var got []stream.Message
	err := r.Each(t.Context(), "-", "+", func(m *stream.Message) error {
		got = append(got, *m)
		return nil
	})
	want := []stream.Message{
		{ID: "1-0", Stream: key, Values: map[string]string{"n": "1"}},
		{ID: "2-0", Stream: key, Values: map[string]string{"n": "2"}},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Each = %+v, %v; want %+v, nil", got, err, want)
	}
}

// countRanges counts the XRANGE and XREVRANGE commands a client sends.
type countRanges struct{ n *atomic.Int64 }

func (c countRanges) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c countRanges) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "xrange" || n == "xrevrange" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c countRanges) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestReaderEarlyBreak(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	seed(t, rdb, key, 10)
	var calls atomic.Int64
	rdb.AddHook(countRanges{&calls})
	tests := []struct {
		name      string
		reverse   bool
		take      int
		wantCalls int64
	}{
		{"first page", false, 2, 1},
		{"page boundary", false, 3, 1},
		{"second page", false, 4, 2},
		{"reverse second page", true, 5, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			r := newReader(t, rdb, key, 3)
			seq := r.Range(t.Context(), "-", "+")
			if tt.reverse {
				seq = r.RevRange(t.Context(), "+", "-")
			}
			var got []string
			for m, err := range seq {
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, m.ID)
				if len(got) == tt.take {
					break
				}
			}
			if len(got) != tt.take {
				t.Errorf("took %d entries; want %d", len(got), tt.take)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("breaking after %d entries made %d range calls; want %d", tt.take, n, tt.wantCalls)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	if err := rdb.Set(ctx, key, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, missingKey, _ := setup(t)
	tests := []struct {
		name       string
		key        string
		start, end string
		check      func(error) bool
		wantN      int
	}{
		{"missing stream", missingKey, "-", "+", func(err error) bool { return err == nil }, 0},
		{"wrong type", key, "-", "+", rediserr.IsWrongType, 1},
		{"bad start", missingKey, "x", "+", func(err error) bool { return errors.Is(err, stream.ErrInvalidID) }, 1},
		{"bad end", missingKey, "-", "(+", func(err error) bool { return errors.Is(err, stream.ErrInvalidID) }, 1},
		{"cancelled", missingKey, "-", "+", func(err error) bool { return errors.Is(err, context.Canceled) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.name == "cancelled" {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			r := newReader(t, rdb, tt.key, 3)
			n := 0
			var last error
			for m, err := range r.Range(ctx, tt.start, tt.end) {
				n++
				last = err
				if m != nil && err != nil {
					t.Errorf("yielded both %v and %v", m, err)
				}
			}
			if n != tt.wantN || !tt.check(last) {
				t.Errorf("Range yielded %d items, last error %v; want %d, and the error to match", n, last, tt.wantN)
			}
			if err := r.Each(ctx, tt.start, tt.end, func(*stream.Message) error { return nil }); !tt.check(err) {
				t.Errorf("Each = %v; want a matching error", err)
			}
		})
	}
}

func TestReaderEachStops(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	seed(t, rdb, key, 10)
	r := newReader(t, rdb, key, 3)
	stop := errors.New("stop")
	var seen []string
	err := r.Each(t.Context(), "-", "+", func(m *stream.Message) error {
		seen = append(seen, m.ID)
		if len(seen) == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !reflect.DeepEqual(seen, span(1, 4)) {
		t.Errorf("Each = %v after %v; want stop after %v", err, seen, span(1, 4))
	}
}

func TestNewReaderOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	tests := []struct {
		name    string
		opts    *stream.ReaderOptions
		wantErr bool
	}{
		{"nil", nil, false},
		{"zero", &stream.ReaderOptions{}, false},
		{"page 1", &stream.ReaderOptions{PageSize: 1}, false},
		{"negative", &stream.ReaderOptions{PageSize: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := stream.NewReader(rdb, "k", tt.opts)
			if got := errors.Is(err, stream.ErrInvalidOptions); got != tt.wantErr || (r == nil) != tt.wantErr {
				t.Errorf("NewReader(%+v) = %v, %v; want error %v", tt.opts, r, err, tt.wantErr)
			}
		})
	}
}

type stringer struct{}

func (stringer) String() string { return "S" }

func TestFromXMessage(t *testing.T) {
	tests := []struct {
		name   string
		in     redis.XMessage
		want   stream.Message
		wantOK bool
	}{
		{
			name:   "strings",
			in:     redis.XMessage{ID: "1-1", Values: map[string]any{"a": "x", "b": ""}},
			want:   stream.Message{ID: "1-1", Stream: "s", Values: map[string]string{"a": "x", "b": ""}},
			wantOK: true,
		},
		{
			name:   "other types",
			in:     redis.XMessage{ID: "1-2", Values: map[string]any{"b": []byte("y"), "i": int64(42), "s": stringer{}}},
			want:   stream.Message{ID: "1-2", Stream: "s", Values: map[string]string{"b": "y", "i": "42", "s": "S"}},
			wantOK: true,
		},
		{
			name:   "deleted entry",
			in:     redis.XMessage{ID: "1-3"},
			want:   stream.Message{ID: "1-3", Stream: "s"},
			wantOK: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := stream.FromXMessage("s", tt.in)
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("FromXMessage(%+v) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestFromXMessageDeletedPending checks the shape Redis really gives a
// pending entry that was deleted from the stream.
func TestFromXMessageDeletedPending(t *testing.T) {
	t.Parallel()
	rdb, key, _ := setup(t)
	ctx := t.Context()
	seed(t, rdb, key, 2)
	group{name: "g", start: "0", read: 2}.create(t, rdb, key)
	if err := rdb.XDel(ctx, key, "1-0").Err(); err != nil {
		t.Fatal(err)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, "0"}, Block: -1}).Result()
	if err != nil || len(res) != 1 || len(res[0].Messages) != 2 {
		t.Fatalf("XREADGROUP 0 = %v, %v; want the 2 pending entries", res, err)
	}
	for i, wantOK := range []bool{false, true} {
		m, ok := stream.FromXMessage(key, res[0].Messages[i])
		if ok != wantOK || m.ID != span(1, 2)[i] {
			t.Errorf("FromXMessage(%+v) = %+v, %v; want ok %v", res[0].Messages[i], m, ok, wantOK)
		}
	}
}
