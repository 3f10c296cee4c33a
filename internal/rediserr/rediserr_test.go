package rediserr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// The classifiers are checked against the replies of a real server.
func TestClassify(t *testing.T) {
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	ctx := context.Background()
	if err := rdb.XGroupCreateMkStream(ctx, key, grp, "0").Err(); err != nil {
		t.Fatal(err)
	}
	str := key + ":string"
	if err := rdb.Set(ctx, str, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	refused := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer refused.Close()
	closed := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
	closed.Close()

	busy := rdb.XGroupCreate(ctx, key, grp, "0").Err()
	noGroup := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "nope", Consumer: "c", Streams: []string{key, ">"}, Block: -1}).Err()
	wrongType := rdb.XAdd(ctx, &redis.XAddArgs{Stream: str, Values: []any{"a", 1}}).Err()
	syntax := rdb.Do(ctx, "XADD", key).Err()
	dial := refused.Ping(ctx).Err()
	closedErr := closed.Ping(ctx).Err()

	tests := []struct {
		name                                   string
		err                                    error
		busyGroup, noGroupW, wrong, transientW bool
	}{
		{"nil", nil, false, false, false, false},
		{"BUSYGROUP", busy, true, false, false, false},
		{"NOGROUP", noGroup, false, true, false, false},
		{"WRONGTYPE", wrongType, false, false, true, false},
		{"wrapped WRONGTYPE", fmt.Errorf("add: %w", wrongType), false, false, true, false},
		{"syntax error", syntax, false, false, false, false},
		{"connection refused", dial, false, false, false, true},
		{"closed client", closedErr, false, false, false, false},
		{"EOF", io.EOF, false, false, false, true},
		{"deadline", context.DeadlineExceeded, false, false, false, true},
		{"canceled", context.Canceled, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rediserr.IsBusyGroup(tt.err); got != tt.busyGroup {
				t.Errorf("IsBusyGroup(%v) = %v; want %v", tt.err, got, tt.busyGroup)
			}
			if got := rediserr.IsNoGroup(tt.err); got != tt.noGroupW {
				t.Errorf("IsNoGroup(%v) = %v; want %v", tt.err, got, tt.noGroupW)
			}
			if got := rediserr.IsWrongType(tt.err); got != tt.wrong {
				t.Errorf("IsWrongType(%v) = %v; want %v", tt.err, got, tt.wrong)
			}
			if got := rediserr.IsTransient(tt.err); got != tt.transientW {
				t.Errorf("IsTransient(%v) = %v; want %v", tt.err, got, tt.transientW)
			}
		})
	}
	if !errors.Is(closedErr, redis.ErrClosed) {
		t.Errorf("closed client error = %v; want redis.ErrClosed", closedErr)
	}
}

// IsReply separates the server's error replies from failures after which a
// command may or may not have run.
func TestIsReply(t *testing.T) {
	rdb := redistest.Client(t)
	key, _ := redistest.Names(t)
	ctx := context.Background()
	syntax := rdb.Do(ctx, "XADD", key).Err()
	noGroup := rdb.XAck(ctx, key, "nope", "1-1").Err()
	nilReply := rdb.Get(ctx, key+":missing").Err()
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"syntax error", syntax, true},
		{"wrapped reply", fmt.Errorf("x: %w", syntax), true},
		{"XACK without group", noGroup, noGroup != nil},
		{"redis.Nil", nilReply, false},
		{"canceled", context.Canceled, false},
		{"wrapped canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"EOF", io.EOF, false},
	} {
		if got := rediserr.IsReply(tt.err); got != tt.want {
			t.Errorf("IsReply(%s: %v) = %v; want %v", tt.name, tt.err, got, tt.want)
		}
	}
	if syntax == nil || !errors.Is(nilReply, redis.Nil) {
		t.Fatalf("setup: syntax = %v, nil reply = %v", syntax, nilReply)
	}
}

// TxErr replaces a transaction's EXECABORT with the refused command's own
// error, named, and keeps it classifiable.
func TestTxErr(t *testing.T) {
	rdb := redistest.Client(t)
	key, _ := redistest.Names(t)
	ctx := context.Background()
	str := key + ":string"
	if err := rdb.Set(ctx, str, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), str) })

	// Refused when queued (wrong arity): EXEC replies EXECABORT.
	cmds, execErr := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Exists(ctx, key)
		p.Do(ctx, "XGROUP", "DESTROY", key)
		return nil
	})
	if !redis.IsExecAbortError(execErr) {
		t.Fatalf("setup: EXEC = %v; want EXECABORT", execErr)
	}
	err := rediserr.TxErr(execErr, cmds)
	if !strings.HasPrefix(err.Error(), "XGROUP DESTROY: ") || !strings.Contains(err.Error(), "wrong number of arguments") {
		t.Errorf("TxErr(EXECABORT) = %v; want XGROUP DESTROY's own arity error, named", err)
	}
	if !errors.Is(err, cmds[1].Err()) || !rediserr.IsReply(err) || rediserr.IsTransient(err) {
		t.Errorf("TxErr(EXECABORT) = %v: want it to wrap the command's reply (a reply, not transient)", err)
	}

	// Failed inside EXEC: the command is named, the reply still classified.
	cmds, execErr = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Exists(ctx, str)
		p.XAdd(ctx, &redis.XAddArgs{Stream: str, Values: []any{"a", 1}})
		return nil
	})
	err = rediserr.TxErr(execErr, cmds)
	if !rediserr.IsWrongType(err) || !strings.HasPrefix(err.Error(), "XADD: WRONGTYPE") {
		t.Errorf("TxErr(WRONGTYPE in EXEC) = %v; want XADD: WRONGTYPE ...", err)
	}

	if err := rediserr.TxErr(nil, cmds); err != nil {
		t.Errorf("TxErr(nil) = %v; want nil", err)
	}
	if err := rediserr.TxErr(io.EOF, cmds); err != io.EOF {
		t.Errorf("TxErr(EOF) = %v; want EOF unchanged", err)
	}
}

// Waitable: what IsTransient and IsOOM accept (their own tests cover the
// replies), and a command cut short by a stop; not an error reply about the
// command or the data, nor a client its owner closed.
func TestWaitable(t *testing.T) {
	rdb := redistest.Client(t)
	key, _ := redistest.Names(t)
	ctx := context.Background()
	if err := rdb.Set(ctx, key, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	wrongType := rdb.LPush(ctx, key, "y").Err()
	if !rediserr.IsWrongType(wrongType) {
		t.Fatalf("LPUSH on a string = %v; want WRONGTYPE", wrongType)
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{context.Canceled, true},
		{fmt.Errorf("XACK: %w", context.Canceled), true},
		{io.EOF, true},
		{redis.ErrClosed, false},
		{wrongType, false},
	} {
		if got := rediserr.Waitable(tc.err); got != tc.want {
			t.Errorf("Waitable(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}
