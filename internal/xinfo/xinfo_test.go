package xinfo_test

import (
	"reflect"
	"testing"

	"github.com/streamgroup/streamgroup/internal/xinfo"
)

func TestEntries(t *testing.T) {
	want := []map[string]any{{"name": "g", "lag": nil, "pending": int64(2)}}
	tests := []struct {
		name  string
		reply any
	}{
		{"RESP2 flat array", []any{[]any{"name", "g", "lag", nil, "pending", int64(2)}}},
		{"RESP3 map", []any{map[any]any{"name": "g", "lag": nil, "pending": int64(2)}}},
		{"string map", []any{map[string]any{"name": "g", "lag": nil, "pending": int64(2)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := xinfo.Entries(tt.reply)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Entries(%v) = %v, %v; want %v", tt.reply, got, err, want)
			}
		})
	}
	for _, bad := range []any{"x", []any{[]any{"odd"}}, []any{[]any{int64(1), "v"}}, []any{map[any]any{int64(1): "v"}}, []any{int64(3)}} {
		if got, err := xinfo.Entries(bad); err == nil {
			t.Errorf("Entries(%#v) = %v, nil; want an error", bad, got)
		}
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		in     any
		want   int64
		wantOK bool
	}{
		{int64(7), 7, true},
		{int64(-1), -1, true},
		{"12", 12, true},
		{nil, 0, false},
		{"x", 0, false},
		{3.5, 0, false},
	}
	for _, tt := range tests {
		if got, ok := xinfo.Int(tt.in); got != tt.want || ok != tt.wantOK {
			t.Errorf("Int(%#v) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
		def := int64(-5)
		if !tt.wantOK {
			if got := xinfo.IntOr(tt.in, def); got != def {
				t.Errorf("IntOr(%#v, %d) = %d; want %d", tt.in, def, got, def)
			}
		}
	}
	if got := xinfo.Str(nil); got != "" {
		t.Errorf("Str(nil) = %q; want empty", got)
	}
}
