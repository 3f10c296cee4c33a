package integration_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/faultproxy"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// xackHook signals when a pipeline carrying XACK starts.
type xackHook struct {
	once    sync.Once
	started chan struct{}
}

func (h *xackHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *xackHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *xackHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "xack" {
				h.once.Do(func() { close(h.started) })
			}
		}
		return next(ctx, cmds)
	}
}

// TestAckSurvivesOutageAtStop stops a consumer while the periodic XACK of a
// finished entry is failing against an unreachable Redis (go-redis is
// between its own retries, which watch the context). The stop cancels that
// flush; its entry must go to the final flush, which acknowledges it once
// Redis is back within AckTimeout. Before the fix the cancelled flush
// dropped the batch ("XACK of 1 entries ... context canceled"), Run
// returned nil, and the entry stayed pending, to run again.
func TestAckSurvivesOutageAtStop(t *testing.T) {
	direct := redistest.Client(t)
	key, grp := redistest.Names(t)
	proxy, err := faultproxy.Listen(direct.Options().Addr, nil)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	o := *direct.Options()
	o.Addr = proxy.Addr()
	// go-redis retries a failed command itself, sleeping between tries
	// with the command's context: long sleeps make sure the stop lands
	// inside one.
	o.MaxRetries = 3
	o.MinRetryBackoff = 500 * time.Millisecond
	o.MaxRetryBackoff = time.Second
	rdb := redis.NewClient(&o)
	t.Cleanup(func() { _ = rdb.Close() })
	hook := &xackHook{started: make(chan struct{})}
	rdb.AddHook(hook)

	const outage = 1500 * time.Millisecond
	handled := make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, m *stream.Message) error {
		// Redis becomes unreachable as the entry finishes: its XACK
		// will fail.
		once.Do(func() { proxy.Cut(outage); close(handled) })
		return nil
	}
	var mu sync.Mutex
	var reported []string
	opts := fastOptions()
	opts.Concurrency = 1
	opts.OnError = func(err error) {
		mu.Lock()
		reported = append(reported, err.Error())
		mu.Unlock()
	}
	c := newConsumer(t, rdb, key, grp, "A", handler.Func(h), opts)
	publish(t, direct, key, 1, nil)
	run := start(t, c.Run)

	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("the entry was not handled")
	}
	select {
	case <-hook.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no XACK flush started")
	}
	// The flush is in flight against the unreachable server: stop now.
	run.Cancel()
	if err := run.Wait(t, 20*time.Second); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if n := pending(t, direct, key, grp); n != 0 {
		mu.Lock()
		t.Errorf("pending after a graceful stop = %d; want 0 (the finished entry's XACK was dropped); errors reported: %s", n, strings.Join(reported, "; "))
		mu.Unlock()
	}
	if st := c.Stats(); st.Acked != 1 {
		t.Errorf("Stats().Acked = %d; want 1", st.Acked)
	}
}
