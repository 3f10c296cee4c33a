// Command quickstart publishes a few email jobs to a Redis Stream, runs a
// consumer group of three workers over them, shows one job that always
// fails reaching the dead-letter stream, prints what happens and exits.
//
//	go run ./examples/quickstart -addr localhost:6379
//
// It uses only the public API, so it can be copied into a program as is. It
// connects to the Redis at -addr (default: REDIS_ADDR, or else
// localhost:6379). To run it without a Redis of your own,
// examples/run-quickstart.sh starts a throwaway redis-server from PATH on a
// free port, runs this example against it and stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

type Email struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

func main() {
	log.SetFlags(0)
	defaultAddr := os.Getenv("REDIS_ADDR")
	if defaultAddr == "" {
		defaultAddr = "localhost:6379"
	}
	addr := flag.String("addr", defaultAddr, "Redis address (default: REDIS_ADDR, or else localhost:6379)")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *addr); err != nil {
		log.Fatal("quickstart: ", err)
	}
}

func run(ctx context.Context, w io.Writer, addr string) error {
	out := &syncWriter{w: w} // handlers print concurrently
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("no Redis answers at %s: %w\n"+
			"Start one (docker run -p 6379:6379 redis:7, apt-get install redis-server, brew install redis),\n"+
			"pass -addr or set REDIS_ADDR, or run examples/run-quickstart.sh, which starts a throwaway redis-server", addr, err)
	}
	fmt.Fprintln(out, "using Redis at", addr)

	key := fmt.Sprintf("quickstart:{email}:%d", time.Now().UnixNano())
	dead := key + ":dead"
	defer rdb.Del(context.WithoutCancel(ctx), key, dead)

	// 1. Publish: five jobs in one pipelined round trip, one of them poison.
	p, err := stream.NewProducer(rdb, key, nil)
	if err != nil {
		return err
	}
	var batch []stream.Entry
	for _, to := range []string{"ada@example.com", "grace@example.com", "bounce@invalid", "alan@example.com", "edsger@example.com"} {
		values, err := stream.Encode(stream.JSON, Email{To: to, Subject: "Welcome"})
		if err != nil {
			return err
		}
		batch = append(batch, stream.Entry{Values: values})
	}
	ids, err := p.AddBatch(ctx, batch)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "published %d jobs to %s\n", len(ids), key)

	// 2. Handle: a typed handler; the invalid address always fails.
	var sent atomic.Int64
	h := handler.Typed(stream.JSON, func(ctx context.Context, m *stream.Message, e Email) error {
		if e.To == "bounce@invalid" {
			fmt.Fprintf(out, "  %s: sending to %s failed (delivery %d)\n", m.ID, e.To, m.Deliveries)
			return errors.New("smtp: 550 no such mailbox")
		}
		fmt.Fprintf(out, "  %s: sent %q to %s\n", m.ID, e.Subject, e.To)
		sent.Add(1)
		return nil
	})

	// 3. Run three workers of one group until the work is done.
	opts := &group.Options{
		Concurrency:   1, // small, so that the three workers share the five jobs
		MaxDeliveries: 3,
		RetryBackoff:  100 * time.Millisecond, // short, for the demo
		Block:         200 * time.Millisecond,
	}
	runCtx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	var consumers []*group.Consumer
	for i := 1; i <= 3; i++ {
		c, err := group.NewConsumer(rdb, key, "mailers", "worker-"+strconv.Itoa(i), h, opts)
		if err != nil {
			stop()
			return err
		}
		consumers = append(consumers, c)
		g.Go(func() error { return c.Run(gctx) })
	}

	deadline := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case <-deadline:
			stop()
			_ = g.Wait()
			return errors.New("jobs not done within 30s")
		case <-time.After(50 * time.Millisecond):
			n, _ := rdb.XLen(ctx, dead).Result()
			done = sent.Load() == 4 && n == 1
		}
	}
	stop() // graceful: in-flight work finishes, acks are flushed
	if err := g.Wait(); err != nil {
		return err
	}

	// 4. Report.
	for i, c := range consumers {
		s := c.Stats()
		fmt.Fprintf(out, "worker-%d: delivered=%d acked=%d failed=%d retried=%d dead-lettered=%d\n",
			i+1, s.Delivered, s.Acked, s.Failed, s.Retried, s.DeadLettered)
	}
	deadReader, err := stream.NewReader(rdb, dead, nil)
	if err != nil {
		return err
	}
	for m, err := range deadReader.Range(ctx, "-", "+") {
		if err != nil {
			return err
		}
		d, err := stream.ParseDeadLetter(m)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "dead letter %s: job %s after %d deliveries: %s\n", m.ID, d.OriginalID, d.Deliveries, d.Error)
	}
	pending, err := rdb.XPending(ctx, key, "mailers").Result()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "pending entries left: %d\n", pending.Count)
	return nil
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
