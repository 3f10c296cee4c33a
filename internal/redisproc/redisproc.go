package redisproc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// defaultReadyTimeout is Options.ReadyTimeout's zero value.
	defaultReadyTimeout = 15 * time.Second
	// portAttempts is how many free ports Start tries before giving up.
	portAttempts = 5
	// tailLimit bounds the log tail of a StartError.
	tailLimit = 4 << 10
)

var (
	// ErrRunning is returned by [Server.Start] when the server is running.
	ErrRunning = errors.New("redisproc: server already running")
	// ErrNotRunning is returned by [Server.Stop] and [Server.Kill] when the
	// server is not running.
	ErrNotRunning = errors.New("redisproc: server not running")
)

// Options configures a [Server]. A nil *Options means all zero values: a
// plain TCP server without persistence or password.
type Options struct {
	// AOF turns on appendonly yes with appendfsync always, so a restart
	// keeps every acknowledged write. False means appendonly no: a restart
	// starts empty.
	AOF bool

	// Password, when not empty, is required of the default user
	// (requirepass); the readiness check uses it. Empty means no password.
	Password string

	// TLS, when not nil, makes the server accept TLS connections only, on
	// its port (--port 0 --tls-port). Nil means plain TCP.
	TLS *TLS

	// Args are extra redis-server arguments, appended last, such as
	// "--maxmemory", "10mb". Nil means none.
	Args []string

	// LogFile receives the server's stdout and stderr, appended across
	// runs. Empty means redis.log in the data directory.
	LogFile string

	// ReadyTimeout bounds how long a start waits for the server to answer
	// PING (loading a large AOF can take a while). Zero means 15s.
	ReadyTimeout time.Duration
}

// TLS is the server side of [Options].TLS.
type TLS struct {
	// CertFile and KeyFile are the PEM files of the server's certificate
	// and key. Both are required.
	CertFile, KeyFile string
	// CAFile is the PEM file of the CA certificates, passed as
	// --tls-ca-cert-file. Empty means none. Clients are never asked for a
	// certificate (--tls-auth-clients no).
	CAFile string
	// Config is the client configuration of the readiness check. Nil means
	// the system's roots, which will not trust a test CA.
	Config *tls.Config
}

// Server is a redis-server whose port, data directory and log file stay the
// same across runs. Its methods are safe for concurrent use; they
// serialize. The zero value is not usable: get a Server from [Start].
type Server struct {
	bin, dir string
	port     int
	opts     Options // a copy, defaults filled in

	mu  sync.Mutex // serializes Start, Stop and Kill
	cur *run       // nil when not running
}

// run is one process of a Server.
type run struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and err is set
	err  error         // from cmd.Wait
}

// StartError is a failed start, with the end of the server's log.
type StartError struct {
	Err     error  // what failed
	LogFile string // the server's log
	Tail    string // what this start wrote to LogFile, at most its last 4 KiB
}

func (e *StartError) Error() string {
	return fmt.Sprintf("%v (log %s)", e.Err, e.LogFile)
}

func (e *StartError) Unwrap() error { return e.Err }

// Start runs the redis-server binary found on PATH on a free port of
// 127.0.0.1 with its data in dir, and returns once it is ready (see
// [Server.Start]). When the port it picked was taken before the server bound
// it, it tries another. The error wraps [exec.ErrNotFound] when there is no
// redis-server on PATH, and is a [*StartError] when the server did not come
// up. The caller stops the server ([Server.Stop], [Server.Kill]) and
// removes dir.
func Start(ctx context.Context, dir string, opts *Options) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redisproc: redis-server is not on PATH: %w", err)
	}
	s := &Server{bin: bin, dir: dir}
	if opts != nil {
		s.opts = *opts
		s.opts.Args = slices.Clone(opts.Args)
	}
	if s.opts.LogFile == "" {
		s.opts.LogFile = filepath.Join(dir, "redis.log")
	}
	if s.opts.ReadyTimeout == 0 {
		s.opts.ReadyTimeout = defaultReadyTimeout
	}
	for range portAttempts {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = s.Start(ctx); err == nil {
			return s, nil
		}
		se, ok := errors.AsType[*StartError](err)
		if !ok || !strings.Contains(se.Tail, "Address already in use") {
			return nil, err
		}
	}
	return nil, fmt.Errorf("redisproc: no free port after %d attempts: %w", portAttempts, err)
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisproc: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is the server's host:port (its TLS port with [Options].TLS).
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// LogFile is the path of the server's log.
func (s *Server) LogFile() string { return s.opts.LogFile }

func (s *Server) args() []string {
	port := strconv.Itoa(s.port)
	args := []string{"--bind", "127.0.0.1", "--dir", s.dir, "--save", "", "--daemonize", "no"}
	if t := s.opts.TLS; t != nil {
		args = append(args, "--port", "0", "--tls-port", port,
			"--tls-cert-file", t.CertFile, "--tls-key-file", t.KeyFile, "--tls-auth-clients", "no")
		if t.CAFile != "" {
			args = append(args, "--tls-ca-cert-file", t.CAFile)
		}
	} else {
		args = append(args, "--port", port)
	}
	if s.opts.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	return append(args, s.opts.Args...)
}

// Start runs a stopped or killed server again on the same address, data
// directory and log file, and waits until it answers PING (so its AOF is
// loaded) as the process just started, up to [Options].ReadyTimeout or until
// ctx is done. It returns [ErrRunning] when the server is running. On
// failure the process is gone and the error is a [*StartError].
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		return ErrRunning
	}
	log, err := os.OpenFile(s.opts.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("redisproc: %w", err)
	}
	defer log.Close() // the child has its own copy
	offset, _ := log.Seek(0, io.SeekEnd)
	fail := func(err error) error {
		return &StartError{Err: err, LogFile: s.opts.LogFile, Tail: readTail(s.opts.LogFile, offset)}
	}

	cmd := exec.Command(s.bin, s.args()...)
	cmd.Stdout, cmd.Stderr = log, log
	DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("redisproc: start redis-server: %w", err))
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	go func() { // owned: every path below, Stop and Kill wait for done
		r.err = cmd.Wait()
		close(r.done)
	}()
	if err := s.waitReady(ctx, cmd.Process.Pid, r); err != nil {
		_ = cmd.Process.Kill()
		<-r.done
		return fail(fmt.Errorf("redisproc: redis-server on %s: %w", s.Addr(), err))
	}
	s.cur = r
	return nil
}

// waitReady polls the server until the process with pid answers PING (which
// it does not while LOADING), the process exits, ctx is done or
// ReadyTimeout passes.
func (s *Server) waitReady(ctx context.Context, pid int, r *run) error {
	var tlsConfig *tls.Config
	if s.opts.TLS != nil {
		tlsConfig = s.opts.TLS.Config
		if tlsConfig == nil {
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	c := redis.NewClient(&redis.Options{
		Addr:          s.Addr(),
		Password:      s.opts.Password,
		TLSConfig:     tlsConfig,
		MaxRetries:    -1,
		PoolSize:      1,
		DialTimeout:   500 * time.Millisecond,
		DialerRetries: 1,
		ReadTimeout:   3 * time.Second,
		WriteTimeout:  3 * time.Second,
	})
	defer c.Close()

	timeout := s.opts.ReadyTimeout
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		// A plain dial first: go-redis logs every failed dial, and most
		// polls happen before the server listens.
		var conn net.Conn
		if conn, last = net.DialTimeout("tcp", s.Addr(), 500*time.Millisecond); last == nil {
			_ = conn.Close()
			last = pingPid(ctx, c, pid)
		}
		if last == nil {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("exited before ready: %v", r.err)
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), last)
		case <-deadline.C:
			return fmt.Errorf("not ready after %v: %w", timeout, last)
		case <-tick.C:
		}
	}
}

// pingPid checks that the server answering PING is the process with pid.
func pingPid(ctx context.Context, c *redis.Client, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	// Make sure it is our process answering, not whoever else took the port.
	info, err := c.Info(ctx, "server").Result()
	if err == nil && !strings.Contains(info, fmt.Sprintf("process_id:%d\r\n", pid)) {
		err = errors.New("another server answers on the port")
	}
	return err
}

// Stop shuts the server down gracefully and waits for it to exit: it sends
// SIGTERM, which Redis handles like SHUTDOWN (with AOF, the file is
// fsynced). When ctx is done first, it sends SIGKILL, waits for the exit and
// returns an error. It returns [ErrNotRunning] when the server is not
// running.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.detach()
	if err != nil {
		return err
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		if r.err != nil {
			return fmt.Errorf("redisproc: redis-server on %s: %w (log %s)", s.Addr(), r.err, s.opts.LogFile)
		}
		return nil
	case <-ctx.Done():
		_ = r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("redisproc: redis-server on %s did not stop: %w; killed (log %s)", s.Addr(), context.Cause(ctx), s.opts.LogFile)
	}
}

// Kill sends SIGKILL and waits for the process to exit. It returns
// [ErrNotRunning] when the server is not running.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.detach()
	if err != nil {
		return err
	}
	_ = r.cmd.Process.Kill() // os.ErrProcessDone when it already exited
	<-r.done
	return nil
}

// detach returns the running process and marks the server stopped, or
// returns ErrNotRunning. The caller holds s.mu and waits for the process.
func (s *Server) detach() (*run, error) {
	r := s.cur
	if r == nil {
		return nil, ErrNotRunning
	}
	s.cur = nil
	return r, nil
}

// readTail returns the last tailLimit bytes written to path from offset.
func readTail(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	if offset > fi.Size() {
		offset = 0
	}
	if fi.Size()-offset > tailLimit {
		offset = fi.Size() - tailLimit
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
