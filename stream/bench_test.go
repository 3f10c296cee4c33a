package stream_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/stream"
)

// Hot paths of decoding an entry:
//
//	go test -run '^$' -bench . -benchmem ./stream/
func BenchmarkFromXMessage(b *testing.B) {
	x := redis.XMessage{ID: "1700000000000-0", Values: map[string]any{
		"payload": `{"to":"user@example.com","subject":"Welcome"}`, "content-type": "application/json",
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := stream.FromXMessage("jobs", x); !ok {
			b.Fatal("not ok")
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	type email struct {
		To      string `json:"to"`
		Subject string `json:"subject"`
	}
	payload := &stream.Message{ID: "1-0", Values: map[string]string{"payload": `{"to":"user@example.com","subject":"Welcome"}`}}
	plain := &stream.Message{ID: "1-0", Values: map[string]string{"to": "user@example.com", "subject": "Welcome"}}
	for _, bc := range []struct {
		name string
		msg  *stream.Message
	}{{"payload", payload}, {"plain-fields", plain}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var e email
				if err := stream.Decode(bc.msg, nil, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := stream.ParseID("1700000000000-42"); err != nil {
			b.Fatal(err)
		}
	}
}
