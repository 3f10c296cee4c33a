package rediserr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"
)

// IsBusyGroup reports whether err is Redis's BUSYGROUP reply (the group exists).
func IsBusyGroup(err error) bool { return err != nil && redis.HasErrorPrefix(err, "BUSYGROUP") }

// IsNoGroup reports whether err is Redis's NOGROUP reply: the group or the
// stream key does not exist (deleted, or the server was flushed).
func IsNoGroup(err error) bool { return err != nil && redis.HasErrorPrefix(err, "NOGROUP") }

// IsWrongType reports whether err is Redis's WRONGTYPE reply.
func IsWrongType(err error) bool { return err != nil && redis.HasErrorPrefix(err, "WRONGTYPE") }

// IsOOM reports whether err is Redis's OOM reply: the server is at
// maxmemory and its policy (noeviction) refuses commands that may add
// memory. Waiting fixes it, once memory is freed or maxmemory raised.
func IsOOM(err error) bool { return err != nil && redis.HasErrorPrefix(err, "OOM ") }

// IsNoPerm reports whether err is an ACL denial (NOPERM).
func IsNoPerm(err error) bool { return err != nil && redis.HasErrorPrefix(err, "NOPERM") }

// IsReply reports whether err is an error reply from the server (as
// opposed to a network, context or client error, after which the command
// may or may not have run).
func IsReply(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !errors.Is(err, redis.Nil)
}

// IsNil reports whether err is redis.Nil (no reply value, e.g. a BLOCK timeout).
func IsNil(err error) bool { return errors.Is(err, redis.Nil) }

// IsTransient reports whether err is worth retrying after a pause: network
// errors, a closed or refused connection, timeouts, the server being busy
// loading, failing over or read-only, and a blocked read woken by a deleted
// key or a failover. Error replies that describe the command
// or the data (WRONGTYPE, NOPERM, syntax) are not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// UNBLOCKED: a blocked XREADGROUP was woken because its key was deleted
	// or the server turned replica (failover); the next command tells which.
	for _, p := range []string{"LOADING ", "BUSY ", "TRYAGAIN ", "CLUSTERDOWN ", "MASTERDOWN ", "READONLY ", "MOVED ", "ASK ", "UNBLOCKED "} {
		if redis.HasErrorPrefix(err, p) { // the word and a space: BUSY, not BUSYGROUP
			return true
		}
	}
	var re redis.Error
	if errors.As(err, &re) {
		return false // any other error reply from the server
	}
	// I/O errors that are not net.Error (io.EOF, io.ErrUnexpectedEOF,
	// "connection reset", redis: client is closed, pool timeout...).
	return !errors.Is(err, redis.ErrClosed)
}

// Waitable reports whether a consumer should wait err out: Redis is
// unreachable, restarting or failing over (IsTransient), out of memory
// (OOM: full until memory is freed or maxmemory raised), or the command
// was cut short by a stop (context.Canceled; the caller's final pass
// tries again).
func Waitable(err error) bool {
	return IsTransient(err) || IsOOM(err) || errors.Is(err, context.Canceled)
}

// TxErr returns the error of a MULTI/EXEC transaction (TxPipelined) run
// with cmds, the commands it queued. When Redis refused a queued command
// (NOPERM, an unknown command, a wrong arity) it discards the whole
// transaction and EXEC replies only EXECABORT; the refused command's own
// error, which says what was wrong, is on the command. TxErr returns that
// error wrapped with the command's name ("XGROUP DESTROY: NOPERM ..."); it
// does the same for a command that failed inside EXEC (WRONGTYPE, NOGROUP).
// Other errors (network, context) and nil are returned as they are. The
// result is still the Redis reply for errors.As, the prefix checks above
// and [IsTransient].
func TxErr(err error, cmds []redis.Cmder) error {
	if err == nil || !IsReply(err) {
		return err
	}
	for _, cmd := range cmds {
		cerr := cmd.Err()
		if IsReply(cerr) && !redis.IsExecAbortError(cerr) {
			return fmt.Errorf("%s: %w", CmdName(cmd), cerr)
		}
	}
	return err
}

// CmdName returns cmd's name as Redis's docs write it, with the subcommand
// of a container command: "XADD", "XGROUP DESTROY", "XINFO GROUPS".
func CmdName(cmd redis.Cmder) string {
	args := cmd.Args()
	if len(args) == 0 {
		return strings.ToUpper(cmd.Name())
	}
	name := strings.ToUpper(fmt.Sprint(args[0]))
	if len(args) > 1 && HasSubcommands(name) {
		name += " " + strings.ToUpper(fmt.Sprint(args[1]))
	}
	return name
}

// HasSubcommands reports whether the command named name (any case) is a
// container command, which ACL grants per subcommand (+xgroup|destroy), among
// those this module sends or a user may meet in its errors.
func HasSubcommands(name string) bool {
	switch strings.ToUpper(name) {
	case "XGROUP", "XINFO", "CLIENT", "CONFIG", "SCRIPT", "OBJECT", "MEMORY", "ACL", "FUNCTION", "COMMAND", "CLUSTER":
		return true
	}
	return false
}
