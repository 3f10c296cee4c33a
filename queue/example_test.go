package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// Examples that need a Redis server are compiled but not run.

type Email struct {
	To       string `json:"to"`
	Template string `json:"template"`
}

func ExampleProducer_PushPayload() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	p, err := queue.NewProducer(rdb, "jobs:email", nil)
	if err != nil {
		log.Fatal(err)
	}
	// Stored as {"sg":1,"n":0,"id":"...","v":{"payload":"{\"to\":...}",...}}.
	id, err := p.PushPayload(ctx, Email{To: "ada@example.com", Template: "welcome"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("pushed", id)
}

func ExampleNewReliableConsumer() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	h := handler.Typed(stream.JSON, func(ctx context.Context, m *stream.Message, e Email) error {
		// m.ID is stable across retries: use it to make sending idempotent.
		fmt.Println("sending", e.Template, "to", e.To, "attempt", m.Deliveries)
		return nil
	})
	host, _ := os.Hostname() // stable across restarts, unique per worker
	c, err := queue.NewReliableConsumer(rdb, []string{"{jobs}:urgent", "{jobs}:email"}, host,
		handler.Chain(h, handler.Recover()),
		&queue.Options{Concurrency: 8, MaxDeliveries: 5, Logger: slog.Default()})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

func ExampleNewSimpleConsumer() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	// At most once: a job being handled when the process dies is lost.
	c, err := queue.NewSimpleConsumer(rdb, []string{"cache:warm"},
		handler.Func(func(ctx context.Context, m *stream.Message) error {
			fmt.Println("warming", m.Values[stream.PayloadField])
			return nil
		}), nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := c.Run(ctx); err != nil && !errors.Is(err, queue.ErrDrainTimeout) {
		log.Fatal(err)
	}
}

func ExampleParseDeadLetter() {
	// An element of "{jobs:email}:dead", as LRANGE returns it.
	rec := `{"sgdead":1,"queue":"jobs:email","id":"018f0000000011aa22bb33cc44dd","consumer":"host-1",` +
		`"attempts":5,"error":"smtp: 550 mailbox unavailable","at":1700000000000,` +
		`"job":"{\"sg\":1,\"n\":5,\"id\":\"018f0000000011aa22bb33cc44dd\",\"v\":{\"to\":\"ada@example.com\"}}"}`
	d, err := queue.ParseDeadLetter(rec)
	if err != nil {
		log.Fatal(err)
	}
	// To run the job again, as a new job: a Producer of d.Stream pushes
	// d.Values.
	fmt.Println(d.Stream, d.Consumer, d.Deliveries, d.Error)
	fmt.Println(d.OriginalID, d.Values["to"])
	// Output:
	// jobs:email host-1 5 smtp: 550 mailbox unavailable
	// 018f0000000011aa22bb33cc44dd ada@example.com
}
