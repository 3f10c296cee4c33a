// Package stream is the Redis Streams layer of streamgroup: the message
// type handlers receive, entry IDs, the wire format of payloads, a
// [Producer] that adds entries and keeps the stream's length in check
// without losing work, a [Reader] for replaying and inspecting history,
// and [DeadLetter], what a dead letter records, whether it was read from a
// dead-letter stream ([ParseDeadLetter]) or from the dead-letter list of a
// queue (queue.ParseDeadLetter).
//
// # At-least-once delivery
//
// streamgroup consumes a stream through a Redis consumer group: an entry
// stays in the group's pending entries list until a handler has processed it
// and the consumer acknowledges it, so a crash or a lost consumer means
// redelivery, never loss. Handlers may therefore see an entry more than once
// and must be idempotent: key side effects on the entry ID, or on a
// business key carried in the entry.
//
// The producer's side of that contract is trimming. A plain XADD MAXLEN can
// delete entries a group has not read yet, or has read but not acknowledged.
// By default a [Producer] trims safely instead: [Producer.Trim], which also
// runs automatically every [ProducerOptions.TrimInterval] adds, never
// removes an entry that a consumer group has not been delivered yet or
// still holds pending. A stalled group therefore makes the stream grow
// beyond [ProducerOptions.MaxLen]; watch its lag. [ProducerOptions.UnsafeTrim]
// restores Redis's own trimming for streams where losing unconsumed work is
// acceptable.
//
// An add that fails with a network error, or whose deadline passed after
// its entry was sent, may still have reached Redis; retrying it can add the
// entry twice, which idempotent handlers tolerate. A single add whose
// context ends while it is still queued behind other adds (see
// [Producer.AddEntry]) was not sent and is not added.
//
// A consumer (group.Consumer, claim.Reclaimer, queue's consumers) hands its
// handler a *[Message] that is valid only during the handler call: each
// worker reuses one Message for every job. A handler must not keep the
// pointer after it returns, nor change Values; copy what it needs.
//
// # Wire format
//
// An entry is a plain Redis stream entry: field/value pairs, all strings.
// Entries written by other programs (XADD from redis-cli, another language)
// are consumed as they are. A typed payload written by [Producer.AddPayload]
// or [Encode] is one field, [PayloadField], holding the codec's bytes, plus
// [ContentTypeField] naming the codec. [Decode] reads either shape: it
// decodes the payload field when there is one and, for the [JSON] codec,
// decodes a plain entry's fields as a JSON object of strings otherwise.
// docs/wire-format.md has the details.
//
// # Concurrency and lifecycle
//
// [Producer] and [Reader] are safe for concurrent use and hold no goroutines
// or connections of their own: they use the [github.com/redis/go-redis/v9.UniversalClient]
// they are given (standalone, Sentinel or Cluster) and never close it. They
// need no Close. Every Redis command of one producer or reader touches only
// its stream key, so they work unchanged on Redis Cluster.
//
// [ProducerOptions].Hook lets telemetry see each add, and add fields (a
// trace context, say) to the entries: ordinary fields, which the entry's
// own fields of the same name override (docs/wire-format.md, package hook).
//
// Entry-range syntax needs Redis 6.2 or later (exclusive "(" bounds); the
// safe-trim script uses XINFO GROUPS and XPENDING from Lua, tested on
// Redis 7.
package stream
