// Package handler defines how a consumer hands a message to application
// code: the one-method [Handler] interface, the [Func] adapter, [Middleware]
// and [Chain], built-in middleware ([Recover], [Timeout]), and [Typed], which
// decodes a typed payload before calling a function.
//
// The outcome of a message is the error its handler returns: nil
// acknowledges it, an error leaves it pending for a retry with backoff, and
// an error wrapping [ErrPermanent] (or a payload [Typed] cannot decode) sends
// it to the dead-letter stream at once. A panic becomes a *[PanicError] and
// takes the error path.
//
// Delivery is at least once: a message can be handled more than once (after
// a crash, a retry, or a reclaim from a stalled consumer), so handlers must
// be idempotent. Handlers are called concurrently and must be safe for it.
// The same Handler runs on any consumer of this module.
package handler
