package listsrc

import (
	_ "embed"

	"github.com/streamgroup/streamgroup/internal/script"
)

// The scripts, one per file so each can be read (and run with redis-cli
// --eval) on its own, each declaring the commands it runs (script.New
// checks them). Each touches only keys derived from one queue key (fetch
// and pop: from all the consumer's queues), so on Redis Cluster they work
// when all of a consumer's queues share a hash tag.
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

	fetchScript   = script.New("fetch", []string{"TYPE", "LMOVE", "LSET", "SADD"}, fetchSource)
	popScript     = script.New("pop", []string{"TYPE", "RPOP"}, popSource)
	recoverScript = script.New("recover", []string{"EXISTS", "LMOVE", "SREM"}, recoverSource)
	moveScript    = script.New("move", []string{"LPOS", "LPUSH", "RPUSH", "LREM"}, moveSource)
	bumpScript    = script.New("bump", []string{"LPOS", "LSET"}, bumpSource)
	leaveScript   = script.New("leave", []string{"LLEN", "DEL", "SREM"}, leaveSource)
)
