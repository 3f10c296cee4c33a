package inspect_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/inspect"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
)

// inspectACL is the least-privilege grant of docs/inspect.md.
var inspectACL = []string{"time", "type", "xinfo|stream", "xinfo|groups", "xinfo|consumers", "xpending", "xrange", "xlen", "llen", "smembers", "get"}

// TestLeastPrivilege reads a stream and a queue as a user with only the
// documented grant, and, without each granted command in turn, fails with
// an error naming it: the grant is enough, and every part of it is used.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := redistest.Client(t)
	key, q := streamKey(t, admin), queueKey(t, admin)
	addN(t, admin, key, 3)
	do(t, admin, "XGROUP", "CREATE", key, "g", "0")
	do(t, admin, "XGROUP", "CREATE", key, "mid", "2-0") // its lag is counted with XRANGE
	if err := admin.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{key, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	do(t, admin, "LPUSH", q, "job")
	do(t, admin, "SADD", queue.ConsumersKey(q), "c")
	do(t, admin, "LPUSH", queue.ProcessingKey(q, "c"), "job")
	do(t, admin, "SET", queue.HeartbeatKey(q, "c"), time.Now().UnixMilli(), "PX", 60000)
	// Both keys have a hash tag, so every key derived from them starts so.
	pattern := func(k string) string { return "~" + k[:strings.IndexByte(k, '}')+1] + "*" }

	read := func(user string) error {
		opts := *admin.Options()
		opts.Username, opts.Password = user, "pw-"+user
		rdb := redis.NewClient(&opts)
		defer rdb.Close()
		in := newInspector(t, rdb, nil)
		st, err := in.Stream(ctx, inspect.StreamTarget{Stream: key})
		if err != nil {
			return err
		}
		if len(st.Groups) != 2 || st.Groups[0].Lag != 2 || st.Groups[1].Lag != 1 || st.Groups[0].OldestPending.ID != "1-0" {
			t.Errorf("Stream = %+v; want g with lag 2 and 1-0 pending, mid with lag 1", st)
		}
		qs, err := in.Queue(ctx, inspect.QueueTarget{Queue: q})
		if err != nil {
			return err
		}
		if qs.Length != 1 || qs.Processing != 1 || qs.LiveConsumers != 1 {
			t.Errorf("Queue = %+v; want 1 job waiting, 1 processing, 1 live consumer", qs)
		}
		return nil
	}
	setUser := func(i int, grants []string) string {
		user := "sg-inspect-" + strconv.Itoa(i) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		args := []any{"ACL", "SETUSER", user, "reset", "on", ">pw-" + user, pattern(key), pattern(q), "resetchannels", "-@all"}
		for _, c := range grants {
			args = append(args, "+"+c)
		}
		do(t, admin, args...)
		t.Cleanup(func() { admin.ACLDelUser(context.Background(), user) })
		return user
	}

	if err := read(setUser(0, inspectACL)); err != nil {
		t.Fatalf("with the documented grant: %v", err)
	}
	for i, c := range inspectACL {
		without := slices.DeleteFunc(slices.Clone(inspectACL), func(g string) bool { return g == c })
		err := read(setUser(i+1, without))
		if err == nil || !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), "'"+c+"'") {
			t.Errorf("without %s: %v; want a NOPERM error naming it", c, err)
		}
	}
}
