package claim_test

import (
	"context"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/stream"
)

// A dedicated reclaimer process that takes over entries left idle for two
// minutes by crashed workers. (Compile-only: it needs a Redis server.)
func ExampleReclaimer() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	h := handler.Func(func(ctx context.Context, m *stream.Message) error { return nil })
	r, err := claim.NewReclaimer(rdb, "jobs:email", "mailers", "reclaimer-1", h, &claim.Options{
		MinIdle:       2 * time.Minute,
		MaxDeliveries: 5,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
	log.Printf("reclaimed %d entries", r.Stats().Reclaimed)
}
