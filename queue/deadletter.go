package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/streamgroup/streamgroup/stream"
)

// ErrNotDeadLetter is wrapped by the error [ParseDeadLetter] returns for a
// string that is not a dead-letter record.
var ErrNotDeadLetter = errors.New("queue: not a dead-letter record")

// deadRecord is the JSON object a consumer pushes to the dead-letter list.
type deadRecord struct {
	Dead     int    `json:"sgdead"`
	Queue    string `json:"queue"`
	ID       string `json:"id,omitempty"`
	Consumer string `json:"consumer,omitempty"`
	Attempts int64  `json:"attempts"`
	Error    string `json:"error"`
	At       int64  `json:"at"`
	Job      string `json:"job"`
}

// maxErrorText bounds the reason stored with a dead letter.
const maxErrorText = 2048

func encodeDead(queue, consumer, id string, attempts int64, reason, jobText string) string {
	if len(reason) > maxErrorText {
		reason = strings.ToValidUTF8(reason[:maxErrorText], "") + "…"
	}
	b, err := json.Marshal(deadRecord{
		Dead: 1, Queue: queue, ID: id, Consumer: consumer, Attempts: attempts,
		Error: reason, At: time.Now().UnixMilli(), Job: jobText,
	})
	if err != nil {
		panic("queue: encode dead letter: " + err.Error())
	}
	return string(b)
}

// DeadLetter is one record of a dead-letter list, as [ParseDeadLetter]
// reads it. It is a plain value; the zero value describes nothing.
type DeadLetter struct {
	// Queue is the key of the queue the job came from.
	Queue string
	// ID is the job's ID; empty for a malformed element that had none.
	ID string
	// Consumer is the name of the reliable consumer that gave up, or empty
	// for a simple consumer.
	Consumer string
	// Attempts is how many deliveries the job had, counting the last one.
	Attempts int64
	// Error is the last handler error, or why the job was moved.
	Error string
	// At is when the job was moved, to the millisecond.
	At time.Time
	// Job is the list element exactly as it was: push it back to Queue
	// (LPUSH) to run the job again.
	Job string
}

// ParseDeadLetter reads one element of a dead-letter list. It returns an
// error wrapping [ErrNotDeadLetter] for anything else.
func ParseDeadLetter(s string) (DeadLetter, error) {
	var r deadRecord
	if err := json.Unmarshal([]byte(s), &r); err != nil || r.Dead != 1 {
		return DeadLetter{}, fmt.Errorf("%w", ErrNotDeadLetter)
	}
	return DeadLetter{
		Queue: r.Queue, ID: r.ID, Consumer: r.Consumer, Attempts: r.Attempts,
		Error: r.Error, At: time.UnixMilli(r.At), Job: r.Job,
	}, nil
}

// Message decodes the dead job as a handler would have seen it (Deliveries
// is the attempts count stored in the job). It returns an error when the
// job is a malformed envelope.
func (d DeadLetter) Message() (stream.Message, error) {
	el := decodeElement(d.Job)
	if el.bad != "" {
		return stream.Message{}, fmt.Errorf("queue: dead job is a malformed envelope: %s", el.bad)
	}
	return stream.Message{ID: el.env.ID, Stream: d.Queue, Values: el.env.V, Deliveries: el.env.N}, nil
}
