package queue

import (
	_ "embed"

	"github.com/streamgroup/streamgroup/internal/script"
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
// no package-level state is shared (a *script.Script caches nothing that
// changes). Each declares the commands it runs (script.New checks them
// against the source), which its errors name.
type scripts struct {
	fetch, pop, recover, move, bump, leave *script.Script
}

func newScripts() scripts {
	return scripts{
		fetch:   script.New("fetch", []string{"TYPE", "LMOVE", "LSET", "SADD"}, fetchSource),
		pop:     script.New("pop", []string{"TYPE", "RPOP"}, popSource),
		recover: script.New("recover", []string{"EXISTS", "LMOVE", "SREM"}, recoverSource),
		move:    script.New("move", []string{"LPOS", "LPUSH", "RPUSH", "LREM"}, moveSource),
		bump:    script.New("bump", []string{"LPOS", "LSET"}, bumpSource),
		leave:   script.New("leave", []string{"LLEN", "DEL", "SREM"}, leaveSource),
	}
}
