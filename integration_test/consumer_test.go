package integration_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// 4. A consumer restarted under the same name first finishes the entries it
// left pending.
func TestRestartFinishesOwnPendingFirst(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}
	old := publish(t, rdb, key, 5, nil)
	// The first run of "worker-1" read these and died before acking them.
	abandon(t, rdb, key, grp, "worker-1", 5)
	fresh := publish(t, rdb, key, 5, nil)

	rec := newRecorder(nil)
	opts := fastOptions()
	opts.Concurrency = 1
	opts.MinIdle = time.Hour // no reclaiming: only the restart path
	c := newConsumer(t, rdb, key, grp, "worker-1", rec.as("worker-1"), opts)
	r := start(t, c.Run)
	eventually(t, 10*time.Second, "all entries handled", func() bool { return rec.distinct() == 10 })
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	_, order, _ := rec.snapshot()
	if want := append(slices.Clone(old), fresh...); !slices.Equal(order, want) {
		t.Errorf("order = %v; want own pending entries first: %v", order, want)
	}
	for _, id := range old {
		if d := rec.deliv[id][0]; d != 2 {
			t.Errorf("pending entry %s delivered with Deliveries=%d; want 2", id, d)
		}
	}
	for _, id := range fresh {
		if d := rec.deliv[id][0]; d != 1 {
			t.Errorf("new entry %s delivered with Deliveries=%d; want 1", id, d)
		}
	}
	if n := pending(t, rdb, key, grp); n != 0 {
		t.Errorf("pending = %d; want 0", n)
	}
}

// 5. An always-failing entry is dead-lettered after MaxDeliveries with its
// metadata; the others flow around it.
func TestPoisonEntryIsDeadLettered(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	good := publish(t, rdb, key, 50, nil)
	poison, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: map[string]any{"kind": "poison", "to": "x"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	good = append(good, publish(t, rdb, key, 50, nil)...)

	rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
		if m.Values["kind"] == "poison" {
			return errors.New("smtp: 550 mailbox unavailable")
		}
		return nil
	})
	opts := fastOptions()
	opts.MaxDeliveries = 4
	c := newConsumer(t, rdb, key, grp, "c1", rec.as("c1"), opts)
	r := start(t, c.Run)
	dead := key + ":dead"
	eventually(t, 20*time.Second, "poison dead-lettered and the rest handled", func() bool {
		n, _ := rdb.XLen(ctx, dead).Result()
		return n == 1 && rec.distinct() == len(good)+1
	})
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	for _, id := range good {
		if n := rec.count(id); n != 1 {
			t.Errorf("good entry %s handled %d times; want 1", id, n)
		}
	}
	if n := rec.count(poison); n != 4 {
		t.Errorf("poison handled %d times; want MaxDeliveries=4", n)
	}
	if got, want := rec.deliv[poison], []int64{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("poison deliveries = %v; want %v", got, want)
	}
	dl := deadLetters(t, rdb, dead)
	want := stream.DeadLetter{OriginalID: poison, Stream: key, Group: grp, Consumer: "c1", Deliveries: 4, Error: "smtp: 550 mailbox unavailable"}
	got := dl[0]
	if got.OriginalID != want.OriginalID || got.Stream != want.Stream || got.Group != want.Group || got.Consumer != want.Consumer || got.Deliveries != want.Deliveries || got.Error != want.Error {
		t.Errorf("dead letter = %+v; want %+v", got, want)
	}
	if got.Values["kind"] != "poison" || got.Values["to"] != "x" || len(got.Values) != 2 {
		t.Errorf("dead letter original fields = %v; want kind=poison to=x", got.Values)
	}
	if got.At.IsZero() {
		t.Error("dead letter has no time")
	}
	s := c.Stats()
	if s.DeadLettered != 1 || s.Failed != 4 || s.Retried != 3 || s.Acked != uint64(len(good)) {
		t.Errorf("Stats = %+v; want DeadLettered=1 Failed=4 Retried=3 Acked=%d", s, len(good))
	}
	if n := pending(t, rdb, key, grp); n != 0 {
		t.Errorf("pending = %d; want 0", n)
	}
}

// 6. A permanent error and an undecodable payload are dead-lettered on the
// first delivery.
func TestPermanentAndUndecodableDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	type job struct {
		To     string `json:"to"`
		Reject bool   `json:"reject"`
	}
	p, err := stream.NewProducer(rdb, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	okID, err := p.AddPayload(ctx, job{To: "a@b.c"})
	if err != nil {
		t.Fatal(err)
	}
	rejectID, err := p.AddPayload(ctx, job{To: "bad", Reject: true})
	if err != nil {
		t.Fatal(err)
	}
	corruptID, err := p.Add(ctx, map[string]any{stream.PayloadField: "{not json", stream.ContentTypeField: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	h := handler.Typed(nil, func(ctx context.Context, m *stream.Message, j job) error {
		handled.Add(1)
		if j.Reject {
			return fmt.Errorf("address %q rejected: %w", j.To, handler.ErrPermanent)
		}
		return nil
	})
	c := newConsumer(t, rdb, key, grp, "c1", h, fastOptions())
	r := start(t, c.Run)
	dead := key + ":dead"
	eventually(t, 10*time.Second, "two dead letters", func() bool {
		n, _ := rdb.XLen(ctx, dead).Result()
		return n == 2 && c.Stats().Acked == 1
	})
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	byID := map[string]stream.DeadLetter{}
	for _, d := range deadLetters(t, rdb, dead) {
		byID[d.OriginalID] = d
	}
	if d, ok := byID[rejectID]; !ok || d.Deliveries != 1 || !strings.Contains(d.Error, `address "bad" rejected`) {
		t.Errorf("dead letter of permanent failure = %+v, %v; want deliveries 1 and the error", d, ok)
	}
	if d, ok := byID[corruptID]; !ok || d.Deliveries != 1 || !strings.Contains(d.Error, "cannot decode payload") || d.Values[stream.PayloadField] != "{not json" {
		t.Errorf("dead letter of corrupt payload = %+v, %v; want deliveries 1, a decode error and the payload", d, ok)
	}
	if _, ok := byID[okID]; ok {
		t.Errorf("good entry %s was dead-lettered", okID)
	}
	if n := handled.Load(); n != 2 {
		t.Errorf("typed handler called %d times; want 2 (the corrupt entry never reaches it)", n)
	}
	if s := c.Stats(); s.Retried != 0 || s.DeadLettered != 2 {
		t.Errorf("Stats = %+v; want Retried=0 DeadLettered=2", s)
	}
	if n := pending(t, rdb, key, grp); n != 0 {
		t.Errorf("pending = %d; want 0", n)
	}
}

// 7. An entry deleted (XDEL) after delivery and before its ack is cleaned
// from the PEL and never reaches a handler.
func TestDeletedPendingEntryNeverReachesHandler(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}
	ids := publish(t, rdb, key, 6, nil)
	// "dead" read all six and died; then two were deleted from the stream.
	// "me" had read two more and restarts; one of those was deleted too.
	abandon(t, rdb, key, grp, "dead", 4)
	abandon(t, rdb, key, grp, "me", 2)
	deleted := []string{ids[0], ids[2], ids[5]}
	if err := rdb.XDel(ctx, key, deleted...).Err(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(nil)
	opts := fastOptions()
	opts.MinIdle = 50 * time.Millisecond
	warns := newWarnings()
	opts.Logger = slog.New(warns)
	c := newConsumer(t, rdb, key, grp, "me", rec.as("me"), opts)
	r := start(t, c.Run)
	eventually(t, 10*time.Second, "PEL empty", func() bool { return pending(t, rdb, key, grp) == 0 && rec.distinct() == 3 })
	// A job deleted before it was handled is lost: each is named at Warn.
	for _, id := range deleted {
		if len(warns.mentioning("deleted", id)) == 0 {
			t.Errorf("no Warn record names the deleted entry %s", id)
		}
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	calls, _, _ := rec.snapshot()
	for _, id := range deleted {
		if calls[id] != 0 {
			t.Errorf("deleted entry %s reached the handler %d times; want 0", id, calls[id])
		}
	}
	for _, id := range []string{ids[1], ids[3], ids[4]} {
		if calls[id] != 1 {
			t.Errorf("entry %s handled %d times; want 1", id, calls[id])
		}
	}
	if s := c.Stats(); s.DeletedInPEL != 3 {
		t.Errorf("DeletedInPEL = %d; want 3", s.DeletedInPEL)
	}
}

// 13. Bad input: invalid options, a nil handler, a stream key holding a
// string: clear errors, and no panic in Run.
func TestBadInput(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	h := handler.Func(func(context.Context, *stream.Message) error { return nil })
	tests := []struct {
		name     string
		rdb      any
		key, grp string
		name2    string
		h        handler.Handler
		opts     *group.Options
		want     string
	}{
		{"nil handler", rdb, key, grp, "c", nil, nil, "nil handler"},
		{"empty group", rdb, key, "", "c", h, nil, "empty group"},
		{"empty consumer", rdb, key, grp, "", h, nil, "empty consumer"},
		{"negative concurrency", rdb, key, grp, "c", h, &group.Options{Concurrency: -1}, "Concurrency"},
		{"dead letters into the stream", rdb, key, grp, "c", h, &group.Options{DeadLetterStream: key}, "DeadLetterStream"},
		{"tiny MinIdle", rdb, key, grp, "c", h, &group.Options{MinIdle: time.Millisecond}, "MinIdle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := group.NewConsumer(rdb, tt.key, tt.grp, tt.name2, tt.h, tt.opts)
			if !errors.Is(err, group.ErrInvalidOptions) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewConsumer = %v, %v; want an ErrInvalidOptions error mentioning %q", c, err, tt.want)
			}
		})
	}
	if _, err := group.NewConsumer(nil, key, grp, "c", h, nil); !errors.Is(err, group.ErrInvalidOptions) {
		t.Errorf("NewConsumer(nil client) = %v; want ErrInvalidOptions", err)
	}

	t.Run("wrong type", func(t *testing.T) {
		wrong := key + ":string"
		if err := rdb.Set(context.Background(), wrong, "not a stream", 0).Err(); err != nil {
			t.Fatal(err)
		}
		c := newConsumer(t, rdb, wrong, grp, "c", h, fastOptions())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := c.Run(ctx)
		if !errors.Is(err, group.ErrNotStream) || !strings.Contains(err.Error(), "WRONGTYPE") || !strings.Contains(err.Error(), wrong) {
			t.Errorf("Run on a string key = %v; want a WRONGTYPE error naming %q", err, wrong)
		}
		if err := c.Run(ctx); !errors.Is(err, group.ErrAlreadyRun) {
			t.Errorf("second Run = %v; want ErrAlreadyRun", err)
		}
	})

	t.Run("panicking handler", func(t *testing.T) {
		pkey, pgrp := redistest.Names(t)
		publish(t, rdb, pkey, 1, nil)
		var errs []error
		errCh := make(chan error, 16)
		opts := fastOptions()
		opts.MaxDeliveries = 1
		opts.OnError = func(err error) { errCh <- err }
		c := newConsumer(t, rdb, pkey, pgrp, "c", handler.Func(func(context.Context, *stream.Message) error {
			panic("nil map write")
		}), opts)
		r := start(t, c.Run)
		eventually(t, 10*time.Second, "dead letter", func() bool { return c.Stats().DeadLettered == 1 })
		if err := r.Stop(); err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
		close(errCh)
		for err := range errCh {
			errs = append(errs, err)
		}
		var pe *handler.PanicError
		if len(errs) == 0 || !errors.As(errs[0], &pe) || pe.Value != "nil map write" || len(pe.Stack) == 0 {
			t.Errorf("OnError got %v; want a *handler.PanicError with value and stack", errs)
		}
		d := deadLetters(t, rdb, pkey+":dead")
		if len(d) != 1 || !strings.Contains(d[0].Error, "panic: nil map write") {
			t.Errorf("dead letters = %+v; want one with the panic", d)
		}
	})
}

// 14. Entries added by plain XADD field/value pairs, as redis-cli would, are
// handled, by plain and typed handlers alike.
func TestInteropPlainXADD(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	// XADD key * to user@example.com subject Welcome
	if err := rdb.Do(ctx, "XADD", key, "*", "to", "user@example.com", "subject", "Welcome").Err(); err != nil {
		t.Fatal(err)
	}
	type email struct {
		To      string `json:"to"`
		Subject string `json:"subject"`
	}
	got := make(chan email, 1)
	var raw atomic.Pointer[stream.Message]
	h := handler.Typed(nil, func(ctx context.Context, m *stream.Message, e email) error {
		raw.Store(m)
		got <- e
		return nil
	})
	c := newConsumer(t, rdb, key, grp, "c1", h, fastOptions())
	r := start(t, c.Run)
	var e email
	select {
	case e = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("plain entry not handled")
	}
	eventually(t, 5*time.Second, "ack", func() bool { return c.Stats().Acked == 1 })
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	if e != (email{To: "user@example.com", Subject: "Welcome"}) {
		t.Errorf("decoded %+v; want to=user@example.com subject=Welcome", e)
	}
	m := raw.Load()
	if m.Stream != key || m.Values["to"] != "user@example.com" || m.Deliveries != 1 || m.Time().IsZero() {
		t.Errorf("message = %+v; want stream, values, Deliveries=1 and a time", m)
	}
}

// A flood of failures does not grow memory without bound: a consumer holds
// at most 10*(Concurrency+Prefetch) failed entries for their retry (with
// leases); the others are let go, still pending, and come back through the
// reclaimer after MinIdle, where the delivery limit still applies.
func TestRetryHoldsAreBounded(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	const total, held = 30, 20 // 10*(1+1)
	publish(t, rdb, key, total, nil)
	h := handler.Func(func(context.Context, *stream.Message) error { return errors.New("down") })
	opts := fastOptions()
	opts.Concurrency, opts.Prefetch = 1, 1
	opts.MaxDeliveries = 2
	opts.MinIdle = 300 * time.Millisecond
	opts.RetryBackoff, opts.MaxRetryBackoff = time.Hour, time.Hour // held ones never retry here
	c := newConsumer(t, rdb, key, grp, "c1", h, opts)
	r := start(t, c.Run)
	dead := key + ":dead"
	eventually(t, 20*time.Second, "the entries let go to be reclaimed and dead-lettered", func() bool {
		n, _ := rdb.XLen(ctx, dead).Result()
		return n == total-held
	})
	ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: grp, Start: "-", End: "+", Count: 100}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != held {
		t.Fatalf("pending = %d; want the %d held for a retry", len(ps), held)
	}
	for _, p := range ps {
		if p.RetryCount != 1 || p.Idle >= opts.MinIdle {
			t.Errorf("held entry %s: deliveries %d, idle %v; want 1 and below MinIdle (leased)", p.ID, p.RetryCount, p.Idle)
		}
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	if s := c.Stats(); s.Reclaimed != total-held || s.DeadLettered != total-held {
		t.Errorf("Stats = %+v; want Reclaimed=%d DeadLettered=%d", s, total-held, total-held)
	}
}

// A handler that calls runtime.Goexit (as t.FailNow does) cannot be
// recovered from; the consumer must still lose nothing and keep its full
// pool: the entry stays pending and comes back after MinIdle, and the other
// entries flow.
func TestHandlerGoexit(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ids := publish(t, rdb, key, 20, nil)
	var exited atomic.Bool
	rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
		if m.ID == ids[3] && exited.CompareAndSwap(false, true) {
			runtime.Goexit()
		}
		return nil
	})
	errs := make(chan error, 100)
	opts := fastOptions()
	opts.Concurrency, opts.Prefetch = 2, 2
	opts.OnError = func(err error) { errs <- err }
	c := newConsumer(t, rdb, key, grp, "c1", rec.as("c1"), opts)
	r := start(t, c.Run)
	eventually(t, 10*time.Second, "every entry handled and acked", func() bool {
		return rec.distinct() == len(ids) && pending(t, rdb, key, grp) == 0
	})
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	if d := rec.deliv[ids[3]]; len(d) != 1 || d[0] != 2 {
		t.Errorf("entry after Goexit recorded deliveries %v; want one handling, on delivery 2", d)
	}
	close(errs)
	var sawGoexit bool
	for err := range errs {
		sawGoexit = sawGoexit || strings.Contains(err.Error(), "Goexit")
	}
	if !sawGoexit {
		t.Error("OnError was not told about the Goexit")
	}
}
