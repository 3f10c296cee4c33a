package integration_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// warnings is a slog.Handler that keeps the records at Warn and above,
// each as its message followed by its attributes.
type warnings struct {
	mu    *sync.Mutex
	recs  *[]string
	attrs []slog.Attr
}

func newWarnings() warnings { return warnings{mu: new(sync.Mutex), recs: new([]string)} }

func (w warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w warnings) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	for _, a := range w.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	w.mu.Lock()
	*w.recs = append(*w.recs, b.String())
	w.mu.Unlock()
	return nil
}
func (w warnings) WithAttrs(as []slog.Attr) slog.Handler {
	w.attrs = append(w.attrs[:len(w.attrs):len(w.attrs)], as...)
	return w
}
func (w warnings) WithGroup(string) slog.Handler { return w }

// mentioning returns the records that contain every one of subs.
func (w warnings) mentioning(subs ...string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, r := range *w.recs {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(r, s)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}
