package stream_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/stream"
)

// These examples need a Redis server, so they are compiled but not run.

func ExampleProducer_Add() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	// Keep about 10,000 entries, but never drop work a group still needs.
	p, err := stream.NewProducer(rdb, "jobs:email", &stream.ProducerOptions{MaxLen: 10_000})
	if err != nil {
		log.Fatal(err)
	}
	id, err := p.Add(ctx, map[string]any{"to": "ada@example.com", "template": "welcome"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added", id)
}

func ExampleProducer_AddPayload() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	type Email struct {
		To       string `json:"to"`
		Template string `json:"template"`
	}
	p, err := stream.NewProducer(rdb, "jobs:email", nil)
	if err != nil {
		log.Fatal(err)
	}
	// Stored as payload={"to":...} and content-type=application/json;
	// a handler reads it back with stream.Decode.
	id, err := p.AddPayload(ctx, Email{To: "ada@example.com", Template: "welcome"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added", id)
}

func ExampleProducer_AddBatch() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	p, err := stream.NewProducer(rdb, "jobs:email", nil)
	if err != nil {
		log.Fatal(err)
	}
	entries := []stream.Entry{
		{Values: map[string]any{"to": "ada@example.com"}},
		{Values: map[string]any{"to": "grace@example.com"}},
	}
	// One round trip for the whole batch.
	ids, err := p.AddBatch(ctx, entries)
	var be *stream.BatchError
	if errors.As(err, &be) {
		for i, err := range be.Errs {
			if err != nil {
				log.Printf("entry %d not added: %v", i, err)
			}
		}
	} else if err != nil {
		log.Fatal(err)
	}
	fmt.Println("added", ids)
}

func ExampleProducer_Trim() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	p, err := stream.NewProducer(rdb, "jobs:email", &stream.ProducerOptions{MaxLen: 1000})
	if err != nil {
		log.Fatal(err)
	}
	removed, err := p.Trim(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("removed", removed)
}

func ExampleReader_Range() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	r, err := stream.NewReader(rdb, "jobs:email", &stream.ReaderOptions{PageSize: 500})
	if err != nil {
		log.Fatal(err)
	}
	// Replay everything from the start; "+" is the newest entry.
	for msg, err := range r.Range(ctx, "-", "+") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(msg.ID, msg.Time(), msg.Values)
	}
}

func ExampleReader_RevRange() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	r, err := stream.NewReader(rdb, "jobs:email", nil)
	if err != nil {
		log.Fatal(err)
	}
	// The ten newest entries: break stops reading further pages.
	n := 0
	for msg, err := range r.RevRange(ctx, "+", "-") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(msg.ID, msg.Values)
		if n++; n == 10 {
			break
		}
	}
}

func ExampleDecode() {
	type Email struct {
		To string `json:"to"`
	}
	// A plain entry, as written by `XADD jobs:email * to ada@example.com`.
	msg := &stream.Message{ID: "1700000000000-0", Values: map[string]string{"to": "ada@example.com"}}
	var e Email
	if err := stream.Decode(msg, nil, &e); err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.To)
	// Output: ada@example.com
}

func ExampleParseDeadLetter() {
	// An entry of "{jobs:email}:dead", as a Reader of that stream yields it.
	m := &stream.Message{ID: "1700000000500-0", Stream: "{jobs:email}:dead", Values: map[string]string{
		"to":                       "ada@example.com",
		stream.DeadIDField:         "1700000000000-0",
		stream.DeadStreamField:     "jobs:email",
		stream.DeadGroupField:      "mailers",
		stream.DeadConsumerField:   "host-1",
		stream.DeadDeliveriesField: "5",
		stream.DeadErrorField:      "smtp: 550 mailbox unavailable",
		stream.DeadTimeField:       "1700000000400",
	}}
	d, err := stream.ParseDeadLetter(m)
	if err != nil {
		log.Fatal(err)
	}
	// To run it again, a Producer of d.Stream adds d.Values.
	fmt.Println(d.Stream, d.OriginalID, d.Group, d.Consumer, d.Deliveries, d.Error)
	fmt.Println(d.Values)
	// Output:
	// jobs:email 1700000000000-0 mailers host-1 5 smtp: 550 mailbox unavailable
	// map[to:ada@example.com]
}
