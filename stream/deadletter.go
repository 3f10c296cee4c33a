package stream

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/streamgroup/streamgroup/internal/keys"
)

// DeadLetterKey returns the default dead-letter stream of the stream key:
// "{jobs:email}:dead" for "jobs:email", and key+":dead" when key already has
// a Redis Cluster hash tag ("{jobs}:email:dead" for "{jobs}:email"). Either
// way it hashes to the slot of key, so on Redis Cluster the consumer's
// dead-letter script, which writes both keys, works.
func DeadLetterKey(key string) string { return keys.Beside(key, ":dead") }

// Fields a consumer adds to an entry when it moves it to a dead-letter
// stream. The entry keeps all of its original fields besides these.
const (
	DeadIDField         = "dlq:id"         // the entry's ID in its original stream
	DeadStreamField     = "dlq:stream"     // the original stream key
	DeadGroupField      = "dlq:group"      // the consumer group that gave up
	DeadConsumerField   = "dlq:consumer"   // the consumer that moved it
	DeadDeliveriesField = "dlq:deliveries" // Redis's delivery count at that time
	DeadErrorField      = "dlq:error"      // the last error, or why it was moved
	DeadTimeField       = "dlq:at"         // when, in Unix milliseconds
)

// ErrNotDeadLetter is wrapped by the error [ParseDeadLetter] returns for an
// entry that is not a dead letter, and queue.ParseDeadLetter for a list
// element that is not a dead-letter record.
var ErrNotDeadLetter = errors.New("stream: not a dead letter")

// DeadLetter describes one dead letter: an entry a group consumer moved to
// a dead-letter stream, read with [ParseDeadLetter], or a job a queue
// consumer moved to a dead-letter list, read with queue.ParseDeadLetter.
// The fields that name the original message (Stream, OriginalID, Values,
// Deliveries) mean what they mean in the [Message] its handler last saw.
// It is a plain value; the zero value describes nothing.
type DeadLetter struct {
	// Stream is the key the message came from: its stream, or for a job
	// its queue (list) key, as in [Message.Stream].
	Stream string
	// Group is the consumer group that gave up; empty for a job.
	Group string
	// Consumer is the consumer that moved it; empty for a job moved by a
	// simple (unreliable) queue consumer.
	Consumer string
	// OriginalID is the message's ID in Stream; empty for a malformed list
	// element that had none.
	OriginalID string
	// Deliveries is how many times the message was delivered, counting the
	// last delivery: Redis's delivery count for a stream entry, the attempt
	// count for a job.
	Deliveries int64
	// Error is the last handler error, or why the message was moved
	// without one (at most about 2 KiB).
	Error string
	// At is when it was moved, to the millisecond; the zero time when the
	// record does not say.
	At time.Time
	// Values are the original fields, without the dead-letter ones. For a
	// stream entry that repeated a field name, the dead letter holds every
	// value in order, and Values the last one. For a job they are the
	// fields its handler saw; nil when the list element was malformed
	// (see Element).
	Values map[string]string
	// Element is, for a job, the list element exactly as the consumer held
	// it: an envelope whose attempt count includes the last delivery (see
	// docs/wire-format.md), or, when Values is nil, the malformed element
	// as it was found. Empty for a stream entry.
	Element string
}

// ParseDeadLetter reads the dead-letter metadata of m, an entry of a
// dead-letter stream. It returns an error wrapping [ErrNotDeadLetter] when m
// does not carry it (m was not written by a consumer's dead-lettering). It
// is lenient with the other dead-letter fields: one that is missing or does
// not parse leaves its field of the DeadLetter zero.
func ParseDeadLetter(m *Message) (DeadLetter, error) {
	if m == nil {
		return DeadLetter{}, fmt.Errorf("%w: nil message", ErrNotDeadLetter)
	}
	id, ok := m.Values[DeadIDField]
	if !ok {
		return DeadLetter{}, fmt.Errorf("%w: entry %s has no %s field", ErrNotDeadLetter, m.ID, DeadIDField)
	}
	d := DeadLetter{
		OriginalID: id,
		Stream:     m.Values[DeadStreamField],
		Group:      m.Values[DeadGroupField],
		Consumer:   m.Values[DeadConsumerField],
		Error:      m.Values[DeadErrorField],
		Values:     make(map[string]string, len(m.Values)),
	}
	d.Deliveries, _ = strconv.ParseInt(m.Values[DeadDeliveriesField], 10, 64)
	if ms, err := strconv.ParseInt(m.Values[DeadTimeField], 10, 64); err == nil {
		d.At = time.UnixMilli(ms)
	}
	for k, v := range m.Values {
		switch k {
		case DeadIDField, DeadStreamField, DeadGroupField, DeadConsumerField, DeadDeliveriesField, DeadErrorField, DeadTimeField:
		default:
			d.Values[k] = v
		}
	}
	return d, nil
}
