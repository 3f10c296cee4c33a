package queue

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/streamgroup/streamgroup/internal/listwire"
	"github.com/streamgroup/streamgroup/stream"
)

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
	var r listwire.DeadRecord
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return stream.DeadLetter{}, fmt.Errorf("%w: invalid JSON record: %s", stream.ErrNotDeadLetter, listwire.DescribeJSONErr(err))
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
	if el := listwire.Decode(r.Job); el.Bad == "" {
		d.Values = el.Env.V
	}
	return d, nil
}
