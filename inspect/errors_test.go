package inspect_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/streamgroup/streamgroup/inspect"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

func TestNew(t *testing.T) {
	rdb := redistest.Client(t)
	if _, err := inspect.New(nil, nil); !errors.Is(err, inspect.ErrInvalidOptions) {
		t.Errorf("New(nil) = %v; want ErrInvalidOptions", err)
	}
	if _, err := inspect.New(rdb, &inspect.Options{LagCountLimit: -1}); !errors.Is(err, inspect.ErrInvalidOptions) {
		t.Errorf("New(LagCountLimit -1) = %v; want ErrInvalidOptions", err)
	}
}

// TestStreamsErrors reads a batch in which some targets cannot be read:
// each gets its own error, naming its key, and the others their state.
func TestStreamsErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	key := streamKey(t, rdb)
	addN(t, rdb, key, 3)
	do(t, rdb, "XGROUP", "CREATE", key, "g", "0")
	missing, list, str := key+":missing", key+":list", key+":string"
	do(t, rdb, "LPUSH", list, "x")
	do(t, rdb, "SET", str, "x")

	tests := []struct {
		target inspect.StreamTarget
		is     error  // nil: no error
		says   string // in the error
	}{
		{target: inspect.StreamTarget{Stream: key}},
		{target: inspect.StreamTarget{Stream: missing}},
		{inspect.StreamTarget{Stream: missing, Groups: []string{"g"}}, inspect.ErrNoGroup, `inspect: stream "` + missing + `": group: no such consumer group "g" (no such key)`},
		{inspect.StreamTarget{Stream: key, Groups: []string{"g", "nope"}}, inspect.ErrNoGroup, `inspect: stream "` + key + `": group: no such consumer group "nope"`},
		{inspect.StreamTarget{Stream: list}, inspect.ErrNotStream, `inspect: stream "` + list + `": group: key is not a stream: it holds a list`},
		{inspect.StreamTarget{Stream: key, DeadLetterStream: str}, inspect.ErrNotStream, `inspect: stream "` + key + `": dead-letter stream "` + str + `": group: key is not a stream: WRONGTYPE`},
	}
	targets := make([]inspect.StreamTarget, len(tests))
	for i, tt := range tests {
		targets[i] = tt.target
	}
	in := newInspector(t, rdb, nil)
	states, err := in.Streams(ctx, targets)
	var be *inspect.BatchError
	if !errors.As(err, &be) || len(be.Errs) != len(tests) || len(states) != len(tests) {
		t.Fatalf("Streams = %d states, %v; want %d states and a *BatchError with one error per target", len(states), err, len(tests))
	}
	if !strings.HasPrefix(err.Error(), "inspect: 4 of 6 targets not read; target 2: ") {
		t.Errorf("error = %q; want it to count 4 of 6 and show target 2", err)
	}
	for i, tt := range tests {
		got := be.Errs[i]
		switch {
		case tt.is == nil && got != nil:
			t.Errorf("target %d: error %v; want nil", i, got)
		case tt.is != nil && (!errors.Is(got, tt.is) || !strings.HasPrefix(got.Error(), tt.says)):
			t.Errorf("target %d: error %v; want %v, starting %q", i, got, tt.is, tt.says)
		case tt.is != nil && !errors.Is(err, tt.is):
			t.Errorf("the batch error does not match %v", tt.is)
		}
		dead := tt.target.DeadLetterStream
		if dead == "" {
			dead = stream.DeadLetterKey(tt.target.Stream)
		}
		if tt.is != nil {
			if want := (inspect.StreamState{Stream: tt.target.Stream, DeadLetterStream: dead}); !streamStatesEqual(states[i], want) {
				t.Errorf("target %d: state %+v; want only the keys %+v", i, states[i], want)
			}
		}
	}
	if st := states[0]; !st.Exists || st.Length != 3 || len(st.Groups) != 1 || st.Groups[0].Lag != 3 {
		t.Errorf("good target = %+v; want length 3, group g with lag 3", st)
	}
	if st := states[1]; st.Exists || st.Length != 0 || st.Groups != nil || st.DeadLetterStream != stream.DeadLetterKey(missing) || st.At.IsZero() {
		t.Errorf("missing stream = %+v; want it not to exist, and nothing else but its keys and At", st)
	}

	// One target: its own error, not a *BatchError.
	if _, err := in.Stream(ctx, tests[3].target); !errors.Is(err, inspect.ErrNoGroup) || errors.As(err, &be) {
		t.Errorf("Stream = %v (%T); want the target's error wrapping ErrNoGroup", err, err)
	}
	// Bad input fails the call, before any round trip.
	for _, bad := range [][]inspect.StreamTarget{{{Stream: key}, {}}, {{Stream: key, Groups: []string{""}}}} {
		if states, err := in.Streams(ctx, bad); !errors.Is(err, inspect.ErrInvalidOptions) || states != nil {
			t.Errorf("Streams(%+v) = %v, %v; want nil, ErrInvalidOptions", bad, states, err)
		}
	}
	if states, err := in.Streams(ctx, nil); states != nil || err != nil {
		t.Errorf("Streams(nil) = %v, %v; want nil, nil", states, err)
	}
}

func streamStatesEqual(a, b inspect.StreamState) bool {
	return a.Stream == b.Stream && a.DeadLetterStream == b.DeadLetterStream && a.Exists == b.Exists && a.Length == b.Length &&
		a.DeadLetters == b.DeadLetters && a.Groups == nil && b.Groups == nil && a.At.Equal(b.At) && a.FirstID == b.FirstID
}

// TestQueuesErrors: a key of the wrong type among a queue's keys fails that
// target only, with an error naming the key.
func TestQueuesErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	base := queueKey(t, rdb)
	good, notList, badDead, badProc, badReg := base+":good", base+":str", base+":dead", base+":proc", base+":reg"
	str := base + ":a-string"
	do(t, rdb, "SET", str, "x")
	do(t, rdb, "SET", notList, "x")
	do(t, rdb, "LPUSH", good, "job")
	do(t, rdb, "SADD", queue.ConsumersKey(badProc), "c")
	do(t, rdb, "SET", queue.ProcessingKey(badProc, "c"), "x")
	do(t, rdb, "SET", queue.ConsumersKey(badReg), "x")

	tests := []struct {
		target inspect.QueueTarget
		is     error
		says   string
	}{
		{target: inspect.QueueTarget{Queue: good}},
		{inspect.QueueTarget{Queue: notList}, inspect.ErrNotList, `inspect: queue "` + notList + `": queue: key is not a list: WRONGTYPE`},
		{inspect.QueueTarget{Queue: badDead, DeadLetterList: str}, inspect.ErrNotList, `inspect: queue "` + badDead + `": dead-letter list "` + str + `": queue: key is not a list: WRONGTYPE`},
		{inspect.QueueTarget{Queue: badProc}, inspect.ErrNotList, `inspect: queue "` + badProc + `": processing list of consumer "c" "` + queue.ProcessingKey(badProc, "c") + `": queue: key is not a list`},
		{inspect.QueueTarget{Queue: badReg}, nil, `inspect: queue "` + badReg + `": SMEMBERS "` + queue.ConsumersKey(badReg) + `": WRONGTYPE`},
	}
	targets := make([]inspect.QueueTarget, len(tests))
	for i, tt := range tests {
		targets[i] = tt.target
	}
	states, err := newInspector(t, rdb, nil).Queues(ctx, targets)
	var be *inspect.BatchError
	if !errors.As(err, &be) || len(be.Errs) != len(tests) || len(states) != len(tests) {
		t.Fatalf("Queues = %d states, %v; want %d states and a *BatchError with one error per target", len(states), err, len(tests))
	}
	for i, tt := range tests {
		got := be.Errs[i]
		switch {
		case tt.says == "" && got != nil:
			t.Errorf("target %d: error %v; want nil", i, got)
		case tt.says != "" && (got == nil || !strings.HasPrefix(got.Error(), tt.says)):
			t.Errorf("target %d: error %v; want one starting %q", i, got, tt.says)
		case tt.is != nil && !errors.Is(got, tt.is):
			t.Errorf("target %d: error %v; want %v", i, got, tt.is)
		}
	}
	if st := states[0]; st.Length != 1 || st.Queue != good {
		t.Errorf("good queue = %+v; want length 1", st)
	}
	if st := states[3]; st.Queue != badProc || st.DeadLetterList != queue.DeadLetterKey(badProc) || st.Consumers != nil || st.Length != 0 {
		t.Errorf("failed queue = %+v; want only its keys", st)
	}
	if states, err := newInspector(t, rdb, nil).Queues(ctx, []inspect.QueueTarget{{}}); !errors.Is(err, inspect.ErrInvalidOptions) || states != nil {
		t.Errorf("Queues(empty key) = %v, %v; want nil, ErrInvalidOptions", states, err)
	}
}
