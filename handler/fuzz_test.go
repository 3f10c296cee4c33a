package handler_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

// fuzzJob is a payload type with fields of many kinds.
type fuzzJob struct {
	To    string            `json:"to"`
	Tries int               `json:"tries"`
	At    time.Time         `json:"at"`
	Tags  []string          `json:"tags"`
	Meta  map[string]string `json:"meta"`
	Next  *fuzzJob          `json:"next"`
}

// FuzzTyped runs handler.Typed on arbitrary entries (field/value pairs
// separated by NUL bytes): the handler function runs exactly when the
// entry decodes, gets what Decode gives, and its result is returned as is;
// otherwise the error wraps both stream.ErrDecode and handler.ErrPermanent
// (so the entry is dead-lettered, not retried). Nothing panics.
func FuzzTyped(f *testing.F) {
	for _, s := range []string{
		"to\x00a@b.c\x00tries\x003",
		"payload\x00{\"to\":\"a@b.c\",\"tries\":2,\"tags\":[\"x\"],\"next\":{\"to\":\"y\"}}",
		"payload\x00{not json",
		"payload\x00{\"at\":\"tomorrow\"}",
		"payload\x00null",
		"payload\x00[]",
		"to\x00\xff\xfe",
		"",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, raw []byte, fail bool) {
		values := map[string]string{}
		parts := bytes.Split(raw, []byte{0})
		for i := 0; i+1 < len(parts); i += 2 {
			values[string(parts[i])] = string(parts[i+1])
		}
		msg := &stream.Message{ID: "1-0", Stream: "s", Values: values}
		var want fuzzJob
		decodeErr := stream.Decode(msg, nil, &want)
		fnErr := errors.New("handler failed")
		called := false
		h := handler.Typed(nil, func(_ context.Context, m *stream.Message, v fuzzJob) error {
			called = true
			if m != msg {
				t.Fatalf("Typed passed message %p; want %p", m, msg)
			}
			if !equalJobs(v, want) {
				t.Fatalf("Typed decoded %+v; Decode gives %+v", v, want)
			}
			if fail {
				return fnErr
			}
			return nil
		})
		err := handler.Chain(h, handler.Recover()).Handle(context.Background(), msg)
		if _, isPanic := errors.AsType[*handler.PanicError](err); isPanic {
			t.Fatalf("Typed panicked: %v", err)
		}
		if decodeErr != nil {
			if called || !errors.Is(err, stream.ErrDecode) || !errors.Is(err, handler.ErrPermanent) {
				t.Fatalf("Handle(undecodable %q) = %v, called %v; want ErrDecode and ErrPermanent without a call", values, err, called)
			}
			if !strings.Contains(err.Error(), decodeErr.Error()) {
				t.Fatalf("Handle error %q lost the decode error %q", err, decodeErr)
			}
			return
		}
		switch {
		case !called:
			t.Fatalf("Handle(%q) = %v without calling the function", values, err)
		case fail && err != fnErr:
			t.Fatalf("Handle = %v; want the function's error as is", err)
		case !fail && err != nil:
			t.Fatalf("Handle = %v; want nil", err)
		}
	})
}

func equalJobs(a, b fuzzJob) bool {
	if a.To != b.To || a.Tries != b.Tries || !a.At.Equal(b.At) || len(a.Tags) != len(b.Tags) || len(a.Meta) != len(b.Meta) || (a.Next == nil) != (b.Next == nil) {
		return false
	}
	for i := range a.Tags {
		if a.Tags[i] != b.Tags[i] {
			return false
		}
	}
	for k, v := range a.Meta {
		if w, ok := b.Meta[k]; !ok || w != v {
			return false
		}
	}
	return a.Next == nil || equalJobs(*a.Next, *b.Next)
}

// FuzzPanicError recovers panics with arbitrary values: a *PanicError with
// the value, a stack, and the error's text and chain intact.
func FuzzPanicError(f *testing.F) {
	f.Add("nil map write", false)
	f.Add("", true)
	f.Add("\xff", true)
	f.Fuzz(func(t *testing.T, s string, asError bool) {
		var v any = s
		if asError {
			v = errors.New(s)
		}
		h := handler.Chain(handler.Func(func(context.Context, *stream.Message) error { panic(v) }), handler.Recover())
		err := h.Handle(context.Background(), &stream.Message{})
		pe, ok := errors.AsType[*handler.PanicError](err)
		if !ok || pe.Value != v || len(pe.Stack) == 0 || !strings.Contains(err.Error(), s) {
			t.Fatalf("Handle after panic(%#v) = %v; want a *PanicError with the value and a stack", v, err)
		}
		if asError && !errors.Is(err, v.(error)) {
			t.Fatalf("PanicError of an error does not unwrap to it: %v", err)
		}
	})
}
