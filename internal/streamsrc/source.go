// Package streamsrc is the engine source of a Redis Streams consumer group:
// XREADGROUP (own pending entries first, then new ones), pipelined XACK,
// XCLAIM leases, XAUTOCLAIM sweeps, the dead-letter script, NOGROUP repair
// and the consumer name's liveness key. group.Consumer and claim.Reclaimer
// run it on internal/engine.
package streamsrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/backoff"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/keys"
	"github.com/streamgroup/streamgroup/internal/redischeck"
	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/stream"
)

// Sentinels re-exported by group.
var (
	ErrNotStream = errors.New("group: key is not a stream")
	// ErrConsumerNameInUse: a live consumer of the group already runs
	// under this consumer name.
	ErrConsumerNameInUse = errors.New("group: consumer name in use by a running consumer")
)

// Defaults. group.Options documents the same values.
const (
	DefaultBlock       = 2 * time.Second
	DefaultMinIdle     = 30 * time.Second
	MinReclaimInterval = 10 * time.Millisecond
	// reclaimCount is the most entries one XAUTOCLAIM takes: large claims
	// take over a dead consumer's backlog in few round trips
	// (docs/performance.md).
	reclaimCount = 512
	// ackBatch is the most IDs in one XACK command.
	ackBatch = 256
)

// Config is the Redis side of a stream consumer.
type Config struct {
	Client           redis.UniversalClient
	Stream           string
	Group            string
	Consumer         string
	GroupStart       string
	Block            time.Duration
	DeadLetterStream string
	MinIdle          time.Duration
	Read             bool // fetch with XREADGROUP
	Reclaim          bool // sweep with XAUTOCLAIM
	Readers          int  // XREADGROUP readers: 2, or 1 to keep stream order
	Logger           *slog.Logger
	OnError          func(error)
	// Hook is the consumer's hook (the engine's Config.Hook): the source
	// tells it when it creates the group, and the errors it reports. Nil:
	// none.
	Hook hook.Consumer
}

// leaseInterval is how long an entry is held before its lease is renewed:
// MinIdle/3, so that with the engine renewing every third of it an entry
// never looks idle for more than about MinIdle/2.
func (c Config) leaseInterval() time.Duration { return c.MinIdle / 3 }

// reclaimInterval is the pause between XAUTOCLAIM passes: MinIdle/2, and at
// least MinReclaimInterval (a pass scans the whole pending list; passes far
// more often than entries can become idle only load Redis).
func (c Config) reclaimInterval() time.Duration { return max(c.MinIdle/2, MinReclaimInterval) }

// Normalize fills defaults and validates. It returns a copy.
func (c Config) Normalize() (Config, error) {
	switch {
	case c.Client == nil:
		return c, engine.Invalid("nil redis client")
	case c.Stream == "":
		return c, engine.Invalid("empty stream name")
	case c.Group == "":
		return c, engine.Invalid("empty group name")
	case c.Consumer == "":
		return c, engine.Invalid("empty consumer name")
	}
	for _, ck := range []struct {
		bad  bool
		name string
	}{
		{c.Block < 0, "Block"},
		{c.MinIdle < 0, "MinIdle"},
	} {
		if ck.bad {
			return c, engine.Invalid("%s must not be negative", ck.name)
		}
	}
	if c.GroupStart == "" {
		c.GroupStart = "0"
	}
	if c.GroupStart != "$" {
		if _, err := stream.ParseID(c.GroupStart); err != nil {
			return c, engine.Invalid("GroupStart %q is not \"0\", \"$\" or an entry ID", c.GroupStart)
		}
	}
	if c.Block == 0 {
		c.Block = DefaultBlock
	}
	if c.Block < time.Millisecond {
		return c, engine.Invalid("Block %v is below Redis's 1ms resolution", c.Block)
	}
	deadDefault := c.DeadLetterStream == ""
	if deadDefault {
		c.DeadLetterStream = stream.DeadLetterKey(c.Stream)
	}
	if c.DeadLetterStream == c.Stream {
		return c, engine.Invalid("DeadLetterStream must differ from the stream %q", c.Stream)
	}
	if err := c.checkSlots(deadDefault); err != nil {
		return c, err
	}
	if c.MinIdle == 0 {
		c.MinIdle = DefaultMinIdle
	}
	if c.MinIdle < 10*time.Millisecond {
		return c, engine.Invalid("MinIdle %v is too small (minimum 10ms)", c.MinIdle)
	}
	if c.Readers == 0 {
		c.Readers = 2
	}
	return c, nil
}

// checkSlots refuses, on Redis Cluster, a dead-letter stream outside the
// stream's slot: the dead-letter script writes both keys, and would fail
// with CROSSSLOT on every entry, which would then be reclaimed and fail
// again forever. On a standalone Redis any name works.
func (c Config) checkSlots(deadDefault bool) error {
	if _, ok := c.Client.(*redis.ClusterClient); !ok {
		return nil
	}
	option := "DeadLetterStream"
	if deadDefault {
		option = ""
	}
	return keys.CheckSlot("stream", c.Stream, "default dead-letter stream", c.DeadLetterStream, option)
}

// Stats are the counters only the stream source knows.
type Stats struct {
	DeletedInPEL  uint64 // pending entries found deleted from the stream and dropped
	GroupsCreated uint64 // times the group was created (at start or after NOGROUP)
}

// Source is a stream consumer group as an engine source.
type Source struct {
	cfg     Config
	rdb     redis.UniversalClient
	log     *slog.Logger
	warnLog *slog.Logger // the maxmemory-policy warning: Logger, or slog.Default()

	deletedInPEL, groupsCreated atomic.Uint64

	liveKey string // the consumer name's liveness key
	token   string // this run's value of it

	// released announces entries handed back (see releaseScript), read by
	// the readers next to the stream, in a group of the same name, once
	// that group exists (signals).
	released string
	signals  atomic.Bool
	pace     engine.Pace // set by the engine (SetPace)

	// historyDone is closed once the first reader has read this consumer's
	// own pending entries; the other reader waits for it.
	historyDone chan struct{}
	historyOnce sync.Once

	cursor string // of the XAUTOCLAIM pass under way; "0-0" between passes

	wait backoff.Policy
}

// New returns the source for a normalized cfg.
func New(cfg Config) *Source {
	log, warn := redischeck.Loggers(cfg.Logger, "stream", cfg.Stream, "group", cfg.Group, "consumer", cfg.Consumer)
	return &Source{
		cfg:         cfg,
		rdb:         cfg.Client,
		log:         log,
		warnLog:     warn,
		liveKey:     LiveKey(cfg.Stream, cfg.Group, cfg.Consumer),
		released:    ReleasedKey(cfg.Stream),
		token:       newToken(),
		historyDone: make(chan struct{}),
		cursor:      "0-0",
		wait:        backoff.Policy{Base: 50 * time.Millisecond, Max: 5 * time.Second},
	}
}

// Logger returns the source's logger, with the stream, group and consumer
// attributes, for the engine.
func (s *Source) Logger() *slog.Logger { return s.log }

// Stats returns the source's counters.
func (s *Source) Stats() Stats {
	return Stats{DeletedInPEL: s.deletedInPEL.Load(), GroupsCreated: s.groupsCreated.Load()}
}

// report hands an error the source handles by itself to the hook and to
// OnError.
func (s *Source) report(err error) {
	if s.cfg.Hook != nil {
		s.cfg.Hook.Event(hook.Event{Kind: hook.Error, Err: err})
	}
	if s.cfg.OnError != nil {
		s.cfg.OnError(err)
	}
}

// Start checks Redis's maxmemory-policy (a policy other than noeviction is
// logged at Warn, a refused CONFIG GET at Info, once per client), creates
// the group unless it exists, and takes the consumer name.
func (s *Source) Start(ctx context.Context) error {
	redischeck.AtStart(ctx, s.rdb, s.warnLog, s.log, s.report, "group")
	if err := s.ensureGroup(ctx); err != nil {
		return err
	}
	return s.claimName(ctx)
}

// ensureGroup creates the group (and the stream) unless it exists.
//
// A Redis at maxmemory with the noeviction policy refuses XGROUP CREATE
// MKSTREAM with OOM before it can answer BUSYGROUP. A group that exists
// then needs nothing (reading and acknowledging are not refused, so the
// consumer can drain the full server): XPENDING, a read, tells. A group
// that does not exist cannot be made until memory is freed: the OOM error
// is returned, and the engine waits it out like an outage.
func (s *Source) ensureGroup(ctx context.Context) error {
	err := s.rdb.XGroupCreateMkStream(ctx, s.cfg.Stream, s.cfg.Group, s.cfg.GroupStart).Err()
	if rediserr.IsBusyGroup(err) {
		s.ensureSignals(ctx)
		return nil
	}
	if rediserr.IsOOM(err) && s.rdb.XPending(ctx, s.cfg.Stream, s.cfg.Group).Err() == nil {
		return nil
	}
	if err == nil {
		s.groupsCreated.Add(1)
		s.log.Info("consumer group created", "start", s.cfg.GroupStart)
		if s.cfg.Hook != nil {
			s.cfg.Hook.Event(hook.Event{Kind: hook.GroupCreated})
		}
		s.ensureSignals(ctx)
	}
	return err
}

// ReleasedKey returns the key where a stream's consumers announce entries
// they handed back: in the stream's slot.
func ReleasedKey(streamKey string) string { return keys.Beside(streamKey, ":released") }

// ensureSignals creates the group on the announcement stream, from its
// end. Without it (a Redis out of memory refuses it) the consumer works
// as before, leaving released entries to the reclaimers' passes; the next
// repair tries again.
func (s *Source) ensureSignals(ctx context.Context) {
	if s.signals.Load() || !s.cfg.Read {
		return
	}
	err := s.rdb.XGroupCreateMkStream(ctx, s.released, s.cfg.Group, "$").Err()
	if err == nil || rediserr.IsBusyGroup(err) {
		s.signals.Store(true)
		return
	}
	s.log.Info("cannot create the group on the announcement stream of released entries; released entries wait for a reclaim pass", "key", s.released, "err", err)
}

// Repair answers NOGROUP: the group or the stream vanished (deleted, or the
// server lost its data). It creates the group again from GroupStart, so
// entries still in the stream are delivered again rather than skipped. An
// entry this consumer still holds (in a handler, or waiting for its XACK)
// and reads again in the new group is not dispatched twice (the engine
// holds its key); its XACK acknowledges it in the new group if it arrives
// after the re-read, and otherwise a reclaimer delivers it again after
// MinIdle.
func (s *Source) Repair(ctx context.Context, cause error) error {
	s.log.Warn("consumer group missing; creating it again", "err", cause)
	s.report(fmt.Errorf("group: group %q on stream %q vanished: %w", s.cfg.Group, s.cfg.Stream, cause))
	s.signals.Store(false) // its announcement stream's group may be gone too
	return s.ensureGroup(ctx)
}

// Classify: NOGROUP is repaired; what rediserr.Waitable names (an outage, a
// restart, a failover, a full Redis, a command cut short by a stop) is
// waited out; everything else (WRONGTYPE, NOPERM, a closed client) stops
// the consumer.
func (s *Source) Classify(op string, err error) (engine.Action, error) {
	switch {
	case errors.Is(err, ErrConsumerNameInUse):
		return engine.Stop, err
	case rediserr.IsNoGroup(err):
		return engine.Repair, nil
	case rediserr.Waitable(err):
		return engine.Wait, nil
	case rediserr.IsWrongType(err) && op == "dead-letter":
		return engine.Stop, fmt.Errorf("%w: the dead-letter stream %q holds another type: %w", ErrNotStream, s.cfg.DeadLetterStream, err)
	case rediserr.IsWrongType(err):
		return engine.Stop, fmt.Errorf("%w: %s: key %q holds another type: %w", ErrNotStream, op, s.cfg.Stream, err)
	}
	return engine.Stop, fmt.Errorf("group: %s on stream %q (group %q): %w", op, s.cfg.Stream, s.cfg.Group, err)
}

// SetPace implements engine.Paced.
func (s *Source) SetPace(p engine.Pace) { s.pace = p }

func (s *Source) handlerTime() time.Duration {
	if s.pace == nil {
		return 0
	}
	return s.pace.HandlerTime()
}

// room is how many announced entries this consumer takes now, at the
// handler time h the announcer measured.
func (s *Source) room(h time.Duration) int {
	if s.pace == nil {
		return 0
	}
	return s.pace.Room(h)
}

// Stop has nothing left to do: the readers' connections are closed by
// their fetchers, the liveness key by Housekeep.
func (s *Source) Stop(context.Context) {}

var (
	_ engine.Source      = (*Source)(nil)
	_ engine.Keeper      = (*Source)(nil)
	_ engine.Sweeper     = (*Source)(nil)
	_ engine.Repairer    = (*Source)(nil)
	_ engine.Housekeeper = (*Source)(nil)
	_ engine.Paced       = (*Source)(nil)
)
