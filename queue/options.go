package queue

import (
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/listsrc"
)

// Errors a caller can act on, matched with errors.Is. The first three are
// package group's values too.
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
	// ErrNotList is wrapped by the error Run returns, naming the key, when
	// a queue, processing or dead-letter list holds another type.
	ErrNotList = listsrc.ErrNotList
)

// MaxConcurrency is the largest Concurrency (and Prefetch) accepted.
const MaxConcurrency = engine.MaxConcurrency

// Options configures a consumer. A nil *Options means all defaults; the zero
// value of every field means its default, as documented on the field. The
// constructors copy the options; changing them afterwards has no effect.
// Negative values are invalid. The fields shared with group.Options mean
// the same; docs/semantics.md has the details.
type Options struct {
	// Concurrency is the number of jobs handled at once (the number of
	// handler goroutines). Zero means 10. At most 65536.
	Concurrency int

	// Prefetch is how many jobs may wait in memory for a free handler,
	// fetched ahead in batches so that handlers never wait for a round
	// trip. Priorities apply when jobs are fetched: a prefetched
	// low-priority job is not overtaken by a high-priority one pushed
	// later, so set it small when priority latency matters. At most 65536.
	// Zero means adaptive, as for streams: enough jobs to cover one fetch
	// at the measured handler pace (2 × Concurrency × fetch time / handler
	// time), between Concurrency and max(Concurrency, 1024), within
	// MaxBytes.
	Prefetch int

	// MaxBytes bounds the memory a consumer holds in jobs (their field
	// names and values: in handlers, fetched ahead, waiting for a retry).
	// Zero means 64 MiB.
	MaxBytes int64

	// PollInterval is how long one blocking wait for new jobs lasts (BRPOP
	// for a simple consumer; for a reliable one a BLMOVE on the first queue
	// that moves nothing, so it bounds how long a job pushed to a
	// lower-priority queue waits while the consumer is idle). A stop wakes
	// the wait at once (CLIENT UNBLOCK), except for a simple consumer when
	// that is refused or on Redis Cluster, where it waits up to
	// PollInterval. Zero means 1s. Minimum 10ms. A value that is not a
	// whole number of seconds must be below the client's ReadTimeout.
	PollInterval time.Duration

	// MaxDeliveries is how many deliveries a job gets before it is moved to
	// the dead-letter list: a handler error on the MaxDeliveries-th delivery
	// dead-letters it, and so does any delivery beyond it (a reliable
	// consumer's job whose handler crashed the process every time).
	// Handlers read the count in Message.Deliveries. Zero means 5.
	MaxDeliveries int64

	// DeadLetterList is the list that receives jobs that failed
	// permanently or too often, and malformed envelopes, as JSON records
	// ([ParseDeadLetter]). Zero ("") means [DeadLetterKey] of each queue. On
	// Redis Cluster a reliable consumer's DeadLetterList must hash to the
	// queues' slot (the constructor refuses it otherwise).
	DeadLetterList string

	// HeartbeatTTL (reliable consumer) is the lifetime of the consumer's
	// heartbeat key, renewed every HeartbeatTTL/3: how long the jobs of a
	// crashed consumer wait before another consumer (looking every
	// HeartbeatTTL/2) moves them back to their queue. A consumer that finds
	// its own heartbeat expired cancels the handlers of the jobs taken from
	// it (cause handler.ErrLeaseLost) and drops their results. Zero means
	// 30s. Minimum 10ms.
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
	// the warning that Redis's maxmemory-policy can evict jobs
	// (docs/reliability.md), which then goes to slog.Default(). Job
	// contents are never logged.
	Logger *slog.Logger

	// OnError, when not nil, is called with every error the consumer
	// handles by itself: handler failures (wrapping the handler's error),
	// Redis outages it retries, malformed envelopes, dead-lettering that
	// failed. It is called from the consumer's goroutines and must not
	// block.
	OnError func(error)

	// Hook is told about each handler call (Start before it, End with
	// the outcome: settled, retried, dead-lettered or abandoned) and
	// about the consumer's events (jobs fetched, recovered, handed back,
	// jobs lost with an expired heartbeat, every error OnError gets): see
	// package hook. The constructors ask it once for the consumer's
	// hook.Consumer, whose target names every queue. Nil means none, at
	// the cost of a nil check per event.
	Hook hook.Hook
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

// hook returns o.Hook; nil for nil options.
func (o *Options) hook() hook.Hook {
	if o == nil {
		return nil
	}
	return o.Hook
}

// configs maps the options onto the engine's and the list source's
// configurations.
func (o *Options) configs(rdb redis.UniversalClient, queues []string, consumer string, reliable bool, h handler.Handler) (engine.Config, listsrc.Config) {
	if o == nil {
		o = &Options{}
	}
	return engine.Config{
			Handler:         h,
			Concurrency:     o.Concurrency,
			Prefetch:        o.Prefetch,
			MaxBytes:        o.MaxBytes,
			MaxDeliveries:   o.MaxDeliveries,
			RetryBackoff:    o.RetryBackoff,
			MaxRetryBackoff: o.MaxRetryBackoff,
			DrainTimeout:    o.DrainTimeout,
			OnError:         o.OnError,
			Prefix:          "queue",
			Noun:            "job",
		}, listsrc.Config{
			Client:         rdb,
			Queues:         queues,
			Consumer:       consumer,
			Reliable:       reliable,
			DeadLetterList: o.DeadLetterList,
			PollInterval:   o.PollInterval,
			HeartbeatTTL:   o.HeartbeatTTL,
			Logger:         o.Logger,
			OnError:        o.OnError,
		}
}
