package streamsrc

import (
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/engine"
)

// A LeaseInterval that Normalize accepts must not make Run panic: the
// keep-alive ticks every LeaseInterval/2, and time.NewTicker panics on a
// zero interval, so Normalize refuses intervals below 2ms.
func TestTinyLeaseIntervalRefused(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	cfg := Config{Client: rdb, Stream: "s", Group: "g", Consumer: "c", LeaseInterval: time.Nanosecond}
	if _, err := cfg.Normalize(); !errors.Is(err, engine.ErrInvalidOptions) {
		t.Fatalf("Normalize = %v; want ErrInvalidOptions", err)
	}
}
