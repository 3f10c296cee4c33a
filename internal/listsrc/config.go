package listsrc

import (
	"cmp"
	"log/slog"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/hook"
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/keys"
	"github.com/streamgroup/streamgroup/stream"
)

// Defaults. queue.Options documents the same values.
const (
	DefaultPollInterval = time.Second
	DefaultHeartbeatTTL = 30 * time.Second
	fairEvery           = 20 // the priority rule (see the queue package documentation)
)

// Config is the Redis side of a list consumer; queue.Options documents
// the fields it fills.
type Config struct {
	Client         redis.UniversalClient
	Queues         []string // in priority order, the first queue first
	Consumer       string   // the reliable consumer's name; "" for a simple one
	Reliable       bool     // a reliable consumer, else a simple one
	DeadLetterList string   // "": stream.DeadLetterKey of each queue
	PollInterval   time.Duration
	HeartbeatTTL   time.Duration
	Logger         *slog.Logger
	OnError        func(error)
	// Hook is the consumer's hook (the engine's Config.Hook): the errors
	// the source reports (malformed envelopes, say) go to it too. Nil:
	// none.
	Hook hook.Consumer

	dead []string // dead-letter list of each queue, set by Normalize
}

// Normalize fills defaults and validates the arguments and options (but
// for the Redis Cluster slots: see CheckSlots). It returns a copy, which
// shares nothing with c.
func (c Config) Normalize() (Config, error) {
	c.Queues = append([]string(nil), c.Queues...)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.HeartbeatTTL = cmp.Or(c.HeartbeatTTL, DefaultHeartbeatTTL)
	switch {
	case c.Client == nil:
		return c, engine.Invalid("nil redis client")
	case len(c.Queues) == 0:
		return c, engine.Invalid("no queue")
	case c.Reliable && c.Consumer == "":
		return c, engine.Invalid("empty consumer name")
	case c.PollInterval < 0 || c.HeartbeatTTL < 0:
		return c, engine.Invalid("PollInterval and HeartbeatTTL must not be negative")
	case c.PollInterval < 10*time.Millisecond:
		return c, engine.Invalid("PollInterval %v is too small (minimum 10ms)", c.PollInterval)
	case c.HeartbeatTTL < 10*time.Millisecond:
		return c, engine.Invalid("HeartbeatTTL %v is too small (minimum 10ms)", c.HeartbeatTTL)
	}
	seen := map[string]bool{}
	for _, q := range c.Queues {
		if q == "" {
			return c, engine.Invalid("empty queue name")
		}
		if seen[q] {
			return c, engine.Invalid("queue %q listed twice", q)
		}
		seen[q] = true
	}
	c.dead = nil
	for _, q := range c.Queues {
		d := cmp.Or(c.DeadLetterList, stream.DeadLetterKey(q))
		if seen[d] {
			return c, engine.Invalid("dead-letter list %q is also a queue", d)
		}
		c.dead = append(c.dead, d)
	}
	return c, nil
}

// DeadLetterLists returns the dead-letter list of each queue, in the
// order of Queues; c must be normalized.
func (c Config) DeadLetterLists() []string { return slices.Clone(c.dead) }

// CheckSlots refuses, for a client of a Redis Cluster, queues and helper
// keys that do not all lie in one slot: the fetch and pop scripts (and
// BRPOP) read all the queues, and the reliable consumer's other scripts
// touch a queue with its processing list, heartbeat, registry or
// dead-letter list. A simple consumer writes its dead-letter list alone.
// c must be normalized. The queue constructors call it after the engine's
// checks, so that an error about both reports the engine's, as it always
// did.
func (c Config) CheckSlots() error {
	if _, ok := c.Client.(*redis.ClusterClient); !ok {
		return nil
	}
	first := c.Queues[0]
	for _, q := range c.Queues[1:] {
		if !keys.SameSlot(first, q) {
			return engine.Invalid("on Redis Cluster all queues of a consumer must lie in one slot, since one script reads them all: %q is in slot %d, %q in slot %d; give them the same hash tag, as in \"{jobs}:high\" and \"{jobs}:low\"",
				first, keys.Slot(first), q, keys.Slot(q))
		}
	}
	if !c.Reliable {
		return nil
	}
	option := ""
	if c.DeadLetterList != "" {
		option = "DeadLetterList"
	}
	for i, q := range c.Queues {
		for _, h := range []string{ProcessingKey(q, c.Consumer), HeartbeatKey(q, c.Consumer), ConsumersKey(q)} {
			if err := keys.CheckSlot("queue", q, "helper key", h, ""); err != nil {
				return err
			}
		}
		if err := keys.CheckSlot("queue", q, "default dead-letter list", c.dead[i], option); err != nil {
			return err
		}
	}
	return nil
}

// The helper keys of a queue lie in its Redis Cluster slot (keys.Beside),
// so that every script touches one slot (docs/wire-format.md, "Keys").
// queue.ProcessingKey, queue.HeartbeatKey and queue.ConsumersKey document
// them.

// ProcessingKey is the processing list the reliable consumer named consumer
// keeps for queue.
func ProcessingKey(queue, consumer string) string {
	return keys.Beside(queue, ":processing:"+consumer)
}

// HeartbeatKey is the heartbeat the reliable consumer named consumer keeps
// for queue.
func HeartbeatKey(queue, consumer string) string {
	return keys.Beside(queue, ":heartbeat:"+consumer)
}

// ConsumersKey is the set of reliable consumers that may hold jobs of
// queue in a processing list.
func ConsumersKey(queue string) string { return keys.Beside(queue, ":consumers") }

// The helper keys' names before keys.Beside (plain appending), still swept
// (reliableSource.recoverDead). Equal to the current names for a queue with
// a hash tag.
func legacyProcessingKey(queue, consumer string) string { return queue + ":processing:" + consumer }
func legacyHeartbeatKey(queue, consumer string) string  { return queue + ":heartbeat:" + consumer }
func legacyConsumersKey(queue string) string            { return queue + ":consumers" }
