package queue

import (
	"github.com/streamgroup/streamgroup/internal/engine"
	"github.com/streamgroup/streamgroup/internal/keys"
)

// The helper keys of a queue are derived from the queue key with
// keys.Beside, so they lie in the queue's Redis Cluster slot and every
// script, which touches a queue and its helper keys together, touches one
// slot: "jobs:email" gets "{jobs:email}:processing:<consumer>", and a queue
// with a hash tag, "{jobs}:email", gets "{jobs}:email:processing:<consumer>".

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
func DeadLetterKey(queue string) string { return keys.Beside(queue, deadLetterSuffix) }

// Names of the helper keys before they were derived with keys.Beside
// (plain appending), kept for the sweep of old-named processing lists (see
// reliableSource.recoverDead). They equal the current names for a queue with a
// hash tag.
func legacyProcessingKey(queue, consumer string) string { return queue + ":processing:" + consumer }
func legacyHeartbeatKey(queue, consumer string) string  { return queue + ":heartbeat:" + consumer }
func legacyConsumersKey(queue string) string            { return queue + ":consumers" }

// checkSlots refuses, for a client of a Redis Cluster, queues and helper
// keys that do not all lie in one slot: the fetch and pop scripts (and
// BRPOP) read all the queues, and the reliable consumer's other scripts
// touch a queue with its processing list, heartbeat, registry or
// dead-letter list, so any of them would fail with CROSSSLOT. A simple
// consumer writes its dead-letter list alone (LPUSH): any name works.
func (c config) checkSlots(reliable bool) error {
	first := c.queues[0]
	for _, q := range c.queues[1:] {
		if !keys.SameSlot(first, q) {
			return engine.Invalid("on Redis Cluster all queues of a consumer must lie in one slot, since one script reads them all: %q is in slot %d, %q in slot %d; give them the same hash tag, as in \"{jobs}:high\" and \"{jobs}:low\"",
				first, keys.Slot(first), q, keys.Slot(q))
		}
	}
	if !reliable {
		return nil
	}
	for i, q := range c.queues {
		for _, h := range []string{ProcessingKey(q, c.consumer), HeartbeatKey(q, c.consumer), ConsumersKey(q)} {
			if !keys.SameSlot(q, h) {
				return engine.Invalid("on Redis Cluster the queue name %q has an unmatched brace, so its helper key %q hashes to another slot: drop the brace or give the queue a hash tag, as in \"{jobs}:email\"", q, h)
			}
		}
		if d := c.dead[i]; !keys.SameSlot(q, d) {
			if !c.customDead {
				return engine.Invalid("on Redis Cluster the queue name %q has an unmatched brace, so its default dead-letter list %q hashes to another slot: drop the brace or give the queue a hash tag, as in \"{jobs}:email\"", q, d)
			}
			return engine.Invalid("on Redis Cluster DeadLetterList %q (slot %d) must lie in the slot of the queue %q (slot %d): give both the same hash tag, such as %q, or leave DeadLetterList empty for %q",
				d, keys.Slot(d), q, keys.Slot(q), keys.Beside(q, ":failed"), DeadLetterKey(q))
		}
	}
	return nil
}
