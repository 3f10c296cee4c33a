package listwire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/streamgroup/streamgroup/stream"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		raw   string
		plain bool
		bad   string // substring of the reason; "" for a good element
		id    string
		n     int64
	}{
		{raw: `{"to":"a"}`, plain: true},
		{raw: ``, plain: true},
		{raw: `{"sg" :1}`, plain: true}, // not the exact marker: user JSON
		{raw: `{"sg":1,"n":3,"id":"x","v":{"k":"v"}}`, id: "x", n: 3},
		{raw: `{"sg":1,"n":0,"id":"x","v":{},"future":true}`, id: "x"},
		{raw: `{"sg":1,"n":3,"id":"x","v":{"k":1}}`, bad: "invalid JSON"},
		{raw: `{"sg":1,"n":3,"id":"","v":{}}`, bad: `"id"`},
		{raw: `{"sg":1,"n":3,"id":"x"}`, bad: `"v"`},
		{raw: `{"sg":1,"n":-1,"id":"x","v":{}}`, bad: `"n"`},
		{raw: `{"sg":1,"n":1234567890123456,"id":"x","v":{}}`, bad: `"n"`},
		{raw: `{"sg":1,"n":3}`, bad: `"n"`},
		{raw: `{"sg":2,"n":3,"id":"x","v":{}}`, bad: "unknown version"},
		{raw: `{"sg":1,"n":3,"id":"x","v":{}`, bad: "invalid JSON"},
		{raw: `{"sg":1,"n":3,"id":"x","v":{},"b":{"k":"!"}}`, bad: "base64"},
		{raw: `{"sg":1,"n":3,"id":"x","v":{},"b":{"k":"/w=="}}`, id: "x", n: 3},
	}
	for _, tt := range tests {
		el := Decode(tt.raw)
		switch {
		case el.Plain != tt.plain:
			t.Errorf("Decode(%q).Plain = %v; want %v", tt.raw, el.Plain, tt.plain)
		case tt.plain && el.Env.V[stream.PayloadField] != tt.raw:
			t.Errorf("Decode(%q) values = %v; want the string in %q", tt.raw, el.Env.V, stream.PayloadField)
		case tt.bad == "" && el.Bad != "":
			t.Errorf("Decode(%q) = malformed (%s); want good", tt.raw, el.Bad)
		case tt.bad != "" && !strings.Contains(el.Bad, tt.bad):
			t.Errorf("Decode(%q).Bad = %q; want it to mention %s", tt.raw, el.Bad, tt.bad)
		case !tt.plain && tt.bad == "" && (el.Env.ID != tt.id || el.Env.N != tt.n):
			t.Errorf("Decode(%q) = %+v; want id %q, n %d", tt.raw, el.Env, tt.id, tt.n)
		}
	}
}

func FuzzEnvelope(f *testing.F) {
	f.Add("k", "v", int64(0))
	f.Add("", "{\"sg\":1,", int64(41))
	f.Add("\u2028", "\xff", int64(999999))
	f.Fuzz(func(t *testing.T, k, v string, n int64) {
		if n < 0 || n > 1e14 || !utf8.ValidString(k) { // field names must be UTF-8
			return
		}
		env := Envelope{SG: 1, N: n, ID: "id", V: map[string]string{k: v}}
		raw := env.Encode()
		if reason := CheckCanonical(raw); reason != "" {
			t.Fatalf("Encode() = %q is not canonical: %s", raw, reason)
		}
		el := Decode(WithDeliveries(raw, n+1))
		if el.Bad != "" || el.Env.N != n+1 || el.Env.ID != "id" || el.Env.V[k] != v {
			t.Fatalf("decode(WithDeliveries(%q)) = %+v; want n=%d and the same values", raw, el, n+1)
		}
	})
}

// FuzzDecodeFast: on every input decodeFast accepts, encoding/json decodes
// the same envelope.
func FuzzDecodeFast(f *testing.F) {
	f.Add(`{"sg":1,"n":3,"id":"x","v":{"a":"b","c":""}}`)
	f.Add(`{"sg":1,"n":0,"id":"","v":{}}`)
	f.Add(`{"sg":1,"n":01,"id":"x","v":{}}`)
	f.Add(`{"sg":1,"n":1,"id":"x","v":{"a":"\u00e9"}}`)
	f.Add(`{"sg":1,"n":1,"id":"x","v":{"a":"b",}}`)
	f.Add(`{"sg":1,"n":1,"id":"x","v":{"a":"b"},"b":{"c":"AA=="}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		if !strings.HasPrefix(raw, canonicalPrefix) {
			return
		}
		fast, ok := decodeFast(raw)
		if !ok {
			return
		}
		var slow Envelope
		if err := json.Unmarshal([]byte(raw), &slow); err != nil {
			t.Fatalf("decodeFast accepted %q, which encoding/json refuses: %v", raw, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decodeFast(%q) = %+v; encoding/json = %+v", raw, fast, slow)
		}
	})
}
