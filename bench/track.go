package main

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

const payloadSize = 200

// payload returns a 200-byte job body: the job number and the publish time
// (UnixNano, 0 when latency is not measured), 16 hex digits each, then
// padding.
func payload(id int, ts int64) []byte {
	b := make([]byte, payloadSize)
	putHex(b[0:16], uint64(id))
	putHex(b[16:32], uint64(ts))
	for i := 32; i < len(b); i++ {
		b[i] = 'x'
	}
	return b
}

func putHex(b []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
}

func parseHex[T string | []byte](s T) (uint64, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// parsePayload returns the job number and publish time of a body made by
// payload; id is -1 for anything else.
func parsePayload[T string | []byte](s T) (id int, ts int64) {
	if len(s) != payloadSize {
		return -1, 0
	}
	a, ok1 := parseHex(s[0:16])
	b, ok2 := parseHex(s[16:32])
	if !ok1 || !ok2 {
		return -1, 0
	}
	return int(a), int64(b)
}

// tracker counts the distinct jobs handled; done is closed when all n were
// seen at least once.
type tracker struct {
	n        int64
	seen     []atomic.Uint32
	lat      []int64 // publish → first handler start, ns; nil unless measured
	distinct atomic.Int64
	handled  atomic.Int64
	bad      atomic.Int64
	done     chan struct{}
}

func newTracker(n int, latency bool) *tracker {
	t := &tracker{n: int64(n), seen: make([]atomic.Uint32, n), done: make(chan struct{})}
	if latency {
		t.lat = make([]int64, n)
	}
	return t
}

// mark records the start of handling job id published at ts.
func (t *tracker) mark(id int, ts int64) {
	t.handled.Add(1)
	if id < 0 || id >= len(t.seen) {
		t.bad.Add(1)
		return
	}
	if t.seen[id].Swap(1) != 0 {
		return
	}
	if t.lat != nil && ts > 0 {
		t.lat[id] = time.Now().UnixNano() - ts
	}
	if t.distinct.Add(1) == t.n {
		close(t.done)
	}
}

func (t *tracker) percentiles() (p50, p99, p999 time.Duration) {
	if t.lat == nil {
		return 0, 0, 0
	}
	l := make([]int64, 0, len(t.lat))
	for i, v := range t.lat {
		if t.seen[i].Load() != 0 {
			l = append(l, v)
		}
	}
	if len(l) == 0 {
		return 0, 0, 0
	}
	slices.Sort(l)
	at := func(q float64) time.Duration {
		i := int(q * float64(len(l)-1))
		return time.Duration(l[i])
	}
	return at(0.50), at(0.99), at(0.999)
}

// snapshot is the resource usage at one moment.
type snapshot struct {
	wall     time.Time
	goCPU    time.Duration
	redisCPU float64
	cmds     int64 // commands processed by redis-server
	mallocs  uint64
}

func goCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func take(ctx context.Context, rdb redis.UniversalClient) (snapshot, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rc, cmds, err := redisCPU(ctx, rdb)
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{wall: time.Now(), goCPU: goCPU(), redisCPU: rc, cmds: cmds, mallocs: ms.Mallocs}, nil
}

// result is one cell row of the table.
type result struct {
	system   string
	msgs     int
	wall     time.Duration
	goCPU    time.Duration
	redisCPU float64
	mallocs  uint64
	cmds     int64
	p50      time.Duration
	p99      time.Duration
	p999     time.Duration
	latency  bool
	failed   string // why the run is not valid; "" when it is
	skipped  string // "n/a", "not yet", "unavailable: ..."
	note     string
}

func (r *result) fill(a, b snapshot, msgs int) {
	r.msgs = msgs
	r.wall = b.wall.Sub(a.wall)
	r.goCPU = b.goCPU - a.goCPU
	r.redisCPU = b.redisCPU - a.redisCPU
	r.mallocs = b.mallocs - a.mallocs
	r.cmds = b.cmds - a.cmds - 1 // not counting the INFO of the first snapshot
}

func (r *result) rate() float64 {
	if r.wall <= 0 {
		return 0
	}
	return float64(r.msgs) / r.wall.Seconds()
}

// verify fails r unless every job was seen at least once.
func (r *result) verify(t *tracker) {
	if d := t.distinct.Load(); d != t.n {
		r.failed = fmt.Sprintf("FAILED: %d of %d jobs handled", d, t.n)
	} else if b := t.bad.Load(); b > 0 {
		r.failed = fmt.Sprintf("FAILED: %d unparseable jobs", b)
	}
	if r.note == "" && t.handled.Load() > t.n {
		r.note = fmt.Sprintf("%d duplicate deliveries", t.handled.Load()-t.n)
	}
}

// waitFor polls cond every millisecond until it holds or ctx ends.
func waitFor(ctx context.Context, cond func(context.Context) (bool, error)) error {
	for {
		ok, err := cond(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// slept sums the time handlers of the I/O-bound workload (c) really spent
// in their sleep, which on a busy or virtualized machine is well above the
// time asked for: the ideal rate is concurrency / the measured mean.
var slept struct {
	ns, n atomic.Int64
}

// jobSleep is the handlers' simulated I/O: it sleeps d and records how long
// that took.
func jobSleep(d time.Duration) {
	t := time.Now()
	time.Sleep(d)
	slept.ns.Add(int64(time.Since(t)))
	slept.n.Add(1)
}
