// Package redisarg writes Go values as go-redis writes command arguments:
// the one statement of it that stream.Producer and queue.Producer share
// (docs/wire-format.md, "How Go values are written").
package redisarg

import (
	"encoding"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"time"
)

// String returns the text go-redis sends for v, or an error naming v's type
// when go-redis cannot write it: a string, []byte, bool, number, time.Time,
// time.Duration, net.IP, a pointer to a string, bool, number, time.Time or
// time.Duration (a nil one as its type's zero value), nil (""), or an
// encoding.BinaryMarshaler (whose error it returns).
func String(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case bool:
		if v {
			return "1", nil
		}
		return "0", nil
	case int, int8, int16, int32, int64:
		return strconv.FormatInt(reflect.ValueOf(v).Int(), 10), nil
	case uint, uint8, uint16, uint32, uint64, uintptr:
		return strconv.FormatUint(reflect.ValueOf(v).Uint(), 10), nil
	case float32, float64:
		return strconv.FormatFloat(reflect.ValueOf(v).Float(), 'f', -1, 64), nil
	case time.Time:
		return v.Format(time.RFC3339Nano), nil
	case time.Duration:
		return strconv.FormatInt(v.Nanoseconds(), 10), nil
	case net.IP:
		return string(v), nil
	case *string, *bool, *int, *int8, *int16, *int32, *int64, *uint, *uint8, *uint16, *uint32, *uint64, *uintptr,
		*float32, *float64, *time.Time, *time.Duration:
		return String(Deref(v))
	case encoding.BinaryMarshaler:
		b, err := v.MarshalBinary()
		return string(b), err
	}
	return "", fmt.Errorf("cannot write a value of type %T (implement encoding.BinaryMarshaler)", v)
}

// Deref returns what the pointer p points to, or its type's zero value
// when p is nil.
func Deref(p any) any {
	rv := reflect.ValueOf(p)
	if rv.IsNil() {
		return reflect.Zero(rv.Type().Elem()).Interface()
	}
	return rv.Elem().Interface()
}
