package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

type wireEnvelope struct {
	SG int               `json:"sg"`
	N  *int64            `json:"n"`
	ID string            `json:"id"`
	V  map[string]string `json:"v"`
}

// Push writes one canonical envelope per job: marker, attempt count 0,
// a unique ID, the values as strings; PushBatch keeps the order.
func TestQueueProducerEnvelope(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	q := names(t, rdb)
	ctx := context.Background()
	p, err := queue.NewProducer(rdb, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	id1, err := p.Push(ctx, map[string]any{"to": "ada@example.com", "n": 7, "ok": true, "f": 1.5, "b": []byte("x"), "d": time.Second})
	if err != nil {
		t.Fatalf("Push = %v; want nil", err)
	}
	id2, err := p.PushPayload(ctx, struct {
		To string `json:"to"`
	}{"bob@example.com"})
	if err != nil {
		t.Fatalf("PushPayload = %v; want nil", err)
	}
	ids, err := p.PushBatch(ctx, []map[string]any{{"to": "same"}, {"to": "same"}, {}})
	if err != nil {
		t.Fatalf("PushBatch = %v; want nil", err)
	}
	all := append([]string{id1, id2}, ids...)
	seen := map[string]bool{}
	for _, id := range all {
		if len(id) != 28 || seen[id] {
			t.Errorf("ID %q: want 28 hex digits, unique", id)
		}
		seen[id] = true
	}
	for i := 1; i < len(all); i++ {
		if all[i][:12] < all[i-1][:12] {
			t.Errorf("IDs %v: the time part (12 hex digits) goes back", all)
		}
	}
	elems, _ := rdb.LRange(ctx, q, 0, -1).Result()
	slices.Reverse(elems) // oldest (first consumed) first
	if len(elems) != 5 {
		t.Fatalf("LRANGE = %d elements; want 5", len(elems))
	}
	wantV := []map[string]string{
		{"to": "ada@example.com", "n": "7", "ok": "1", "f": "1.5", "b": "x", "d": "1000000000"},
		{stream.PayloadField: `{"to":"bob@example.com"}`, stream.ContentTypeField: "application/json"},
		{"to": "same"}, {"to": "same"}, {},
	}
	for i, e := range elems {
		var env wireEnvelope
		if err := json.Unmarshal([]byte(e), &env); err != nil {
			t.Fatalf("element %d %q: %v", i, e, err)
		}
		if !strings.HasPrefix(e, `{"sg":1,"n":0,"id":"`) || env.ID != all[i] || !mapsEqualS(env.V, wantV[i]) {
			t.Errorf("element %d = %s; want {\"sg\":1,\"n\":0,\"id\":%q,\"v\":%v}", i, e, all[i], wantV[i])
		}
	}

	// Bytes that are not UTF-8 travel base64-encoded in "b" and come back
	// exact.
	binID, err := p.Push(ctx, map[string]any{"bin": []byte{0xff, 0x00, 'a'}, "text": "é"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := rdb.LIndex(ctx, q, 0).Result()
	if want := `{"sg":1,"n":0,"id":"` + binID + `","v":{"text":"é"},"b":{"bin":"/wBh"}}`; raw != want {
		t.Errorf("binary job = %s; want %s", raw, want)
	}
	rec, _ := json.Marshal(map[string]any{"sgdead": 1, "queue": q, "job": raw})
	if d, err := queue.ParseDeadLetter(string(rec)); err != nil || d.Values["bin"] != "\xff\x00a" || d.Values["text"] != "é" {
		t.Errorf("binary job decodes to %+v, %v; want the exact bytes", d, err)
	}

	if ids, err := p.PushBatch(ctx, nil); ids != nil || err != nil {
		t.Errorf("PushBatch(nil) = %v, %v; want nil, nil", ids, err)
	}
	// A value go-redis cannot write fails its own job only.
	ids, err = p.PushBatch(ctx, []map[string]any{{"a": 1}, {"bad": struct{}{}}})
	var be *queue.BatchError
	if !errors.As(err, &be) || be.Errs[0] != nil || be.Errs[1] == nil || ids[0] == "" || ids[1] != "" {
		t.Errorf("PushBatch with a bad value = %v, %v; want a BatchError for job 1 only", ids, err)
	}
	// A key of another type: Redis's WRONGTYPE, matchable.
	str := q + ":string"
	rdb.Set(ctx, str, "x", 0)
	sp, _ := queue.NewProducer(rdb, str, nil)
	if _, err := sp.Push(ctx, map[string]any{"a": 1}); err == nil || !redis.HasErrorPrefix(errors.Unwrap(err), "WRONGTYPE") {
		t.Errorf("Push to a string key = %v; want WRONGTYPE", err)
	}
}

func mapsEqualS(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestQueueParseDeadLetter(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "x", `{"to":"a"}`, `{"sgdead":2}`, `[]`, `{"sgdead":"1"}`} {
		if d, err := queue.ParseDeadLetter(s); !errors.Is(err, stream.ErrNotDeadLetter) {
			t.Errorf("ParseDeadLetter(%q) = %+v, %v; want ErrNotDeadLetter", s, d, err)
		}
	}
	const job = `{"sg":1,"n":3,"id":"i","v":{"k":"v"}}`
	rec := func(job string) string {
		b, _ := json.Marshal(map[string]any{"sgdead": 1, "queue": "q", "id": "i", "consumer": "c", "attempts": 3, "error": "e", "at": 1700000000000, "job": job})
		return string(b)
	}
	tests := []struct {
		name, job string
		want      stream.DeadLetter
	}{
		{"envelope", job, stream.DeadLetter{Values: map[string]string{"k": "v"}}},
		{"malformed envelope", `{"sg":1,"n":1}`, stream.DeadLetter{}}, // Values nil
		{"plain string", "plain", stream.DeadLetter{Values: map[string]string{stream.PayloadField: "plain"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			want.Stream, want.OriginalID, want.Consumer, want.Deliveries, want.Error = "q", "i", "c", 3, "e"
			want.At, want.Element = time.UnixMilli(1700000000000), tt.job
			d, err := queue.ParseDeadLetter(rec(tt.job))
			if err != nil || !reflect.DeepEqual(d, want) {
				t.Errorf("ParseDeadLetter = %+v, %v; want %+v", d, err, want)
			}
		})
	}
}
