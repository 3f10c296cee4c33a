package faultproxy_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/faultproxy"
	"github.com/streamgroup/streamgroup/internal/redistest"
)

func TestMain(m *testing.M) {
	// go-redis logs every failed dial, and the tests make many on purpose.
	redis.SetLogger(quiet{})
	os.Exit(redistest.Main(m))
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// echoServer starts a TCP server that writes back everything it reads; it
// is stopped (and its goroutines waited for) by t.Cleanup.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(c, c)
				_ = c.Close()
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// listen starts a proxy to target, closed by t.Cleanup.
func listen(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Listen(target, nil)
	if err != nil {
		t.Fatalf("Listen(%q) = %v", target, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close() = %v; want nil", err)
		}
	})
	return p
}

// proxyGoroutines counts the goroutines of this process running code of
// package faultproxy (not its tests). Only tests that do not run in
// parallel can expect it to drop to zero: top-level sequential tests run
// before every parallel one resumes.
func proxyGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "internal/faultproxy.(*") {
			count++
		}
	}
	return count
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and reads it back, within timeout.
func roundTrip(c net.Conn, msg []byte, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		errc <- err
	}()
	got := make([]byte, len(msg))
	_, rerr := io.ReadFull(c, got)
	werr := <-errc
	if err := errors.Join(werr, rerr); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}

func TestForwardsBothWays(t *testing.T) {
	t.Parallel()
	p := listen(t, echoServer(t))
	c := dial(t, p.Addr())
	msg := make([]byte, 1<<20)
	_, _ = crand.Read(msg)
	if err := roundTrip(c, msg, 5*time.Second); err != nil {
		t.Fatalf("round trip of 1 MiB through the proxy: %v; want the same bytes back", err)
	}
	if st := p.Stats(); st.Accepted != 1 || st.Open != 1 {
		t.Errorf("Stats() = %+v; want Accepted=1 Open=1", st)
	}
}

func TestCutClosesAndRefuses(t *testing.T) {
	t.Parallel()
	p := listen(t, echoServer(t))
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	for _, c := range []net.Conn{a, b} {
		if err := roundTrip(c, []byte("hello"), 2*time.Second); err != nil {
			t.Fatalf("round trip before the cut: %v", err)
		}
	}

	const refuse = 2 * time.Second // long enough for a busy machine to check refusals
	cutAt := time.Now()
	if n := p.Cut(refuse); n != 2 {
		t.Errorf("Cut() = %d; want 2 connections cut", n)
	}
	for _, c := range []net.Conn{a, b} {
		if err := roundTrip(c, []byte("x"), time.Second); err == nil || isTimeout(err) {
			t.Errorf("round trip on a cut connection: %v; want a connection error at once", err)
		}
	}
	// During the refusal a new connection is accepted and reset at once.
	if err := newConnRoundTrip(p.Addr()); err == nil || isTimeout(err) {
		t.Errorf("round trip on a connection made during the refusal: %v; want a connection error at once", err)
	}
	if time.Since(cutAt) > refuse/2 {
		t.Fatalf("the checks took %v, too long to tell refusal from recovery", time.Since(cutAt))
	}

	time.Sleep(time.Until(cutAt.Add(refuse + 50*time.Millisecond)))
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("again"), 2*time.Second); err != nil {
		t.Errorf("round trip after the refusal ended: %v; want it forwarded", err)
	}
	st := p.Stats()
	if st.Cut != 2 || st.Refused != 1 || st.Accepted != 3 || st.Open != 1 {
		t.Errorf("Stats() = %+v; want Cut=2 Refused=1 Accepted=3 Open=1", st)
	}
}

func TestHealEndsRefusal(t *testing.T) {
	t.Parallel()
	p := listen(t, echoServer(t))
	p.Cut(time.Hour)
	p.Heal()
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("hi"), 2*time.Second); err != nil {
		t.Errorf("round trip after Cut(1h) then Heal: %v; want it forwarded", err)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	p := listen(t, echoServer(t))
	c := dial(t, p.Addr())
	const lat = 60 * time.Millisecond
	p.SetLatency(lat)
	start := time.Now()
	if err := roundTrip(c, []byte("slow"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2*lat {
		t.Errorf("round trip with latency %v took %v; want at least %v", lat, d, 2*lat)
	}
	p.SetLatency(0)
	start = time.Now()
	if err := roundTrip(c, []byte("fast"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= 2*lat {
		t.Errorf("round trip after SetLatency(0) took %v; want less than %v", d, 2*lat)
	}
}

func TestStallHoldsThenDelivers(t *testing.T) {
	t.Parallel()
	p := listen(t, echoServer(t))
	c := dial(t, p.Addr())
	const stall = 400 * time.Millisecond
	p.Stall(stall)
	// Nothing moves during the stall...
	if err := roundTrip(c, []byte("held"), stall/2); !isTimeout(err) {
		t.Fatalf("round trip during a stall: %v; want a timeout", err)
	}
	// ...and what was held arrives, in order, afterwards.
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "held" {
		t.Fatalf("after the stall, read %q, %v; want %q", got, err, "held")
	}
	if err := roundTrip(c, []byte("after"), time.Second); err != nil {
		t.Errorf("round trip after the stall: %v", err)
	}

	p.Stall(time.Hour)
	done := make(chan error, 1)
	go func() { done <- roundTrip(c, []byte("healed"), 2*time.Second) }()
	time.Sleep(100 * time.Millisecond)
	p.Heal()
	if err := <-done; err != nil {
		t.Errorf("round trip across Stall(1h) and Heal: %v; want it forwarded after Heal", err)
	}
}

func TestTargetDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	p := listen(t, addr)
	if err := newConnRoundTrip(p.Addr()); err == nil || isTimeout(err) {
		t.Errorf("round trip to a target that is down: %v; want a connection error", err)
	}
}

// TestCloseWhileBusy closes the proxy with connections open, stalled and
// mid-transfer, and checks that no goroutine of it is left. Not parallel:
// see proxyGoroutines.
func TestCloseWhileBusy(t *testing.T) {
	p, err := faultproxy.Listen(echoServer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	for range 5 {
		conns = append(conns, dial(t, p.Addr()))
	}
	for _, c := range conns {
		if err := roundTrip(c, []byte("x"), 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	p.Stall(time.Hour)
	for _, c := range conns {
		_, _ = c.Write([]byte("stalled"))
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close() = %v; want nil", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close() = %v; want nil", err)
	}
	if n := proxyGoroutines(); n != 0 {
		t.Errorf("after Close, %d goroutines run proxy code; want 0", n)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), 200*time.Millisecond); err == nil {
		t.Errorf("dial %s after Close succeeded; want refused", p.Addr())
	}
}

// TestConcurrentUse injects faults from several goroutines while clients
// talk through the proxy (run with -race), then closes it and checks that no
// goroutine of it is left. Not parallel: see proxyGoroutines.
func TestConcurrentUse(t *testing.T) {
	p, err := faultproxy.Listen(echoServer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for ctx.Err() == nil {
				switch r.IntN(5) {
				case 0:
					p.Cut(time.Duration(r.IntN(20)) * time.Millisecond)
				case 1:
					p.SetLatency(time.Duration(r.IntN(3)) * time.Millisecond)
				case 2:
					p.Stall(time.Duration(r.IntN(10)) * time.Millisecond)
				case 3:
					p.Heal()
				case 4:
					_ = p.Stats()
				}
				time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond)
			}
		})
	}
	var ok sync.Map
	for i := range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
				if err != nil {
					continue
				}
				for ctx.Err() == nil && roundTrip(c, []byte("ping"), 200*time.Millisecond) == nil {
					ok.Store(i, true)
				}
				_ = c.Close()
			}
		})
	}
	wg.Wait()
	p.Heal()
	c := dial(t, p.Addr())
	if err := roundTrip(c, []byte("end"), 2*time.Second); err != nil {
		t.Errorf("round trip after the faults, healed: %v", err)
	}
	n := 0
	ok.Range(func(any, any) bool { n++; return true })
	if n == 0 {
		t.Errorf("no client completed a round trip among the faults; want some")
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close() = %v; want nil", err)
	}
	if n := proxyGoroutines(); n != 0 {
		t.Errorf("after Close, %d goroutines run proxy code; want 0", n)
	}
}

func TestListenInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, target string
		opts         *faultproxy.Options
	}{
		{"empty target", "", nil},
		{"negative dial timeout", "127.0.0.1:1", &faultproxy.Options{DialTimeout: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := faultproxy.Listen(tc.target, tc.opts)
			if !errors.Is(err, faultproxy.ErrInvalidOptions) {
				if p != nil {
					_ = p.Close()
				}
				t.Errorf("Listen(%q, %+v) = %v; want an error wrapping ErrInvalidOptions", tc.target, tc.opts, err)
			}
		})
	}
}

// newConnRoundTrip dials addr and makes one round trip. The reset of a
// refused connection can reach the client before its connect returns, so a
// dial error is a connection error like any other.
func newConnRoundTrip(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	return roundTrip(c, []byte("x"), time.Second)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
