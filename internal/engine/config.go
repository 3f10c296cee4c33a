package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/argerr"
	"github.com/streamgroup/streamgroup/internal/keys"
	"github.com/streamgroup/streamgroup/stream"
)

// Sentinels re-exported by the public packages.
var (
	ErrInvalidOptions = argerr.ErrInvalid
	ErrDrainTimeout   = errors.New("group: drain timeout exceeded")
	ErrAlreadyRun     = errors.New("group: Run called more than once")
	ErrNotStream      = errors.New("group: key is not a stream")
	// ErrConsumerNameInUse: a live consumer of the group already runs
	// under this consumer name.
	ErrConsumerNameInUse = errors.New("group: consumer name in use by a running consumer")
)

// Defaults. The public Options document the same values.
const (
	DefaultConcurrency     = 10
	MaxConcurrency         = 1 << 16
	DefaultBlock           = 2 * time.Second
	DefaultMaxDeliveries   = 5
	DefaultMinIdle         = 30 * time.Second
	DefaultReclaimCount    = 512
	DefaultMaxRetryBackoff = 10 * time.Minute
	DefaultAckInterval     = 50 * time.Millisecond
	DefaultAckBatch        = 256
	DefaultDrainTimeout    = 30 * time.Second
	DefaultAckTimeout      = 10 * time.Second
	MinReclaimInterval     = 10 * time.Millisecond
	// MaxAdaptivePrefetch caps the prefetch a consumer sizes itself when
	// Prefetch is zero.
	MaxAdaptivePrefetch = 1024
	maxErrorText        = 2048
)

// Config is the configuration of an Engine.
type Config struct {
	Client   redis.UniversalClient
	Stream   string
	Group    string
	Consumer string
	Handler  handler.Handler
	Knobs

	// AdaptivePrefetch is set by Normalize when Prefetch was zero: the
	// engine then sizes its prefetch between Concurrency and Prefetch (set
	// to the cap) from the measured read round trip and handler time.
	AdaptivePrefetch bool

	// warnLog receives the maxmemory-policy warning: Logger, or
	// slog.Default() when Logger is nil, so that a consumer without a
	// logger still says when at-least-once is void.
	warnLog *slog.Logger
}

// Knobs mirrors group.Options field for field, so that group and claim
// convert their options with a plain type conversion. The meaning and
// defaults of each field are documented on group.Options.
type Knobs struct {
	Concurrency      int
	Prefetch         int
	GroupStart       string
	Block            time.Duration
	MaxDeliveries    int64
	DeadLetterStream string
	MinIdle          time.Duration
	LeaseInterval    time.Duration
	ReclaimInterval  time.Duration
	ReclaimCount     int
	DisableReclaim   bool
	RetryBackoff     time.Duration
	MaxRetryBackoff  time.Duration
	AckInterval      time.Duration
	AckBatch         int
	DrainTimeout     time.Duration
	AckTimeout       time.Duration
	Logger           *slog.Logger
	OnError          func(error)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
}

// Normalize fills defaults and validates. It returns a copy.
func (c Config) Normalize() (Config, error) {
	switch {
	case c.Client == nil:
		return c, invalid("nil redis client")
	case c.Stream == "":
		return c, invalid("empty stream name")
	case c.Group == "":
		return c, invalid("empty group name")
	case c.Consumer == "":
		return c, invalid("empty consumer name")
	case c.Handler == nil:
		return c, invalid("nil handler")
	}
	type check struct {
		bad  bool
		name string
	}
	for _, ck := range []check{
		{c.Concurrency < 0, "Concurrency"},
		{c.Prefetch < 0, "Prefetch"},
		{c.Block < 0, "Block"},
		{c.MaxDeliveries < 0, "MaxDeliveries"},
		{c.MinIdle < 0, "MinIdle"},
		{c.LeaseInterval < 0, "LeaseInterval"},
		{c.ReclaimInterval < 0, "ReclaimInterval"},
		{c.ReclaimCount < 0, "ReclaimCount"},
		{c.RetryBackoff < 0, "RetryBackoff"},
		{c.MaxRetryBackoff < 0, "MaxRetryBackoff"},
		{c.AckInterval < 0, "AckInterval"},
		{c.AckBatch < 0, "AckBatch"},
		{c.DrainTimeout < 0, "DrainTimeout"},
		{c.AckTimeout < 0, "AckTimeout"},
	} {
		if ck.bad {
			return c, invalid("%s must not be negative", ck.name)
		}
	}
	if c.GroupStart == "" {
		c.GroupStart = "0"
	}
	if c.GroupStart != "$" {
		if _, err := stream.ParseID(c.GroupStart); err != nil {
			return c, invalid("GroupStart %q is not \"0\", \"$\" or an entry ID", c.GroupStart)
		}
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Prefetch == 0 {
		c.AdaptivePrefetch = true
		c.Prefetch = max(c.Concurrency, MaxAdaptivePrefetch)
	}
	if c.Concurrency > MaxConcurrency || c.Prefetch > MaxConcurrency {
		return c, invalid("Concurrency %d and Prefetch %d must each be at most %d", c.Concurrency, c.Prefetch, MaxConcurrency)
	}
	if c.Block == 0 {
		c.Block = DefaultBlock
	}
	if c.Block < time.Millisecond {
		return c, invalid("Block %v is below Redis's 1ms resolution", c.Block)
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	deadDefault := c.DeadLetterStream == ""
	if deadDefault {
		c.DeadLetterStream = stream.DeadLetterKey(c.Stream)
	}
	if c.DeadLetterStream == c.Stream {
		return c, invalid("DeadLetterStream must differ from the stream %q", c.Stream)
	}
	if err := c.checkSlots(deadDefault); err != nil {
		return c, err
	}
	if c.MinIdle == 0 {
		c.MinIdle = DefaultMinIdle
	}
	if c.MinIdle < 10*time.Millisecond {
		return c, invalid("MinIdle %v is too small (minimum 10ms)", c.MinIdle)
	}
	if c.LeaseInterval == 0 {
		c.LeaseInterval = c.MinIdle / 3
	}
	// An entry is renewed once it has been held LeaseInterval, checked every
	// LeaseInterval/2: its idle time peaks near 1.5*LeaseInterval, which must
	// stay well below MinIdle.
	if c.LeaseInterval > c.MinIdle/2 {
		return c, invalid("LeaseInterval %v must be at most MinIdle/2 (%v)", c.LeaseInterval, c.MinIdle/2)
	}
	if c.LeaseInterval < 2*time.Millisecond {
		return c, invalid("LeaseInterval %v is too small (minimum 2ms)", c.LeaseInterval)
	}
	if c.ReclaimInterval == 0 {
		c.ReclaimInterval = max(c.MinIdle/2, MinReclaimInterval)
	}
	// A pass scans the whole pending list; passes far more often than
	// entries can become idle only load Redis (1ns made 3,000 XAUTOCLAIM
	// calls in 5s on an idle stream).
	if c.ReclaimInterval < MinReclaimInterval {
		return c, invalid("ReclaimInterval %v is too small (minimum %v)", c.ReclaimInterval, MinReclaimInterval)
	}
	if c.ReclaimCount == 0 {
		c.ReclaimCount = DefaultReclaimCount
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = c.MinIdle
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = max(DefaultMaxRetryBackoff, c.RetryBackoff)
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		return c, invalid("MaxRetryBackoff %v is below RetryBackoff %v", c.MaxRetryBackoff, c.RetryBackoff)
	}
	if c.AckInterval == 0 {
		c.AckInterval = DefaultAckInterval
	}
	if c.AckBatch == 0 {
		c.AckBatch = DefaultAckBatch
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	c.warnLog = c.Logger
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
		c.warnLog = slog.Default()
	}
	c.Logger = c.Logger.With("stream", c.Stream, "group", c.Group, "consumer", c.Consumer)
	c.warnLog = c.warnLog.With("stream", c.Stream, "group", c.Group, "consumer", c.Consumer)
	return c, nil
}

// checkSlots refuses, on Redis Cluster, a dead-letter stream outside the
// stream's slot: the dead-letter script writes both keys, and would fail
// with CROSSSLOT on every entry, which would then be reclaimed and fail
// again forever. On a standalone Redis any name works.
func (c Config) checkSlots(deadDefault bool) error {
	if _, ok := c.Client.(*redis.ClusterClient); !ok || keys.SameSlot(c.Stream, c.DeadLetterStream) {
		return nil
	}
	if deadDefault {
		return invalid("on Redis Cluster the stream name %q has an unmatched brace, so its default dead-letter stream %q hashes to another slot: drop the brace or give the stream a hash tag, as in \"{jobs}:email\"",
			c.Stream, c.DeadLetterStream)
	}
	return invalid("on Redis Cluster DeadLetterStream %q (slot %d) must lie in the slot of the stream %q (slot %d): give both the same hash tag, such as %q, or leave DeadLetterStream empty for %q",
		c.DeadLetterStream, keys.Slot(c.DeadLetterStream), c.Stream, keys.Slot(c.Stream), keys.Beside(c.Stream, ":failed"), stream.DeadLetterKey(c.Stream))
}
