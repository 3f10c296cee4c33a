// Package enginetest is the behaviour every consumer source must show, in
// the manner of testing/slogtest and watermill's pubsub/tests: [Run] runs
// the same scenarios, as subtests, against any [Harness] — the stream
// consumer group, the reliable and simple list queues on real Redis, and
// the in-memory [Fake] under testing/synctest.
//
// The scenarios: FIFO within one worker; load sharing between two
// consumers; retry by delivery count, then dead-letter after MaxDeliveries
// (Msg.Deliveries seen 1..N); a permanent error dead-letters at once; a
// panic is a failure (a *handler.PanicError) and is retried; a handler
// calling runtime.Goexit fails its delivery and the consumer goes on; the
// graceful drain; DrainTimeout (Run's error wraps engine.ErrDrainTimeout,
// the handler's context.Cause is engine.ErrDrainTimeout); hand-back at
// shutdown of jobs fetched but not started and of jobs waiting for a retry,
// taken at once by an idle consumer; a lost lease cancels the handler's ctx
// (cause engine.ErrLeaseLost) and its result is not settled; a long handler
// keeps its job alive; the memory bound (MaxBytes) with 256 KiB jobs. After
// every Run, the suite checks that none of the consumer's goroutines is left
// running (by a pprof label the consumer's goroutines inherit), and, with
// the hook.Hook the suite passes every consumer in [Options.Hook], that
// each handler call was one Start and exactly one End (from the worker's
// goroutine, with the context Start returned, which the handler got); the
// scenarios check the End outcomes (ack, retry, dead letter, abandoned on
// a lost lease) and the events (Delivered, Released, LeaseLost, Error)
// they cause.
//
// Scenarios wait for what they can observe (handler calls, dead letters,
// counts in Redis) with a deadline; they never sleep and hope. A source
// that cannot do something (a simple list holds jobs at most once, in
// memory) declares it in [Harness.Lacks], and the scenarios that need it
// skip, saying why.
//
// # Writing a harness
//
// A harness makes a fresh queue per scenario and maps [Options] onto the
// consumer's public options. For a reliable list queue, say:
//
//	func TestConformance(t *testing.T) {
//		client := redistest.Client(t)
//		enginetest.Run(t, enginetest.Harness{
//			NewQueue: func(t *testing.T) enginetest.Queue {
//				return &listQueue{client: client, name: redistest.Key(t, "q")}
//			},
//		})
//	}
//
//	type listQueue struct {
//		client *redis.Client
//		name   string
//	}
//
//	func (q *listQueue) NewConsumer(t *testing.T, name string, h handler.Handler, o enginetest.Options) enginetest.Consumer {
//		c, err := queue.NewConsumer(q.client, q.name, name, h, &queue.ConsumerOptions{
//			Concurrency:   o.Concurrency,
//			Prefetch:      o.Prefetch,
//			MaxDeliveries: o.MaxDeliveries,
//			RetryBackoff:  o.RetryBackoff,
//			DrainTimeout:  o.DrainTimeout,
//			MaxBytes:      o.MaxBytes,
//			HeartbeatTTL:  o.KeepAlive,
//			OnError:       o.OnError,
//			Hook:          o.Hook,
//		})
//		if err != nil {
//			t.Fatal(err)
//		}
//		return c
//	}
//
//	// Publish, DeadLetters, Counts (LLEN of the queue; the processing
//	// lists' lengths) and Take (DEL the consumer's heartbeat, then run
//	// the recover script) follow.
//
// A simple list queue adds Lacks: map[enginetest.Capability]string{
// enginetest.Takeover: "at most once: jobs are held in memory",
// enginetest.CountKept: "RPUSH back loses the count"} and returns Held -1.
//
// The engine's own test runs the suite on the fake inside a synctest bubble:
//
//	h := enginetest.FakeHarness()
//	h.Bubble = func(t *testing.T, f func(*testing.T)) { synctest.Test(t, f) }
//	enginetest.Run(t, h)
package enginetest
