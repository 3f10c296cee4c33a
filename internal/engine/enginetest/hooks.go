package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"github.com/streamgroup/streamgroup/hook"
)

// hookCheck is the hook every consumer of the suite runs with (through
// [Options.Hook]). It checks the contract of hook.Consumer as the calls
// come (each Start followed by exactly one End, with the context Start
// returned, from the same goroutine), and records the outcomes and events
// the scenarios look at.
type hookCheck struct {
	e        *env
	consumer string

	mu       sync.Mutex
	targets  int               // Consumer calls
	open     map[*started]bool // Starts not ended yet
	problems []string
	events   []hook.Event
}

// started is one Start; the context Start returns carries it.
type started struct {
	id   string
	goid uint64
}

type startKey struct{}

func newHookCheck(e *env, consumer string) *hookCheck {
	return &hookCheck{e: e, consumer: consumer, open: make(map[*started]bool)}
}

func (h *hookCheck) Producer(hook.Target) hook.Producer { return nil }

func (h *hookCheck) Consumer(hook.Target) hook.Consumer {
	h.mu.Lock()
	h.targets++
	h.mu.Unlock()
	return h
}

func (h *hookCheck) Start(ctx context.Context, m hook.Message) context.Context {
	s := &started{id: m.ID, goid: goid()}
	h.mu.Lock()
	h.open[s] = true
	h.mu.Unlock()
	return context.WithValue(ctx, startKey{}, s)
}

func (h *hookCheck) End(ctx context.Context, m hook.Message, r hook.Result) {
	s, _ := ctx.Value(startKey{}).(*started)
	h.mu.Lock()
	switch {
	case s == nil:
		h.problemLocked("End of %s without the context its Start returned", m.ID)
	case !h.open[s]:
		h.problemLocked("a second End of %s's Start", m.ID)
	default:
		delete(h.open, s)
		if s.id != m.ID {
			h.problemLocked("End of %s with the context of the Start of %s", m.ID, s.id)
		}
		if g := goid(); g != s.goid {
			h.problemLocked("End of %s on goroutine %d; its Start ran on %d", m.ID, g, s.goid)
		}
	}
	switch {
	case r.Outcome == hook.Acked && (r.Err != nil || !r.Handled):
		h.problemLocked("End of %s: %+v; an ack follows a handler call that returned nil", m.ID, r)
	case (r.Outcome == hook.Retried || r.Outcome == hook.DeadLettered) && r.Err == nil:
		h.problemLocked("End of %s: %+v; a retry or dead letter has an error", m.ID, r)
	case !r.Handled && r.Duration != 0:
		h.problemLocked("End of %s: %+v; no handler call, yet a duration", m.ID, r)
	}
	h.mu.Unlock()
	h.e.recordEnd(ending{consumer: h.consumer, n: m.Values["n"], r: r})
}

func (h *hookCheck) Event(ev hook.Event) {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

func (h *hookCheck) problemLocked(format string, args ...any) {
	h.problems = append(h.problems, fmt.Sprintf(format, args...))
}

// check reports what broke the contract, once Run returned: problems seen
// on the way, and Starts never ended.
func (h *hookCheck) check() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := append([]string(nil), h.problems...)
	if h.targets != 1 {
		ps = append(ps, fmt.Sprintf("Hook.Consumer called %d times; want once (does the harness pass Options.Hook on?)", h.targets))
	}
	for s := range h.open {
		ps = append(ps, fmt.Sprintf("Start of %s never ended", s.id))
	}
	return ps
}

// count sums the N of the events of kind.
func (h *hookCheck) count(kind hook.EventKind) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		if ev.Kind == kind {
			n += ev.N
		}
	}
	return n
}

// eventsOf returns the events of kind.
func (h *hookCheck) eventsOf(kind hook.EventKind) []hook.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var evs []hook.Event
	for _, ev := range h.events {
		if ev.Kind == kind {
			evs = append(evs, ev)
		}
	}
	return evs
}

// ending is one End the hook saw.
type ending struct {
	consumer string
	n        string // the job's "n" field
	r        hook.Result
}

// hookStarted reports whether ctx is one a hookCheck's Start returned.
func hookStarted(ctx context.Context) bool {
	_, ok := ctx.Value(startKey{}).(*started)
	return ok
}

// goid returns the calling goroutine's ID, read from its stack's header.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	b, _, _ = bytes.Cut(b, []byte(" "))
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
