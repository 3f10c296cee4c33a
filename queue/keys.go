package queue

import (
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/keys"
	"github.com/streamgroup/streamgroup/stream"
)

// The helper keys of a queue lie in its Redis Cluster slot (keys.Beside),
// so that every script touches one slot (docs/wire-format.md, "Keys").

// ProcessingKey returns the key of the processing list that the reliable
// consumer named consumer keeps for queue: "{<queue>}:processing:<consumer>",
// or "<queue>:processing:<consumer>" when queue has a hash tag.
func ProcessingKey(queue, consumer string) string {
	return keys.Beside(queue, ":processing:"+consumer)
}

// HeartbeatKey returns the key of the heartbeat that the reliable consumer
// named consumer keeps for queue: "{<queue>}:heartbeat:<consumer>", or
// "<queue>:heartbeat:<consumer>" when queue has a hash tag.
func HeartbeatKey(queue, consumer string) string {
	return keys.Beside(queue, ":heartbeat:"+consumer)
}

// ConsumersKey returns the key of the set of reliable consumers that may
// hold jobs of queue in a processing list: "{<queue>}:consumers", or
// "<queue>:consumers" when queue has a hash tag.
func ConsumersKey(queue string) string { return keys.Beside(queue, ":consumers") }

// DeadLetterKey returns the default dead-letter list of queue:
// "{<queue>}:dead", or "<queue>:dead" when queue has a hash tag.
func DeadLetterKey(queue string) string { return stream.DeadLetterKey(queue) }

// The helper keys' names before keys.Beside (plain appending), still swept
// (reliableSource.recoverDead). Equal to the current names for a queue with
// a hash tag.
func legacyProcessingKey(queue, consumer string) string { return queue + ":processing:" + consumer }
func legacyHeartbeatKey(queue, consumer string) string  { return queue + ":heartbeat:" + consumer }
func legacyConsumersKey(queue string) string            { return queue + ":consumers" }

// checkSlots refuses, for a client of a Redis Cluster, queues and helper
// keys that do not all lie in one slot: the fetch and pop scripts (and
// BRPOP) read all the queues, and the reliable consumer's other scripts
// touch a queue with its processing list, heartbeat, registry or
// dead-letter list. A simple consumer writes its dead-letter list alone.
func (l *lists) checkSlots(reliable bool) error {
	first := l.queues[0]
	for _, q := range l.queues[1:] {
		if !keys.SameSlot(first, q) {
			return engine.Invalid("on Redis Cluster all queues of a consumer must lie in one slot, since one script reads them all: %q is in slot %d, %q in slot %d; give them the same hash tag, as in \"{jobs}:high\" and \"{jobs}:low\"",
				first, keys.Slot(first), q, keys.Slot(q))
		}
	}
	if !reliable {
		return nil
	}
	option := ""
	if l.customDead {
		option = "DeadLetterList"
	}
	for i, q := range l.queues {
		for _, h := range []string{ProcessingKey(q, l.consumer), HeartbeatKey(q, l.consumer), ConsumersKey(q)} {
			if err := keys.CheckSlot("queue", q, "helper key", h, ""); err != nil {
				return err
			}
		}
		if err := keys.CheckSlot("queue", q, "default dead-letter list", l.dead[i], option); err != nil {
			return err
		}
	}
	return nil
}
