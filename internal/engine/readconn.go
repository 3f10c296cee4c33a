package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
)

// Blocking reads and the shared client.
//
// An XREADGROUP ... BLOCK holds its connection for up to Block. Made on the
// user's client, every reader of every consumer would hold one connection of
// that client's pool most of the time: thirty idle consumers on one default
// client (PoolSize 10 per CPU) hold more connections than the pool has, and
// the producer's XADD, the consumers' own XACKs and lease renewals then wait
// for a free connection until they fail. So each reader reads on a
// connection of its own, made from the user's client options (address,
// credentials, TLS, DB, timeouts): a client with a pool of one, which the
// engine creates when Run starts and closes when Run returns. Everything
// else (acks, leases, claims, scripts) uses the shared client, briefly.
//
// Knowing its connection also lets a reader be woken when Run's context
// ends: Redis does not see a cancelled context, and a blocked XREADGROUP
// would otherwise keep Run waiting for up to Block. The waker sends CLIENT
// UNBLOCK with the connection's ID from the shared client; the read then
// returns no entries (Redis had delivered none to it: entries are assigned
// to a read only in the reply that carries them). The read may not have
// reached Redis yet when the context ends, so the waker tries again every
// wakeRetry while the read is in flight. If CLIENT UNBLOCK is refused (an
// ACL without +client|unblock) or does not work within wakeTimeout (Redis
// unreachable), the waker closes the reader's client instead: the read then
// fails, and an entry whose reply was lost so stays pending for this
// consumer, to be re-read at its next start or reclaimed after MinIdle.

const (
	wakeRetry   = 10 * time.Millisecond
	wakeTimeout = time.Second
)

// failoverAddr is the Addr go-redis gives the options of a client made by
// NewFailoverClient (Sentinel): its dialer follows the master that the
// Sentinels name, and a copy would not see a failover.
const failoverAddr = "FailoverClient"

// readConn is the connection one reader does its XREADGROUP calls on.
type readConn struct {
	client redis.UniversalClient // the reader's own client, or the shared one
	shared redis.UniversalClient // the user's client: sends CLIENT UNBLOCK
	// own is set when client was made for this reader: it is closed when
	// Run returns, or by the waker.
	own bool
	// unblock is set when CLIENT UNBLOCK can wake the reader: client has one
	// connection, whose ID the OnConnect hook records in id.
	unblock bool
	id      atomic.Int64 // CLIENT ID of client's connection; 0 before it connects
	closing sync.Once
}

// newReadConn returns a reader's connection for the shared client.
//
// A *redis.Client (standalone) gets a client of its own with one connection,
// woken by CLIENT UNBLOCK. A *redis.ClusterClient gets a cluster client of
// its own with one connection per node, woken by closing it (CLIENT
// UNBLOCK would have to reach the node the read is on). Other clients (a
// Ring, a Sentinel failover client) read on the shared client itself: those
// reads hold a connection of its pool for up to Block each, and stopping
// waits for them to time out.
func newReadConn(shared redis.UniversalClient) *readConn {
	rc := &readConn{client: shared, shared: shared}
	switch c := shared.(type) {
	case *redis.Client:
		if c.Options().Addr == failoverAddr {
			return rc
		}
		o := *c.Options()
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns, o.PipelinePoolSize = 1, 0, 0, 0, 1
		// The reader reads streams only: no client-side cache of its own.
		o.ClientSideCache, o.ClientSideCacheConfig = nil, nil
		if o.MaintNotificationsConfig != nil {
			m := *o.MaintNotificationsConfig
			o.MaintNotificationsConfig = &m
		}
		userHook := o.OnConnect
		protocol := o.Protocol
		o.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
			if userHook != nil {
				if err := userHook(ctx, cn); err != nil {
					return err
				}
			}
			rc.id.Store(connID(ctx, cn, protocol))
			return nil
		}
		rc.client, rc.own, rc.unblock = redis.NewClient(&o), true, true
	case *redis.ClusterClient:
		o := *c.Options()
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 0, 0, 0
		if o.MaintNotificationsConfig != nil {
			m := *o.MaintNotificationsConfig
			o.MaintNotificationsConfig = &m
		}
		rc.client, rc.own = redis.NewClusterClient(&o), true
	}
	return rc
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

// read runs XREADGROUP on the reader's connection. When ctx ends while the
// read blocks, the read is woken (see wake) and returns no entries, or an
// error if its client had to be closed.
func (rc *readConn) read(ctx context.Context, args *redis.XReadGroupArgs) ([]redis.XStream, error) {
	if args.Block < 0 || !rc.own {
		return rc.client.XReadGroup(ctx, args).Result()
	}
	done := make(chan struct{})
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(woken)
		rc.wake(done)
	})
	res, err := rc.client.XReadGroup(ctx, args).Result()
	close(done)
	if !stop() {
		<-woken // the waker started: it returns once it sees done
	}
	return res, err
}

// wake ends the read in flight on rc, whose context ended, and returns once
// done is closed (the read returned) or rc is closed.
func (rc *readConn) wake(done <-chan struct{}) {
	if !rc.unblock {
		rc.close() // Cluster: the read fails at once
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), wakeTimeout)
	defer cancel()
	tick := time.NewTicker(wakeRetry)
	defer tick.Stop()
	// An ID of 0: not connected yet, and closing keeps the read from starting.
retry:
	for id := rc.id.Load(); id != 0; id = rc.id.Load() {
		err := rc.shared.ClientUnblock(ctx, id).Err()
		if err != nil && (rediserr.IsReply(err) || errors.Is(err, redis.ErrClosed)) {
			break // refused (NOPERM...), or the shared client is closed
		}
		select {
		case <-done:
			return
		case <-tick.C:
		case <-ctx.Done():
			break retry
		}
	}
	select {
	case <-done:
	default:
		rc.close()
	}
}

// close closes the reader's own client (not a shared one), once.
func (rc *readConn) close() {
	if rc.own {
		rc.closing.Do(func() { _ = rc.client.Close() })
	}
}
