package group_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/group"
)

// EnsureGroup is safe to call on every deployment: it creates the group (and
// the stream) the first time and leaves an existing group where it is.
func ExampleManager_EnsureGroup() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	m, err := group.NewManager(rdb)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	created, err := m.EnsureGroup(ctx, "orders", "billing", group.StartAll)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", created)
}

// SweepConsumers removes consumers left behind by old deployments (pods
// renamed or scaled down) once they have been idle for a day, keeping any
// that still own pending entries.
func ExampleManager_SweepConsumers() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	m, err := group.NewManager(rdb)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	removed, err := m.SweepConsumers(ctx, "orders", "billing", 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	for _, name := range removed {
		fmt.Println("removed consumer", name)
	}
}
