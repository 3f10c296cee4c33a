package argerr_test

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/argerr"
)

func TestChecks(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:0"}) // never dialled
	defer rdb.Close()
	tests := []struct {
		name string
		err  error
		want string // "" means no error
	}{
		{"nil client", argerr.Client(nil), "streamgroup: invalid argument: nil redis client"},
		{"client", argerr.Client(rdb), ""},
		{"target nil client", argerr.Target(nil, "queue", ""), "streamgroup: invalid argument: nil redis client"},
		{"target empty name", argerr.Target(rdb, "queue", ""), "streamgroup: invalid argument: empty queue name"},
		{"target", argerr.Target(rdb, "queue", "jobs"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				if tt.err != nil {
					t.Fatalf("err = %v; want nil", tt.err)
				}
				return
			}
			if tt.err == nil || tt.err.Error() != tt.want || !errors.Is(tt.err, argerr.ErrInvalid) {
				t.Fatalf("err = %v; want %q wrapping ErrInvalid", tt.err, tt.want)
			}
		})
	}
}
