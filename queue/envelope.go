package queue

import (
	"crypto/rand"
	"encoding"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/streamgroup/streamgroup/stream"
)

// Wire format of list elements. See docs/wire-format.md, section "Lists".
const (
	// envelopePrefix marks an element written by this package. An element
	// that starts with it is an envelope, and one that does not parse is
	// malformed (dead-lettered, never dropped). Any other element is a plain
	// string pushed by another program.
	envelopePrefix = `{"sg":`
	// canonicalPrefix is how every well-formed envelope starts: the
	// Lua scripts rewrite the attempt count that follows it in place.
	canonicalPrefix = `{"sg":1,"n":`
)

// envelope is one job as stored in a list:
//
//	{"sg":1,"n":<attempts>,"id":"<id>","v":{"<field>":"<value>",...}}
//
// The field order is fixed (sg, n first) so that a script can rewrite n
// with string operations; encoding/json writes struct fields in order.
//
// Values that are not valid UTF-8 (JSON strings cannot hold them) go,
// base64-encoded, into an object "b" instead of "v".
type envelope struct {
	SG int               `json:"sg"`
	N  int64             `json:"n"`
	ID string            `json:"id"`
	V  map[string]string `json:"v"`
	B  map[string]string `json:"b,omitempty"`
}

func (e *envelope) encode() string {
	w := envelope{SG: e.SG, N: e.N, ID: e.ID, V: make(map[string]string, len(e.V))}
	for k, v := range e.V {
		if utf8.ValidString(v) {
			w.V[k] = v
			continue
		}
		if w.B == nil {
			w.B = make(map[string]string)
		}
		w.B[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	b, err := json.Marshal(&w)
	if err != nil { // a struct of strings and ints cannot fail
		panic("queue: encode envelope: " + err.Error())
	}
	return string(b)
}

// element is a list element decoded: an envelope, a plain string, or
// malformed.
type element struct {
	env   envelope
	plain bool   // a plain string: env.V is {"payload": raw}, env.ID empty
	bad   string // non-empty: why the envelope is malformed
}

// decodeElement classifies and decodes one list element.
func decodeElement(raw string) element {
	if !strings.HasPrefix(raw, envelopePrefix) {
		return element{plain: true, env: envelope{SG: 1, V: map[string]string{stream.PayloadField: raw}}}
	}
	if reason := checkCanonical(raw); reason != "" {
		return element{bad: reason}
	}
	var env envelope
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		return element{bad: "invalid JSON: " + describeJSONErr(err)}
	}
	switch {
	case env.ID == "":
		return element{bad: `missing or empty "id"`}
	case env.V == nil:
		return element{bad: `missing "v" object`}
	}
	for k, v := range env.B {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return element{bad: fmt.Sprintf(`field %q of "b" is not base64`, k)}
		}
		env.V[k] = string(b)
	}
	env.B = nil
	return element{env: env}
}

// checkCanonical reports why raw does not start like a version-1 envelope,
// `{"sg":1,"n":<digits>,`, or "" when it does.
func checkCanonical(raw string) string {
	rest, ok := strings.CutPrefix(raw, canonicalPrefix)
	if !ok {
		return `envelope does not start with {"sg":1,"n":<attempts>, (unknown version or field order)`
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i > 15 || i >= len(rest) || rest[i] != ',' {
		return `"n" is not a small non-negative integer followed by more fields`
	}
	return ""
}

// describeJSONErr says what went wrong without quoting input.
func describeJSONErr(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		kind, _, _ := strings.Cut(typ.Value, " ")
		if typ.Field != "" {
			return fmt.Sprintf("JSON %s cannot go into field %q", kind, typ.Field)
		}
		return fmt.Sprintf("JSON %s where an object was expected", kind)
	}
	return "unexpected end of input"
}

// newIDs returns n new job IDs: 12 hex digits of Unix milliseconds, then 16
// hex digits from crypto/rand. They sort by creation time (to the
// millisecond) and are unique without coordination.
func newIDs(n int) []string {
	if n <= 0 {
		return nil
	}
	buf := make([]byte, 8*n)
	_, _ = rand.Read(buf) // never fails (Go ≥ 1.24)
	ms := strconv.FormatInt(time.Now().UnixMilli(), 16)
	if len(ms) < 12 {
		ms = strings.Repeat("0", 12-len(ms)) + ms
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = ms + hex.EncodeToString(buf[8*i:8*i+8])
	}
	return ids
}

func newID() string { return newIDs(1)[0] }

// stringValues turns job fields into the strings Redis would store for
// them, as go-redis writes command arguments (so a job's values read the
// same from a list as from a stream).
func stringValues(values map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(values))
	for k, v := range values {
		s, err := argString(v)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
}

func argString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case *string:
		if v == nil {
			return "", nil
		}
		return *v, nil
	case []byte:
		return string(v), nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case int:
		return strconv.FormatInt(int64(v), 10), nil
	case int8:
		return strconv.FormatInt(int64(v), 10), nil
	case int16:
		return strconv.FormatInt(int64(v), 10), nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(v), 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case uintptr:
		return strconv.FormatUint(uint64(v), 10), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'f', -1, 64), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	case time.Duration:
		return strconv.FormatInt(v.Nanoseconds(), 10), nil
	case net.IP:
		return string(v), nil
	case encoding.BinaryMarshaler:
		b, err := v.MarshalBinary()
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer {
		if rv.IsNil() { // go-redis writes a nil pointer as its zero value
			return argString(reflect.Zero(rv.Type().Elem()).Interface())
		}
		return argString(rv.Elem().Interface())
	}
	return "", fmt.Errorf("cannot write a value of type %T (implement encoding.BinaryMarshaler)", v)
}
