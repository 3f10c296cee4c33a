package queue

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/streamgroup/streamgroup/stream"
)

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

// encodeDead returns the record of a dead job; the engine bounds reason.
func encodeDead(queue, consumer, id string, attempts int64, reason, jobText string) string {
	b, err := json.Marshal(deadRecord{
		Dead: 1, Queue: queue, ID: id, Consumer: consumer, Attempts: attempts,
		Error: reason, At: time.Now().UnixMilli(), Job: jobText,
	})
	if err != nil {
		panic("queue: encode dead letter: " + err.Error())
	}
	return string(b)
}

// ParseDeadLetter reads one element of a dead-letter list, a JSON record
// (see docs/wire-format.md), into a [stream.DeadLetter]: Stream is the
// queue the job came from, Group is empty, OriginalID is the job's ID,
// Deliveries its attempt count, Values the fields its handler saw (nil
// when the job's element was malformed) and Element the job's list
// element. It returns an error wrapping [stream.ErrNotDeadLetter] for
// anything else.
//
// To run a dead job again, push its Values with [Producer.Push]: a new job,
// with a new ID and no attempts counted. Pushing Element back (LPUSH) keeps
// the ID and the delivery count, so a job that had reached MaxDeliveries is
// dead-lettered again when it is fetched, without running.
func ParseDeadLetter(s string) (stream.DeadLetter, error) {
	var r deadRecord
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return stream.DeadLetter{}, fmt.Errorf("%w: invalid JSON record: %s", stream.ErrNotDeadLetter, describeJSONErr(err))
	}
	if r.Dead != 1 {
		return stream.DeadLetter{}, fmt.Errorf("%w: no \"sgdead\":1 marker", stream.ErrNotDeadLetter)
	}
	d := stream.DeadLetter{
		Stream: r.Queue, Consumer: r.Consumer, OriginalID: r.ID, Deliveries: r.Attempts,
		Error: r.Error, Element: r.Job,
	}
	if r.At != 0 {
		d.At = time.UnixMilli(r.At)
	}
	if el := decodeElement(r.Job); el.bad == "" {
		d.Values = el.env.V
	}
	return d, nil
}
