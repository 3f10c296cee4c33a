package integration_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// childEnv, when set in the environment, makes the test binary run a worker
// (runChild) instead of the tests: the crash test re-executes itself as a
// real OS process that it can SIGKILL.
const childEnv = "STREAMGROUP_TEST_CHILD"

// Environment of the child worker, set by startChild.
const (
	childAddrEnv     = "STREAMGROUP_TEST_CHILD_ADDR"     // Redis host:port
	childStreamEnv   = "STREAMGROUP_TEST_CHILD_STREAM"   // stream key
	childGroupEnv    = "STREAMGROUP_TEST_CHILD_GROUP"    // group name
	childConsumerEnv = "STREAMGROUP_TEST_CHILD_CONSUMER" // consumer name
	childStartedEnv  = "STREAMGROUP_TEST_CHILD_STARTED"  // list key: RPUSH of each ID whose handler started
)

// Exit codes of the child. Killed by SIGKILL, it has none of them.
const (
	childBadEnv     = 2 // a variable above is missing
	childParentGone = 3 // stdin reached EOF: the test process is gone
	childRunReturn  = 4 // Consumer.Run returned, which it must not
)

// runChild runs the worker; its exit code becomes the process's.
//
// The worker is a group.Consumer (fastOptions) whose handler pushes the
// entry's ID to the started list and then blocks until its context ends,
// which never happens before the process is killed: it handles, and
// acknowledges, nothing. It exits by itself when its stdin (a pipe held by
// the test process) reaches EOF, so it never outlives the test binary, even
// one that crashed.
func runChild() int {
	env := map[string]string{}
	for _, k := range []string{childAddrEnv, childStreamEnv, childGroupEnv, childConsumerEnv, childStartedEnv} {
		env[k] = os.Getenv(k)
		if env[k] == "" {
			fmt.Fprintf(os.Stderr, "child: %s is not set\n", k)
			return childBadEnv
		}
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		fmt.Fprintln(os.Stderr, "child: stdin closed; the test process is gone")
		os.Exit(childParentGone)
	}()

	rdb := redis.NewClient(&redis.Options{Addr: env[childAddrEnv]})
	started := env[childStartedEnv]
	h := handler.Func(func(ctx context.Context, m *stream.Message) error {
		if err := rdb.RPush(ctx, started, m.ID).Err(); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	})
	c, err := group.NewConsumer(rdb, env[childStreamEnv], env[childGroupEnv], env[childConsumerEnv], h, fastOptions())
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: NewConsumer: %v\n", err)
		return childRunReturn
	}
	err = c.Run(context.Background())
	fmt.Fprintf(os.Stderr, "child: Run returned %v\n", err)
	return childRunReturn
}

// child is the worker process started by startChild.
type child struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer // stdout and stderr; read only after the exit
	stdin  io.WriteCloser
	exited chan struct{} // closed when cmd.Wait returned
	err    error         // from cmd.Wait, set before exited is closed
	once   sync.Once
}

// startChild starts this test binary as a worker (see runChild) consuming
// key as consumer name of grp, on the Redis at addr. t.Cleanup kills it.
func startChild(t *testing.T, addr, key, grp, name, started string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=1",
		childAddrEnv+"="+addr,
		childStreamEnv+"="+key,
		childGroupEnv+"="+grp,
		childConsumerEnv+"="+name,
		childStartedEnv+"="+started,
	)
	c := &child{cmd: cmd, out: new(bytes.Buffer), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("StdinPipe: %v", err)
	}
	c.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child %s: %v", os.Args[0], err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = c.kill()
		if t.Failed() {
			t.Logf("child output:\n%s", c.out)
		}
	})
	return c
}

// alive fails t when the child has exited.
func (c *child) alive(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
		t.Fatalf("child exited by itself: %v\n%s", c.err, c.out)
	default:
	}
}

// kill sends SIGKILL (once) and returns cmd.Wait's result.
func (c *child) kill() error {
	c.once.Do(func() {
		_ = c.cmd.Process.Kill()
		<-c.exited
		_ = c.stdin.Close()
	})
	return c.err
}

// TestCrashedWorkerIsReclaimed kills (SIGKILL) a worker process while its
// handlers are running and checks that another consumer of the group takes
// over its entries once they have been idle for MinIdle, and handles every
// entry.
func TestCrashedWorkerIsReclaimed(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	ctx := t.Context()
	key, grp := redistest.Names(t)
	started := key + ":started"
	t.Cleanup(func() { rdb.Del(context.Background(), key, started) })

	const total = 20
	childSlots := fastOptions().Concurrency
	childHolds := childSlots + fastOptions().Prefetch
	ids := publish(t, rdb, key, total, nil)

	// The child reads as many entries as it may hold (Concurrency 8 +
	// Prefetch 8) and blocks in the handlers of 8; it never acknowledges
	// anything.
	worker := startChild(t, rdb.Options().Addr, key, grp, "doomed", started)
	var startedIDs []string
	eventually(t, 20*time.Second, fmt.Sprintf("the child to start %d handlers", childSlots), func() bool {
		worker.alive(t)
		var err error
		startedIDs, err = rdb.LRange(ctx, started, 0, -1).Result()
		if err != nil {
			t.Fatalf("LRANGE %s: %v", started, err)
		}
		return len(startedIDs) >= childSlots
	})
	if len(startedIDs) != childSlots {
		t.Fatalf("child started %d handlers: %v; want %d (its Concurrency)", len(startedIDs), startedIDs, childSlots)
	}
	owned, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: key, Group: grp, Consumer: "doomed", Start: "-", End: "+", Count: total,
	}).Result()
	if err != nil {
		t.Fatalf("XPENDING %s %s - + %d doomed: %v", key, grp, total, err)
	}
	var ownedIDs []string
	eventually(t, 10*time.Second, fmt.Sprintf("the child to hold %d entries", childHolds), func() bool {
		owned, err = rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: key, Group: grp, Consumer: "doomed", Start: "-", End: "+", Count: total,
		}).Result()
		if err != nil {
			t.Fatalf("XPENDING: %v", err)
		}
		return len(owned) >= childHolds
	})
	for _, p := range owned {
		ownedIDs = append(ownedIDs, p.ID)
		if p.RetryCount != 1 {
			t.Errorf("before the kill, entry %s has %d deliveries; want 1", p.ID, p.RetryCount)
		}
	}
	if len(ownedIDs) != childHolds || !isSubset(startedIDs, ownedIDs) {
		t.Fatalf("the child owns %v; want %d entries including those whose handlers started, %v", ownedIDs, childHolds, startedIDs)
	}

	worker.alive(t)
	if err := worker.kill(); err == nil {
		t.Fatalf("killed child exited with nil; want an error (killed by a signal)\n%s", worker.out)
	}
	crashed := map[string]bool{} // started or prefetched: all delivered once
	for _, id := range ownedIDs {
		crashed[id] = true
	}

	rec := newRecorder(nil)
	survivor := newConsumer(t, rdb, key, grp, "survivor", rec.as("survivor"), fastOptions())
	run := start(t, survivor.Run)
	eventually(t, 20*time.Second, "every entry handled and acknowledged", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("survivor Run returned early: %v", err)
		}
		return rec.distinct() == total && pending(t, rdb, key, grp) == 0
	})
	if err := run.Stop(); err != nil {
		t.Errorf("survivor Run = %v; want nil", err)
	}

	calls, _, _ := rec.snapshot()
	rec.mu.Lock()
	deliv := rec.deliv
	rec.mu.Unlock()
	for i, id := range ids {
		want := int64(1)
		if crashed[id] {
			want = 2 // once to the child, once reclaimed by the survivor
		}
		if calls[id] != 1 || !slices.Equal(deliv[id], []int64{want}) {
			t.Errorf("entry %d (%s, crashed=%v): survivor handled it %d times with deliveries %v; want once with [%d]",
				i, id, crashed[id], calls[id], deliv[id], want)
		}
	}
	st := survivor.Stats()
	want := group.Stats{Delivered: total, Acked: total, Reclaimed: uint64(childHolds)}
	if st.Delivered != want.Delivered || st.Acked != want.Acked || st.Reclaimed != want.Reclaimed ||
		st.Failed != 0 || st.DeadLettered != 0 {
		t.Errorf("survivor Stats = %+v; want Delivered=%d Acked=%d Reclaimed=%d and no failures or dead letters",
			st, want.Delivered, want.Acked, want.Reclaimed)
	}
	if dl := deadLetters(t, rdb, key+":dead"); len(dl) != 0 {
		t.Errorf("dead letters = %v; want none", dl)
	}
}

func isSubset(sub, set []string) bool {
	for _, id := range sub {
		if !slices.Contains(set, id) {
			return false
		}
	}
	return true
}
