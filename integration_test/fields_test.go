package integration_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// TestDuplicateFieldNames: an entry may repeat a field name (XADD s * a 1 a 2
// is legal). The handler's Message.Values, a map, holds the last value; the
// dead letter keeps the entry's field list intact, duplicates and order
// included, both through the dead-letter script and, for an entry too large
// for it, through the three-step path.
func TestDuplicateFieldNames(t *testing.T) {
	t.Parallel()
	large := make([]any, 0, 8000)
	for i := range 4000 {
		large = append(large, "f"+strconv.Itoa(i), "v")
	}
	tests := []struct {
		name   string
		fields []any // after the duplicated field
	}{
		{"small entry", []any{"b", "x"}},
		{"entry too large for the script", large},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb := redistest.Client(t)
			key, grp := redistest.Names(t)
			dead := key + ":dead"
			ctx := context.Background()
			t.Cleanup(func() { rdb.Del(context.Background(), key, dead) })

			fields := append([]any{"a", "1", "a", "2"}, tt.fields...)
			id, err := rdb.Do(ctx, append([]any{"XADD", key, "*"}, fields...)...).Text()
			if err != nil {
				t.Fatalf("XADD with a duplicated field: %v", err)
			}
			seen := make(chan string, 1)
			rec := newRecorder(func(_ context.Context, m *stream.Message) error {
				select {
				case seen <- m.Values["a"]:
				default:
				}
				return fmt.Errorf("bad job: %w", handler.ErrPermanent)
			})
			runUntilDeadLettered(t, rdb, key, grp, dead, rec)
			if got := <-seen; got != "2" {
				t.Errorf("handler saw Values[\"a\"] = %q; want %q (the last value)", got, "2")
			}

			// The dead letter, read raw: the original fields in order, then
			// the dead-letter fields.
			res, err := rdb.Do(ctx, "XRANGE", dead, "-", "+").Slice()
			if err != nil || len(res) != 1 {
				t.Fatalf("XRANGE %s = %v, %v; want one entry", dead, res, err)
			}
			raw := res[0].([]any)[1].([]any)
			var orig []any
			var dlqID string
			for i := 0; i+1 < len(raw); i += 2 {
				if raw[i] == stream.DeadIDField {
					dlqID, _ = raw[i+1].(string)
				}
				if s, _ := raw[i].(string); len(s) > 4 && s[:4] == "dlq:" {
					continue
				}
				orig = append(orig, raw[i], raw[i+1])
			}
			if dlqID != id {
				t.Errorf("dead letter %s = %q; want %q", stream.DeadIDField, dlqID, id)
			}
			if !slices.Equal(orig, fields) {
				show := func(f []any) []any { return f[:min(len(f), 8)] }
				t.Errorf("dead letter's original fields = %v... (%d); want %v... (%d), duplicates kept",
					show(orig), len(orig), show(fields), len(fields))
			}
		})
	}
}

// TestDeadLetterOfDeletedEntry: an entry deleted from the stream while its
// handler runs is still dead-lettered, with the fields its handler saw.
func TestDeadLetterOfDeletedEntry(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	dead := key + ":dead"
	t.Cleanup(func() { rdb.Del(context.Background(), key, dead) })
	id := publish(t, rdb, key, 1, map[string]any{"b": "x"})[0]
	rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
		if err := rdb.XDel(ctx, key, m.ID).Err(); err != nil {
			return err
		}
		return fmt.Errorf("bad job: %w", handler.ErrPermanent)
	})
	runUntilDeadLettered(t, rdb, key, grp, dead, rec)
	dl := deadLetters(t, rdb, dead)
	if len(dl) != 1 || dl[0].OriginalID != id || dl[0].Values["b"] != "x" || dl[0].Values["n"] != "0" {
		t.Errorf("dead letters = %+v; want %s with its fields n=0 b=x", dl, id)
	}
}

// runUntilDeadLettered runs a consumer of grp with rec as its handler and
// dead as its dead-letter stream until dead holds one entry and nothing is
// pending, then stops it.
func runUntilDeadLettered(t *testing.T, rdb *redis.Client, key, grp, dead string, rec *recorder) {
	t.Helper()
	opts := fastOptions()
	opts.DeadLetterStream = dead
	r := start(t, newConsumer(t, rdb, key, grp, "A", rec.as("A"), opts).Run)
	eventually(t, 10*time.Second, "the entry dead-lettered", func() bool {
		n, _ := rdb.XLen(context.Background(), dead).Result()
		return n == 1 && pending(t, rdb, key, grp) == 0
	})
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
}
