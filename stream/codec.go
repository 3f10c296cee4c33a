package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Wire format of typed payloads. See docs/wire-format.md.
const (
	// PayloadField is the entry field that holds a codec-encoded payload.
	PayloadField = "payload"
	// ContentTypeField is the entry field that names the payload's codec,
	// for example "application/json". It is informative: readers decode with
	// the codec they were given.
	ContentTypeField = "content-type"
)

// Codec turns typed values into payload bytes and back. Implementations must
// be safe for concurrent use.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
	// ContentType names the encoding, e.g. "application/json".
	ContentType() string
}

// JSON is the default codec, backed by encoding/json.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (jsonCodec) ContentType() string                { return "application/json" }

// ErrDecode is wrapped by every error [Decode] returns. Consumers treat it as
// permanent: an entry whose payload cannot be decoded is dead-lettered at once.
var ErrDecode = errors.New("stream: cannot decode payload")

// Encode returns the entry fields for the typed payload v: v encoded with c
// in [PayloadField], and c's content type in [ContentTypeField]. A nil c
// means [JSON].
func Encode(c Codec, v any) (map[string]any, error) {
	if c == nil {
		c = JSON
	}
	b, err := c.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("stream: encode payload: %w", err)
	}
	return map[string]any{PayloadField: b, ContentTypeField: c.ContentType()}, nil
}

// Decode decodes m's payload into v (a pointer) with c; a nil c means [JSON].
//
// When m has a [PayloadField], its bytes are decoded. When it has none, as for
// an entry written field by field with redis-cli or another language, and the
// codec is [JSON], the field/value map itself is decoded as a JSON object of
// strings, so `XADD jobs * to a@b.c` fills a struct field tagged `json:"to"`.
// Every error wraps [ErrDecode].
func Decode(m *Message, c Codec, v any) error {
	if c == nil {
		c = JSON
	}
	if data, ok := m.Values[PayloadField]; ok {
		if err := c.Unmarshal([]byte(data), v); err != nil {
			return &DecodeError{ID: m.ID, Err: err}
		}
		return nil
	}
	if _, isJSON := c.(jsonCodec); !isJSON {
		return fmt.Errorf("%w: entry %s has no %q field", ErrDecode, m.ID, PayloadField)
	}
	b, err := json.Marshal(m.Values)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return &DecodeError{ID: m.ID, Err: err}
	}
	return nil
}

// DecodeError is the error [Decode] returns when the codec fails. It matches
// [ErrDecode] and unwraps to the codec's error, but its text never quotes the
// payload (codec errors often do, as in `parsing time "<value>"`), so that
// entry contents stay out of logs and error reports: it names the entry and
// describes what failed by position, type and field.
type DecodeError struct {
	ID  string // the entry's ID
	Err error  // the codec's error; its text may contain payload bytes
}

func (e *DecodeError) Error() string {
	return "stream: cannot decode payload: entry " + e.ID + ": " + describeDecodeErr(e.Err)
}

// Unwrap returns [ErrDecode] and the codec's error.
func (e *DecodeError) Unwrap() []error { return []error{ErrDecode, e.Err} }

// describeDecodeErr says what went wrong without quoting input.
func describeDecodeErr(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		kind, _, _ := strings.Cut(typ.Value, " ") // "number -5" quotes the number
		if typ.Field != "" {
			return fmt.Sprintf("JSON %s cannot go into field %q of type %s", kind, typ.Field, typ.Type)
		}
		return fmt.Sprintf("JSON %s cannot go into type %s", kind, typ.Type)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of JSON input"
	}
	return fmt.Sprintf("%T (message withheld: it may quote the payload)", err)
}
