package group_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

// optionsValid is the documented validity of consumer options (see
// group.Options), written independently of the implementation: names must
// not be empty, no value may be negative, and the documented minimums and
// relations hold for the values in effect after defaults.
func optionsValid(streamKey, grp, consumer string, o group.Options) bool {
	if streamKey == "" || grp == "" || consumer == "" {
		return false
	}
	for _, v := range []int64{int64(o.Concurrency), int64(o.Prefetch), o.MaxBytes, int64(o.Block), o.MaxDeliveries, int64(o.MinIdle),
		int64(o.RetryBackoff), int64(o.MaxRetryBackoff), int64(o.DrainTimeout)} {
		if v < 0 {
			return false
		}
	}
	if o.GroupStart != "" && o.GroupStart != "$" {
		if _, err := stream.ParseID(o.GroupStart); err != nil {
			return false
		}
	}
	if o.Block != 0 && o.Block < time.Millisecond {
		return false
	}
	dead := o.DeadLetterStream
	if dead == "" {
		dead = stream.DeadLetterKey(streamKey)
	}
	if dead == streamKey {
		return false
	}
	minIdle := o.MinIdle
	if minIdle == 0 {
		minIdle = 30 * time.Second
	}
	if minIdle < 10*time.Millisecond {
		return false
	}
	retry := o.RetryBackoff
	if retry == 0 {
		retry = 5 * time.Second
	}
	if o.MaxRetryBackoff != 0 && o.MaxRetryBackoff < retry {
		return false
	}
	return true
}

// maxFuzzSlots bounds the fuzzed Concurrency and Prefetch: a consumer
// allocates its queue at construction, so values near math.MaxInt are
// exercised by TestNewConsumerHugeConcurrency instead.
const maxFuzzSlots = 1 << 16

// FuzzConsumerOptions constructs consumers and reclaimers with fuzzed
// names and options: never a panic; an error exactly for the documented
// invalid values, wrapping ErrInvalidOptions; both constructors agree; and
// the caller's options are left as they were.
func FuzzConsumerOptions(f *testing.F) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // constructors do no I/O
	f.Cleanup(func() { _ = rdb.Close() })
	h := handler.Func(func(context.Context, *stream.Message) error { return nil })
	ms := int64(time.Millisecond)
	type seed struct {
		stream, grp, consumer, start, dead string
		conc, prefetch                     int
		maxBytes, maxDeliveries            int64
		block, minIdle, retry, maxRetr     int64
		drain                              int64
		disable                            bool
	}
	for _, s := range []seed{
		{stream: "jobs", grp: "g", consumer: "c"},
		{stream: "jobs", grp: "g", consumer: "c", start: "$", conc: 8, prefetch: 8, block: 200 * ms, minIdle: 500 * ms, retry: 20 * ms, maxRetr: 100 * ms},
		{stream: "jobs", grp: "g", consumer: "c", start: "1526919030474-55", minIdle: 10 * ms},
		{stream: "jobs", grp: "g", consumer: "c", minIdle: 9 * ms},
		{stream: "jobs", grp: "g", consumer: "c", block: ms - 1},
		{stream: "jobs", grp: "g", consumer: "c", retry: int64(time.Hour), maxRetr: int64(time.Minute)},
		{stream: "jobs", grp: "g", consumer: "c", retry: int64(time.Minute)},
		{stream: "jobs", grp: "g", consumer: "c", dead: "jobs"},
		{stream: "jobs", grp: "g", consumer: "c", start: ">"},
		{stream: "jobs", grp: "g", consumer: "c", conc: -1, maxDeliveries: -1},
		{stream: "jobs", grp: "g", consumer: "c", maxBytes: -1},
		{stream: "", grp: "g", consumer: "c"},
		{stream: "jobs", grp: "", consumer: ""},
		{stream: "jobs", grp: "g", consumer: "c", minIdle: math.MaxInt64, retry: math.MaxInt64, drain: math.MaxInt64, block: math.MaxInt64, maxBytes: math.MaxInt64},
		{stream: "jobs", grp: "g", consumer: "c", conc: maxFuzzSlots, prefetch: maxFuzzSlots, maxDeliveries: math.MaxInt64, disable: true},
	} {
		f.Add(s.stream, s.grp, s.consumer, s.start, s.dead, s.conc, s.prefetch, s.maxBytes, s.maxDeliveries,
			s.block, s.minIdle, s.retry, s.maxRetr, s.drain, s.disable)
	}
	f.Fuzz(func(t *testing.T, streamKey, grp, consumer, start, dead string, conc, prefetch int, maxBytes, maxDeliveries int64,
		block, minIdle, retry, maxRetry, drain int64, disable bool) {
		if conc > maxFuzzSlots || prefetch > maxFuzzSlots {
			t.Skip("Concurrency and Prefetch above 1<<16 are covered by TestNewConsumerHugeConcurrency")
		}
		opts := &group.Options{
			Concurrency: conc, Prefetch: prefetch, MaxBytes: maxBytes, GroupStart: start, Block: time.Duration(block), MaxDeliveries: maxDeliveries,
			DeadLetterStream: dead, MinIdle: time.Duration(minIdle), DisableReclaim: disable,
			RetryBackoff: time.Duration(retry), MaxRetryBackoff: time.Duration(maxRetry), DrainTimeout: time.Duration(drain),
		}
		before := *opts
		valid := optionsValid(streamKey, grp, consumer, before)

		c, err := group.NewConsumer(rdb, streamKey, grp, consumer, h, opts)
		if !reflect.DeepEqual(*opts, before) {
			t.Fatalf("NewConsumer changed the caller's options: %+v; was %+v", *opts, before)
		}
		switch {
		case valid && (err != nil || c == nil):
			t.Fatalf("NewConsumer(%q, %q, %q, %+v) = %v; want a consumer", streamKey, grp, consumer, before, err)
		case !valid && (err == nil || c != nil):
			t.Fatalf("NewConsumer(%q, %q, %q, %+v) = nil error; want ErrInvalidOptions", streamKey, grp, consumer, before)
		case !valid && !errors.Is(err, group.ErrInvalidOptions):
			t.Fatalf("NewConsumer error %v does not wrap ErrInvalidOptions", err)
		}
		if c != nil {
			if s := c.Stats(); s != (group.Stats{}) {
				t.Fatalf("new consumer's Stats = %+v; want zero", s)
			}
		}

		r, rerr := claim.NewReclaimer(rdb, streamKey, grp, consumer, h, &claim.Options{
			MinIdle: opts.MinIdle, Concurrency: opts.Concurrency, MaxBytes: opts.MaxBytes, GroupStart: opts.GroupStart,
			MaxDeliveries: opts.MaxDeliveries, DeadLetterStream: opts.DeadLetterStream, RetryBackoff: opts.RetryBackoff,
			MaxRetryBackoff: opts.MaxRetryBackoff, DrainTimeout: opts.DrainTimeout,
		})
		// The reclaimer has no Prefetch and no Block: it may accept what
		// the consumer refused for those alone.
		if !valid && rerr == nil && (prefetch >= 0 && (block >= int64(time.Millisecond) || block == 0)) {
			t.Fatalf("NewReclaimer accepted options NewConsumer refused: %v", err)
		}
		if valid && (rerr != nil || r == nil) {
			t.Fatalf("NewReclaimer = %v, NewConsumer = %v; want them to agree on the same options", rerr, err)
		}
		if rerr != nil && !errors.Is(rerr, group.ErrInvalidOptions) {
			t.Fatalf("NewReclaimer error %v does not wrap ErrInvalidOptions", rerr)
		}
	})
}

// TestNewConsumerHugeConcurrency: option values far beyond any real
// deployment must give ErrInvalidOptions (or a consumer), never a panic or
// an allocation that takes the process down.
func TestNewConsumerHugeConcurrency(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	h := handler.Func(func(context.Context, *stream.Message) error { return nil })
	tests := []struct {
		name string
		opts group.Options
	}{
		{"MaxInt concurrency", group.Options{Concurrency: math.MaxInt}},
		{"MaxInt prefetch", group.Options{Concurrency: 1, Prefetch: math.MaxInt}},
		{"sum overflows", group.Options{Concurrency: math.MaxInt / 2, Prefetch: math.MaxInt/2 + 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("NewConsumer(%+v) panicked: %v; want ErrInvalidOptions", tt.opts, v)
				}
			}()
			c, err := group.NewConsumer(rdb, "jobs", "g", "c", h, &tt.opts)
			if err == nil || c != nil || !errors.Is(err, group.ErrInvalidOptions) {
				t.Errorf("NewConsumer(%+v) = %v, %v; want ErrInvalidOptions", tt.opts, c, err)
			}
		})
	}
}
