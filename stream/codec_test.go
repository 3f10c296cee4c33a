package stream_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/stream"
)

type email struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Tries   int    `json:"tries,omitempty"`
}

// entryOf turns Encode's fields into the strings Redis would hand back.
func entryOf(t *testing.T, fields map[string]any) *stream.Message {
	t.Helper()
	values := make(map[string]string, len(fields))
	for k, v := range fields {
		switch v := v.(type) {
		case []byte:
			values[k] = string(v)
		case string:
			values[k] = v
		default:
			t.Fatalf("Encode field %q has type %T; want string or []byte", k, v)
		}
	}
	return &stream.Message{ID: "1-0", Stream: "s", Values: values}
}

// upper is a codec other than JSON, for the non-JSON paths.
type upper struct{}

func (upper) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (upper) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
func (upper) ContentType() string                { return "application/x-test" }

func TestEncodeDecodeRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		codec stream.Codec
		want  string // content type
	}{
		{"nil means JSON", nil, "application/json"},
		{"JSON", stream.JSON, "application/json"},
		{"custom", upper{}, "application/x-test"},
	}
	in := email{To: "a@b.c", Subject: "hi", Tries: 3}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fields, err := stream.Encode(tt.codec, in)
			if err != nil {
				t.Fatalf("Encode = %v; want nil", err)
			}
			if got := fields[stream.ContentTypeField]; got != tt.want {
				t.Errorf("Encode %s = %v; want %q", stream.ContentTypeField, got, tt.want)
			}
			if len(fields) != 2 {
				t.Errorf("Encode = %d fields %v; want 2", len(fields), fields)
			}
			var out email
			if err := stream.Decode(entryOf(t, fields), tt.codec, &out); err != nil {
				t.Fatalf("Decode = %v; want nil", err)
			}
			if out != in {
				t.Errorf("Decode = %+v; want %+v", out, in)
			}
		})
	}
}

func TestEncodeError(t *testing.T) {
	_, err := stream.Encode(nil, make(chan int))
	if err == nil {
		t.Fatal("Encode(chan) = nil error; want an error")
	}
	var ute *json.UnsupportedTypeError
	if !errors.As(err, &ute) {
		t.Errorf("Encode(chan) = %v; want it to wrap *json.UnsupportedTypeError", err)
	}
}

func TestDecodePlainFields(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		want   email
	}{
		{"all fields", map[string]string{"to": "a@b.c", "subject": "hi"}, email{To: "a@b.c", Subject: "hi"}},
		{"extra fields ignored", map[string]string{"to": "a@b.c", "x": "y"}, email{To: "a@b.c"}},
		{"no fields", map[string]string{}, email{}},
		{"nil map", nil, email{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got email
			err := stream.Decode(&stream.Message{ID: "1-0", Values: tt.values}, nil, &got)
			if err != nil || got != tt.want {
				t.Errorf("Decode(%v) = %+v, %v; want %+v, nil", tt.values, got, err, tt.want)
			}
		})
	}

	t.Run("into a map", func(t *testing.T) {
		values := map[string]string{"a": "1", "b": "2"}
		var got map[string]string
		if err := stream.Decode(&stream.Message{Values: values}, stream.JSON, &got); err != nil || !reflect.DeepEqual(got, values) {
			t.Errorf("Decode = %v, %v; want %v, nil", got, err, values)
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]string
		codec  stream.Codec
		into   any
	}{
		{"malformed payload", map[string]string{stream.PayloadField: "{not json"}, nil, &email{}},
		{"payload of the wrong shape", map[string]string{stream.PayloadField: `[1,2]`}, nil, &email{}},
		{"plain fields into the wrong type", map[string]string{"tries": "3"}, nil, &email{}},
		{"plain fields with another codec", map[string]string{"to": "a@b.c"}, upper{}, &email{}},
		{"non-pointer target", map[string]string{stream.PayloadField: `{}`}, nil, email{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := stream.Decode(&stream.Message{ID: "7-1", Values: tt.values}, tt.codec, tt.into)
			if !errors.Is(err, stream.ErrDecode) {
				t.Errorf("Decode(%v) = %v; want an error wrapping ErrDecode", tt.values, err)
			}
		})
	}
}

func TestDecodeErrorWithholdsPayload(t *testing.T) {
	const secret = "S3CRET-42"
	type job struct {
		At    time.Time `json:"at"`
		Count int       `json:"count"`
		N     int       `json:"n,string"`
		B     bool      `json:"b"`
	}
	for _, payload := range []string{
		`{"at":"` + secret + `"}`,
		`{"b":-4242}`,
		`{"n":"` + secret + `"}`,
		`{"count":` + secret,
		`["` + secret + `"]`,
	} {
		var v job
		err := stream.Decode(&stream.Message{ID: "1-1", Values: map[string]string{stream.PayloadField: payload}}, nil, &v)
		if !errors.Is(err, stream.ErrDecode) {
			t.Fatalf("Decode(%s) = %v; want ErrDecode", payload, err)
		}
		if msg := err.Error(); strings.Contains(msg, secret) || strings.Contains(msg, "4242") || !strings.Contains(msg, "entry 1-1") {
			t.Errorf("Decode(%s) error %q quotes the payload or lacks the entry ID", payload, msg)
		}
		var de *stream.DecodeError
		if !errors.As(err, &de) || de.Err == nil {
			t.Errorf("Decode(%s) error does not unwrap to the codec's error", payload)
		}
	}
}
