package integration_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/queue"
	"github.com/streamgroup/streamgroup/stream"
)

// TestConstructorsRejectBadInput: every public constructor, given a nil
// client, an empty name or an invalid option, returns an error (never
// panics) that names the problem and that errors.Is matches against the
// invalid-input sentinel of every package, whichever package returned it.
func TestConstructorsRejectBadInput(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { rdb.Close() })
	h := handler.Func(func(context.Context, *stream.Message) error { return nil })
	tests := []struct {
		name string
		call func(rdb redis.UniversalClient, key string) error
		// want is in the error text when the key is empty; "" when the
		// constructor takes no key.
		want string
	}{
		{"group.NewManager", func(rdb redis.UniversalClient, _ string) error {
			_, err := group.NewManager(rdb)
			return err
		}, ""},
		{"stream.NewProducer", func(rdb redis.UniversalClient, key string) error {
			_, err := stream.NewProducer(rdb, key, nil)
			return err
		}, "empty stream name"},
		{"stream.NewReader", func(rdb redis.UniversalClient, key string) error {
			_, err := stream.NewReader(rdb, key, nil)
			return err
		}, "empty stream name"},
		{"queue.NewProducer", func(rdb redis.UniversalClient, key string) error {
			_, err := queue.NewProducer(rdb, key, nil)
			return err
		}, "empty queue name"},
		{"group.NewConsumer", func(rdb redis.UniversalClient, key string) error {
			_, err := group.NewConsumer(rdb, key, "g", "c", h, nil)
			return err
		}, "empty stream name"},
		{"claim.NewReclaimer", func(rdb redis.UniversalClient, key string) error {
			_, err := claim.NewReclaimer(rdb, key, "g", "c", h, nil)
			return err
		}, "empty stream name"},
		{"queue.NewReliableConsumer", func(rdb redis.UniversalClient, key string) error {
			_, err := queue.NewReliableConsumer(rdb, []string{key}, "c", h, nil)
			return err
		}, "empty queue name"},
		{"queue.NewSimpleConsumer", func(rdb redis.UniversalClient, key string) error {
			_, err := queue.NewSimpleConsumer(rdb, []string{key}, h, nil)
			return err
		}, "empty queue name"},
	}
	sentinels := map[string]error{
		"stream.ErrInvalidOptions": stream.ErrInvalidOptions,
		"group.ErrInvalidOptions":  group.ErrInvalidOptions,
		"queue.ErrInvalidOptions":  queue.ErrInvalidOptions,
	}
	check := func(t *testing.T, what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s = %v; want an error mentioning %q", what, err, want)
		}
		for name, s := range sentinels {
			if !errors.Is(err, s) {
				t.Errorf("%s = %v; want it to match %s", what, err, name)
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call := func(rdb redis.UniversalClient, key string) (err error) {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("%s(%v, %q) panicked: %v; want an error", tt.name, rdb, key, v)
					}
				}()
				return tt.call(rdb, key)
			}
			check(t, tt.name+"(nil client)", call(nil, "k"), "nil redis client")
			if tt.want != "" {
				check(t, tt.name+`(empty name)`, call(rdb, ""), tt.want)
			}
		})
	}
	// Invalid options of the constructors whose options are checked here,
	// in this package, rather than by the consumers.
	_, err := stream.NewProducer(rdb, "k", &stream.ProducerOptions{MaxLen: -1})
	check(t, "stream.NewProducer(MaxLen -1)", err, "MaxLen")
	_, err = stream.NewReader(rdb, "k", &stream.ReaderOptions{PageSize: -1})
	check(t, "stream.NewReader(PageSize -1)", err, "PageSize")
	m, err := group.NewManager(rdb)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	check(t, "Manager.EnsureGroup(empty group)", func() error {
		_, err := m.EnsureGroup(t.Context(), "k", "", group.StartAll)
		return err
	}(), "empty group name")
}
