// Package argerr holds the one error value that every public package of
// streamgroup wraps when it is given bad input: a nil client, an empty name,
// an invalid option. The packages re-export it (stream.ErrInvalidOptions,
// group.ErrInvalidOptions, queue.ErrInvalidOptions), so errors.Is matches
// an error from any of them against any of those names.
package argerr

import (
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrInvalid is the invalid-input sentinel. Errors wrap it with %w and then
// say what is wrong: "streamgroup: invalid argument: nil redis client".
var ErrInvalid = errors.New("streamgroup: invalid argument")

// Client returns an error wrapping [ErrInvalid] when rdb is nil, and nil
// otherwise.
func Client(rdb redis.UniversalClient) error {
	if rdb == nil {
		return fmt.Errorf("%w: nil redis client", ErrInvalid)
	}
	return nil
}

// Target checks the two arguments every producer and reader constructor
// takes: it returns an error wrapping [ErrInvalid] when rdb is nil or name,
// the key of a what ("stream", "queue"), is empty, and nil otherwise.
func Target(rdb redis.UniversalClient, what, name string) error {
	if err := Client(rdb); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("%w: empty %s name", ErrInvalid, what)
	}
	return nil
}
