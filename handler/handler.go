package handler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/streamgroup/streamgroup/stream"
)

// Handler processes one message. The outcome is the returned error:
//
//   - nil acknowledges the entry (XACK);
//   - an error leaves the entry pending, to be retried with backoff until the
//     consumer group's delivery limit, then dead-lettered;
//   - an error wrapping [ErrPermanent] is dead-lettered at once.
//
// Delivery is at least once: Handle may see the same entry more than once
// (after a crash, a lost lease or a retry), so its effects must be idempotent.
// Handle must not keep msg, or ctx, after it returns: a consumer reuses
// both for its next job.
type Handler interface {
	Handle(ctx context.Context, msg *stream.Message) error
}

// Func adapts an ordinary function to a [Handler].
type Func func(ctx context.Context, msg *stream.Message) error

// Handle calls f(ctx, msg).
func (f Func) Handle(ctx context.Context, msg *stream.Message) error { return f(ctx, msg) }

// Middleware wraps a Handler with behaviour of its own.
type Middleware func(Handler) Handler

// Chain wraps h with mw. The first middleware listed is the outermost: it
// sees the message first and the result last.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// ErrPermanent marks a failure that retrying cannot fix. A handler returns an
// error wrapping it (fmt.Errorf("bad address: %w", handler.ErrPermanent), or
// [Permanent]) to send the entry to the dead-letter stream at once.
var ErrPermanent = errors.New("handler: permanent failure")

// ErrLeaseLost is the cause (context.Cause) of a handler's context
// cancelled because another consumer took its job over while it ran: this
// consumer stalled past the group's MinIdle, or a list consumer's heartbeat
// expired and its jobs were recovered. The other consumer runs the job
// again; whatever this handler returns is ignored (not acknowledged, not
// retried), so it should stop and return.
var ErrLeaseLost = errors.New("handler: job taken over by another consumer")

// Permanent wraps err so that it matches [ErrPermanent] while keeping err's
// text and its own error chain. Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// PanicError is the error a recovered handler panic becomes. It follows the
// ordinary failure path (retry, then dead letter).
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine's stack at the time of the panic.
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("handler: panic: %v", e.Value) }

// Unwrap returns Value when it is an error, so errors.Is and errors.As see
// through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// Recover returns a middleware that turns a panic in the next handler into a
// *[PanicError]. Consumers always recover panics themselves; Recover is for
// handlers used elsewhere, or to see the PanicError inside other middleware.
func Recover() Middleware {
	return func(next Handler) Handler {
		return Func(func(ctx context.Context, msg *stream.Message) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = &PanicError{Value: v, Stack: debug.Stack()}
				}
			}()
			return next.Handle(ctx, msg)
		})
	}
}

// Timeout returns a middleware that gives each call of the next handler a
// context that ends after d. The handler must watch ctx for this to take
// effect; a handler that ignores ctx runs on. A d of zero or less leaves
// the context as it is.
func Timeout(d time.Duration) Middleware {
	return func(next Handler) Handler {
		if d <= 0 {
			return next
		}
		return Func(func(ctx context.Context, msg *stream.Message) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next.Handle(ctx, msg)
		})
	}
}
