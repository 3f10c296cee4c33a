package redistest

import (
	"context"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redisproc"
)

// stopTimeout bounds a graceful Stop before it falls back to SIGKILL.
const stopTimeout = 10 * time.Second

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
	p *redisproc.Server
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
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "StartServer needs redis-server on PATH, to kill and restart it on the same port; REDIS_ADDR and Docker do not serve it")
	}
	var o ServerOptions
	if opts != nil {
		o = *opts
	}
	p, err := redisproc.Start(context.Background(), t.TempDir(), &redisproc.Options{AOF: o.AOF})
	if err != nil {
		logTail(t, err)
		t.Fatalf("redistest: StartServer: %v", err)
	}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(func() { _ = p.Kill() })
	return &Server{t: t, p: p}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.p.Addr() }

// LogFile is the path of the server's log (stdout and stderr of every run,
// appended).
func (s *Server) LogFile() string { return s.p.LogFile() }

// Client returns a new client to s, closed with t.Cleanup. It keeps working
// across Restart.
func (s *Server) Client(t testing.TB) *redis.Client {
	return newClient(t, s.Addr())
}

// Stop shuts the server down gracefully (SHUTDOWN, or SIGTERM) and waits for it to exit.
//
// It sends SIGTERM, which Redis handles like SHUTDOWN (with AOF, the file is
// fsynced), and falls back to SIGKILL after 10s, returning an error then.
func (s *Server) Stop() error { return stopProc(s.p) }

// Kill sends SIGKILL and waits for the process to exit.
func (s *Server) Kill() error { return s.p.Kill() }

// Start starts a stopped or killed server again on the same address and
// data directory, and waits until it answers PING (and has loaded its AOF).
// When it fails, the tail of the server's log goes to the test log.
func (s *Server) Start() error {
	err := s.p.Start(context.Background())
	if err != nil {
		logTail(s.t, err)
	}
	return err
}

// stopProc stops p gracefully, falling back to SIGKILL after stopTimeout.
func stopProc(p *redisproc.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	return p.Stop(ctx)
}

// logTail writes the log tail of a failed start to t's log.
func logTail(t testing.TB, err error) {
	t.Helper()
	if se, ok := errors.AsType[*redisproc.StartError](err); ok {
		t.Logf("redistest: tail of %s:\n%s", se.LogFile, se.Tail)
	}
}
