package queue

import (
	"errors"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/engine"
)

// Errors a caller can act on. Each is matched with errors.Is. The first
// three are the same values as package group's, so one errors.Is matches
// whichever consumer returned the error.
var (
	// ErrInvalidOptions is wrapped by every error about a bad argument or
	// option given to NewReliableConsumer or NewSimpleConsumer.
	ErrInvalidOptions = engine.ErrInvalidOptions
	// ErrAlreadyRun is returned by a second call of Run: consumers are
	// single-use.
	ErrAlreadyRun = engine.ErrAlreadyRun
	// ErrDrainTimeout is wrapped by the error Run returns when in-flight
	// handlers did not finish within DrainTimeout. A reliable consumer's
	// jobs stay in its processing list and are recovered once its heartbeat
	// expires: nothing is lost. A simple consumer's are lost.
	ErrDrainTimeout = engine.ErrDrainTimeout
	// ErrNotList is wrapped by the error Run returns when a queue key (or
	// a processing or dead-letter list) holds another type than a list.
	// The error names the key; nothing was moved out of it.
	ErrNotList = errors.New("queue: key is not a list")
)

// MaxConcurrency is the largest Concurrency (and Prefetch) accepted.
const MaxConcurrency = engine.MaxConcurrency

// Defaults of the options that only lists have. The fields of [Options]
// document them, and those shared with package group.
const (
	defaultPollInterval = time.Second
	defaultHeartbeatTTL = 30 * time.Second
	deadLetterSuffix    = ":dead"
	// fairEvery is the priority rule: after every fairEvery jobs fetched,
	// the next fetch first takes one job from each non-empty
	// lower-priority queue.
	fairEvery = 20
)

// Options configures a consumer. A nil *Options means all defaults; the zero
// value of every field means its default, as documented on the field. The
// constructors copy the options; changing them afterwards has no effect.
// Negative values are invalid. HeartbeatTTL applies to a reliable consumer
// only.
type Options struct {
	// Concurrency is the number of jobs handled at once (the number of
	// handler goroutines). Zero means 10. At most 65536.
	Concurrency int

	// Prefetch is how many jobs may wait in memory for a free handler,
	// fetched ahead so that handlers never wait for a round trip. A fetch
	// is made once at least half of Prefetch fits, taking as many jobs as
	// fit, in one round trip. Priorities are applied when jobs are fetched:
	// a prefetched low-priority job is not overtaken by a high-priority job
	// pushed after it was fetched. At most 65536.
	//
	// Zero means adaptive, as for streams: the consumer measures how long
	// a fetch takes and how long the handler takes, and keeps enough jobs
	// fetched to cover one fetch at that pace: 2 × Concurrency × fetch time
	// / handler time, between Concurrency and max(Concurrency, 1024), and
	// within MaxBytes. Fast handlers then get large batched fetches; slow
	// ones keep Prefetch at Concurrency, so that one consumer does not
	// hoard a burst of slow jobs while its peers idle. Set it small when
	// priority latency matters.
	Prefetch int

	// MaxBytes bounds the memory a consumer holds in jobs (their field
	// names and values: in handlers, fetched ahead, waiting for a retry):
	// fetches are sized to what fits at the average job size, and wait
	// while it is full. Zero means 64 MiB.
	MaxBytes int64

	// PollInterval is how long one blocking wait for new jobs lasts (BRPOP
	// for a simple consumer; for a reliable one a BLMOVE on the first queue
	// that moves nothing). For a reliable consumer it bounds how long a job
	// pushed to a lower-priority queue waits while the consumer is idle. A
	// stop does not wait for it: the wait is woken at once (CLIENT
	// UNBLOCK), except for a simple consumer when CLIENT UNBLOCK is refused
	// or on Redis Cluster, where the stop waits up to PollInterval (see the
	// package documentation, "Connections"). Zero means 1s; never
	// "forever". Minimum 10ms. A value that is not a whole number of
	// seconds is sent as a fraction, and must then be below the client's
	// ReadTimeout (go-redis's default is 3s).
	PollInterval time.Duration

	// MaxDeliveries is how many deliveries a job gets before it is moved to
	// the dead-letter list: a handler error on the MaxDeliveries-th delivery
	// dead-letters it, and so does any delivery beyond it (a job whose
	// handler crashed the process every time, for a reliable consumer).
	// Handlers read the count in Message.Deliveries. Zero means 5.
	MaxDeliveries int64

	// DeadLetterList is the list that receives jobs that failed
	// permanently or too often, and malformed envelopes, as JSON records
	// (see [ParseDeadLetter]). Zero ("") means [DeadLetterKey] of each
	// queue: "{jobs:email}:dead" for "jobs:email", "{jobs}:email:dead" for
	// "{jobs}:email", in the queue's Redis Cluster slot. On Redis Cluster a
	// reliable consumer's DeadLetterList must hash to the queues' slot
	// (the constructor refuses it otherwise); on a standalone Redis, or for
	// a simple consumer, any name works.
	DeadLetterList string

	// HeartbeatTTL (reliable consumer) is the lifetime of the consumer's
	// heartbeat key, renewed every HeartbeatTTL/3. Once it has expired, any
	// consumer of the queue moves the jobs of this consumer's processing
	// list back to the queue (each consumer looks every HeartbeatTTL/2):
	// it is how long the jobs of a crashed consumer wait before another
	// consumer takes them. A consumer that finds its own heartbeat expired
	// cancels the handler contexts of the jobs taken from it (with cause
	// handler.ErrLeaseLost) and drops their results. Zero
	// means 30s. Minimum 10ms.
	HeartbeatTTL time.Duration

	// RetryBackoff is the delay before the first retry of a failed job;
	// the n-th retry waits RetryBackoff*2^(n-1), capped by
	// MaxRetryBackoff, with jitter (between half and all of it). Zero
	// means 5s.
	RetryBackoff time.Duration

	// MaxRetryBackoff caps the retry delay. Zero means the larger of 10
	// minutes and RetryBackoff.
	MaxRetryBackoff time.Duration

	// DrainTimeout is how long Run waits, after its context is cancelled,
	// for in-flight handlers to finish. Past it, handler contexts are
	// cancelled and Run returns an error wrapping ErrDrainTimeout. Zero
	// means 30s.
	DrainTimeout time.Duration

	// Logger receives the consumer's logs, with the attributes consumer
	// (reliable consumer) and (per job) id. Nil means no logging, but for
	// the warning that Redis's maxmemory-policy can evict jobs (see
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
	Failed       uint64 // handler calls that returned an error, panicked or called runtime.Goexit
	Retried      uint64 // failures scheduled for another delivery
	Requeued     uint64 // failed jobs pushed back to the end of their queue (too many retries waiting)
	DeadLettered uint64 // jobs moved to the dead-letter list
	Malformed    uint64 // malformed envelopes found (each is also dead-lettered)
	Recovered    uint64 // reliable: jobs moved back to a queue from a dead consumer's (or this name's earlier) processing list
	LeaseLost    uint64 // reliable: held jobs another consumer recovered after this consumer's heartbeat expired
	Released     uint64 // jobs handed back to their queue at shutdown (fetched and unstarted, or waiting for a retry)
}

// config is what the list sources need besides the engine's config.
type config struct {
	queues     []string
	dead       []string // dead-letter list of each queue
	consumer   string   // reliable only
	customDead bool     // DeadLetterList was set
	poll, ttl  time.Duration
	log        *slog.Logger // Logger, or a discarding one
	// warnLog receives the maxmemory-policy warning: Logger, or
	// slog.Default() when Logger is nil, so that a consumer without a
	// logger still says when at-least-once is void.
	warnLog *slog.Logger
	onError func(error)
}

// normalize checks the arguments and options as a whole and fills the
// defaults, for a reliable consumer when consumer is not empty.
func normalize(rdb redis.UniversalClient, queues []string, consumer string, reliable bool, h handler.Handler, opts *Options) (config, engine.Config, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	c := config{queues: append([]string(nil), queues...), consumer: consumer, customDead: o.DeadLetterList != "", poll: o.PollInterval, ttl: o.HeartbeatTTL}
	fail := func(format string, args ...any) (config, engine.Config, error) {
		return c, engine.Config{}, engine.Invalid(format, args...)
	}
	switch {
	case rdb == nil:
		return fail("nil redis client")
	case h == nil:
		return fail("nil handler")
	case len(c.queues) == 0:
		return fail("no queue")
	case reliable && consumer == "":
		return fail("empty consumer name")
	case c.poll < 0 || c.ttl < 0:
		return fail("PollInterval and HeartbeatTTL must not be negative")
	}
	seen := map[string]bool{}
	for _, q := range c.queues {
		if q == "" {
			return fail("empty queue name")
		}
		if seen[q] {
			return fail("queue %q listed twice", q)
		}
		seen[q] = true
	}
	for _, q := range c.queues {
		d := o.DeadLetterList
		if d == "" {
			d = DeadLetterKey(q)
		}
		if seen[d] {
			return fail("dead-letter list %q is also a queue", d)
		}
		c.dead = append(c.dead, d)
	}
	if c.poll == 0 {
		c.poll = defaultPollInterval
	}
	if c.poll < 10*time.Millisecond {
		return fail("PollInterval %v is too small (minimum 10ms)", c.poll)
	}
	if c.ttl == 0 {
		c.ttl = defaultHeartbeatTTL
	}
	if c.ttl < 10*time.Millisecond {
		return fail("HeartbeatTTL %v is too small (minimum 10ms)", c.ttl)
	}
	c.log, c.warnLog, c.onError = o.Logger, o.Logger, o.OnError
	if o.Logger == nil {
		c.log, c.warnLog = slog.New(slog.DiscardHandler), slog.Default()
	}
	if reliable {
		c.log, c.warnLog = c.log.With("consumer", consumer), c.warnLog.With("consumer", consumer)
	}
	ecfg, err := engine.Config{
		Handler:         h,
		Concurrency:     o.Concurrency,
		Prefetch:        o.Prefetch,
		MaxBytes:        o.MaxBytes,
		MaxDeliveries:   o.MaxDeliveries,
		RetryBackoff:    o.RetryBackoff,
		MaxRetryBackoff: o.MaxRetryBackoff,
		DrainTimeout:    o.DrainTimeout,
		Logger:          c.log,
		OnError:         o.OnError,
		Prefix:          "queue",
		Noun:            "job",
	}.Normalize()
	if err != nil {
		return c, ecfg, err
	}
	if _, ok := rdb.(*redis.ClusterClient); ok {
		if err := c.checkSlots(reliable); err != nil {
			return c, ecfg, err
		}
	}
	return c, ecfg, nil
}
