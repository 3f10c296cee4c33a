package group_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

// A worker process: one consumer named after the host, stopped gracefully
// on SIGTERM. (Compile-only: it needs a Redis server.)
func ExampleConsumer_Run() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close() // the consumer never closes it

	host, _ := os.Hostname() // stable across restarts: it owns its pending entries
	h := handler.Func(func(ctx context.Context, m *stream.Message) error {
		fmt.Println("send email to", m.Values["to"])
		return nil
	})
	c, err := group.NewConsumer(rdb, "jobs:email", "mailers", host, h, &group.Options{
		Concurrency: 16,
		Logger:      slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil { // nil after a graceful drain
		log.Fatal(err)
	}
}

// Several consumers (for several streams) under one errgroup: the first
// permanent error stops them all, each draining its in-flight work.
func ExampleConsumer_Run_errgroup() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	g, ctx := errgroup.WithContext(context.Background())
	for _, key := range []string{"jobs:email", "jobs:thumbnails"} {
		c, err := group.NewConsumer(rdb, key, "workers", "host-1", handler.Func(
			func(ctx context.Context, m *stream.Message) error { return nil }), nil)
		if err != nil {
			log.Fatal(err)
		}
		g.Go(func() error { return c.Run(ctx) })
	}
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}
}
