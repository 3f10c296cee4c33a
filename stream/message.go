package stream

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Message is one stream entry as a handler sees it. It is a plain value: it
// carries no context and no acknowledgement methods, so a handler can be
// unit-tested with a struct literal.
//
// The zero value is an empty message. A Message is not safe for concurrent
// mutation; handlers receive their own copy.
type Message struct {
	// ID is the entry ID assigned by Redis, "<ms>-<seq>".
	ID string
	// Stream is the key of the stream the entry was read from.
	Stream string
	// Values holds the entry's field/value pairs. Redis stores every value as
	// a string. A typed payload written by [Producer.AddPayload] lives in the
	// field [PayloadField]. Redis lets an entry repeat a field name
	// (XADD s * a 1 a 2); Values then holds the last value. A consumer's
	// dead letter of such an entry keeps every value.
	Values map[string]string
	// Deliveries is how many times Redis has delivered the entry to the
	// consumer group, counting this delivery; 0 means unknown (for example
	// for entries read with a [Reader], outside any group).
	Deliveries int64
}

// Time returns the time encoded in the message ID (the millisecond part), or
// the zero Time when the ID is not a valid stream ID.
func (m *Message) Time() time.Time {
	id, err := ParseID(m.ID)
	if err != nil {
		return time.Time{}
	}
	return id.Time()
}

// ErrInvalidID is returned (wrapped) by [ParseID] for text that is not a
// stream ID.
var ErrInvalidID = errors.New("stream: invalid entry ID")

// ID is a parsed stream entry ID: a millisecond timestamp and a sequence
// number. IDs order first by Ms, then by Seq. The zero value is "0-0", the
// smallest ID.
type ID struct {
	Ms  uint64
	Seq uint64
}

// ParseID parses "<ms>-<seq>" or "<ms>" (sequence 0). It does not accept the
// special IDs "*", "$", ">", "-" or "+".
func ParseID(s string) (ID, error) {
	msPart, seqPart, hasSeq := strings.Cut(s, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if err != nil || msPart == "" || msPart[0] == '+' {
		return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
	}
	var seq uint64
	if hasSeq {
		seq, err = strconv.ParseUint(seqPart, 10, 64)
		if err != nil || seqPart == "" || seqPart[0] == '+' {
			return ID{}, fmt.Errorf("%w: %q", ErrInvalidID, s)
		}
	}
	return ID{Ms: ms, Seq: seq}, nil
}

// String formats the ID as Redis does, "<ms>-<seq>".
func (id ID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Time returns the millisecond part as a time.Time.
func (id ID) Time() time.Time {
	return time.UnixMilli(int64(id.Ms))
}

// Compare returns -1, 0 or +1 as id is less than, equal to or greater than o.
func (id ID) Compare(o ID) int {
	switch {
	case id.Ms < o.Ms:
		return -1
	case id.Ms > o.Ms:
		return 1
	case id.Seq < o.Seq:
		return -1
	case id.Seq > o.Seq:
		return 1
	}
	return 0
}

// Next returns the smallest ID greater than id. It returns id itself for the
// largest possible ID.
func (id ID) Next() ID {
	switch {
	case id.Seq < ^uint64(0):
		return ID{Ms: id.Ms, Seq: id.Seq + 1}
	case id.Ms < ^uint64(0):
		return ID{Ms: id.Ms + 1}
	}
	return id
}
