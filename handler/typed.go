package handler

import (
	"context"

	"github.com/streamgroup/streamgroup/stream"
)

// Typed returns a Handler that decodes each message's payload into a T with
// codec (nil means [stream.JSON]) and calls fn with it. A payload that cannot
// be decoded is a permanent failure: the returned error wraps both
// [stream.ErrDecode] and [ErrPermanent], so the entry is dead-lettered at once
// instead of being retried.
func Typed[T any](codec stream.Codec, fn func(ctx context.Context, msg *stream.Message, v T) error) Handler {
	return Func(func(ctx context.Context, msg *stream.Message) error {
		var v T
		if err := stream.Decode(msg, codec, &v); err != nil {
			return Permanent(err)
		}
		return fn(ctx, msg, v)
	})
}
