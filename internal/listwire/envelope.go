// Package listwire is the wire format of list queue elements
// (docs/wire-format.md, "Lists"): the job envelope, its fast decoder, job
// IDs and the dead-letter record. The producer (package queue) writes it,
// the list sources (internal/listsrc) read and rewrite it.
package listwire

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/streamgroup/streamgroup/stream"
)

// Wire format of list elements: docs/wire-format.md, "Lists". An element
// that starts with envelopePrefix is an envelope (malformed if it does not
// parse: dead-lettered, never dropped); any other is a plain string. Every
// well-formed envelope starts with canonicalPrefix: the scripts rewrite the
// delivery count that follows in place.
const (
	envelopePrefix  = `{"sg":`
	canonicalPrefix = `{"sg":1,"n":`
)

// Envelope is one job as stored in a list, its fields in this order (sg, n
// first, for the scripts): {"sg":1,"n":<deliveries>,"id":"<id>","v":{...}}.
// Values that are not valid UTF-8 go, base64-encoded, into "b" instead of "v".
type Envelope struct {
	SG int               `json:"sg"`
	N  int64             `json:"n"`
	ID string            `json:"id"`
	V  map[string]string `json:"v"`
	B  map[string]string `json:"b,omitempty"`
}

// Encode returns the element that stores e.
func (e *Envelope) Encode() string {
	w := Envelope{SG: e.SG, N: e.N, ID: e.ID, V: make(map[string]string, len(e.V))}
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

// Element is a list element decoded: an envelope, a plain string, or
// malformed.
type Element struct {
	Env   Envelope
	Plain bool   // a plain string: Env.V is {"payload": raw}, Env.ID empty
	Bad   string // non-empty: why the envelope is malformed
}

// Decode classifies and decodes one list element.
func Decode(raw string) Element {
	if !strings.HasPrefix(raw, envelopePrefix) {
		return Element{Plain: true, Env: Envelope{SG: 1, V: map[string]string{stream.PayloadField: raw}}}
	}
	if reason := CheckCanonical(raw); reason != "" {
		return Element{Bad: reason}
	}
	env, ok := decodeFast(raw)
	if !ok {
		if err := json.Unmarshal([]byte(raw), &env); err != nil {
			return Element{Bad: "invalid JSON: " + DescribeJSONErr(err)}
		}
	}
	switch {
	case env.ID == "":
		return Element{Bad: `missing or empty "id"`}
	case env.V == nil:
		return Element{Bad: `missing "v" object`}
	}
	for k, v := range env.B {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return Element{Bad: fmt.Sprintf(`field %q of "b" is not base64`, k)}
		}
		env.V[k] = string(b)
	}
	env.B = nil
	return Element{Env: env}
}

// decodeFast decodes an envelope written exactly as Encode writes it,
// without escapes and with valid UTF-8: what queue.Producer writes for
// ordinary values, decoded several times faster than by encoding/json
// (which spent a third of a reliable consumer's CPU). Anything else, it
// reports false, and the caller decodes with encoding/json, which it agrees
// with on every input it accepts (FuzzDecodeFast).
func decodeFast(raw string) (Envelope, bool) {
	rest := raw[len(canonicalPrefix):]
	i := digits(rest)
	if i == 0 || i > 1 && rest[0] == '0' {
		return Envelope{}, false
	}
	n, err := strconv.ParseInt(rest[:i], 10, 64)
	if err != nil {
		return Envelope{}, false
	}
	rest, ok := strings.CutPrefix(rest[i:], `,"id":`)
	if !ok {
		return Envelope{}, false
	}
	id, rest, ok := cutString(rest)
	if !ok {
		return Envelope{}, false
	}
	if rest, ok = strings.CutPrefix(rest, `,"v":{`); !ok {
		return Envelope{}, false
	}
	v := make(map[string]string)
	for !strings.HasPrefix(rest, "}") {
		var k, val string
		if k, rest, ok = cutString(rest); !ok {
			return Envelope{}, false
		}
		if rest, ok = strings.CutPrefix(rest, ":"); !ok {
			return Envelope{}, false
		}
		if val, rest, ok = cutString(rest); !ok {
			return Envelope{}, false
		}
		v[k] = val
		if next, comma := strings.CutPrefix(rest, ","); comma {
			if strings.HasPrefix(next, "}") {
				return Envelope{}, false
			}
			rest = next
		} else if !strings.HasPrefix(rest, "}") {
			return Envelope{}, false
		}
	}
	if rest != "}}" {
		return Envelope{}, false // "b" follows, or something else
	}
	return Envelope{SG: 1, N: n, ID: id, V: v}, true
}

// cutString cuts a JSON string without escapes off the front of s.
func cutString(s string) (str, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			str = s[1:j]
			return str, s[j+1:], utf8.ValidString(str)
		case c == '\\' || c < 0x20:
			return "", "", false
		}
	}
	return "", "", false
}

// CheckCanonical reports why raw does not start like a version-1 envelope,
// `{"sg":1,"n":<digits>,`, or "" when it does.
func CheckCanonical(raw string) string {
	rest, ok := strings.CutPrefix(raw, canonicalPrefix)
	if !ok {
		return `envelope does not start with {"sg":1,"n":<attempts>, (unknown version or field order)`
	}
	if i := digits(rest); i == 0 || i > 15 || i >= len(rest) || rest[i] != ',' {
		return `"n" is not a small non-negative integer followed by more fields`
	}
	return ""
}

// WithDeliveries returns the canonical envelope elem (see CheckCanonical)
// with its delivery count set to n.
func WithDeliveries(elem string, n int64) string {
	rest := elem[len(canonicalPrefix):]
	return fmt.Sprintf("%s%d%s", canonicalPrefix, n, rest[digits(rest):])
}

// digits returns the length of the run of ASCII digits s starts with.
func digits(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// DescribeJSONErr says what went wrong without quoting input.
func DescribeJSONErr(err error) string {
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

// NewIDs returns n new job IDs: 12 hex digits of Unix milliseconds, then 16
// hex digits from crypto/rand. They sort by creation time (to the
// millisecond) and are unique without coordination.
func NewIDs(n int) []string {
	buf := make([]byte, 8*n)
	_, _ = rand.Read(buf) // never fails (Go ≥ 1.24)
	ms := fmt.Sprintf("%012x", time.Now().UnixMilli())
	ids := make([]string, n)
	for i := range ids {
		ids[i] = ms + hex.EncodeToString(buf[8*i:8*i+8])
	}
	return ids
}
