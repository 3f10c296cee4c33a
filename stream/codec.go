package stream

import (
	"encoding/json"
	"errors"
	"fmt"
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
			return fmt.Errorf("%w: entry %s: %w", ErrDecode, m.ID, err)
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
		return fmt.Errorf("%w: entry %s: %w", ErrDecode, m.ID, err)
	}
	return nil
}
