package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/streamgroup/streamgroup/internal/argerr"
)

// Errors a caller can act on. Each is matched with errors.Is.
var (
	// ErrInvalidOptions is wrapped by every error about a bad argument or
	// option given to NewReliableConsumer or NewSimpleConsumer.
	ErrInvalidOptions = argerr.ErrInvalid
	// ErrAlreadyRun is returned by a second call of Run: consumers are
	// single-use.
	ErrAlreadyRun = errors.New("queue: Run called more than once")
	// ErrDrainTimeout is wrapped by the error Run returns when in-flight
	// handlers did not finish within DrainTimeout. In reliable mode their
	// jobs stay in the consumer's processing list and are recovered once
	// its heartbeat expires: nothing is lost. In simple mode they are lost.
	ErrDrainTimeout = errors.New("queue: drain timeout exceeded")
	// ErrNotList is wrapped by the error Run returns when a queue key (or
	// a processing or dead-letter list) holds another type than a list.
	// The error names the key; nothing was moved out of it.
	ErrNotList = errors.New("queue: key is not a list")
)

// MaxConcurrency is the largest Concurrency (and Prefetch) accepted.
const MaxConcurrency = 1 << 16

// Defaults. The fields of [Options] document the same values.
const (
	defaultConcurrency     = 10
	defaultPollInterval    = time.Second
	defaultMaxAttempts     = 5
	defaultStarvationLimit = 20
	defaultHeartbeatTTL    = 30 * time.Second
	defaultRetryBackoff    = 5 * time.Second
	defaultMaxRetryBackoff = 10 * time.Minute
	defaultAckInterval     = 20 * time.Millisecond
	defaultAckBatch        = 256
	defaultDrainTimeout    = 30 * time.Second
	defaultAckTimeout      = 10 * time.Second
	deadLetterSuffix       = ":dead"
)

// Options configures a consumer. A nil *Options means all defaults; the zero
// value of every field means its default, as documented on the field. The
// constructors copy the options; changing them afterwards has no effect.
// Negative values are invalid. Fields marked "reliable mode" are ignored by
// a simple consumer.
type Options struct {
	// Concurrency is the number of jobs handled at once (the number of
	// handler goroutines). Zero means 10. At most 65536.
	Concurrency int

	// Prefetch is how many jobs may wait in memory for a free handler. A
	// fetch is made once at least Prefetch slots are free, taking as many
	// jobs as there are free slots (Concurrency+Prefetch at most), in one
	// round trip. Priorities are applied when jobs are fetched: a prefetched
	// low-priority job is not overtaken by a high-priority job pushed after
	// it was fetched. Zero means Concurrency. At most 65536.
	Prefetch int

	// PollInterval is how long one blocking wait for new jobs lasts (BRPOP
	// in simple mode; in reliable mode a BLMOVE on the first queue that
	// moves nothing). In reliable mode it bounds how long a job pushed to a
	// lower-priority queue waits while the consumer is idle. A stop does
	// not wait for it: the wait is woken at once (CLIENT UNBLOCK), except
	// in simple mode when CLIENT UNBLOCK is refused or on Redis Cluster,
	// where the stop waits up to PollInterval (see the package
	// documentation, "Connections"). Zero means 1s;
	// never "forever". Minimum 10ms. A value that is not a whole number of
	// seconds is sent as a fraction, and must then be below the client's
	// ReadTimeout (go-redis's default is 3s).
	PollInterval time.Duration

	// MaxAttempts is how many deliveries a job gets before it is moved to
	// the dead-letter list: a handler error on the MaxAttempts-th delivery
	// dead-letters it, and so does any delivery beyond it (a job whose
	// handler crashed the process every time, in reliable mode). Zero
	// means 5.
	MaxAttempts int64

	// DeadLetterList is the list that receives jobs that failed
	// permanently or too often, and malformed envelopes, as JSON records
	// (see [ParseDeadLetter]). Zero ("") means [DeadLetterKey] of each
	// queue: "{jobs:email}:dead" for "jobs:email", "{jobs}:email:dead" for
	// "{jobs}:email", in the queue's Redis Cluster slot. On Redis Cluster a
	// reliable consumer's DeadLetterList must hash to the queues' slot
	// (the constructor refuses it otherwise); on a standalone Redis, or for
	// a simple consumer, any name works.
	DeadLetterList string

	// StrictPriority makes every fetch take jobs from the queues strictly in
	// the order given: a lower-priority queue is served only when every
	// queue before it is empty, and may starve. False means the
	// StarvationLimit rule.
	StrictPriority bool

	// StarvationLimit: after every StarvationLimit jobs fetched, the next
	// fetch first takes one job from each non-empty lower-priority queue
	// (in order), then fills up by priority. A lower-priority queue with
	// work thus gets at least one job in every StarvationLimit+1 fetched
	// (plus one fetch's worth of slack), however busy the queues before it
	// are. Zero means 20. Ignored with StrictPriority or a single queue.
	StarvationLimit int

	// HeartbeatTTL (reliable mode) is the lifetime of the consumer's
	// heartbeat key. Once it has expired, any consumer of the queue moves
	// the jobs of this consumer's processing list back to the queue: it
	// is how long the jobs of a crashed consumer wait before another
	// consumer takes them (plus up to SweepInterval). Zero means 30s.
	// Minimum 10ms.
	HeartbeatTTL time.Duration

	// HeartbeatInterval (reliable mode) is how often the heartbeat is
	// renewed. Zero means HeartbeatTTL/3; at most HeartbeatTTL/2.
	HeartbeatInterval time.Duration

	// SweepInterval (reliable mode) is the pause between two recovery
	// sweeps over the queues' consumers, with ±20% jitter; one sweep also
	// runs at start. Zero means HeartbeatTTL/2.
	SweepInterval time.Duration

	// RetryBackoff is the delay before the first retry of a failed job;
	// the n-th retry waits RetryBackoff*2^(n-1), capped by
	// MaxRetryBackoff, with jitter (between half and all of it). Zero
	// means 5s.
	RetryBackoff time.Duration

	// MaxRetryBackoff caps the retry delay. Zero means the larger of 10
	// minutes and RetryBackoff.
	MaxRetryBackoff time.Duration

	// AckInterval (reliable mode) is the longest the removal of a finished
	// job from the processing list waits to be batched with others. Zero
	// means 20ms.
	AckInterval time.Duration

	// AckBatch (reliable mode) is the most removals (LREM) in one
	// pipeline. Zero means 256.
	AckBatch int

	// DrainTimeout is how long Run waits, after its context is cancelled,
	// for in-flight handlers to finish. Past it, handler contexts are
	// cancelled and Run returns an error wrapping ErrDrainTimeout. Zero
	// means 30s.
	DrainTimeout time.Duration

	// AckTimeout bounds the last flush of removals and the hand-back of
	// unstarted jobs during shutdown, and each dead-lettering. Zero means
	// 10s.
	AckTimeout time.Duration

	// Logger receives the consumer's logs, with the attributes consumer
	// (reliable mode), queue and (per job) id. Nil means no logging, but
	// for the warning that Redis's maxmemory-policy can evict jobs (see
	// docs/reliability.md), which then goes to slog.Default(). Job
	// contents are never logged.
	Logger *slog.Logger

	// OnError, when not nil, is called with every error the consumer
	// handles by itself: handler failures (wrapping the handler's error),
	// Redis outages it retries, malformed envelopes, dead-lettering that
	// failed. It is called from the consumer's goroutines and must not
	// block.
	OnError func(error)
}

// Stats is a snapshot of a consumer's counters since Run started: a plain
// value, copied out by Stats(). The zero value is all counters at zero.
type Stats struct {
	Delivered    uint64 // jobs handed to the handler (or dead-lettered unhandled)
	Acked        uint64 // jobs whose handler returned nil (reliable: removed from the processing list)
	Failed       uint64 // handler calls that returned an error or panicked
	Retried      uint64 // failures scheduled for another delivery
	Requeued     uint64 // failed jobs pushed back to the end of their queue (too many retries waiting)
	DeadLettered uint64 // jobs moved to the dead-letter list
	Malformed    uint64 // malformed envelopes found (each is also dead-lettered)
	Recovered    uint64 // reliable: jobs moved back to a queue from a dead consumer's (or this name's earlier) processing list
	Released     uint64 // fetched jobs handed back to their queue unstarted, at shutdown
}

type mode uint8

const (
	modeSimple mode = iota
	modeReliable
)

// config is the normalized configuration of a consumer.
type config struct {
	Options
	mode     mode
	queues   []string
	consumer string // reliable mode only
	dead     []string

	// warnLog receives the maxmemory-policy warning: Logger, or
	// slog.Default() when Logger is nil, so that a consumer without a
	// logger still says when at-least-once is void.
	warnLog *slog.Logger
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
}

func normalize(m mode, queues []string, consumer string, opts *Options) (config, error) {
	c := config{mode: m, queues: append([]string(nil), queues...), consumer: consumer}
	if opts != nil {
		c.Options = *opts
	}
	if len(c.queues) == 0 {
		return c, invalid("no queue")
	}
	seen := map[string]bool{}
	for _, q := range c.queues {
		if q == "" {
			return c, invalid("empty queue name")
		}
		if seen[q] {
			return c, invalid("queue %q listed twice", q)
		}
		seen[q] = true
	}
	if m == modeReliable && consumer == "" {
		return c, invalid("empty consumer name")
	}
	type check struct {
		bad  bool
		name string
	}
	for _, ck := range []check{
		{c.Concurrency < 0, "Concurrency"},
		{c.Prefetch < 0, "Prefetch"},
		{c.PollInterval < 0, "PollInterval"},
		{c.MaxAttempts < 0, "MaxAttempts"},
		{c.StarvationLimit < 0, "StarvationLimit"},
		{c.HeartbeatTTL < 0, "HeartbeatTTL"},
		{c.HeartbeatInterval < 0, "HeartbeatInterval"},
		{c.SweepInterval < 0, "SweepInterval"},
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
	if c.Concurrency == 0 {
		c.Concurrency = defaultConcurrency
	}
	if c.Prefetch == 0 {
		c.Prefetch = c.Concurrency
	}
	if c.Concurrency > MaxConcurrency || c.Prefetch > MaxConcurrency {
		return c, invalid("Concurrency %d and Prefetch %d must each be at most %d", c.Concurrency, c.Prefetch, MaxConcurrency)
	}
	if c.PollInterval == 0 {
		c.PollInterval = defaultPollInterval
	}
	if c.PollInterval < 10*time.Millisecond {
		return c, invalid("PollInterval %v is too small (minimum 10ms)", c.PollInterval)
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	if c.StarvationLimit == 0 {
		c.StarvationLimit = defaultStarvationLimit
	}
	for _, q := range c.queues {
		d := c.DeadLetterList
		if d == "" {
			d = DeadLetterKey(q)
		}
		if seen[d] {
			return c, invalid("dead-letter list %q is also a queue", d)
		}
		c.dead = append(c.dead, d)
	}
	if c.HeartbeatTTL == 0 {
		c.HeartbeatTTL = defaultHeartbeatTTL
	}
	if c.HeartbeatTTL < 10*time.Millisecond {
		return c, invalid("HeartbeatTTL %v is too small (minimum 10ms)", c.HeartbeatTTL)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = c.HeartbeatTTL / 3
	}
	if c.HeartbeatInterval > c.HeartbeatTTL/2 {
		return c, invalid("HeartbeatInterval %v must be at most HeartbeatTTL/2 (%v)", c.HeartbeatInterval, c.HeartbeatTTL/2)
	}
	if c.HeartbeatInterval < time.Millisecond {
		return c, invalid("HeartbeatInterval %v is too small (minimum 1ms)", c.HeartbeatInterval)
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = c.HeartbeatTTL / 2
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = defaultRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = max(defaultMaxRetryBackoff, c.RetryBackoff)
	}
	if c.MaxRetryBackoff < c.RetryBackoff {
		return c, invalid("MaxRetryBackoff %v is below RetryBackoff %v", c.MaxRetryBackoff, c.RetryBackoff)
	}
	if c.AckInterval == 0 {
		c.AckInterval = defaultAckInterval
	}
	if c.AckBatch == 0 {
		c.AckBatch = defaultAckBatch
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = defaultDrainTimeout
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = defaultAckTimeout
	}
	c.warnLog = c.Logger
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
		c.warnLog = slog.Default()
	}
	if m == modeReliable {
		c.Logger = c.Logger.With("consumer", consumer)
		c.warnLog = c.warnLog.With("consumer", consumer)
	}
	return c, nil
}
