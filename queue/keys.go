package queue

import (
	"github.com/streamgroup/streamgroup/internal/listsrc"
	"github.com/streamgroup/streamgroup/stream"
)

// The helper keys of a queue lie in its Redis Cluster slot (keys.Beside),
// so that every script touches one slot (docs/wire-format.md, "Keys").

// ProcessingKey returns the key of the processing list that the reliable
// consumer named consumer keeps for queue: "{<queue>}:processing:<consumer>",
// or "<queue>:processing:<consumer>" when queue has a hash tag.
func ProcessingKey(queue, consumer string) string {
	return listsrc.ProcessingKey(queue, consumer)
}

// HeartbeatKey returns the key of the heartbeat that the reliable consumer
// named consumer keeps for queue: "{<queue>}:heartbeat:<consumer>", or
// "<queue>:heartbeat:<consumer>" when queue has a hash tag.
func HeartbeatKey(queue, consumer string) string {
	return listsrc.HeartbeatKey(queue, consumer)
}

// ConsumersKey returns the key of the set of reliable consumers that may
// hold jobs of queue in a processing list: "{<queue>}:consumers", or
// "<queue>:consumers" when queue has a hash tag.
func ConsumersKey(queue string) string { return listsrc.ConsumersKey(queue) }

// DeadLetterKey returns the default dead-letter list of queue:
// "{<queue>}:dead", or "<queue>:dead" when queue has a hash tag.
func DeadLetterKey(queue string) string { return stream.DeadLetterKey(queue) }
