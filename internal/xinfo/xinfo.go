// Package xinfo reads the replies of XINFO subcommands sent with Do. The
// typed commands of go-redis turn a nil field into 0 (entries-read) or -1
// (lag) and drop fields they do not know; read raw, a nil stays nil and
// "unknown" can be told from zero. group.Manager and package inspect read
// XINFO GROUPS (and CONSUMERS) this way.
package xinfo

import (
	"errors"
	"fmt"
	"strconv"
)

// Entries returns the entries of an XINFO GROUPS or XINFO CONSUMERS reply
// as field maps (see [Fields]).
func Entries(v any) ([]map[string]any, error) {
	items, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("unexpected XINFO reply %T", v)
	}
	out := make([]map[string]any, 0, len(items))
	for _, it := range items {
		f, err := Fields(it)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// Fields turns one XINFO entry into a field map. Redis replies with a map
// under RESP3 and a flat field/value array under RESP2.
func Fields(v any) (map[string]any, error) {
	switch v := v.(type) {
	case map[any]any:
		f := make(map[string]any, len(v))
		for k, x := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("unexpected XINFO field name %T", k)
			}
			f[ks] = x
		}
		return f, nil
	case map[string]any:
		return v, nil
	case []any:
		if len(v)%2 != 0 {
			return nil, errors.New("odd-length XINFO entry")
		}
		f := make(map[string]any, len(v)/2)
		for i := 0; i < len(v); i += 2 {
			ks, ok := v[i].(string)
			if !ok {
				return nil, fmt.Errorf("unexpected XINFO field name %T", v[i])
			}
			f[ks] = v[i+1]
		}
		return f, nil
	}
	return nil, fmt.Errorf("unexpected XINFO entry %T", v)
}

// Str returns v as a string, or "" when it is absent, nil or not a string.
func Str(v any) string {
	s, _ := v.(string)
	return s
}

// Int returns v as an integer and true, or 0 and false when it is absent,
// nil (Redis could not tell) or not an integer.
func Int(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case string: // some proxies stringify integers
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n, true
		}
	}
	return 0, false
}

// IntOr returns v as an integer, or def when [Int] finds none.
func IntOr(v any, def int64) int64 {
	if n, ok := Int(v); ok {
		return n
	}
	return def
}
