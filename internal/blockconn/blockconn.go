// Package blockconn gives a blocking Redis command a connection of its own,
// apart from the user's shared client, and wakes that command when its
// context ends. It is the one owner of this machinery: the stream engine's
// readers (XREADGROUP ... BLOCK) and the list queue's waits (BRPOP, BLMOVE)
// both use it.
//
// # Blocking commands and the shared client
//
// A blocking command holds its connection for as long as it blocks. Made on
// the user's client, every waiter of every consumer would hold one
// connection of that client's pool most of the time: thirty idle consumers
// on one default client (PoolSize 10 per CPU) hold more connections than
// the pool has, and a producer's XADD or LPUSH, the consumers' own acks and
// lease renewals then wait for a free connection until they fail. So each
// waiter blocks on a [Conn] of its own, made from the user's client options
// (address, credentials, TLS, DB, timeouts): a client with a pool of one,
// created by [New] and closed by [Conn.Close]. Everything else uses the
// shared client, briefly.
//
// # Waking
//
// Redis does not see a cancelled context: a blocked command would keep its
// caller waiting for its whole timeout. Knowing its connection's ID (an
// OnConnect hook records it), [Conn.Block] wakes the command when the
// context ends: it sends CLIENT UNBLOCK with that ID from the shared client,
// and the command returns as if it had timed out, having taken nothing
// (Redis hands an element or an entry to a blocked client only in the reply
// that carries it). The command may not have reached Redis yet when the
// context ends, so the waker tries again every 10ms while the command is in
// flight.
//
// If CLIENT UNBLOCK is refused (an ACL without +client|unblock) or does not
// work within 1s (Redis unreachable), what happens next depends on the
// [Wake] policy given to [New]: [UnblockOrClose] closes the connection, so
// the command fails at once and its reply, if Redis had sent one, is lost;
// [UnblockOnly] leaves the command to end by its own timeout, for a command
// whose lost reply would lose data (BRPOP: the element popped is in the
// reply and nowhere else).
//
// # Clients
//
// A *redis.Client (standalone) gets a client of its own with one
// connection, woken by CLIENT UNBLOCK. A *redis.ClusterClient gets a cluster
// client of its own with one connection per node; CLIENT UNBLOCK would have
// to reach the node the command is on, so under [UnblockOrClose] it is
// woken by closing it, and under [UnblockOnly] it is not woken. Other
// clients (a Ring, a Sentinel failover client, whose copy would not follow
// a failover) block on the shared client itself: those commands hold a
// connection of its pool while they block, and are not woken.
package blockconn

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/streamgroup/streamgroup/internal/rediserr"
)

const (
	wakeRetry   = 10 * time.Millisecond
	wakeTimeout = time.Second
)

// failoverAddr is the Addr go-redis gives the options of a client made by
// NewFailoverClient (Sentinel): its dialer follows the master that the
// Sentinels name, and a copy would not see a failover.
const failoverAddr = "FailoverClient"

// Wake says what wakes a blocked command whose context ended when CLIENT
// UNBLOCK cannot.
type Wake int

const (
	// UnblockOrClose closes the connection: for commands whose lost reply
	// loses nothing (XREADGROUP leaves a delivered entry pending; a BLMOVE
	// from a list to itself moves nothing away).
	UnblockOrClose Wake = iota
	// UnblockOnly never closes a connection with a command in flight: the
	// command ends by its own timeout. For commands whose reply carries
	// data removed from Redis (BRPOP).
	UnblockOnly
)

// Conn is the connection one waiter sends its blocking commands on. It is
// meant for one goroutine at a time; Close may be called from any.
type Conn struct {
	client redis.UniversalClient // the waiter's own client, or the shared one
	shared redis.UniversalClient // the user's client: sends CLIENT UNBLOCK
	wake   Wake
	// own is set when client was made for this waiter: it is closed by
	// Close, or by the waker.
	own bool
	// unblock is set when CLIENT UNBLOCK can wake the waiter: client has
	// one connection, whose ID the OnConnect hook records in id.
	unblock bool
	id      atomic.Int64 // CLIENT ID of client's connection; 0 before it connects
	closing sync.Once
}

// New returns a waiter's connection for the shared client (see the package
// documentation). The caller closes it with Close; shared is never closed.
func New(shared redis.UniversalClient, w Wake) *Conn {
	c := &Conn{client: shared, shared: shared, wake: w}
	switch s := shared.(type) {
	case *redis.Client:
		if s.Options().Addr == failoverAddr {
			return c
		}
		o := *s.Options()
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns, o.PipelinePoolSize = 1, 0, 0, 0, 1
		// The waiter sends blocking commands only: no client-side cache.
		o.ClientSideCache, o.ClientSideCacheConfig = nil, nil
		o.MaintNotificationsConfig = noMaintNotifications()
		userHook := o.OnConnect
		protocol := o.Protocol
		o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
			if userHook != nil {
				if err := userHook(ctx, cn); err != nil {
					return err
				}
			}
			c.id.Store(connID(ctx, cn, protocol))
			return nil
		}
		c.client, c.own, c.unblock = redis.NewClient(&o), true, true
	case *redis.ClusterClient:
		o := *s.Options()
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 0, 0, 0
		o.MaintNotificationsConfig = noMaintNotifications()
		c.client, c.own = redis.NewClusterClient(&o), true
	}
	return c
}

// connID returns the ID Redis gave cn, 0 if it cannot tell. HELLO (with the
// protocol the connection already speaks, no AUTH and no SETNAME: nothing
// changes) answers it and needs no ACL grant; CLIENT ID is the fallback
// for a server without HELLO.
func connID(ctx context.Context, cn *redis.Conn, protocol int) int64 {
	if protocol < 2 {
		protocol = 3
	}
	if info, err := cn.Hello(ctx, protocol, "", "", "").Result(); err == nil {
		if id, ok := info["id"].(int64); ok {
			return id
		}
	}
	id, _ := cn.ClientID(ctx).Result()
	return id
}

// Client returns the client to send commands on: c's own, or the shared
// one. A command sent on it directly is not woken.
func (c *Conn) Client() redis.UniversalClient { return c.client }

// Block runs call, which sends one blocking command on the client it is
// given (c's). When ctx ends while the command blocks, the command is woken
// (see the package documentation) and returns as if it had timed out, or
// fails if c had to be closed. Block returns what call returns, once call
// has returned and the waker has stopped.
func (c *Conn) Block(ctx context.Context, call func(redis.UniversalClient) error) error {
	if !c.own || (c.wake == UnblockOnly && !c.unblock) {
		return call(c.client)
	}
	done := make(chan struct{})
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		c.wakeUp(done)
	})
	err := call(c.client)
	close(done)
	if !stop() {
		<-woken // the waker started: it returns once it sees done
	}
	return err
}

// wakeUp ends the command in flight on c, whose context ended, and returns
// once done is closed (the command returned), c is closed, or (under
// UnblockOnly) CLIENT UNBLOCK failed.
func (c *Conn) wakeUp(done <-chan struct{}) {
	if !c.unblock {
		c.Close() // Cluster: the command fails at once
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
	defer cancel()
	tick := time.NewTicker(wakeRetry)
	defer tick.Stop()
	// An ID of 0: not connected yet. Closing keeps the command from
	// starting; under UnblockOnly the waker waits for the ID instead.
retry:
	for {
		id := c.id.Load()
		if id == 0 && c.wake == UnblockOrClose {
			break
		}
		if id != 0 {
			err := c.shared.ClientUnblock(ctx, id).Err()
			if err != nil && (rediserr.IsReply(err) || errors.Is(err, redis.ErrClosed)) {
				break // refused (NOPERM...), or the shared client is closed
			}
		}
		select {
		case <-done:
			return
		case <-tick.C:
		case <-ctx.Done():
			break retry
		}
	}
	if c.wake == UnblockOnly {
		return
	}
	select {
	case <-done:
	default:
		c.Close()
	}
}

// Close closes c's own client (never the shared one), once.
func (c *Conn) Close() {
	if c.own {
		c.closing.Do(func() { _ = c.client.Close() })
	}
}

// noMaintNotifications is the maintenance-notifications setting of a
// waiter's own client: off. A waiter only blocks and is woken; when its
// connection fails it reconnects like any other. The user's setting cannot
// be copied: go-redis writes its Mode, under a lock of the user's client,
// when a server refuses the handshake (Redis 7.0 does), and reading
// it here raced with that write.
func noMaintNotifications() *maintnotifications.Config {
	return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}
