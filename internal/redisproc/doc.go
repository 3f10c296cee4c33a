// Package redisproc starts and manages a redis-server process for the test
// harness (internal/redistest), the chaos command (cmd/streamgroup-chaos) and
// the quickstart example. It imports neither testing nor testcontainers.
//
// # Lifecycle
//
// [Start] runs the redis-server binary found on PATH on a free port of
// 127.0.0.1, trying another port when the chosen one was taken before the
// server bound it, and returns once the server answers PING (which it does
// not while LOADING its AOF) and is the process that was started, not
// whoever else listens on the port. The port, data directory and log file
// of a [Server] then stay the same: [Server.Stop] (SIGTERM, falling back to
// SIGKILL) or [Server.Kill] (SIGKILL) ends the process, and [Server.Start]
// runs it again on the same address and data, so a crash and restart can be
// staged. A server is never daemonized and never saves RDB snapshots; with
// [Options].AOF every write is fsynced to the append-only file before it is
// acknowledged.
//
// A failed start returns a [*StartError] carrying the tail of the server's
// log, which says why redis-server refused to run.
//
// On Linux every process started here gets SIGKILL from the kernel when
// its parent dies (Pdeathsig, see [DieWithParent]), so a panic, a test
// timeout or a SIGKILL of the parent leaves no server behind. Elsewhere the
// caller's own cleanup is the only thing that stops it.
package redisproc
