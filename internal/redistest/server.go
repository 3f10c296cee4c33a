package redistest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// readyTimeout bounds how long Start waits for PING (and AOF loading).
	readyTimeout = 15 * time.Second
	// stopTimeout bounds a graceful Stop before it falls back to SIGKILL.
	stopTimeout = 10 * time.Second
	// portAttempts is how many free ports a new server tries before giving up.
	portAttempts = 5
)

var (
	errRunning    = errors.New("redistest: server already running")
	errNotRunning = errors.New("redistest: server not running")
)

// ServerOptions configures an owned server. The zero value means no
// persistence.
type ServerOptions struct {
	// AOF turns on appendonly yes with appendfsync always, so a restart keeps
	// every acknowledged write.
	AOF bool
}

// Server is a Redis server the test owns: it can be stopped, killed with
// SIGKILL and restarted on the same address with the same data directory.
// Its methods are safe for concurrent use; they serialize. The zero value is
// not usable: get a Server from [StartServer].
type Server struct {
	t testing.TB
	p *proc
}

// StartServer starts a server owned by t (stopped with t.Cleanup). It needs a
// redis-server binary on PATH (or Docker); otherwise it skips or fails as
// Client does.
//
// Docker is not used for owned servers: Kill must be a real SIGKILL of the
// server process and Start must come back on the same port, so without
// redis-server on PATH the test is skipped (or fails under
// STREAMGROUP_REQUIRE_REDIS=1) even when Docker is available.
func StartServer(t testing.TB, opts *ServerOptions) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "StartServer needs redis-server on PATH, to kill and restart it on the same port; REDIS_ADDR and Docker do not serve it")
	}
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	p, err := startFreePort(bin, t.TempDir(), o.AOF)
	if err != nil {
		logTail(t, err)
		t.Fatalf("redistest: StartServer: %v", err)
	}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() { _ = p.kill() })
	return &Server{t: t, p: p}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.p.addr() }

// LogFile is the path of the server's log (stdout and stderr of every run,
// appended).
func (s *Server) LogFile() string { return s.p.logPath }

// Client returns a new client to s, closed with t.Cleanup. It keeps working
// across Restart.
func (s *Server) Client(t testing.TB) *redis.Client {
	return newClient(t, s.Addr())
}

// Stop shuts the server down gracefully (SHUTDOWN, or SIGTERM) and waits for it to exit.
//
// It sends SIGTERM, which Redis handles like SHUTDOWN (with AOF, the file is
// fsynced), and falls back to SIGKILL after 10s, returning an error then.
func (s *Server) Stop() error { return s.p.stop(stopTimeout) }

// Kill sends SIGKILL and waits for the process to exit.
func (s *Server) Kill() error { return s.p.kill() }

// Start starts a stopped or killed server again on the same address and
// data directory, and waits until it answers PING (and has loaded its AOF).
// When it fails, the tail of the server's log goes to the test log.
func (s *Server) Start() error {
	err := s.p.start()
	if err != nil {
		logTail(s.t, err)
	}
	return err
}

// proc is one redis-server configuration: the port, data directory and log
// file stay the same across runs.
type proc struct {
	bin, dir, logPath string
	port              int
	aof               bool

	mu  sync.Mutex // serializes start, stop and kill
	cur *run       // nil when not running
}

// run is one process of a proc.
type run struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and err is set
	err  error         // from cmd.Wait
}

// startError is a failed start, with the end of the server's log.
type startError struct {
	err     error
	logPath string
	tail    string
}

func (e *startError) Error() string {
	return fmt.Sprintf("%v (log %s)", e.err, e.logPath)
}

func (e *startError) Unwrap() error { return e.err }

// logTail writes the log tail of a failed start to t's log.
func logTail(t testing.TB, err error) {
	t.Helper()
	if se, ok := errors.AsType[*startError](err); ok {
		t.Logf("redistest: tail of %s:\n%s", se.logPath, se.tail)
	}
}

// startFreePort starts redis-server on a free port of 127.0.0.1, trying
// another port when the chosen one was taken before the server bound it.
func startFreePort(bin, dir string, aof bool) (*proc, error) {
	var err error
	for range portAttempts {
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		p := &proc{bin: bin, dir: dir, logPath: filepath.Join(dir, "redis.log"), port: port, aof: aof}
		if err = p.start(); err == nil {
			return p, nil
		}
		se, ok := errors.AsType[*startError](err)
		if !ok || !strings.Contains(se.tail, "Address already in use") {
			return nil, err
		}
	}
	return nil, fmt.Errorf("redistest: no free port after %d attempts: %w", portAttempts, err)
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *proc) addr() string { return net.JoinHostPort("127.0.0.1", itoa(p.port)) }

func (p *proc) args() []string {
	args := []string{
		"--port", itoa(p.port),
		"--bind", "127.0.0.1",
		"--dir", p.dir,
		"--save", "",
		"--daemonize", "no",
	}
	if p.aof {
		return append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	return append(args, "--appendonly", "no")
}

// start runs redis-server and waits until it is ready. On failure the
// process is gone and the error is a *startError.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return errRunning
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	defer log.Close() // the child has its own copy
	var offset int64
	if fi, err := log.Stat(); err == nil {
		offset = fi.Size()
	}
	fail := func(err error) error {
		return &startError{err: err, logPath: p.logPath, tail: readTail(p.logPath, offset)}
	}

	cmd := exec.Command(p.bin, p.args()...)
	cmd.Stdout, cmd.Stderr = log, log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("redistest: start redis-server: %w", err))
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	if err := waitReady(p.addr(), cmd.Process.Pid, r); err != nil {
		_ = cmd.Process.Kill()
		<-r.done
		return fail(fmt.Errorf("redistest: redis-server on %s: %w", p.addr(), err))
	}
	p.cur = r
	return nil
}

// waitReady polls addr until the server with pid answers PING (which it does
// not while LOADING), the process exits, or readyTimeout passes.
func waitReady(addr string, pid int, r *run) error {
	opts := clientOptions(addr)
	opts.MaxRetries = -1
	opts.PoolSize = 1
	opts.DialTimeout = 500 * time.Millisecond
	opts.DialerRetries = 1
	c := redis.NewClient(opts)
	defer c.Close()

	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		// A plain dial first: go-redis logs every failed dial, and most
		// polls happen before the server listens.
		var conn net.Conn
		if conn, last = net.DialTimeout("tcp", addr, 500*time.Millisecond); last == nil {
			_ = conn.Close()
			last = pingPid(c, pid, addr)
		}
		if last == nil {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("exited before ready: %v", r.err)
		case <-deadline.C:
			return fmt.Errorf("not ready after %v: %w", readyTimeout, last)
		case <-tick.C:
		}
	}
}

// pingPid checks that the server with pid answers PING.
func pingPid(c *redis.Client, pid int, addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	// Make sure it is our process answering, not whoever else took the port.
	info, err := c.Info(ctx, "server").Result()
	if err == nil && !strings.Contains(info, fmt.Sprintf("process_id:%d\r\n", pid)) {
		err = fmt.Errorf("another server answers on %s", addr)
	}
	return err
}

// stop sends SIGTERM and waits for the exit, up to timeout; then SIGKILL.
func (p *proc) stop(timeout time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.cur
	if r == nil {
		return errNotRunning
	}
	p.cur = nil
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-r.done:
		if r.err != nil {
			return fmt.Errorf("redistest: redis-server on %s: %w (log %s)", p.addr(), r.err, p.logPath)
		}
		return nil
	case <-timer.C:
		_ = r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("redistest: redis-server on %s did not stop within %v; killed (log %s)", p.addr(), timeout, p.logPath)
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.cur
	if r == nil {
		return errNotRunning
	}
	p.cur = nil
	_ = r.cmd.Process.Kill() // os.ErrProcessDone when it already exited
	<-r.done
	return nil
}

// readTail returns the last lines of what was written to path from offset.
func readTail(path string, offset int64) string {
	const limit = 4 << 10
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	if fi.Size()-offset > limit {
		offset = fi.Size() - limit
	}
	b, err := io.ReadAll(io.NewSectionReader(f, offset, fi.Size()-offset))
	if err != nil {
		return err.Error()
	}
	if len(b) == 0 {
		return "(empty)"
	}
	return string(b)
}
