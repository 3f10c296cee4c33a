package stream

import (
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

// DeadLetter is the metadata of an entry read from a dead-letter stream. It
// is a plain value; the zero value describes nothing.
type DeadLetter struct {
	OriginalID string
	Stream     string
	Group      string
	Consumer   string
	Deliveries int64
	Error      string
	At         time.Time
	// Values are the original fields, without the dead-letter ones. For a
	// field name the original entry repeated, the dead letter holds every
	// value in order, and Values the last one.
	Values map[string]string
}

// ParseDeadLetter reads the dead-letter metadata of m. It reports false when
// m does not carry it (m was not written by a consumer's dead-lettering).
func ParseDeadLetter(m *Message) (DeadLetter, bool) {
	id, ok := m.Values[DeadIDField]
	if !ok {
		return DeadLetter{}, false
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
	return d, true
}
