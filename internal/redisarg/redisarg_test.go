package redisarg

import (
	"net"
	"strings"
	"testing"
	"time"
)

type bin struct{}

func (bin) MarshalBinary() ([]byte, error) { return []byte{0xff}, nil }

func TestString(t *testing.T) {
	n := -7
	var nilInt *int
	var nilTime *time.Time
	tests := []struct {
		v    any
		want string
	}{
		{nil, ""}, {"a", "a"}, {[]byte{1}, "\x01"}, {true, "1"}, {false, "0"},
		{int8(-8), "-8"}, {uint64(1<<64 - 1), "18446744073709551615"}, {uintptr(9), "9"},
		{1e21, "1000000000000000000000"}, {float32(0.1), "0.10000000149011612"},
		{time.Date(2024, 5, 1, 12, 0, 0, 500e6, time.UTC), "2024-05-01T12:00:00.5Z"},
		{1500 * time.Millisecond, "1500000000"}, {net.IP{10, 0, 0, 1}, "\x0a\x00\x00\x01"},
		{&n, "-7"}, {nilInt, "0"}, {nilTime, "0001-01-01T00:00:00Z"}, {bin{}, "\xff"},
	}
	for _, tt := range tests {
		if got, err := String(tt.v); got != tt.want || err != nil {
			t.Errorf("String(%#v) = %q, %v; want %q, nil", tt.v, got, err, tt.want)
		}
	}
	type kind string
	for _, v := range []any{kind("a"), struct{}{}, []string{"a"}, new([]byte)} {
		if _, err := String(v); err == nil || !strings.Contains(err.Error(), "cannot write") {
			t.Errorf("String(%#v) error = %v; want one saying it cannot write the type", v, err)
		}
	}
}
