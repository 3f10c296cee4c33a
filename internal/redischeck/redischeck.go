// Package redischeck checks the Redis server settings that the delivery
// guarantees depend on, and says so in the logs when they do not hold.
//
// Today it checks one setting, maxmemory-policy: only noeviction keeps
// at-least-once delivery. Producers check it before their first add,
// consumers and reclaimers when Run starts.
package redischeck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/rediserr"
)

// Policy is the only maxmemory-policy that keeps at-least-once delivery.
const Policy = "noeviction"

// The log messages, fixed so that they can be searched for.
const (
	// MsgEviction is logged at Warn when a server's maxmemory-policy is not
	// noeviction.
	MsgEviction = "redis maxmemory-policy is not noeviction: when memory is full Redis may evict a stream, its pending entries or a queue's processing list, and jobs are lost (at-least-once no longer holds); " +
		"fix: CONFIG SET maxmemory-policy noeviction (and set it in redis.conf or your provider's parameter group)"
	// MsgUnchecked is logged at Info when CONFIG GET is refused (an ACL
	// user without +config|get, or a managed Redis without CONFIG).
	MsgUnchecked = "could not check redis maxmemory-policy (CONFIG GET refused); at-least-once delivery needs noeviction: check it as an admin with CONFIG GET maxmemory-policy, or in your provider's settings"
)

// EvictionPolicy reads maxmemory-policy from the server rdb talks to (from
// every master of a Cluster, every shard of a Ring) and logs to log what it
// finds:
//
//   - a policy other than noeviction: [MsgEviction] at Warn, with the
//     policy and the server's address;
//   - CONFIG GET refused (NOPERM for a least-privilege ACL user, an unknown
//     command on a managed Redis, no such parameter): [MsgUnchecked] at
//     Info, with the error;
//   - noeviction: nothing.
//
// It returns only errors that waiting can fix (rediserr.IsTransient: the
// server unreachable, loading, failing over) or ctx's error, so that the
// caller can try again; everything else is logged and nil is returned. The
// check is advisory: nothing it finds stops a producer or consumer.
//
// Each finding is logged once per client and process: 30 consumers sharing
// one client log it once, whichever checks first, to that one's logger. A
// finding is a server address with a policy (or with "could not check"), so
// a policy changed later, or a second server, is logged again. The memory
// of what was logged is per client (held weakly: it goes when the client
// is garbage collected); a client of a type other than *redis.Client,
// *redis.ClusterClient and *redis.Ring is not deduplicated.
func EvictionPolicy(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) error {
	var (
		mu      sync.Mutex
		results []result
	)
	check := func(ctx context.Context, c redis.UniversalClient, addr string) error {
		m, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil && (ctx.Err() != nil || rediserr.IsTransient(err)) {
			return err
		}
		if errors.Is(err, redis.ErrClosed) {
			// Not a finding about the server: the caller meets the
			// closed client at its next command and reports it there.
			return nil
		}
		r := result{addr: addr, err: err, policy: m["maxmemory-policy"]}
		if err == nil && r.policy == "" {
			r.err = errors.New("CONFIG GET maxmemory-policy returned no value")
		}
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
		return nil
	}
	var err error
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			return check(ctx, n, n.Options().Addr)
		})
	case *redis.Ring:
		err = c.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
			return check(ctx, n, n.Options().Addr)
		})
	case *redis.Client:
		err = check(ctx, c, c.Options().Addr)
	default:
		err = check(ctx, rdb, "")
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if rediserr.IsTransient(err) {
			return err
		}
		// ForEachMaster could not load the cluster's layout for another
		// reason: that is a failure to check.
		results = append(results, result{err: err})
	}
	report(rdb, results, log)
	return nil
}

type result struct {
	addr   string
	policy string
	err    error // CONFIG GET refused
}

// report logs each finding not logged before for rdb, one line per kind
// of finding (with every address it concerns).
func report(rdb redis.UniversalClient, results []result, log *slog.Logger) {
	bad := map[string][]string{} // policy -> addresses
	var unchecked []string
	var uncheckedErr error
	for _, r := range results {
		switch {
		case r.err != nil:
			if first(rdb, r.addr+"\x00unchecked") {
				unchecked = append(unchecked, r.addr)
				uncheckedErr = r.err
			}
		case r.policy != Policy:
			if first(rdb, r.addr+"\x00policy "+r.policy) {
				bad[r.policy] = append(bad[r.policy], r.addr)
			}
		}
	}
	for _, p := range slices.Sorted(maps.Keys(bad)) {
		log.Warn(MsgEviction, "maxmemory_policy", p, "addr", addrs(bad[p]))
	}
	if len(unchecked) > 0 {
		log.Info(MsgUnchecked, "addr", addrs(unchecked), "err", uncheckedErr)
	}
}

func addrs(as []string) string {
	slices.Sort(as)
	return strings.Join(as, ",")
}

// logged holds, per client, the findings already logged. It is process
// state on purpose: the point is to say a thing once per process, however
// many producers and consumers share the client. Its keys are weak
// pointers, removed when their client is collected.
var logged struct {
	mu sync.Mutex
	m  map[any]map[string]bool
}

// first reports whether finding is new for rdb, and records it.
func first(rdb redis.UniversalClient, finding string) bool {
	key := clientKey(rdb)
	if key == nil {
		return true
	}
	logged.mu.Lock()
	defer logged.mu.Unlock()
	if logged.m == nil {
		logged.m = make(map[any]map[string]bool)
	}
	seen, ok := logged.m[key]
	if !ok {
		seen = make(map[string]bool)
		logged.m[key] = seen
		forgetWhenCollected(rdb, key)
	}
	if seen[finding] {
		return false
	}
	seen[finding] = true
	return true
}

// clientKey returns a weak pointer to rdb (comparable, and equal for the
// same client), or nil for a client type it does not know.
func clientKey(rdb redis.UniversalClient) any {
	switch c := rdb.(type) {
	case *redis.Client:
		return weak.Make(c)
	case *redis.ClusterClient:
		return weak.Make(c)
	case *redis.Ring:
		return weak.Make(c)
	}
	return nil
}

func forgetWhenCollected(rdb redis.UniversalClient, key any) {
	forget := func(key any) {
		logged.mu.Lock()
		delete(logged.m, key)
		logged.mu.Unlock()
	}
	switch c := rdb.(type) {
	case *redis.Client:
		runtime.AddCleanup(c, forget, key)
	case *redis.ClusterClient:
		runtime.AddCleanup(c, forget, key)
	case *redis.Ring:
		runtime.AddCleanup(c, forget, key)
	}
}

// Once runs [EvictionPolicy] until it has completed once, for a caller
// with no Run of its own to check at the start of (a producer, checking at
// its first add). The zero value is ready to use; it is safe for concurrent
// use.
type Once struct {
	state atomic.Int32 // 0 to do, 1 running, 2 done
}

// Do runs the check unless it is done or running: only one caller runs
// it, and the others go on without waiting. It never fails the caller: a
// transient error (or ctx ending) leaves the check to do, and the next Do
// tries again. After the check is done, Do costs one atomic load.
// A nil log means slog.Default().
func (o *Once) Do(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger) {
	if o.state.Load() == 2 || ctx.Err() != nil || !o.state.CompareAndSwap(0, 1) {
		return
	}
	if log == nil {
		log = slog.Default()
	}
	if err := EvictionPolicy(ctx, rdb, log); err != nil {
		o.state.Store(0)
		return
	}
	o.state.Store(2)
}

// AtStart runs [EvictionPolicy] for a consumer at the start of its Run,
// warning on warn: after each transient error it logs it on log, passes it
// to onError (when not nil) as "<prefix>: check maxmemory-policy: <err>"
// and waits a capped, jittered backoff, until the check completes or ctx
// ends. Nothing the check finds stops the consumer.
func AtStart(ctx context.Context, rdb redis.UniversalClient, warn, log *slog.Logger, onError func(error), prefix string) {
	b := backoff.Policy{Base: 50 * time.Millisecond, Max: 5 * time.Second}
	for attempt := 0; ; attempt++ {
		err := EvictionPolicy(ctx, rdb, warn)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("redis unavailable; retrying", "op", "check maxmemory-policy", "err", err)
		if onError != nil {
			onError(fmt.Errorf("%s: check maxmemory-policy: %w", prefix, err))
		}
		if !backoff.Sleep(ctx, b.Delay(attempt)) {
			return
		}
	}
}

// Loggers returns a consumer's two loggers for the Logger option l, each
// with attrs: log is l, or a discarding logger when l is nil; warn, which
// receives the maxmemory-policy warning, is l, or slog.Default() when l is
// nil, so that a consumer without a logger still says when at-least-once
// is void.
func Loggers(l *slog.Logger, attrs ...any) (log, warn *slog.Logger) {
	log, warn = l, l
	if l == nil {
		log, warn = slog.New(slog.DiscardHandler), slog.Default()
	}
	return log.With(attrs...), warn.With(attrs...)
}
