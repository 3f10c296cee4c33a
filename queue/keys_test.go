package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
)

func TestQueueKeyNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want string }{
		{queue.ProcessingKey("jobs:email", "w1"), "{jobs:email}:processing:w1"},
		{queue.HeartbeatKey("jobs:email", "w1"), "{jobs:email}:heartbeat:w1"},
		{queue.ConsumersKey("jobs:email"), "{jobs:email}:consumers"},
		{queue.DeadLetterKey("jobs:email"), "{jobs:email}:dead"},
		{queue.ProcessingKey("{jobs}:email", "w1"), "{jobs}:email:processing:w1"},
		{queue.HeartbeatKey("{jobs}:email", "w1"), "{jobs}:email:heartbeat:w1"},
		{queue.ConsumersKey("{jobs}:email"), "{jobs}:email:consumers"},
		{queue.DeadLetterKey("{jobs}:email"), "{jobs}:email:dead"},
	} {
		if tc.got != tc.want {
			t.Errorf("key = %q; want %q", tc.got, tc.want)
		}
	}
}

// TestQueueOldKeyNamesSwept: jobs that a consumer of an older version left
// in a processing list named "<queue>:processing:<consumer>" (registered in
// "<queue>:consumers") go back to the queue once its heartbeat
// "<queue>:heartbeat:<consumer>" has expired, and not before.
func TestQueueOldKeyNamesSwept(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := context.Background()
	q := untaggedQueue(t)
	oldProc := func(c string) string { return q + ":processing:" + c }
	oldReg, aliveBeat := q+":consumers", q+":heartbeat:alive"
	t.Cleanup(func() {
		rdb.Del(context.Background(), q, oldProc("dead"), oldProc("alive"), oldReg, aliveBeat,
			queue.ProcessingKey(q, "worker-1"), queue.HeartbeatKey(q, "worker-1"), queue.ConsumersKey(q), queue.DeadLetterKey(q))
	})
	for _, c := range []string{"dead", "alive"} {
		if err := rdb.LPush(ctx, oldProc(c), c+"-job-1", c+"-job-2").Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.SAdd(ctx, oldReg, c).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Set(ctx, aliveBeat, "1", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(nil)
	c := reliable(t, rdb, []string{q}, "worker-1", rec, fastOptions())
	run := start(t, c.Run)
	eventually(t, 20*time.Second, "the dead old-version consumer's jobs handled", func() bool { return c.Stats().Acked == 2 })
	if n := llen(t, rdb, oldProc("dead")); n != 0 {
		t.Errorf("LLEN %s = %d; want 0", oldProc("dead"), n)
	}
	if ok, _ := rdb.SIsMember(ctx, oldReg, "dead").Result(); ok {
		t.Errorf("%s still lists the dead consumer", oldReg)
	}
	if n := llen(t, rdb, oldProc("alive")); n != 2 {
		t.Errorf("LLEN %s (heartbeat alive) = %d; want 2 (untouched)", oldProc("alive"), n)
	}
	// The live one stops: its heartbeat expires, and its jobs come back.
	if err := rdb.Del(ctx, aliveBeat).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the stopped old-version consumer's jobs handled", func() bool { return c.Stats().Acked == 4 })
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	if n, _ := rdb.Exists(ctx, oldReg).Result(); n != 0 {
		t.Errorf("%s still exists; want it emptied", oldReg)
	}
}
