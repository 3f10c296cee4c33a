package inspect

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/queue"
)

// QueueTarget names a list queue (package queue) to read. The zero value
// names no queue and is invalid.
type QueueTarget struct {
	// Queue is the queue's list key. It must not be empty.
	Queue string
	// DeadLetterList is the dead-letter list whose length is reported.
	// Zero ("") means queue.DeadLetterKey(Queue), the consumers' default.
	DeadLetterList string
}

// QueueState is what was read of one list queue: its list, the processing
// lists of its reliable consumers and their heartbeats, and its
// dead-letter list (docs/wire-format.md, "Lists"). It is a plain value;
// the zero value describes nothing.
type QueueState struct {
	// Queue is the queue's list key.
	Queue string
	// Length is the number of jobs waiting in the queue (LLEN).
	Length int64
	// Processing is the number of jobs in the processing lists of
	// Consumers: fetched by a reliable consumer and not finished (in a
	// handler, fetched ahead, or waiting for a retry). The jobs of a
	// consumer whose heartbeat expired count too, until another consumer
	// recovers them.
	Processing int64
	// Consumers holds the reliable consumers registered for the queue (its
	// set queue.ConsumersKey), ordered by name. A simple consumer keeps no
	// processing list and is not registered.
	Consumers []QueueConsumer
	// LiveConsumers and ExpiredConsumers count Consumers whose heartbeat
	// is live, and expired.
	LiveConsumers, ExpiredConsumers int
	// DeadLetterList is the dead-letter list key that was read.
	DeadLetterList string
	// DeadLetters is the length of DeadLetterList.
	DeadLetters int64
}

// QueueConsumer is one reliable consumer registered for a queue. It is a
// plain value.
type QueueConsumer struct {
	// Name is the consumer's name.
	Name string
	// Processing is the length of its processing list
	// (queue.ProcessingKey).
	Processing int64
	// Live reports that its heartbeat key (queue.HeartbeatKey) exists. A
	// running consumer renews it every HeartbeatTTL/3; once it has
	// expired, the next recovery sweep of another consumer of the queue
	// moves the processing list back to the queue and unregisters the
	// consumer.
	Live bool
	// LastBeat is when the consumer last renewed its heartbeat, by its own
	// clock (the heartbeat's value); the zero time when the heartbeat has
	// expired.
	LastBeat time.Time
}

// Queue reads one queue, as [Inspector.Queues] does. Its error is the
// target's own (not a [*BatchError]).
func (in *Inspector) Queue(ctx context.Context, t QueueTarget) (QueueState, error) {
	states, err := in.Queues(ctx, []QueueTarget{t})
	if len(states) == 0 {
		return QueueState{}, err
	}
	return states[0], one(err)
}

// Queues reads the list queues named by targets in two round trips,
// whatever their number: the queues, dead-letter lists and registries of
// consumers first (LLEN, SMEMBERS), then each registered consumer's
// processing list and heartbeat (LLEN, GET). Each command reads one key,
// so it works on Redis Cluster with queues in any slots. A consumer that
// registers or leaves between the two round trips is seen in the state
// of the first.
//
// It returns one state per target, in order. When some targets could not
// be read it returns a [*BatchError] holding each one's error, and their
// states hold only the keys (Queue and DeadLetterList). It returns an
// error wrapping [ErrInvalidOptions], and no states, when a target has an
// empty queue key. An empty targets makes no round trip and returns
// (nil, nil).
func (in *Inspector) Queues(ctx context.Context, targets []QueueTarget) ([]QueueState, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	for i, t := range targets {
		if t.Queue == "" {
			return nil, fmt.Errorf("%w: target %d: empty queue key", ErrInvalidOptions, i)
		}
	}
	reads := make([]*queueRead, len(targets))
	first := in.rdb.Pipeline()
	for i, t := range targets {
		t.DeadLetterList = cmp.Or(t.DeadLetterList, queue.DeadLetterKey(t.Queue))
		reads[i] = &queueRead{
			t:       t,
			length:  first.LLen(ctx, t.Queue),
			dead:    first.LLen(ctx, t.DeadLetterList),
			members: first.SMembers(ctx, queue.ConsumersKey(t.Queue)),
		}
	}
	_, _ = first.Exec(ctx) // each command's error is looked at below

	states := make([]QueueState, len(targets))
	errs := make([]error, len(targets))
	second := in.rdb.Pipeline()
	for i, r := range reads {
		errs[i] = r.firstReplies(ctx, second, &states[i])
	}
	if second.Len() > 0 {
		_, _ = second.Exec(ctx)
	}
	for i, r := range reads {
		if errs[i] == nil {
			errs[i] = r.secondReplies(&states[i])
		}
		if errs[i] != nil {
			states[i] = QueueState{Queue: r.t.Queue, DeadLetterList: r.t.DeadLetterList}
		}
	}
	return states, batchErr(errs)
}

// queueRead holds the commands that read one queue target.
type queueRead struct {
	t          QueueTarget // DeadLetterList filled in
	length     *redis.IntCmd
	dead       *redis.IntCmd
	members    *redis.StringSliceCmd
	names      []string
	processing []*redis.IntCmd
	beats      []*redis.StringCmd
}

func (r *queueRead) firstReplies(ctx context.Context, p redis.Pipeliner, s *QueueState) error {
	q := r.t.Queue
	*s = QueueState{Queue: q, DeadLetterList: r.t.DeadLetterList}
	if err := listErr(q, "", q, r.length); err != nil {
		return err
	}
	if err := listErr(q, "dead-letter list", r.t.DeadLetterList, r.dead); err != nil {
		return err
	}
	if r.members.Err() != nil {
		return cmdErr("queue", q, queue.ConsumersKey(q), r.members)
	}
	s.Length, s.DeadLetters = r.length.Val(), r.dead.Val()
	r.names = slices.Sorted(slices.Values(r.members.Val()))
	for _, c := range r.names {
		r.processing = append(r.processing, p.LLen(ctx, queue.ProcessingKey(q, c)))
		r.beats = append(r.beats, p.Get(ctx, queue.HeartbeatKey(q, c)))
	}
	return nil
}

func (r *queueRead) secondReplies(s *QueueState) error {
	q := r.t.Queue
	for i, c := range r.names {
		if err := listErr(q, fmt.Sprintf("processing list of consumer %q", c), queue.ProcessingKey(q, c), r.processing[i]); err != nil {
			return err
		}
		qc := QueueConsumer{Name: c, Processing: r.processing[i].Val()}
		switch err := r.beats[i].Err(); {
		case err == nil:
			qc.Live = true
			if ms, err := strconv.ParseInt(r.beats[i].Val(), 10, 64); err == nil {
				qc.LastBeat = time.UnixMilli(ms)
			}
			s.LiveConsumers++
		case rediserr.IsNil(err):
			s.ExpiredConsumers++
		default:
			return cmdErr("queue", q, queue.HeartbeatKey(q, c), r.beats[i])
		}
		s.Processing += qc.Processing
		s.Consumers = append(s.Consumers, qc)
	}
	return nil
}

// listErr describes the failure of cmd, an LLEN of key, the list what of
// queue q ("" for the queue itself); nil when it did not fail.
func listErr(q, what, key string, cmd *redis.IntCmd) error {
	err := cmd.Err()
	switch {
	case err == nil:
		return nil
	case rediserr.IsWrongType(err) && what == "":
		return fmt.Errorf("inspect: queue %q: %w: %w", q, ErrNotList, err)
	case rediserr.IsWrongType(err):
		return fmt.Errorf("inspect: queue %q: %s %q: %w: %w", q, what, key, ErrNotList, err)
	}
	return cmdErr("queue", q, key, cmd)
}
