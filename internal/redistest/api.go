package redistest

// API CONTRACT (skeleton written by the lead; the harness helper implements it
// and may move these declarations into other files, but must keep the names
// and signatures).

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// Main wraps testing.M: it runs the tests and then stops any server the
// harness started for the package. Use in each package's TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
func Main(m *testing.M) int { panic("todo") }

// Client returns a client to the package's shared Redis (found via REDIS_ADDR,
// else a testcontainers container when Docker answers, else a redis-server on
// PATH started on a free port), closed with t.Cleanup. It skips t when none
// can be had, or fails it when STREAMGROUP_REQUIRE_REDIS=1.
func Client(t testing.TB) *redis.Client { panic("todo") }

// Names returns a stream key and a group name unique to t (and to this
// process), so tests can run in parallel on a shared server.
func Names(t testing.TB) (streamKey, group string) { panic("todo") }

// ServerOptions configures an owned server. The zero value means no
// persistence.
type ServerOptions struct {
	// AOF turns on appendonly yes with appendfsync always, so a restart keeps
	// every acknowledged write.
	AOF bool
}

// Server is a Redis server the test owns: it can be stopped, killed with
// SIGKILL and restarted on the same address with the same data directory.
type Server struct{}

// StartServer starts a server owned by t (stopped with t.Cleanup). It needs a
// redis-server binary on PATH (or Docker); otherwise it skips or fails as
// Client does.
func StartServer(t testing.TB, opts *ServerOptions) *Server { panic("todo") }

// Addr is the server's host:port.
func (s *Server) Addr() string { panic("todo") }

// Client returns a new client to s, closed with t.Cleanup. It keeps working
// across Restart.
func (s *Server) Client(t testing.TB) *redis.Client { panic("todo") }

// Stop shuts the server down gracefully (SHUTDOWN, or SIGTERM) and waits for it to exit.
func (s *Server) Stop() error { panic("todo") }

// Kill sends SIGKILL and waits for the process to exit.
func (s *Server) Kill() error { panic("todo") }

// Start starts a stopped or killed server again on the same address and
// data directory, and waits until it answers PING (and has loaded its AOF).
func (s *Server) Start() error { panic("todo") }
