// Package publish tells a producer's hook about each publish: the one
// sequence of hook calls that stream.Producer and queue.Producer share.
package publish

import (
	"context"

	"github.com/streamgroup/streamgroup/hook"
)

// one is the hook.Publish of a single add and its one ID, in one
// allocation.
type one struct {
	pub hook.Publish
	ids [1]string
}

// One runs send, which publishes one entry with the fields a hook added
// (name, value, ...), between h's Publish and Published. With h nil it
// only runs send, with no fields.
func One(ctx context.Context, h hook.Producer, send func(ctx context.Context, fields []string) (string, error)) (string, error) {
	if h == nil {
		return send(ctx, nil)
	}
	o := &one{pub: hook.Publish{Count: 1}}
	hctx := h.Publish(ctx, &o.pub)
	id, err := send(hctx, o.pub.Fields())
	o.ids[0] = id
	o.pub.IDs, o.pub.Err = o.ids[:], err
	h.Published(hctx, &o.pub)
	return id, err
}

// Batch is One for a publish of n entries at once.
func Batch(ctx context.Context, h hook.Producer, n int, send func(ctx context.Context, fields []string) ([]string, error)) ([]string, error) {
	if h == nil {
		return send(ctx, nil)
	}
	pub := &hook.Publish{Count: n}
	hctx := h.Publish(ctx, pub)
	ids, err := send(hctx, pub.Fields())
	pub.IDs, pub.Err = ids, err
	h.Published(hctx, pub)
	return ids, err
}

// Failed tells h (if any) about a publish of one entry that failed with
// err before anything was sent (its payload did not encode).
func Failed(ctx context.Context, h hook.Producer, err error) {
	if h == nil {
		return
	}
	_, _ = One(ctx, h, func(context.Context, []string) (string, error) { return "", err })
}
