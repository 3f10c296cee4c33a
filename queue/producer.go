package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/argerr"
	"github.com/streamgroup/streamgroup/internal/batcherr"
	"github.com/streamgroup/streamgroup/internal/listwire"
	"github.com/streamgroup/streamgroup/internal/publish"
	"github.com/streamgroup/streamgroup/internal/redischeck"
	"github.com/streamgroup/streamgroup/stream"
)

// ProducerOptions configures a [Producer]. A nil *ProducerOptions means all
// defaults.
type ProducerOptions struct {
	// Codec encodes the values given to [Producer.PushPayload]. Nil means
	// [stream.JSON].
	Codec stream.Codec

	// Logger receives the producer's one log line: the warning, logged
	// once before the first push, that the server's maxmemory-policy is not
	// noeviction (Redis may then evict the queue and lose jobs), or, at
	// Info, that it could not be checked (CONFIG GET refused). Nil means
	// [slog.Default] (as it is when the check runs).
	Logger *slog.Logger

	// Hook is told about every push (Publish before it, Published after,
	// one pair per call: [Producer.PushBatch] is one publish of all its
	// jobs), and may add fields to the jobs, such as a trace context: they
	// go into each job's fields in its envelope (see package hook and
	// docs/wire-format.md). NewProducer asks it once for the producer's
	// hook.Producer. Nil means none.
	Hook hook.Hook
}

// maxPushArgs bounds the elements of one LPUSH in [Producer.PushBatch];
// larger batches are split into several LPUSHes in the same pipeline.
const maxPushArgs = 1000

// Producer pushes jobs to one list (LPUSH), each wrapped in an envelope
// with a unique ID and an attempt count (see docs/wire-format.md). It is
// safe for concurrent use. Its first push is preceded by a check of the
// server's maxmemory-policy (one CONFIG GET, once; see
// [ProducerOptions.Logger]). It does not own the client and never closes it.
// The zero value is not usable: create one with [NewProducer].
type Producer struct {
	rdb   redis.UniversalClient
	queue string
	codec stream.Codec
	log   *slog.Logger    // nil: slog.Default() when the check runs
	evict redischeck.Once // the maxmemory-policy check, before the first push
	hook  hook.Producer   // nil: none
}

// NewProducer returns a producer that pushes to the list queue through
// rdb. A nil opts means defaults. It returns an error wrapping
// [ErrInvalidOptions], and naming the problem, when rdb is nil or queue is
// empty (no option value is invalid today).
func NewProducer(rdb redis.UniversalClient, queue string, opts *ProducerOptions) (*Producer, error) {
	if err := argerr.Target(rdb, "queue", queue); err != nil {
		return nil, err
	}
	p := &Producer{rdb: rdb, queue: queue, codec: stream.JSON}
	if opts != nil && opts.Codec != nil {
		p.codec = opts.Codec
	}
	if opts != nil {
		p.log = opts.Logger
		if opts.Hook != nil {
			p.hook = opts.Hook.Producer(hook.Target{Kind: hook.List, Name: queue, Client: rdb})
		}
	}
	return p, nil
}

// Queue returns the key of the list p pushes to.
func (p *Producer) Queue() string { return p.queue }

// Push pushes one job with the given fields and returns its ID. Values are
// stored as strings, as go-redis writes them for a stream entry (numbers in
// decimal, true as "1", []byte as is, encoding.BinaryMarshaler's bytes). A
// job may have no fields.
//
// The error wraps the go-redis error (a key of another type gives Redis's
// WRONGTYPE reply). After a network error or a cancelled ctx the job may or
// may not have been pushed. go-redis resends a command whose reply was lost
// (Options.MaxRetries), so a job can also be pushed twice with the same ID:
// consumers then handle it twice, and its dead letter can appear twice.
// Handlers must be idempotent in any case; set MaxRetries to -1 on the
// producer's client to make the retry yours.
func (p *Producer) Push(ctx context.Context, values map[string]any) (string, error) {
	return publish.One(ctx, p.hook, func(ctx context.Context, fields []string) (string, error) {
		return p.push(ctx, values, fields)
	})
}

// push is Push with the fields a hook added (name, value, ...).
func (p *Producer) push(ctx context.Context, values map[string]any, extra []string) (string, error) {
	ids, err := p.pushBatch(ctx, []map[string]any{values}, extra)
	if be, ok := errors.AsType[*BatchError](err); ok {
		err = be.Errs[0]
	}
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// PushPayload pushes one job holding v encoded with the producer's codec,
// in the fields [stream.PayloadField] and [stream.ContentTypeField], and
// returns its ID. Handlers read it back with [stream.Decode] or
// handler.Typed, exactly as for a stream entry.
func (p *Producer) PushPayload(ctx context.Context, v any) (string, error) {
	values, err := stream.Encode(p.codec, v)
	if err != nil {
		publish.Failed(ctx, p.hook, err)
		return "", err
	}
	return p.Push(ctx, values)
}

// PushBatch pushes jobs in order, in one round trip, and returns their IDs
// in the same order. Consumers take them in that order (the first job is
// handled first). Up to 1000 jobs go into one LPUSH, which is atomic; a
// larger batch is several LPUSHes in one pipeline, so jobs of other
// producers may interleave between them.
//
// When any job fails, PushBatch returns the IDs of those that were pushed
// ("" for the others) and a [*BatchError] holding each job's error. An
// empty jobs makes no round trip and returns (nil, nil).
func (p *Producer) PushBatch(ctx context.Context, jobs []map[string]any) ([]string, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	return publish.Batch(ctx, p.hook, len(jobs), func(ctx context.Context, fields []string) ([]string, error) {
		return p.pushBatch(ctx, jobs, fields)
	})
}

// pushBatch is PushBatch with the fields a hook added: each job gets
// those it does not have.
func (p *Producer) pushBatch(ctx context.Context, jobs []map[string]any, extra []string) ([]string, error) {
	p.evict.Do(ctx, p.rdb, p.log) // the maxmemory-policy check, before the first push
	ids := listwire.NewIDs(len(jobs))
	errs := make([]error, len(jobs))
	var idx []int // of the jobs encoded, in order
	var args []any
	for i, values := range jobs {
		v, err := stringValues(values)
		if err != nil {
			errs[i] = err
			continue
		}
		for k := 0; k+1 < len(extra); k += 2 {
			if _, ok := v[extra[k]]; !ok {
				v[extra[k]] = extra[k+1]
			}
		}
		env := listwire.Envelope{SG: 1, ID: ids[i], V: v}
		idx, args = append(idx, i), append(args, env.Encode())
	}
	pipe := p.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, 0, len(args)/maxPushArgs+1)
	for k := 0; k < len(args); k += maxPushArgs {
		cmds = append(cmds, pipe.LPush(ctx, p.queue, args[k:min(k+maxPushArgs, len(args))]...))
	}
	if len(cmds) > 0 {
		_, _ = pipe.Exec(ctx) // each command's error is inspected below
	}
	for c, cmd := range cmds {
		for _, i := range idx[c*maxPushArgs : min((c+1)*maxPushArgs, len(idx))] {
			errs[i] = cmd.Err()
		}
	}
	failed := false
	for i, err := range errs {
		if err != nil {
			ids[i], errs[i], failed = "", fmt.Errorf("queue: push to %q: %w", p.queue, err), true
		}
	}
	if failed {
		return ids, &BatchError{Queue: p.queue, Errs: errs}
	}
	return ids, nil
}

// BatchError reports the jobs of a [Producer.PushBatch] that failed. It
// matches, with errors.Is and errors.As, every error it holds.
type BatchError struct {
	// Queue is the list key.
	Queue string
	// Errs has one element per job of the batch, in order: nil for a job
	// that was pushed.
	Errs []error
}

// Error reports how many jobs failed and the first failure.
func (e *BatchError) Error() string {
	return batcherr.Message("queue", "push", "pushed", "job", "jobs", e.Queue, e.Errs)
}

// Unwrap returns the non-nil errors of Errs.
func (e *BatchError) Unwrap() []error { return batcherr.NonNil(e.Errs) }
