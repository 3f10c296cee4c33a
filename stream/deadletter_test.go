package stream_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/stream"
)

func TestParseDeadLetter(t *testing.T) {
	t.Parallel()
	full := map[string]string{
		"to": "x", "n": "1",
		stream.DeadIDField: "5-1", stream.DeadStreamField: "jobs", stream.DeadGroupField: "g",
		stream.DeadConsumerField: "c", stream.DeadDeliveriesField: "3", stream.DeadErrorField: "boom",
		stream.DeadTimeField: "1700000000000",
	}
	tests := []struct {
		name    string
		msg     *stream.Message
		want    stream.DeadLetter
		wantErr bool
	}{
		{name: "every field", msg: &stream.Message{ID: "9-0", Values: full}, want: stream.DeadLetter{
			Stream: "jobs", Group: "g", Consumer: "c", OriginalID: "5-1", Deliveries: 3, Error: "boom",
			At: time.UnixMilli(1700000000000), Values: map[string]string{"to": "x", "n": "1"},
		}},
		{name: "only the ID, garbage elsewhere", msg: &stream.Message{ID: "9-0", Values: map[string]string{
			stream.DeadIDField: "5-1", stream.DeadDeliveriesField: "many", stream.DeadTimeField: "",
		}}, want: stream.DeadLetter{OriginalID: "5-1", Values: map[string]string{}}},
		{name: "no dlq:id", msg: &stream.Message{ID: "9-0", Values: map[string]string{"to": "x"}}, wantErr: true},
		{name: "deleted entry", msg: &stream.Message{ID: "9-0"}, wantErr: true},
		{name: "nil message", msg: nil, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := stream.ParseDeadLetter(tt.msg)
			if tt.wantErr {
				if !errors.Is(err, stream.ErrNotDeadLetter) || !reflect.DeepEqual(d, stream.DeadLetter{}) {
					t.Errorf("ParseDeadLetter(%+v) = %+v, %v; want the zero DeadLetter and ErrNotDeadLetter", tt.msg, d, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(d, tt.want) {
				t.Errorf("ParseDeadLetter(%+v) = %+v, %v; want %+v", tt.msg, d, err, tt.want)
			}
		})
	}
}
