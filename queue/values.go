package queue

import (
	"fmt"
	"reflect"

	"github.com/streamgroup/streamgroup/internal/redisarg"
)

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

// argString returns v as go-redis writes it (package redisarg), and also
// dereferences pointers go-redis refuses (a nil one as its type's zero
// value).
func argString(v any) (string, error) {
	s, err := redisarg.String(v)
	if rv := reflect.ValueOf(v); err != nil && rv.Kind() == reflect.Pointer {
		return argString(redisarg.Deref(v))
	}
	return s, err
}
