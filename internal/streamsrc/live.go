package streamsrc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/keys"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/script"
)

// A consumer name is one consumer's: the pending entries of the name are its
// own, and it re-reads them at start. Two live consumers with one name would
// run every one of those entries twice, at the same time. So each running
// consumer holds a liveness key for its name, with a random token and a short
// TTL that it renews; a second consumer with that name finds the key held,
// waits once for it to expire (as it does when its holder crashed), and
// refuses to run when the holder renewed it meanwhile.
const (
	liveInterval = time.Second      // renewal period
	liveTTL      = 5 * liveInterval // expiry of a holder that stopped renewing
)

// LiveKey returns the liveness key of a consumer name: in the stream's slot,
// and unambiguous whatever colons the group name holds.
func LiveKey(streamKey, group, consumer string) string {
	return keys.Beside(streamKey, ":live:"+strconv.Itoa(len(group))+":"+group+":"+consumer)
}

// liveRenewScript renews the key when this consumer holds it, or takes it
// when it expired (a stall longer than the TTL, or a Redis restart that lost
// it). It returns 0 when another consumer holds it.
var liveRenewScript = script.New("renew consumer name", []string{"GET", "SET"}, `
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// liveReleaseScript deletes the key when this consumer holds it.
var liveReleaseScript = script.New("release consumer name", []string{"GET", "DEL"}, `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// claimName takes the liveness key of the consumer name before anything is
// read. Held by another token, it waits once for liveTTL, after which the
// key of a holder that crashed (and no longer renews it) has expired. Still held after that,
// the holder is alive, and claimName returns ErrConsumerNameInUse. It
// returns nil when ctx ends. A Redis out of memory refuses the key: the
// consumer then runs unchecked (draining a full server matters more) and
// the renewal takes the key once memory is freed.
func (s *Source) claimName(ctx context.Context) error {
	key := s.liveKey
	seen := ""
	for attempt := 0; ; {
		ok, err := s.rdb.SetNX(ctx, key, s.token, liveTTL).Result()
		switch {
		case err == nil && ok:
			return nil
		case err == nil:
			var owner string
			owner, err = s.rdb.Get(ctx, key).Result()
			if errors.Is(err, redis.Nil) {
				continue // expired meanwhile
			}
			if err != nil {
				break
			}
			if owner == s.token {
				// An earlier SETNX of ours took the key, and its reply
				// was lost (a cut connection): the name is ours.
				return nil
			}
			if seen != "" {
				return fmt.Errorf("%w: consumer %q of group %q on stream %q is running elsewhere (it renewed %s); give each consumer a name of its own, such as its host or pod name",
					ErrConsumerNameInUse, s.cfg.Consumer, s.cfg.Group, s.cfg.Stream, key)
			}
			seen = owner
			s.log.Warn("another consumer holds this consumer name; waiting once for it to expire (a crashed consumer does not renew it)", "key", key, "wait", liveTTL)
			if !backoff.Sleep(ctx, liveTTL+50*time.Millisecond) {
				return nil
			}
			continue
		case rediserr.IsOOM(err):
			s.log.Warn("redis is out of memory: cannot check that the consumer name is unique until memory is freed", "key", key, "err", err)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if !rediserr.IsTransient(err) {
			return fmt.Errorf("claim consumer name %s: %w", key, err)
		}
		s.log.Warn("redis unavailable; retrying", "op", "claim consumer name", "err", err)
		s.report(fmt.Errorf("group: claim consumer name: %w", err))
		if !backoff.Sleep(ctx, s.wait.Delay(attempt)) {
			return nil
		}
		attempt++
	}
}

// Housekeep renews the liveness key until ctx ends, then deletes it. When
// another consumer holds it (this one stalled past liveTTL, and a consumer
// with the same name started meanwhile) it stops the consumer with
// ErrConsumerNameInUse.
func (s *Source) Housekeep(ctx context.Context, fail func(error)) {
	tick := time.NewTicker(liveInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.releaseName()
			return
		case <-tick.C:
		}
		held, err := liveRenewScript.Run(ctx, s.rdb, []string{s.liveKey}, s.token, liveTTL.Milliseconds()).Int()
		switch {
		case errors.Is(err, redis.ErrClosed):
			// The client was closed under the consumer. The readers, on
			// connections of their own, would not notice: stop here.
			fail(fmt.Errorf("group: renew liveness key %s: %w", s.liveKey, err))
		case err != nil:
			if ctx.Err() == nil && !rediserr.IsOOM(err) {
				s.log.Warn("could not renew the consumer name's liveness key", "key", s.liveKey, "err", err)
				s.report(fmt.Errorf("group: renew liveness key %s: %w", s.liveKey, err))
			}
		case held == 0:
			err := fmt.Errorf("%w: another consumer named %q of group %q on stream %q took the name while this one was not renewing %s; stopping",
				ErrConsumerNameInUse, s.cfg.Consumer, s.cfg.Group, s.cfg.Stream, s.liveKey)
			s.log.Error("consumer name taken by another consumer; stopping", "key", s.liveKey)
			s.report(err)
			fail(err)
		}
	}
}

// releaseName deletes the liveness key when this consumer holds it, so that
// a restart with the same name does not wait for it to expire.
func (s *Source) releaseName() {
	ctx, cancel := context.WithTimeout(context.Background(), engine.SettleTimeout)
	defer cancel()
	if err := liveReleaseScript.Run(ctx, s.rdb, []string{s.liveKey}, s.token).Err(); err != nil {
		s.log.Info("could not delete the consumer name's liveness key; it expires by itself", "key", s.liveKey, "expires_in", liveTTL, "err", err)
	}
}
