package inspect

import (
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/internal/argerr"
	"github.com/streamgroup/streamgroup/internal/batcherr"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/queue"
)

// Errors a caller can act on, matched with errors.Is. They are the values
// packages group and queue return for the same conditions.
var (
	// ErrInvalidOptions is wrapped by the error [New] returns for a nil
	// client or invalid [Options], and by the error of a call given an
	// empty key or group name.
	ErrInvalidOptions = argerr.ErrInvalid
	// ErrNoGroup is wrapped by the error of a [StreamTarget] that names a
	// group the stream does not have, or names groups of a stream that
	// does not exist.
	ErrNoGroup = group.ErrNoGroup
	// ErrNotStream is wrapped by the error of a [StreamTarget] whose stream
	// or dead-letter stream key holds another type; the error names the key.
	ErrNotStream = group.ErrNotStream
	// ErrNotList is wrapped by the error of a [QueueTarget] whose queue,
	// processing list or dead-letter list key holds another type; the
	// error names the key.
	ErrNotList = queue.ErrNotList
)

// DefaultLagCountLimit is the default of [Options.LagCountLimit].
const DefaultLagCountLimit = 1000

// Options configures an [Inspector]. A nil *Options means all defaults; the
// zero value of each field means its default. [New] copies it.
type Options struct {
	// LagCountLimit caps how many entries one group's lag count reads
	// (XRANGE ... COUNT), when Redis does not report the lag and it cannot
	// be had otherwise (see [GroupState.Lag]). Beyond the cap the lag is
	// an estimate. Zero means [DefaultLagCountLimit]; it must not be
	// negative.
	LagCountLimit int64
}

// Inspector reads, from Redis, the state of streams, consumer groups and
// list queues: read-only calls that return plain values. It is safe for
// concurrent use and never closes the client it was given. The zero value
// is not usable; call [New].
type Inspector struct {
	rdb        redis.UniversalClient
	countLimit int64
}

// New returns an Inspector reading through rdb. It returns an error
// wrapping [ErrInvalidOptions] when rdb is nil or opts is invalid.
func New(rdb redis.UniversalClient, opts *Options) (*Inspector, error) {
	if err := argerr.Client(rdb); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LagCountLimit < 0 {
		return nil, fmt.Errorf("%w: negative LagCountLimit %d", ErrInvalidOptions, o.LagCountLimit)
	}
	if o.LagCountLimit == 0 {
		o.LagCountLimit = DefaultLagCountLimit
	}
	return &Inspector{rdb: rdb, countLimit: o.LagCountLimit}, nil
}

// BatchError reports the targets of a [Inspector.Streams] or
// [Inspector.Queues] call that could not be read. It matches, with
// errors.Is and errors.As, every error it holds.
type BatchError struct {
	// Errs has one element per target, in order: nil for a target that was
	// read. Each error names its target's key.
	Errs []error
}

// Error reports how many targets failed and the first failure.
func (e *BatchError) Error() string {
	n, first := batcherr.Failed(e.Errs)
	if first < 0 {
		return "inspect: no target failed"
	}
	return fmt.Sprintf("inspect: %d of %d targets not read; target %d: %v", n, len(e.Errs), first, e.Errs[first])
}

// Unwrap returns the non-nil errors of Errs.
func (e *BatchError) Unwrap() []error { return batcherr.NonNil(e.Errs) }

// batchErr returns a *BatchError holding errs, or nil when none failed.
func batchErr(errs []error) error {
	if n, _ := batcherr.Failed(errs); n == 0 {
		return nil
	}
	return &BatchError{Errs: errs}
}

// one returns the error of a one-target call: the target's own error, not
// a *BatchError.
func one(err error) error {
	if be, ok := err.(*BatchError); ok {
		return be.Errs[0]
	}
	return err
}

// cmdErr describes the failed cmd, run on key for the target of a kind
// ("stream", "queue") named target: "inspect: stream "s": XLEN "s:dead": ...".
func cmdErr(kind, target, key string, cmd redis.Cmder) error {
	return fmt.Errorf("inspect: %s %q: %s %q: %w", kind, target, rediserr.CmdName(cmd), key, cmd.Err())
}
