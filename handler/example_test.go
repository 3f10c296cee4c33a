package handler_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

func ExampleFunc() {
	h := handler.Func(func(ctx context.Context, m *stream.Message) error {
		if m.Values["to"] == "" {
			return handler.Permanent(errors.New("no recipient")) // dead-letter at once
		}
		fmt.Println("sending to", m.Values["to"])
		return nil // acknowledge
	})
	// Handlers are plain values: test them with a struct literal.
	_ = h.Handle(context.Background(), &stream.Message{ID: "1-0", Values: map[string]string{"to": "a@example.com"}})
	err := h.Handle(context.Background(), &stream.Message{ID: "2-0", Values: map[string]string{}})
	fmt.Println(errors.Is(err, handler.ErrPermanent))
	// Output:
	// sending to a@example.com
	// true
}

func ExampleChain() {
	logging := func(next handler.Handler) handler.Handler {
		return handler.Func(func(ctx context.Context, m *stream.Message) error {
			err := next.Handle(ctx, m)
			fmt.Println("handled", m.ID, "err:", err)
			return err
		})
	}
	h := handler.Chain(handler.Func(func(ctx context.Context, m *stream.Message) error {
		panic("bug")
	}), logging, handler.Recover(), handler.Timeout(10*time.Second))
	_ = h.Handle(context.Background(), &stream.Message{ID: "1-0"})
	// Output:
	// handled 1-0 err: handler: panic: bug
}

func ExampleTyped() {
	type Email struct {
		To string `json:"to"`
	}
	h := handler.Typed(stream.JSON, func(ctx context.Context, m *stream.Message, e Email) error {
		fmt.Println("to:", e.To)
		return nil
	})
	_ = h.Handle(context.Background(), &stream.Message{ID: "1-0", Values: map[string]string{"payload": `{"to":"a@example.com"}`}})
	// Output:
	// to: a@example.com
}
