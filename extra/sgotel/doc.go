// Package sgotel records OpenTelemetry traces and metrics of streamgroup's
// producers and consumers. It is a module of its own
// (github.com/streamgroup/streamgroup/extra/sgotel), so that the core
// module depends on no OpenTelemetry package: the core calls the
// dependency-free [hook.Hook] seam, and a [Hook] implements it, as
// go-redis's extra/redisotel and franz-go's kotel do for their clients.
//
//	h, err := sgotel.New(nil) // the global providers and propagator
//	p, err := stream.NewProducer(rdb, "jobs:email", &stream.ProducerOptions{Hook: h})
//	c, err := group.NewConsumer(rdb, "jobs:email", "mailers", host, handler, &group.Options{Hook: h})
//
// One Hook serves every producer and consumer of a process; list queues
// (queue.ProducerOptions.Hook, queue.Options.Hook) and standalone
// reclaimers (claim.Options.Hook) take it the same way.
//
// # Traces
//
// Each publish (one add or push, or one batch) is a PRODUCER span named
// "send <stream or queue>", a child of the span in the publish's context.
// Its W3C trace context is written into every entry it sends, as the
// fields "traceparent" and "tracestate" (and "baggage" when the context
// carries baggage), through the propagator ([Options.Propagator]). A field
// the entry already has keeps its value. A batch gets one span, and every
// entry of the batch carries that span's context: the messaging semantic
// conventions make the send span the messages' creation context when no
// per-message "create" span exists, and a span per entry would cost as
// much as the publish itself for large batches.
//
// Each delivery to a handler is a CONSUMER span named
// "process <stream or queue>", started just before the handler and ended
// once the consumer decided what to do with the job. It is a child of the
// publisher's span, read back from the entry's fields, and has no link:
// a handler call processes one message, so the publisher's context is the
// one cause of the span, and as its parent the trace reads publish →
// process (→ the handler's own spans) in every trace viewer, across
// processes; a link would repeat the parent. A job without a trace
// context (pushed by another program) starts a new trace, or continues the
// span the consumer's context carries. The handler's context carries the
// process span and the publisher's baggage.
//
// A retried job gets one process span per delivery, each a child of the
// same send span and carrying its delivery count. The status follows the
// outcome: Ok when the job is acknowledged; Error, with the handler's
// error recorded as an exception event, when it is retried or
// dead-lettered, and when it is abandoned (another consumer took it over
// while its handler ran, or the drain gave up on it: the job runs again
// elsewhere). A job dead-lettered without a handler call (malformed, or
// delivered more than MaxDeliveries times) gets a process span all the
// same, with streamgroup.handled = false.
//
// messaging.system is "redis" for streams and lists alike (the semantic
// conventions list no value for Redis); [KindKey] tells them apart.
// docs/observability.md in the repository lists every attribute.
//
// # Metrics
//
// The semantic conventions' messaging.client.sent.messages,
// messaging.client.consumed.messages and messaging.process.duration (in
// seconds, with the conventions' bucket boundaries), and, where the
// conventions have nothing, streamgroup.consumer.* counters: handled
// messages by outcome, retries, dead letters, reclaims, lost leases,
// released jobs, groups created and errors. Their attributes are the
// destination (stream or queue), the consumer group, and the outcome or
// error type: never a message ID or a consumer name, which would make a
// series per message or per pod.
//
// Each producer and consumer computes its attribute sets once, when it is
// created: a message's measurements allocate nothing for their attributes
// (docs/observability.md gives the per-message cost).
//
// Gauges read from Redis (a stream's lag and pending entries, the age of
// the oldest pending entry, queue lengths) are not recorded by a Hook: a
// Hook sees only what its producers and consumers do. They come from one
// collector per process (see docs/observability.md).
package sgotel
