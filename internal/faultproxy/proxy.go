package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidOptions is wrapped by the error [Listen] returns for bad
// arguments.
var ErrInvalidOptions = errors.New("faultproxy: invalid options")

// Options configures a [Proxy]. A nil *Options means all defaults.
type Options struct {
	// Addr is the address to listen on. Zero means "127.0.0.1:0" (a free
	// loopback port; see [Proxy.Addr]).
	Addr string
	// DialTimeout bounds the dial to the target made for each accepted
	// connection; when it fails, the accepted connection is reset. Zero
	// means 2s.
	DialTimeout time.Duration
}

// Stats is a snapshot of a proxy's counters. The zero value is all zeros.
type Stats struct {
	Accepted uint64 // connections accepted and forwarded (or attempted)
	Refused  uint64 // connections reset at once because of a Cut
	Cut      uint64 // open connections closed by Cut
	Open     int    // connections open now
}

// Proxy forwards TCP connections from its listen address to a target, with
// faults injected on demand. Its methods are safe for concurrent use. The
// zero value is not usable: get a Proxy from [Listen].
type Proxy struct {
	ln          net.Listener
	target      string
	dialTimeout time.Duration
	ctx         context.Context // cancelled by Close
	cancel      context.CancelFunc
	wg          sync.WaitGroup // the accept loop and every link

	mu          sync.Mutex
	closed      bool
	links       map[*link]struct{}
	refuseUntil time.Time
	stallUntil  time.Time
	latency     time.Duration
	changed     chan struct{} // closed and replaced when a fault changes

	accepted, refused, cut atomic.Uint64
}

// Listen starts a proxy that forwards to target (host:port). Close it with
// [Proxy.Close].
func Listen(target string, opts *Options) (*Proxy, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if target == "" {
		return nil, fmt.Errorf("%w: empty target", ErrInvalidOptions)
	}
	if o.DialTimeout < 0 {
		return nil, fmt.Errorf("%w: negative DialTimeout", ErrInvalidOptions)
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 2 * time.Second
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln: ln, target: target, dialTimeout: o.DialTimeout,
		ctx: ctx, cancel: cancel,
		links:   map[*link]struct{}{},
		changed: make(chan struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address the proxy listens on (host:port). It stays the same
// for the proxy's life.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address connections are forwarded to.
func (p *Proxy) Target() string { return p.target }

// Cut closes every open connection and, for d, resets every new connection
// as soon as it is accepted. It returns the number of connections closed.
// A d of zero or less cuts without refusing.
func (p *Proxy) Cut(d time.Duration) int {
	p.mu.Lock()
	if until := time.Now().Add(d); d > 0 && until.After(p.refuseUntil) {
		p.refuseUntil = until
	}
	open := make([]*link, 0, len(p.links))
	for l := range p.links {
		open = append(open, l)
	}
	p.mu.Unlock()
	for _, l := range open {
		l.close(true)
	}
	p.cut.Add(uint64(len(open)))
	return len(open)
}

// SetLatency delays every chunk of data by d before forwarding it, in each
// direction (a request and its reply take at least 2d more). Zero removes
// the latency. It applies to chunks read from now on.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = max(d, 0)
	p.broadcastLocked()
	p.mu.Unlock()
}

// Stall stops forwarding on every connection, in both directions, for d:
// connections stay open, data read meanwhile is held (and the rest waits in
// the kernel's buffers), and everything is forwarded in order when the
// stall ends. New connections are accepted but stalled too. A later stall
// ending sooner does not shorten the current one; [Proxy.Heal] does.
func (p *Proxy) Stall(d time.Duration) {
	p.mu.Lock()
	if until := time.Now().Add(d); until.After(p.stallUntil) {
		p.stallUntil = until
	}
	p.broadcastLocked()
	p.mu.Unlock()
}

// Heal ends every fault at once: no more refusals, stall or latency.
// Connections closed by a Cut stay closed.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.refuseUntil = time.Time{}
	p.stallUntil = time.Time{}
	p.latency = 0
	p.broadcastLocked()
	p.mu.Unlock()
}

// Stats returns a snapshot of the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := len(p.links)
	p.mu.Unlock()
	return Stats{Accepted: p.accepted.Load(), Refused: p.refused.Load(), Cut: p.cut.Load(), Open: open}
}

// Close stops listening, closes every connection and waits until every
// goroutine of the proxy has returned. Calling it again does nothing and
// returns nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	err := p.ln.Close()
	open := make([]*link, 0, len(p.links))
	for l := range p.links {
		open = append(open, l)
	}
	p.broadcastLocked()
	p.mu.Unlock()
	p.cancel()
	for _, l := range open {
		l.close(false)
	}
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("faultproxy: close: %w", err)
	}
	return nil
}

func (p *Proxy) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	var delay time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		p.mu.Lock()
		switch {
		case p.closed:
			p.mu.Unlock()
			_ = c.Close()
			return
		case time.Now().Before(p.refuseUntil):
			p.mu.Unlock()
			p.refused.Add(1)
			reset(c)
			continue
		}
		l := newLink(p.ctx, c)
		p.links[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		p.accepted.Add(1)
		go p.serve(l)
	}
}

// serve dials the target for l and forwards both ways until either side
// ends or l is closed.
func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer func() {
		l.close(false)
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	d := net.Dialer{Timeout: p.dialTimeout}
	s, err := d.DialContext(l.ctx, "tcp", p.target)
	if err != nil {
		l.close(true)
		return
	}
	if !l.setServer(s) {
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		p.pump(l, l.client, s)
		l.close(false)
	})
	p.pump(l, s, l.client)
	l.close(false)
	wg.Wait()
}

// pump copies src to dst, holding each chunk for the latency and any stall.
func (p *Proxy) pump(l *link, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold waits for the current latency, then for the end of any stall. It
// reports false when l was closed meanwhile.
func (p *Proxy) hold(l *link) bool {
	p.mu.Lock()
	lat := p.latency
	p.mu.Unlock()
	if lat > 0 && !l.wait(lat, nil) {
		return false
	}
	for {
		p.mu.Lock()
		until, changed := p.stallUntil, p.changed
		p.mu.Unlock()
		d := time.Until(until)
		if d <= 0 {
			return true
		}
		if !l.wait(d, changed) {
			return false
		}
	}
}

// link is one proxied connection.
type link struct {
	ctx    context.Context // cancelled by close; bounds the dial
	cancel context.CancelFunc
	client net.Conn

	mu     sync.Mutex
	server net.Conn // nil until dialled
	closed bool
}

func newLink(parent context.Context, c net.Conn) *link {
	ctx, cancel := context.WithCancel(parent)
	return &link{ctx: ctx, cancel: cancel, client: c}
}

// setServer records the dialled connection; it reports false (and closes
// s) when l was closed during the dial.
func (l *link) setServer(s net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = s.Close()
		return false
	}
	l.server = s
	return true
}

// close closes both connections, once. With rst, they are reset (RST)
// rather than closed in order, so the peers see an error at once.
func (l *link) close(rst bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	l.cancel()
	if rst {
		reset(l.client)
		if l.server != nil {
			reset(l.server)
		}
		return
	}
	_ = l.client.Close()
	if l.server != nil {
		_ = l.server.Close()
	}
}

// wait waits for d, or until changed is closed (nil: never). It reports
// false when l was closed first.
func (l *link) wait(d time.Duration, changed <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.ctx.Done():
		return false
	case <-changed:
		return true
	case <-t.C:
		return true
	}
}

// reset closes c with an RST when it is a TCP connection.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
