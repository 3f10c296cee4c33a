package stream_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/stream"
)

// The fuzz targets below run their seeds (f.Add and testdata/fuzz/<Name>/)
// as ordinary tests; `go test -run '^$' -fuzz FuzzX ./stream` explores
// further. No input may panic the package.

// fuzzFields turns fuzz bytes into the field/value map of an entry, as
// go-redis returns it: pairs separated by NUL bytes; kinds picks, pair by
// pair, the Go type of the value (string, []byte, int64, nil, bool), since
// hooks and other clients can hand FromXMessage any of them.
func fuzzFields(raw []byte, kinds []byte) map[string]any {
	parts := bytes.Split(raw, []byte{0})
	values := make(map[string]any, len(parts)/2)
	for i := 0; i+1 < len(parts); i += 2 {
		k, v := string(parts[i]), parts[i+1]
		kind := byte(0)
		if len(kinds) > 0 {
			kind = kinds[(i/2)%len(kinds)]
		}
		switch kind % 5 {
		case 0:
			values[k] = string(v)
		case 1:
			values[k] = v
		case 2:
			values[k] = int64(len(v)) - 3
		case 3:
			values[k] = nil
		case 4:
			values[k] = len(v)%2 == 0
		}
	}
	return values
}

// fuzzTarget is a payload type with fields of many kinds, including ones
// whose decoding runs custom code (time.Time, json.Number, ",string").
type fuzzTarget struct {
	To     string            `json:"to"`
	N      int               `json:"n"`
	U      uint8             `json:"u"`
	F      float64           `json:"f"`
	S      int               `json:"s,string"`
	At     time.Time         `json:"at"`
	D      time.Duration     `json:"d"`
	Tags   []string          `json:"tags"`
	Meta   map[string]any    `json:"meta"`
	Next   *fuzzTarget       `json:"next"`
	Raw    json.RawMessage   `json:"raw"`
	Num    json.Number       `json:"num"`
	Any    any               `json:"any"`
	Arr    [2]int            `json:"arr"`
	Labels map[string]string `json:"labels"`
}

// decodeTargets are fresh pointers of the types fuzzed payloads decode into.
func decodeTargets() []any {
	return []any{new(fuzzTarget), new(map[string]any), new(map[string]string), new(any), new([]int), new(string), new(int64), new(json.RawMessage)}
}

// checkDecode decodes msg into every target with codec c and checks the
// contract: the error is nil or wraps ErrDecode, and with a payload field
// Decode agrees with the codec on the payload bytes.
func checkDecode(t *testing.T, msg *stream.Message, c stream.Codec) {
	t.Helper()
	payload, hasPayload := msg.Values[stream.PayloadField]
	for _, v := range decodeTargets() {
		err := stream.Decode(msg, c, v)
		if err != nil && !errors.Is(err, stream.ErrDecode) {
			t.Fatalf("Decode(%q, %T) = %v; want nil or an error wrapping ErrDecode", msg.Values, v, err)
		}
		if err != nil && !strings.Contains(err.Error(), msg.ID) {
			t.Fatalf("Decode(%T) = %v; want the error to name entry %q", v, err, msg.ID)
		}
		switch {
		case hasPayload:
			direct := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			codec := c
			if codec == nil {
				codec = stream.JSON
			}
			derr := codec.Unmarshal([]byte(payload), direct)
			if (err == nil) != (derr == nil) {
				t.Fatalf("Decode(%q into %T) = %v; the codec alone says %v", payload, v, err, derr)
			}
			if err == nil && !reflect.DeepEqual(v, direct) {
				t.Fatalf("Decode(%q into %T) = %#v; the codec alone gives %#v", payload, v, v, direct)
			}
		case c != nil && c != stream.JSON:
			if err == nil {
				t.Fatalf("Decode(no payload, codec %s, %T) = nil; want ErrDecode: only JSON decodes plain fields", c.ContentType(), v)
			}
		}
	}
}

// FuzzDecodeEntry feeds arbitrary field maps through the path an entry takes
// from go-redis to a handler: FromXMessage, Decode (with the default, JSON
// and a non-JSON codec), ParseDeadLetter and Message.Time.
func FuzzDecodeEntry(f *testing.F) {
	seeds := []struct {
		id     string
		fields string
		kinds  []byte
	}{
		{"1-0", "to\x00a@b.c\x00subject\x00hi", nil},
		{"1526919030474-55", "payload\x00{\"to\":\"x\",\"n\":3}\x00content-type\x00application/json", nil},
		{"2-0", "payload\x00{not json", nil},
		{"3-0", "payload\x00{\"at\":\"yesterday\",\"s\":\"x\",\"d\":\"1s\"}", nil},
		{"4-0", "payload\x00null", nil},
		{"5-0", "n\x00not a number\x00tags\x00[1,2]", []byte{0, 1}},
		{"6-0", "dlq:id\x001-0\x00dlq:stream\x00jobs\x00dlq:group\x00g\x00dlq:consumer\x00c\x00dlq:deliveries\x005\x00dlq:error\x00boom\x00dlq:at\x001700000000000\x00to\x00x", nil},
		{"7-0", "dlq:id\x00\x00dlq:deliveries\x00-9223372036854775809\x00dlq:at\x00NaN", []byte{1, 2, 3, 4}},
		{"not-an-id", "\xff\xfe\x00\xc3\x28\x00payload\x00\"\\ud800\"", nil},
		{"", "", nil},
		{"18446744073709551615-18446744073709551615", "k\x00v\x00k2", []byte{3}},
	}
	for _, s := range seeds {
		f.Add(s.id, []byte(s.fields), s.kinds, false)
	}
	f.Add("8-0", []byte(nil), []byte(nil), true) // a deleted pending entry: nil Values
	f.Fuzz(func(t *testing.T, id string, raw, kinds []byte, nilValues bool) {
		x := redis.XMessage{ID: id}
		if !nilValues {
			x.Values = fuzzFields(raw, kinds)
		}
		msg, ok := stream.FromXMessage("s", x)
		if msg.ID != id || msg.Stream != "s" || msg.Deliveries != 0 {
			t.Fatalf("FromXMessage = %+v; want ID %q, stream s, Deliveries 0", msg, id)
		}
		if ok != (x.Values != nil) {
			t.Fatalf("FromXMessage ok = %v with Values %v; want ok exactly when Values is not nil", ok, x.Values)
		}
		if !ok {
			if msg.Values != nil {
				t.Fatalf("FromXMessage of a deleted entry has Values %v; want nil", msg.Values)
			}
			return
		}
		if len(msg.Values) != len(x.Values) {
			t.Fatalf("FromXMessage kept %d of %d fields", len(msg.Values), len(x.Values))
		}
		for k, v := range x.Values {
			var want string
			switch v := v.(type) {
			case string:
				want = v
			case []byte:
				want = string(v)
			default:
				want = fmt.Sprint(v)
			}
			if msg.Values[k] != want {
				t.Fatalf("FromXMessage field %q = %q; want %q", k, msg.Values[k], want)
			}
		}

		_ = msg.Time()
		for _, c := range []stream.Codec{nil, stream.JSON, upper{}} {
			checkDecode(t, &msg, c)
		}
		if _, hasPayload := msg.Values[stream.PayloadField]; !hasPayload && allValidUTF8(msg.Values) {
			// Plain fields decode as a JSON object of strings.
			var got map[string]string
			if err := stream.Decode(&msg, nil, &got); err != nil || !reflect.DeepEqual(got, msg.Values) {
				t.Fatalf("Decode(plain fields %q) = %v, %v; want the fields themselves", msg.Values, got, err)
			}
		}

		d, err := stream.ParseDeadLetter(&msg)
		origID, hasID := msg.Values[stream.DeadIDField]
		if isDead := err == nil; isDead != hasID || (!isDead && !errors.Is(err, stream.ErrNotDeadLetter)) {
			t.Fatalf("ParseDeadLetter error = %v; want nil exactly when %s is present (%v), else ErrNotDeadLetter", err, stream.DeadIDField, hasID)
		}
		if !hasID {
			return
		}
		meta := 0
		for _, k := range []string{stream.DeadIDField, stream.DeadStreamField, stream.DeadGroupField, stream.DeadConsumerField, stream.DeadDeliveriesField, stream.DeadErrorField, stream.DeadTimeField} {
			if _, ok := msg.Values[k]; ok {
				meta++
			}
			if _, ok := d.Values[k]; ok {
				t.Fatalf("ParseDeadLetter kept metadata field %q among the original fields", k)
			}
		}
		if len(d.Values)+meta != len(msg.Values) {
			t.Fatalf("ParseDeadLetter: %d original + %d metadata fields; the entry has %d", len(d.Values), meta, len(msg.Values))
		}
		if d.OriginalID != origID || d.Stream != msg.Values[stream.DeadStreamField] || d.Error != msg.Values[stream.DeadErrorField] {
			t.Fatalf("ParseDeadLetter = %+v; want the metadata of %q", d, msg.Values)
		}
	})
}

func allValidUTF8(m map[string]string) bool {
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

// FuzzDecodePayload decodes arbitrary payload bytes, as a producer with
// another codec, another language or a corrupted write could leave them,
// into several Go types with the JSON codec.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{
		`{"to":"a@b.c","n":1,"tags":["x"],"next":{"to":"y"}}`,
		`{"at":"2024-01-02T03:04:05Z","s":"12","num":1e400,"d":1000}`,
		`{"at":"not a time"}`,
		`{"s":"not a number"}`,
		`{"arr":[1,2,3],"u":300}`,
		`[1,2,3]`, `"text"`, `null`, `1e999`, `{`, `{"a":}`, "\xff", ``,
		`{"next":{"next":{"next":{"next":{}}}}}`,
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		msg := &stream.Message{ID: "1-0", Stream: "s", Values: map[string]string{stream.PayloadField: string(payload)}}
		checkDecode(t, msg, nil)
		checkDecode(t, msg, stream.JSON)
	})
}

var maxID = stream.ID{Ms: ^uint64(0), Seq: ^uint64(0)}

// redisOrder compares two IDs the way Redis orders stream entries: by the
// millisecond part, then the sequence, both as unsigned 64-bit numbers. It
// compares zero-padded decimal text, independently of ID.Compare.
func redisOrder(a, b stream.ID) int {
	pa := fmt.Sprintf("%020d-%020d", a.Ms, a.Seq)
	pb := fmt.Sprintf("%020d-%020d", b.Ms, b.Seq)
	return strings.Compare(pa, pb)
}

// FuzzIDOrder checks that ID.Compare is a total order equal to Redis's
// order, that Next is the immediate successor in it, and that String and
// ParseID round-trip.
func FuzzIDOrder(f *testing.F) {
	for _, s := range [][4]uint64{
		{0, 0, 0, 0},
		{1, 5, 1, 6},
		{1, ^uint64(0), 2, 0},
		{9, 0, 10, 0},
		{^uint64(0), ^uint64(0), 0, 0},
		{^uint64(0), ^uint64(0) - 1, ^uint64(0), ^uint64(0)},
		{1 << 63, 0, 1<<63 - 1, ^uint64(0)},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, ams, aseq, bms, bseq uint64) {
		a, b := stream.ID{Ms: ams, Seq: aseq}, stream.ID{Ms: bms, Seq: bseq}
		c := a.Compare(b)
		if want := redisOrder(a, b); c != want {
			t.Fatalf("%v.Compare(%v) = %d; Redis orders them %d", a, b, c, want)
		}
		if back := b.Compare(a); back != -c {
			t.Fatalf("%v.Compare(%v) = %d but %v.Compare(%v) = %d", a, b, c, b, a, back)
		}
		if (c == 0) != (a == b) {
			t.Fatalf("%v.Compare(%v) = %d; want 0 exactly when equal", a, b, c)
		}
		for _, id := range []stream.ID{a, b} {
			p, err := stream.ParseID(id.String())
			if err != nil || p != id {
				t.Fatalf("ParseID(%q) = %v, %v; want %v", id.String(), p, err, id)
			}
			next := id.Next()
			if id == maxID {
				if next != id {
					t.Fatalf("%v.Next() = %v; want itself for the largest ID", id, next)
				}
				continue
			}
			if next.Compare(id) != 1 {
				t.Fatalf("%v.Next() = %v is not greater", id, next)
			}
			if next.Seq != 0 && (next.Ms != id.Ms || next.Seq != id.Seq+1) {
				t.Fatalf("%v.Next() = %v; want the next sequence", id, next)
			}
		}
		// Next is the immediate successor: nothing lies strictly between.
		if c < 0 && a.Next().Compare(b) > 0 {
			t.Fatalf("%v < %v but %v.Next() = %v is greater than %v", a, b, a, a.Next(), b)
		}
		if c > 0 && b.Next().Compare(a) > 0 {
			t.Fatalf("%v < %v but %v.Next() = %v is greater than %v", b, a, b, b.Next(), a)
		}
		// Transitivity through the successor.
		if c < 0 && b != maxID && a.Compare(b.Next()) != -1 {
			t.Fatalf("%v < %v < %v.Next() but Compare says %d", a, b, b, a.Compare(b.Next()))
		}
	})
}

// FuzzProducerReaderOptions constructs producers and readers with fuzzed
// options: never a panic, an error exactly for the documented invalid
// values, always wrapping ErrInvalidOptions, and the caller's options left
// as they were. Constructors do no I/O, so the client never dials.
func FuzzProducerReaderOptions(f *testing.F) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	f.Cleanup(func() { _ = rdb.Close() })
	f.Add(int64(0), "", false, false, 0, false, int64(0))
	f.Add(int64(1000), "", true, false, 1, true, int64(100))
	f.Add(int64(0), "1526919030474-55", false, true, 100, false, int64(1))
	f.Add(int64(5), "1-0", false, false, 0, false, int64(0))
	f.Add(int64(-1), "", false, false, -1, false, int64(-1))
	f.Add(int64(0), "not-an-id", false, false, 0, false, int64(-9223372036854775808))
	f.Add(int64(0), "18446744073709551616", false, false, 0, false, int64(9223372036854775807))
	f.Add(int64(0), "*", false, false, 0, false, int64(0))
	f.Fuzz(func(t *testing.T, maxLen int64, minID string, exact, unsafe bool, trimInterval int, noMk bool, pageSize int64) {
		opts := &stream.ProducerOptions{MaxLen: maxLen, MinID: minID, ExactTrim: exact, UnsafeTrim: unsafe, TrimInterval: trimInterval, NoMkStream: noMk}
		before := *opts
		_, idErr := stream.ParseID(minID)
		valid := maxLen >= 0 && trimInterval >= 0 && !(maxLen > 0 && minID != "") && (minID == "" || idErr == nil)
		p, err := stream.NewProducer(rdb, "s", opts)
		if !reflect.DeepEqual(*opts, before) {
			t.Fatalf("NewProducer changed the caller's options: %+v; was %+v", *opts, before)
		}
		switch {
		case valid && (err != nil || p == nil):
			t.Fatalf("NewProducer(%+v) = %v, %v; want a producer", before, p, err)
		case !valid && (err == nil || p != nil):
			t.Fatalf("NewProducer(%+v) = %v, %v; want an error", before, p, err)
		case !valid && !errors.Is(err, stream.ErrInvalidOptions):
			t.Fatalf("NewProducer(%+v) error %v does not wrap ErrInvalidOptions", before, err)
		}
		if p != nil && p.Stream() != "s" {
			t.Fatalf("Producer.Stream() = %q; want s", p.Stream())
		}

		r, err := stream.NewReader(rdb, "s", &stream.ReaderOptions{PageSize: pageSize})
		switch {
		case pageSize >= 0 && (err != nil || r == nil):
			t.Fatalf("NewReader(PageSize %d) = %v, %v; want a reader", pageSize, r, err)
		case pageSize < 0 && (r != nil || !errors.Is(err, stream.ErrInvalidOptions)):
			t.Fatalf("NewReader(PageSize %d) = %v, %v; want an error wrapping ErrInvalidOptions", pageSize, r, err)
		}
	})
}
