package stream

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/argerr"
)

// DefaultPageSize is the page size of a [Reader] whose
// [ReaderOptions.PageSize] is zero.
const DefaultPageSize = 100

// maxID is the largest stream ID; nothing follows it.
var maxID = ID{Ms: ^uint64(0), Seq: ^uint64(0)}

// ReaderOptions configures a [Reader]. A nil *ReaderOptions means all
// defaults.
type ReaderOptions struct {
	// PageSize is how many entries each XRANGE or XREVRANGE asks for (its
	// COUNT). Zero means [DefaultPageSize]. Negative is invalid.
	PageSize int64
}

// Reader reads a stream's history, outside any consumer group, for replay
// and inspection. Reading acknowledges nothing and changes nothing. It is
// safe for concurrent use. It does not own the client and never closes it.
// The zero value is not usable: create one with [NewReader].
type Reader struct {
	rdb      redis.UniversalClient
	stream   string
	pageSize int64
}

// NewReader returns a reader of stream through rdb. A nil opts means
// defaults. It returns an error wrapping [ErrInvalidOptions], and naming
// the problem, when rdb is nil, stream is empty or an option value is
// invalid.
func NewReader(rdb redis.UniversalClient, stream string, opts *ReaderOptions) (*Reader, error) {
	if err := argerr.Target(rdb, "stream", stream); err != nil {
		return nil, err
	}
	r := &Reader{rdb: rdb, stream: stream, pageSize: DefaultPageSize}
	if opts != nil {
		if opts.PageSize < 0 {
			return nil, fmt.Errorf("%w: PageSize %d is negative", ErrInvalidOptions, opts.PageSize)
		}
		if opts.PageSize > 0 {
			r.pageSize = opts.PageSize
		}
	}
	return r, nil
}

// Stream returns the key of the stream r reads.
func (r *Reader) Stream() string { return r.stream }

// Range returns the entries with IDs from start to end inclusive, oldest
// first, fetched a page at a time with XRANGE. start and end are entry IDs
// ("<ms>-<seq>" or "<ms>"), "-" for the first entry or "+" for the last; an
// ID prefixed with "(" is exclusive.
//
// The sequence yields each entry as a [*Message] with Stream set and
// Deliveries 0, or a nil message and an error, after which it ends. Invalid
// bounds give an error wrapping [ErrInvalidID]; a key of another type gives
// Redis's WRONGTYPE reply; a missing stream is an empty sequence. Each page
// is read when the previous one is used up, so entries added or deleted
// meanwhile may or may not be seen. Breaking out of the loop stops reading.
func (r *Reader) Range(ctx context.Context, start, end string) iter.Seq2[*Message, error] {
	return r.pages(ctx, start, end, false)
}

// RevRange is [Reader.Range] in reverse, newest first, with XREVRANGE: it
// yields the entries from end down to start inclusive. Note the order of
// the arguments, as in XREVRANGE.
func (r *Reader) RevRange(ctx context.Context, end, start string) iter.Seq2[*Message, error] {
	return r.pages(ctx, start, end, true)
}

// Each calls fn for each entry of [Reader.Range](ctx, start, end), oldest
// first. It stops at, and returns, the first error from reading or from fn.
func (r *Reader) Each(ctx context.Context, start, end string, fn func(*Message) error) error {
	for msg, err := range r.Range(ctx, start, end) {
		if err != nil {
			return err
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
	return nil
}

func (r *Reader) pages(ctx context.Context, start, end string, reverse bool) iter.Seq2[*Message, error] {
	return func(yield func(*Message, error) bool) {
		for _, b := range []string{start, end} {
			if err := checkBound(b); err != nil {
				yield(nil, fmt.Errorf("stream: range %q: %w", r.stream, err))
				return
			}
		}
		// from is the bound the pages advance: start going forward, end
		// going backward.
		from := start
		if reverse {
			from = end
		}
		for {
			var page []redis.XMessage
			var err error
			if reverse {
				page, err = r.rdb.XRevRangeN(ctx, r.stream, from, start, r.pageSize).Result()
			} else {
				page, err = r.rdb.XRangeN(ctx, r.stream, from, end, r.pageSize).Result()
			}
			if err != nil {
				yield(nil, fmt.Errorf("stream: range %q: %w", r.stream, err))
				return
			}
			for _, x := range page {
				m, _ := FromXMessage(r.stream, x) // ranges never return deleted entries
				if !yield(&m, nil) {
					return
				}
			}
			if int64(len(page)) < r.pageSize {
				return
			}
			last, err := ParseID(page[len(page)-1].ID)
			if err != nil {
				yield(nil, fmt.Errorf("stream: range %q: %w", r.stream, err))
				return
			}
			// Redis rejects an exclusive bound beyond the last possible ID.
			if (!reverse && last == maxID) || (reverse && last == ID{}) {
				return
			}
			from = "(" + last.String()
		}
	}
}

// checkBound accepts the bounds XRANGE accepts: "-", "+", an ID, or an ID
// prefixed with "(".
func checkBound(s string) error {
	if s == "-" || s == "+" {
		return nil
	}
	_, err := ParseID(strings.TrimPrefix(s, "("))
	return err
}

// FromXMessage converts an entry as go-redis returns it into a [Message] of
// stream, with Deliveries 0. Values that are not strings (as some clients
// or hooks may produce) are converted: []byte directly, anything else with
// fmt.Sprint.
//
// ok is false when x.Values is nil: Redis returns an entry without fields
// when a consumer group's pending entry was deleted from the stream (XDEL
// or trimming) and is then read from the pending list or claimed. The
// returned Message then has the ID and Stream but nil Values; there is
// nothing to process and the caller should acknowledge it.
func FromXMessage(stream string, x redis.XMessage) (msg Message, ok bool) {
	msg = Message{ID: x.ID, Stream: stream}
	if x.Values == nil {
		return msg, false
	}
	msg.Values = make(map[string]string, len(x.Values))
	for k, v := range x.Values {
		switch v := v.(type) {
		case string:
			msg.Values[k] = v
		case []byte:
			msg.Values[k] = string(v)
		default:
			msg.Values[k] = fmt.Sprint(v)
		}
	}
	return msg, true
}
