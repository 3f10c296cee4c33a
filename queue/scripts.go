package queue

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The scripts, one per file so each can be read (and run with redis-cli
// --eval) on its own. Every script touches only keys derived from one queue
// key (or, for fetch and pop, from all the consumer's queues), so on Redis
// Cluster they work when all of a consumer's queues share a hash tag.
var (
	//go:embed fetch.lua
	fetchSource string
	//go:embed pop.lua
	popSource string
	//go:embed recover.lua
	recoverSource string
	//go:embed move.lua
	moveSource string
	//go:embed bump.lua
	bumpSource string
	//go:embed leave.lua
	leaveSource string
)

// scripts holds the compiled scripts; each consumer has its own copy, so
// no package-level state is shared (a *redis.Script caches nothing that
// changes).
type scripts struct {
	fetch, pop, recover, move, bump, leave *redis.Script
}

func newScripts() scripts {
	return scripts{
		fetch:   redis.NewScript(fetchSource),
		pop:     redis.NewScript(popSource),
		recover: redis.NewScript(recoverSource),
		move:    redis.NewScript(moveSource),
		bump:    redis.NewScript(bumpSource),
		leave:   redis.NewScript(leaveSource),
	}
}
