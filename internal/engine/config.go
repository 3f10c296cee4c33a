package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/argerr"
)

// Sentinels re-exported by the public packages, so that errors.Is matches
// them whichever consumer returned the error.
var (
	ErrInvalidOptions = argerr.ErrInvalid
	ErrDrainTimeout   = errors.New("streamgroup: drain timeout exceeded")
	ErrAlreadyRun     = errors.New("streamgroup: Run called more than once")
	// ErrLeaseLost is the cause of a handler context cancelled because
	// another consumer took the job over while the handler ran (see
	// context.Cause). Its result is then not settled.
	ErrLeaseLost = handler.ErrLeaseLost
)

// Defaults shared by every consumer kind. The public options document the
// same values.
const (
	DefaultConcurrency     = 10
	MaxConcurrency         = 1 << 16
	DefaultMaxDeliveries   = 5
	DefaultRetryBackoff    = 5 * time.Second
	DefaultMaxRetryBackoff = 10 * time.Minute
	DefaultDrainTimeout    = 30 * time.Second
	// DefaultMaxBytes bounds the bytes of job fields a consumer holds in
	// memory (in handlers, fetched ahead, waiting for a retry).
	DefaultMaxBytes = 64 << 20
	// MaxAdaptivePrefetch caps the prefetch a consumer sizes itself when
	// Prefetch is zero.
	MaxAdaptivePrefetch = 1024

	// Settling is batched: a batch goes out when it holds settleBatch
	// jobs, else settleInterval after its first job finished. Finished jobs
	// not settled yet are what a crash runs twice: settleInterval keeps
	// that window short without a round trip per job.
	settleInterval = 20 * time.Millisecond
	settleBatch    = 256
	// SettleTimeout bounds each settling call made outside the Run
	// context: the final flush of acknowledgements, dead-lettering,
	// hand-back at shutdown.
	SettleTimeout = 10 * time.Second
	maxErrorText  = 2048
	// batchMax is the most jobs in one Redeliver or Release call, so that
	// no single script keeps Redis busy for long.
	batchMax = 100
)

// Config is what the engine needs besides its source. The public packages
// fill it from their options; Normalize fills defaults and checks it.
type Config struct {
	Handler handler.Handler

	Concurrency     int
	Prefetch        int // 0: adaptive
	MaxBytes        int64
	MaxDeliveries   int64
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	DrainTimeout    time.Duration

	// Logger already carries the consumer's attributes (stream, queue,
	// consumer); nil discards.
	Logger  *slog.Logger
	OnError func(error)
	// Prefix starts the errors the engine reports: "group", "queue".
	Prefix string
	// Noun names a job in logs and errors: "entry", "job".
	Noun string
	// Hook, when not nil, is told about each handler call (Start, End)
	// and about the consumer's events; nil costs one nil check per event.
	Hook hook.Consumer
	// Name names the consumer in its health.Status.
	Name string
	// FetchWait is the longest a fetch blocks waiting for work (Block,
	// PollInterval); 0 for none. A fetch or sweep in flight for longer
	// than FetchWait plus health.WedgedAfter makes the consumer Wedged.
	FetchWait time.Duration

	adaptive bool // Prefetch was zero
}

// Invalid returns an error wrapping ErrInvalidOptions.
func Invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
}

// Normalize fills defaults and validates. It returns a copy.
func (c Config) Normalize() (Config, error) {
	if c.Handler == nil {
		return c, Invalid("nil handler")
	}
	for _, ck := range []struct {
		bad  bool
		name string
	}{
		{c.Concurrency < 0, "Concurrency"},
		{c.Prefetch < 0, "Prefetch"},
		{c.MaxBytes < 0, "MaxBytes"},
		{c.MaxDeliveries < 0, "MaxDeliveries"},
		{c.RetryBackoff < 0, "RetryBackoff"},
		{c.MaxRetryBackoff < 0, "MaxRetryBackoff"},
		{c.DrainTimeout < 0, "DrainTimeout"},
	} {
		if ck.bad {
			return c, Invalid("%s must not be negative", ck.name)
		}
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Prefetch == 0 {
		c.adaptive = true
		c.Prefetch = max(c.Concurrency, MaxAdaptivePrefetch)
	}
	if c.Concurrency > MaxConcurrency || c.Prefetch > MaxConcurrency {
		return c, Invalid("Concurrency %d and Prefetch %d must each be at most %d", c.Concurrency, c.Prefetch, MaxConcurrency)
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = max(DefaultMaxRetryBackoff, c.RetryBackoff)
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		return c, Invalid("MaxRetryBackoff %v is below RetryBackoff %v", c.MaxRetryBackoff, c.RetryBackoff)
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Prefix == "" {
		c.Prefix = "engine"
	}
	if c.Noun == "" {
		c.Noun = "job"
	}
	return c, nil
}
