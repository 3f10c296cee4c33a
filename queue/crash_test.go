package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/faultproxy"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// childEnv, when set, makes the test binary run a reliable worker
// (runChild) instead of the tests, so a test can SIGKILL a real process.
const childEnv = "QUEUE_TEST_CHILD"

// Environment of the child worker, set by startChild.
const (
	childAddrEnv    = "QUEUE_TEST_CHILD_ADDR"    // Redis host:port
	childQueueEnv   = "QUEUE_TEST_CHILD_QUEUE"   // queue key
	childNameEnv    = "QUEUE_TEST_CHILD_NAME"    // consumer name
	childStartedEnv = "QUEUE_TEST_CHILD_STARTED" // list key: RPUSH of each job ID whose handler started
)

// Exit codes of the child. Killed by SIGKILL, it has none of them.
const (
	childBadEnv     = 2
	childParentGone = 3
	childRunReturn  = 4
)

// childOptions are the child's (and the survivor's) options.
func childOptions() *queue.Options {
	o := fastOptions()
	o.Concurrency, o.Prefetch = 3, 2
	return o
}

// runChild runs a reliable consumer whose handler records that it started
// and then blocks until its context ends, which never happens before the
// process is killed. It exits by itself when its stdin (a pipe held by the
// test process) reaches EOF, so it never outlives the test binary.
func runChild() int {
	env := map[string]string{}
	for _, k := range []string{childAddrEnv, childQueueEnv, childNameEnv, childStartedEnv} {
		if env[k] = os.Getenv(k); env[k] == "" {
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
	h := handler.Func(func(ctx context.Context, m *stream.Message) error {
		if err := rdb.RPush(ctx, env[childStartedEnv], m.ID).Err(); err != nil {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	})
	c, err := queue.NewReliableConsumer(rdb, []string{env[childQueueEnv]}, env[childNameEnv], h, childOptions())
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: NewReliableConsumer: %v\n", err)
		return childRunReturn
	}
	err = c.Run(context.Background())
	fmt.Fprintf(os.Stderr, "child: Run returned %v\n", err)
	return childRunReturn
}

type child struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer // read only after the exit
	stdin  io.WriteCloser
	exited chan struct{}
	err    error
	once   sync.Once
}

func startChild(t *testing.T, addr, q, name, started string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childAddrEnv+"="+addr, childQueueEnv+"="+q,
		childNameEnv+"="+name, childStartedEnv+"="+started)
	c := &child{cmd: cmd, out: new(bytes.Buffer), exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("StdinPipe: %v", err)
	}
	c.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
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

func (c *child) alive(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
		t.Fatalf("child exited by itself: %v\n%s", c.err, c.out)
	default:
	}
}

func (c *child) kill() error {
	c.once.Do(func() {
		_ = c.cmd.Process.Kill()
		<-c.exited
		_ = c.stdin.Close()
	})
	return c.err
}

// A reliable worker process killed with SIGKILL in the middle of its jobs
// loses nothing: once its heartbeat expires, another consumer moves its
// processing list back to the queue and handles every job, once, with the
// crashed delivery counted.
func TestQueueListsSIGKILLRecovered(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	q := names(t, rdb)
	started := q + ":started"
	ctx := context.Background()
	const total = 12
	slots := childOptions().Concurrency
	holds := slots + childOptions().Prefetch
	ids := push(t, rdb, q, total)

	worker := startChild(t, rdb.Options().Addr, q, "doomed", started)
	proc := queue.ProcessingKey(q, "doomed")
	var startedIDs []string
	eventually(t, 20*time.Second, "the child to start its handlers and fill its processing list", func() bool {
		worker.alive(t)
		startedIDs, _ = rdb.LRange(ctx, started, 0, -1).Result()
		return len(startedIDs) >= slots && llen(t, rdb, proc) == int64(holds)
	})
	if len(startedIDs) != slots {
		t.Fatalf("child started %d handlers; want %d", len(startedIDs), slots)
	}
	held, _ := rdb.LRange(ctx, proc, 0, -1).Result()
	crashed := map[string]bool{}
	for _, e := range held {
		var env struct {
			ID string `json:"id"`
			N  int64  `json:"n"`
		}
		if err := jsonUnmarshal(e, &env); err != nil || env.N != 1 {
			t.Fatalf("processing list element %q: %v; want an envelope with n=1", e, err)
		}
		crashed[env.ID] = true
	}
	for _, id := range startedIDs {
		if !crashed[id] {
			t.Fatalf("started job %s is not in the processing list %q", id, held)
		}
	}
	if err := worker.kill(); err == nil {
		t.Fatalf("killed child exited with nil; want killed by a signal\n%s", worker.out)
	}
	if n := llen(t, rdb, proc); n != int64(holds) {
		t.Fatalf("processing list after SIGKILL = %d elements; want %d", n, holds)
	}

	rec := newRecorder(nil)
	survivor := reliable(t, rdb, []string{q}, "survivor", rec, childOptions())
	run := start(t, survivor.Run)
	eventually(t, 20*time.Second, "every job handled", func() bool {
		if err, ok := run.Exited(); ok {
			t.Fatalf("survivor Run returned early: %v", err)
		}
		return survivor.Stats().Acked == total
	})
	if err := run.Stop(); err != nil {
		t.Errorf("survivor Run = %v; want nil", err)
	}
	_, deliv, _ := rec.snapshot()
	for i, id := range ids {
		want := []int64{1}
		if crashed[id] {
			want = []int64{2} // once to the child, once to the survivor
		}
		if !slices.Equal(deliv[id], want) {
			t.Errorf("job %d (%s, crashed=%v): deliveries %v; want %v", i, id, crashed[id], deliv[id], want)
		}
	}
	if st := survivor.Stats(); st.Recovered != uint64(holds) || st.Delivered != total || st.DeadLettered != 0 {
		t.Errorf("survivor Stats = %+v; want Recovered %d, Delivered %d, no dead letters", st, holds, total)
	}
	for _, key := range []string{q, proc, queue.DeadLetterKey(q)} {
		if n := llen(t, rdb, key); n != 0 {
			t.Errorf("LLEN %s = %d; want 0", key, n)
		}
	}
	if members, _ := rdb.SMembers(ctx, queue.ConsumersKey(q)).Result(); slices.Contains(members, "doomed") {
		t.Errorf("registry %v still lists the dead consumer", members)
	}
}

// A reliable consumer rides out a Redis restart in the middle of a run,
// after a graceful stop and after a SIGKILL of the server (with AOF,
// appendfsync always): every job is handled, nothing stays in the queue or
// the processing list, and Run keeps going.
func TestQueueListsRedisRestart(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"stop", "kill"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			srv := redistest.StartServer(t, &redistest.ServerOptions{AOF: true})
			rdb := srv.Client(t)
			q := names(t, rdb)
			ctx := context.Background()
			const total = 300
			ids := push(t, rdb, q, total)
			rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
				time.Sleep(5 * time.Millisecond)
				return nil
			})
			opts := fastOptions()
			opts.HeartbeatTTL = 10 * time.Second // longer than the outage
			var outage atomic.Int64
			opts.OnError = func(error) { outage.Add(1) }
			c := reliable(t, rdb, []string{q}, "w", rec, opts)
			run := start(t, c.Run)
			eventually(t, 20*time.Second, "some jobs handled", func() bool { return rec.distinct() >= total/10 })
			var err error
			if how == "stop" {
				err = srv.Stop()
			} else {
				err = srv.Kill()
			}
			if err != nil {
				t.Fatalf("%s: %v", how, err)
			}
			handled := rec.distinct()
			if handled == total {
				t.Fatalf("every job was handled before the server went down; the test proves nothing")
			}
			eventually(t, 10*time.Second, "the consumer to notice the outage", func() bool { return outage.Load() > 0 })
			if err := srv.Start(); err != nil {
				t.Fatalf("Start: %v", err)
			}
			eventually(t, 60*time.Second, "every job handled and removed", func() bool {
				if err, ok := run.Exited(); ok {
					t.Fatalf("Run returned during the outage: %v", err)
				}
				n1, e1 := rdb.LLen(ctx, q).Result()
				n2, e2 := rdb.LLen(ctx, queue.ProcessingKey(q, "w")).Result()
				return e1 == nil && e2 == nil && n1 == 0 && n2 == 0 && rec.distinct() == total
			})
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			_, deliv, _ := rec.snapshot()
			dup := 0
			for _, id := range ids {
				if len(deliv[id]) == 0 {
					t.Errorf("job %s never handled", id)
				}
				if len(deliv[id]) > 1 {
					dup++
				}
			}
			if n := llen(t, rdb, queue.DeadLetterKey(q)); n != 0 {
				t.Errorf("dead letters = %d; want 0", n)
			}
			t.Logf("%s: %d of %d jobs handled before the outage, %d handled more than once, %d errors reported, stats %+v",
				how, handled, total, dup, outage.Load(), c.Stats())
		})
	}
}

// Connections cut again and again while a reliable consumer works (some
// cuts land between a script's execution and its reply, and go-redis
// retries some commands by itself) lose no job: every job is handled and
// nothing is left in the queue or the processing list while Run goes on.
func TestQueueListsConnectionCuts(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	q := names(t, rdb)
	ctx := context.Background()
	proxy, err := faultproxy.Listen(rdb.Options().Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	proxy.SetLatency(time.Millisecond)
	flaky := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { _ = flaky.Close() })

	const total = 400
	ids := push(t, rdb, q, total)
	rec := newRecorder(func(ctx context.Context, m *stream.Message) error {
		if m.Deliveries == 1 && m.Values["n"] >= "5" { // some retries, to exercise bump
			return errors.New("fail once")
		}
		return nil
	})
	opts := fastOptions()
	// Sweeps (with their resync) every 200ms. One consumer: no other
	// recovers its jobs when its heartbeat expires, so only resync can
	// find the jobs of lost fetch replies.
	opts.HeartbeatTTL = 400 * time.Millisecond
	var logs lockedBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := reliable(t, flaky, []string{q}, "w", rec, opts)
	run := start(t, c.Run)

	cuts := 0
	deadline := time.Now().Add(45 * time.Second)
	for {
		if err, ok := run.Exited(); ok {
			t.Fatalf("Run returned: %v", err)
		}
		n1, _ := rdb.LLen(ctx, q).Result()
		n2, _ := rdb.LLen(ctx, queue.ProcessingKey(q, "w")).Result()
		if n1 == 0 && n2 == 0 && rec.distinct() == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d cuts: queue %d, processing list %d, %d of %d jobs handled; stats %+v", cuts, n1, n2, rec.distinct(), total, c.Stats())
		}
		if cuts < 40 {
			proxy.Cut(0)
			cuts++
		}
		time.Sleep(time.Duration(15+cuts%20) * time.Millisecond)
	}
	if err := run.Stop(); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
	_, deliv, _ := rec.snapshot()
	for _, id := range ids {
		if len(deliv[id]) == 0 {
			t.Errorf("job %s never handled", id)
		}
	}
	if n := llen(t, rdb, queue.DeadLetterKey(q)); n != 0 {
		t.Errorf("dead letters = %d; want 0", n)
	}
	t.Logf("%d cuts; %d adoptions of lost fetches; stats %+v", cuts, strings.Count(logs.String(), "adopted jobs"), c.Stats())
}

// lockedBuffer is an io.Writer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
