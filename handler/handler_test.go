package handler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

func TestChainOrder(t *testing.T) {
	var trace []string
	mw := func(name string) handler.Middleware {
		return func(next handler.Handler) handler.Handler {
			return handler.Func(func(ctx context.Context, m *stream.Message) error {
				trace = append(trace, name+">")
				err := next.Handle(ctx, m)
				trace = append(trace, "<"+name)
				return err
			})
		}
	}
	h := handler.Chain(handler.Func(func(context.Context, *stream.Message) error {
		trace = append(trace, "h")
		return nil
	}), mw("a"), mw("b"))
	if err := h.Handle(context.Background(), &stream.Message{ID: "1-0"}); err != nil {
		t.Fatalf("Handle = %v; want nil", err)
	}
	if got, want := strings.Join(trace, " "), "a> b> h <b <a"; got != want {
		t.Errorf("trace = %q; want %q", got, want)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad address")
	err := handler.Permanent(base)
	if !errors.Is(err, handler.ErrPermanent) || !errors.Is(err, base) {
		t.Errorf("Permanent(base) matches ErrPermanent=%v base=%v; want both", errors.Is(err, handler.ErrPermanent), errors.Is(err, base))
	}
	if err.Error() != "bad address" {
		t.Errorf("Permanent(base).Error() = %q; want %q", err.Error(), "bad address")
	}
	if handler.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	wrapped := fmt.Errorf("send: %w", handler.ErrPermanent)
	if !errors.Is(wrapped, handler.ErrPermanent) {
		t.Error("fmt.Errorf %w ErrPermanent does not match")
	}
}

func TestRecover(t *testing.T) {
	sentinel := errors.New("sentinel")
	tests := []struct {
		name   string
		value  any
		wantIs error
	}{
		{"string", "boom", nil},
		{"error", sentinel, sentinel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := handler.Chain(handler.Func(func(context.Context, *stream.Message) error { panic(tt.value) }), handler.Recover())
			err := h.Handle(context.Background(), &stream.Message{})
			var pe *handler.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("Handle = %v; want *PanicError", err)
			}
			if pe.Value != tt.value || len(pe.Stack) == 0 {
				t.Errorf("PanicError = {%v, %d stack bytes}; want {%v, non-empty}", pe.Value, len(pe.Stack), tt.value)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false; want true", tt.wantIs)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	h := handler.Chain(handler.Func(func(ctx context.Context, _ *stream.Message) error {
		<-ctx.Done()
		return ctx.Err()
	}), handler.Timeout(time.Millisecond))
	if err := h.Handle(context.Background(), &stream.Message{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Handle = %v; want DeadlineExceeded", err)
	}
	var sawDeadline bool
	h = handler.Chain(handler.Func(func(ctx context.Context, _ *stream.Message) error {
		_, sawDeadline = ctx.Deadline()
		return nil
	}), handler.Timeout(0))
	_ = h.Handle(context.Background(), &stream.Message{})
	if sawDeadline {
		t.Error("Timeout(0) set a deadline; want none")
	}
}

type email struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

func TestTyped(t *testing.T) {
	payload, err := stream.Encode(nil, email{To: "a@b.c", Subject: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	str := func(m map[string]any) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			switch v := v.(type) {
			case []byte:
				out[k] = string(v)
			default:
				out[k] = fmt.Sprint(v)
			}
		}
		return out
	}
	tests := []struct {
		name      string
		values    map[string]string
		want      email
		permanent bool
	}{
		{"payload field", str(payload), email{"a@b.c", "hi"}, false},
		{"plain fields", map[string]string{"to": "x@y.z", "subject": "plain"}, email{"x@y.z", "plain"}, false},
		{"corrupt payload", map[string]string{stream.PayloadField: "{not json"}, email{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got email
			h := handler.Typed(nil, func(_ context.Context, _ *stream.Message, v email) error {
				got = v
				return nil
			})
			err := h.Handle(context.Background(), &stream.Message{ID: "1-0", Values: tt.values})
			if tt.permanent {
				if !errors.Is(err, handler.ErrPermanent) || !errors.Is(err, stream.ErrDecode) {
					t.Fatalf("Handle = %v; want ErrPermanent and ErrDecode", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Handle = %v, got %+v; want nil, %+v", err, got, tt.want)
			}
		})
	}
}
