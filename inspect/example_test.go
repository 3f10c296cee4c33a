package inspect_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/inspect"
)

// These examples need a Redis server, so they are compiled but not run.

// A collector reads every target in one call per interval: one or two
// round trips however many there are.
func ExampleInspector_Streams() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	in, err := inspect.New(rdb, nil)
	if err != nil {
		log.Fatal(err)
	}
	targets := []inspect.StreamTarget{
		{Stream: "jobs:email", Groups: []string{"mailers"}},
		{Stream: "jobs:sms", Groups: []string{"senders"}},
	}
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		states, err := in.Streams(ctx, targets)
		var be *inspect.BatchError
		if err != nil && !errors.As(err, &be) {
			log.Fatal(err) // an empty key or group name
		}
		for i, st := range states {
			if be != nil && be.Errs[i] != nil {
				log.Print(be.Errs[i]) // this target's (all of them when Redis is down)
				continue
			}
			for _, g := range st.Groups {
				fmt.Printf("%s/%s lag=%d estimated=%v pending=%d oldest_age=%v dead=%d\n",
					st.Stream, g.Name, g.Lag, g.LagEstimated, g.Pending, g.OldestPendingAge, st.DeadLetters)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func ExampleInspector_Queue() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()

	in, err := inspect.New(rdb, nil)
	if err != nil {
		log.Fatal(err)
	}
	st, err := in.Queue(ctx, inspect.QueueTarget{Queue: "jobs:resize"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("waiting=%d processing=%d dead=%d\n", st.Length, st.Processing, st.DeadLetters)
	for _, c := range st.Consumers {
		fmt.Printf("  %s: %d jobs, heartbeat live=%v\n", c.Name, c.Processing, c.Live)
	}
}
