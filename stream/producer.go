package stream

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/argerr"
	"github.com/streamgroup/streamgroup/internal/batcherr"
	"github.com/streamgroup/streamgroup/internal/publish"
	"github.com/streamgroup/streamgroup/internal/redisarg"
	"github.com/streamgroup/streamgroup/internal/redischeck"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/script"
)

// ErrInvalidOptions is wrapped by the error [NewProducer] and [NewReader]
// return for bad input: a nil client, an empty stream name, or option
// values that cannot work, such as a negative MaxLen. It is the same value
// as group.ErrInvalidOptions and queue.ErrInvalidOptions, so errors.Is
// matches an invalid-input error from any package against any of them.
var ErrInvalidOptions = argerr.ErrInvalid

// ErrNoStream is wrapped by the error an add returns when
// [ProducerOptions.NoMkStream] is set and the stream does not exist.
var ErrNoStream = errors.New("stream: stream does not exist")

// ErrEmptyEntry is wrapped by the error an add returns for an entry without
// fields: Redis requires at least one field/value pair.
var ErrEmptyEntry = errors.New("stream: entry has no fields")

// DefaultTrimInterval is how many adds a [Producer] makes between two safe
// trims when [ProducerOptions.TrimInterval] is zero.
const DefaultTrimInterval = 100

// ProducerOptions configures a [Producer]. A nil *ProducerOptions means all
// defaults: no trimming, the stream is created by the first add, payloads
// are encoded as JSON, concurrent single adds are coalesced into pipelines
// of up to [DefaultMaxBatch] entries, [DefaultMaxInFlight] at a time.
//
// Trimming is off unless MaxLen or MinID is set. By default it is safe: it
// never removes an entry that a consumer group has not been delivered yet or
// still holds pending, so a slow or stopped group makes the stream grow past
// MaxLen rather than lose work. Safety comes from the groups on the stream:
// with no group on it, trimming works like plain XTRIM, and a group created
// later never sees what was trimmed, so create the group (for example with
// group.Manager.EnsureGroup) before producing. See [Producer.Trim].
type ProducerOptions struct {
	// MaxLen is the stream length to trim to. Zero means no length cap.
	// Negative is invalid. MaxLen and MinID are mutually exclusive, as in
	// Redis.
	MaxLen int64

	// MinID is the entry ID below which entries are trimmed, "<ms>-<seq>"
	// or "<ms>". Empty means none.
	MinID string

	// ExactTrim trims exactly to MaxLen or MinID. False means approximate
	// ("~") trimming: Redis removes only whole internal nodes, so a few more
	// entries than asked for may stay, and trimming is much cheaper.
	ExactTrim bool

	// UnsafeTrim makes every add trim with plain XADD MAXLEN or MINID, as
	// Redis does, ignoring consumer groups.
	//
	// WARNING: this can delete entries that no consumer has processed yet:
	// entries not yet delivered to a group, and entries delivered but not
	// acknowledged (whose handler may then fail and find nothing to retry).
	// Use it only when losing unconsumed work is acceptable, for example for
	// a stream that nothing consumes through a group. False means safe
	// trimming.
	UnsafeTrim bool

	// TrimInterval is how many adds pass between two safe trims; the trim
	// rides in the same round trip as the add that makes it due. Zero means
	// [DefaultTrimInterval]; 1 trims after every add. Negative is invalid.
	// It is ignored when trimming is off or UnsafeTrim is set.
	TrimInterval int

	// NoMkStream makes adds fail with [ErrNoStream] when the stream does not
	// exist, instead of creating it. False means XADD creates the stream.
	NoMkStream bool

	// Codec encodes the values given to [Producer.AddPayload]. Nil means
	// [JSON].
	Codec Codec

	// MaxInFlight is how many pipelines of single adds ([Producer.Add],
	// [Producer.AddEntry], [Producer.AddPayload]) the producer has in
	// flight at once. An add that finds them all busy waits, and is sent
	// with the other waiting adds, in one pipeline, as soon as one of them
	// returns. Zero means [DefaultMaxInFlight]. Negative is invalid.
	// [Producer.AddBatch] is not limited by it.
	MaxInFlight int

	// MaxBatch is the most waiting single adds one pipeline carries. Zero
	// means [DefaultMaxBatch]; 1 turns coalescing off (adds then wait for a
	// free pipeline one by one). Negative is invalid.
	MaxBatch int

	// Logger receives the producer's one log line: the warning, logged
	// once before the first add, that the server's maxmemory-policy is not
	// noeviction (Redis may then evict the stream and lose work), or, at
	// Info, that it could not be checked (CONFIG GET refused). Nil means
	// [slog.Default] (as it is when the check runs).
	Logger *slog.Logger

	// OnError receives the errors of the automatic trims that follow adds.
	// Such an error never fails the add: the entries were written, and the
	// next due trim tries again. Nil means such errors are dropped. It must
	// be safe for concurrent use.
	OnError func(err error)

	// Hook is told about every add (Publish before it, Published after,
	// one pair per call: [Producer.AddBatch] is one publish of all its
	// entries), and may add fields to the entries, such as a trace
	// context (see package hook and docs/wire-format.md). NewProducer
	// asks it once for the producer's hook.Producer. Nil means none.
	Hook hook.Hook
}

// Entry is one entry to add. The zero value has no fields, so adding it
// fails with [ErrEmptyEntry].
type Entry struct {
	// ID is the entry ID to use, "<ms>-<seq>", "<ms>" (sequence 0) or
	// "<ms>-*" (Redis picks the sequence). Empty or "*" means Redis
	// assigns the ID; explicit IDs must be greater than the stream's top ID.
	ID string
	// Values holds the field/value pairs; there must be at least one. A
	// value is a string, []byte, number, bool, time.Time, time.Duration,
	// net.IP, a pointer to one of those, nil (written as ""), or implements
	// encoding.BinaryMarshaler: what go-redis can write.
	Values map[string]any
}

// Producer adds entries to one stream and keeps its length in check. It is
// safe for concurrent use, and built for it: single adds made at the same
// time from many goroutines are coalesced into pipelines (see
// [Producer.AddEntry]), so publishing from a goroutine per request costs
// few round trips. Its first add is preceded by a check of the server's
// maxmemory-policy (one CONFIG GET, once; see [ProducerOptions.Logger]). It
// starts no goroutines, does not own the client and never closes it. The zero value is not usable: create one with
// [NewProducer].
type Producer struct {
	rdb      redis.UniversalClient
	stream   string
	opts     ProducerOptions // a copy, normalised
	minID    string          // opts.MinID normalised to "<ms>-<seq>"
	approx   string          // "~" or "="
	trimming bool            // MaxLen or MinID set
	adds     atomic.Uint64   // adds made, for TrimInterval
	prefix   []any           // of every XADD: see xaddPrefix
	co       coalescer       // single adds waiting for a pipeline
	evict    redischeck.Once // the maxmemory-policy check, before the first add
	hook     hook.Producer   // nil: none
}

//go:embed trim.lua
var trimSource string

var trimScript = script.New("trim", []string{"TYPE", "XINFO GROUPS", "XRANGE", "XREVRANGE", "XPENDING", "XLEN", "XTRIM"}, trimSource)

// NewProducer returns a producer that adds to stream through rdb. A nil
// opts means defaults. It returns an error wrapping [ErrInvalidOptions],
// and naming the problem, when rdb is nil, stream is empty or an option
// value is invalid.
func NewProducer(rdb redis.UniversalClient, stream string, opts *ProducerOptions) (*Producer, error) {
	if err := argerr.Target(rdb, "stream", stream); err != nil {
		return nil, err
	}
	p := &Producer{rdb: rdb, stream: stream, approx: "~"}
	if opts != nil {
		p.opts = *opts
	}
	o := &p.opts
	if o.MaxLen < 0 {
		return nil, fmt.Errorf("%w: MaxLen %d is negative", ErrInvalidOptions, o.MaxLen)
	}
	if o.MaxInFlight < 0 {
		return nil, fmt.Errorf("%w: MaxInFlight %d is negative", ErrInvalidOptions, o.MaxInFlight)
	}
	if o.MaxBatch < 0 {
		return nil, fmt.Errorf("%w: MaxBatch %d is negative", ErrInvalidOptions, o.MaxBatch)
	}
	if o.TrimInterval < 0 {
		return nil, fmt.Errorf("%w: TrimInterval %d is negative", ErrInvalidOptions, o.TrimInterval)
	}
	if o.MaxLen > 0 && o.MinID != "" {
		return nil, fmt.Errorf("%w: MaxLen and MinID are mutually exclusive", ErrInvalidOptions)
	}
	if o.MinID != "" {
		id, err := ParseID(o.MinID)
		if err != nil {
			return nil, fmt.Errorf("%w: MinID: %w", ErrInvalidOptions, err)
		}
		p.minID = id.String()
	}
	if o.TrimInterval == 0 {
		o.TrimInterval = DefaultTrimInterval
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Codec == nil {
		o.Codec = JSON
	}
	if o.ExactTrim {
		p.approx = "="
	}
	p.trimming = o.MaxLen > 0 || o.MinID != ""
	p.prefix = p.xaddPrefix()
	if o.Hook != nil {
		p.hook = o.Hook.Producer(hook.Target{Kind: hook.Stream, Name: stream, Client: rdb})
	}
	return p, nil
}

// Stream returns the key of the stream p adds to.
func (p *Producer) Stream() string { return p.stream }

// Add adds one entry with the given fields and returns the ID Redis
// assigned. Concurrent calls are coalesced into pipelines; see
// [Producer.AddEntry].
func (p *Producer) Add(ctx context.Context, values map[string]any) (string, error) {
	return p.AddEntry(ctx, Entry{Values: values})
}

// AddPayload adds one entry holding v encoded with the producer's codec, in
// the fields [PayloadField] and [ContentTypeField] (see [Encode]), and
// returns its ID. Consumers read it back with [Decode]. It is coalesced
// like [Producer.AddEntry].
func (p *Producer) AddPayload(ctx context.Context, v any) (string, error) {
	values, err := Encode(p.opts.Codec, v)
	if err != nil {
		publish.Failed(ctx, p.hook, err)
		return "", err
	}
	return p.Add(ctx, values)
}

// AddEntry adds e and returns its ID.
//
// Concurrent single adds are coalesced: an add that finds no pipeline in
// flight is sent at once, alone, so an uncontended add costs one round trip
// and no added latency; one that finds some, but fewer than
// [ProducerOptions.MaxInFlight], yields the processor once and takes the
// adds made meanwhile along in its pipeline; one that finds them all busy
// waits, and all the adds waiting when one of those pipelines returns (up
// to [ProducerOptions.MaxBatch]) go together in the next. Each add still
// gets its own ID or its own error: a bad entry fails only its own add.
// Successive adds from one goroutine keep their order in the stream;
// concurrent adds have no order between them.
//
// ctx governs the add until its entry is sent. An add whose ctx is done
// before then returns ctx's error and its entry is not added. Once sent,
// the add waits for Redis's reply, even if ctx is cancelled meanwhile, and
// reports whether the entry was added: a caller's cancellation neither
// fails the other entries of its pipeline nor turns a write that went
// through into an error that invites a duplicate retry. The pipeline's
// deadline is the latest deadline among the contexts of the adds it
// carries (none if one has none), so an add may return after its own
// deadline; the client's dial, read and write timeouts and retries bound
// it as well. The pipeline carries the values (a trace span, say) of the
// ctx of the add that leads it.
//
// The error wraps [ErrEmptyEntry] for an entry without fields, [ErrInvalidID]
// for a malformed e.ID, [ErrNoStream] when NoMkStream is set and the stream
// is missing, and otherwise the go-redis error (a key of another type gives
// Redis's WRONGTYPE reply; a lost connection fails every add of the
// pipeline). After a network error or a deadline that expired in flight the
// entry may or may not have been added.
func (p *Producer) AddEntry(ctx context.Context, e Entry) (string, error) {
	return publish.One(ctx, p.hook, func(ctx context.Context, fields []string) (string, error) {
		return p.addEntry(ctx, e, fields)
	})
}

// addEntry is AddEntry with the fields a hook added (name, value, ...).
// The arguments are built here, in the caller's goroutine, before the add
// may join other callers' in a pipeline: each entry gets its own fields.
func (p *Producer) addEntry(ctx context.Context, e Entry, extra []string) (string, error) {
	args, err := p.xaddArgs(e, extra)
	if err != nil {
		return "", err
	}
	p.evict.Do(ctx, p.rdb, p.opts.Logger) // the maxmemory-policy check, before the first add
	if err := ctx.Err(); err != nil {
		return "", p.wrap(err)
	}
	return p.add(ctx, args)
}

// AddBatch adds entries in order, in one pipelined round trip, and returns
// their IDs in the same order. It is not a transaction: entries from other
// producers may interleave, and each entry succeeds or fails on its own.
// It is sent at once, with ctx, neither coalesced with single adds nor
// limited by [ProducerOptions.MaxInFlight]; a ctx cancelled in flight fails
// the entries not yet replied to, which may or may not have been added.
//
// When any entry fails, AddBatch returns the IDs of those that were added
// ("" for the others) and a [*BatchError] holding each entry's error, whose
// individual errors are as described for [Producer.AddEntry]. An empty
// entries makes no round trip and returns (nil, nil).
func (p *Producer) AddBatch(ctx context.Context, entries []Entry) ([]string, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	return publish.Batch(ctx, p.hook, len(entries), func(ctx context.Context, fields []string) ([]string, error) {
		return p.addBatch(ctx, entries, fields)
	})
}

// addBatch is AddBatch with the fields a hook added.
func (p *Producer) addBatch(ctx context.Context, entries []Entry, extra []string) ([]string, error) {
	ids := make([]string, len(entries))
	errs := make([]error, len(entries))
	args := make([][]any, 0, len(entries))
	valid := make([]int, 0, len(entries)) // index in entries of args[k]
	for i, e := range entries {
		a, err := p.xaddArgs(e, extra)
		if err != nil {
			errs[i] = err
			continue
		}
		args = append(args, a)
		valid = append(valid, i)
	}
	if len(args) > 0 {
		p.evict.Do(ctx, p.rdb, p.opts.Logger) // the maxmemory-policy check, before the first add
		sentIDs, sentErrs := p.send(ctx, args)
		for k, i := range valid {
			ids[i], errs[i] = sentIDs[k], sentErrs[k]
		}
	}
	if slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		return ids, &BatchError{Stream: p.stream, Errs: errs}
	}
	return ids, nil
}

// send runs the XADDs args (see xaddArgs) in one pipeline, with a safe trim
// when one is due, and returns each entry's ID or error.
func (p *Producer) send(ctx context.Context, args [][]any) ([]string, []error) {
	ids := make([]string, len(args))
	errs := make([]error, len(args))
	cmds := make([]*redis.StringCmd, len(args))
	for i, a := range args {
		cmds[i] = redis.NewStringCmd(ctx, a...)
	}
	var trim *redis.Cmd
	var execErr error
	if due := p.trimDue(len(args)); len(args) == 1 && !due {
		// One command alone, as an uncontended add is: no pipeline to
		// build, so the lowest latency.
		execErr = p.rdb.Process(ctx, cmds[0])
	} else {
		pipe := p.rdb.Pipeline()
		for _, cmd := range cmds {
			_ = pipe.Process(ctx, cmd) // queues it; errors come from Exec
		}
		if due {
			trim = p.trimCmd(ctx, pipe)
		}
		// Exec's error is the first failed command's; each command is
		// inspected below.
		_, execErr = pipe.Exec(ctx)
	}

	for i, cmd := range cmds {
		id, err := cmd.Result()
		if err == nil && id == "" { // not run at all; go-redis sets errors, but be sure
			err = cmp.Or(execErr, errors.New("no reply"))
		}
		switch {
		case rediserr.IsNil(err):
			errs[i] = fmt.Errorf("%w: %q", ErrNoStream, p.stream)
		case err != nil:
			errs[i] = p.wrap(err)
		default:
			ids[i] = id
		}
	}
	if trim != nil {
		if err := trim.Err(); err != nil && p.opts.OnError != nil {
			p.opts.OnError(fmt.Errorf("stream: trim %q: %w", p.stream, trimScript.Wrap(err)))
		}
	}
	return ids, errs
}

// Trim trims the stream now, as configured, and returns the number of
// entries removed. With trimming off it returns (0, nil); a missing stream
// removes nothing.
//
// Safe trimming (the default) removes only entries below both the
// configured floor and the oldest entry any consumer group still needs: for
// each group, its oldest pending entry and the first entry after its
// last-delivered-id. With no groups it trims like XTRIM. It runs as one Lua
// script on the stream's key (atomic, and Cluster-safe).
//
// The script's cost is one XRANGE and one XPENDING per group, plus, for
// MaxLen, reading min(XLEN-MaxLen, MaxLen) entry IDs to find the oldest
// entry to keep (no more than lie below the safe floor): with the default
// TrimInterval that is a few hundred IDs per trim at most.
//
// With [ProducerOptions.UnsafeTrim] it runs a plain XTRIM, which ignores
// consumer groups.
func (p *Producer) Trim(ctx context.Context) (int64, error) {
	if !p.trimming {
		return 0, nil
	}
	var n int64
	var err error
	switch {
	case !p.opts.UnsafeTrim:
		n, err = trimScript.Run(ctx, p.rdb, []string{p.stream}, p.trimArgs()...).Int64()
	case p.opts.MaxLen > 0 && p.opts.ExactTrim:
		n, err = p.rdb.XTrimMaxLen(ctx, p.stream, p.opts.MaxLen).Result()
	case p.opts.MaxLen > 0:
		n, err = p.rdb.XTrimMaxLenApprox(ctx, p.stream, p.opts.MaxLen, 0).Result()
	case p.opts.ExactTrim:
		n, err = p.rdb.XTrimMinID(ctx, p.stream, p.minID).Result()
	default:
		n, err = p.rdb.XTrimMinIDApprox(ctx, p.stream, p.minID, 0).Result()
	}
	if err != nil {
		return 0, fmt.Errorf("stream: trim %q: %w", p.stream, err)
	}
	return n, nil
}

// trimDue counts n adds and reports whether they cross a multiple of
// TrimInterval, so that one trim runs per TrimInterval adds however the
// adds are spread over goroutines and batches.
func (p *Producer) trimDue(n int) bool {
	if !p.trimming || p.opts.UnsafeTrim {
		return false
	}
	every := uint64(p.opts.TrimInterval)
	after := p.adds.Add(uint64(n))
	return after/every != (after-uint64(n))/every
}

func (p *Producer) trimArgs() []any {
	return []any{p.minID, p.opts.MaxLen, p.approx}
}

// trimCmd queues the safe-trim script on pipe. EVAL, not EVALSHA: a
// pipeline cannot fall back on NOSCRIPT, and the script is small.
func (p *Producer) trimCmd(ctx context.Context, pipe redis.Pipeliner) *redis.Cmd {
	return trimScript.Eval(ctx, pipe, []string{p.stream}, p.trimArgs()...)
}

func (p *Producer) wrap(err error) error {
	return fmt.Errorf("stream: add to %q: %w", p.stream, err)
}

// invalid reports an entry rejected before it was sent.
func (p *Producer) invalid(err error) error {
	return fmt.Errorf("%w (stream %q)", err, p.stream)
}

// xaddArgs validates e and builds its XADD command's arguments, failing
// here rather than in the pipeline, where a value go-redis cannot write would
// fail every entry. The arguments are built directly (not through
// redis.XAddArgs, which go-redis copies into a slice of its own): one
// allocation per entry instead of three, on the path every add takes.
// extra holds the fields a hook added (name, value, ...): they follow the
// entry's own, but for those the entry has already.
func (p *Producer) xaddArgs(e Entry, extra []string) ([]any, error) {
	if len(e.Values) == 0 {
		return nil, p.invalid(ErrEmptyEntry)
	}
	id, err := xaddID(e.ID)
	if err != nil {
		return nil, p.invalid(err)
	}
	args := make([]any, 0, len(p.prefix)+1+2*len(e.Values)+len(extra))
	args = append(args, p.prefix...)
	args = append(args, id)
	if len(extra) > 0 {
		if args, err = p.appendValues(args, e.Values); err != nil {
			return nil, err
		}
		for i := 0; i+1 < len(extra); i += 2 {
			if _, ok := e.Values[extra[i]]; !ok {
				args = append(args, extra[i], extra[i+1])
			}
		}
		return args, nil
	}
	return p.appendValues(args, e.Values)
}

// appendValues appends an entry's fields to an XADD's arguments, in the
// order of their names.
func (p *Producer) appendValues(args []any, values map[string]any) ([]any, error) {
	if len(values) == 1 {
		for f, v := range values {
			return p.appendField(args, f, v)
		}
	}
	var buf [8]string
	fields := buf[:0]
	for f := range values {
		fields = append(fields, f)
	}
	slices.Sort(fields) // a stable field order, easier to read in redis-cli
	var err error
	for _, f := range fields {
		if args, err = p.appendField(args, f, values[f]); err != nil {
			return nil, err
		}
	}
	return args, nil
}

// appendField appends one field and its value to an XADD's arguments.
func (p *Producer) appendField(args []any, f string, v any) ([]any, error) {
	v, err := argValue(v)
	if err != nil {
		return nil, fmt.Errorf("stream: add to %q: field %q: %w", p.stream, f, err)
	}
	return append(args, f, v), nil
}

// xaddPrefix returns what every XADD of p starts with: the command, the
// key, NOMKSTREAM and, for UnsafeTrim, the trim.
func (p *Producer) xaddPrefix() []any {
	prefix := []any{"xadd", p.stream}
	if p.opts.NoMkStream {
		prefix = append(prefix, "nomkstream")
	}
	if p.opts.UnsafeTrim {
		switch {
		case p.opts.MaxLen > 0:
			prefix = append(prefix, "maxlen", p.approx, p.opts.MaxLen)
		case p.minID != "":
			prefix = append(prefix, "minid", p.approx, p.minID)
		}
	}
	return prefix
}

// xaddID checks and normalises an entry ID for XADD.
func xaddID(s string) (string, error) {
	if s == "" || s == "*" {
		return "*", nil
	}
	if ms, ok := strings.CutSuffix(s, "-*"); ok {
		if _, err := strconv.ParseUint(ms, 10, 64); err != nil || ms == "" || ms[0] == '+' {
			return "", fmt.Errorf("%w: %q", ErrInvalidID, s)
		}
		return s, nil
	}
	id, err := ParseID(s)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// argValue returns v as go-redis will write it (package redisarg), or an
// error for a type it cannot write. Marshalers run here, so their errors
// stay with their entry.
func argValue(v any) (any, error) {
	switch v.(type) {
	case string, []byte:
		return v, nil
	}
	return redisarg.String(v)
}

// BatchError reports the entries of a [Producer.AddBatch] that failed. It
// matches, with errors.Is and errors.As, every error it holds.
type BatchError struct {
	// Stream is the stream key.
	Stream string
	// Errs has one element per entry of the batch, in order: nil for an
	// entry that was added.
	Errs []error
}

// Error reports how many entries failed and the first failure.
func (e *BatchError) Error() string {
	return batcherr.Message("stream", "add", "added", "entry", "entries", e.Stream, e.Errs)
}

// Unwrap returns the non-nil errors of Errs.
func (e *BatchError) Unwrap() []error { return batcherr.NonNil(e.Errs) }
