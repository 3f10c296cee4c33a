package script_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/internal/script"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func TestCommands(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
		wantErr   string
	}{
		{"none", `return 1`, nil, ""},
		{"one", `return redis.call('XACK', KEYS[1], ARGV[1])`, []string{"XACK"}, ""},
		{"lower case, double quotes, pcall", `redis.pcall("xack", KEYS[1]) redis.call( "get" , KEYS[1])`, []string{"GET", "XACK"}, ""},
		{"each once, sorted", `redis.call('SET', 'a', 1) redis.call('DEL', 'a') redis.call('SET', 'b', 2)`, []string{"DEL", "SET"}, ""},
		{"subcommands", `redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1]) redis.call('xgroup', "delconsumer", KEYS[1])`, []string{"XGROUP DELCONSUMER", "XINFO CONSUMERS"}, ""},
		{"comments", "-- redis.call('DEL', KEYS[1])\nlocal x = redis.call('GET', KEYS[1]) -- redis.call('SET')\n--[[ redis.call('XADD') ]] return x", []string{"GET"}, ""},
		{"dashes in a string", `local s = '--' redis.call('GET', s) local t = "it's -- fine" redis.call('DEL', t)`, []string{"DEL", "GET"}, ""},
		{"computed name", `local c = 'LPUSH' redis.call(c, KEYS[1], 1)`, nil, "not a string literal"},
		{"computed subcommand", `redis.call('XGROUP', ARGV[1], KEYS[1])`, nil, "subcommand of XGROUP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := script.Commands(tt.src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Commands = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("Commands = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// New refuses a declared list that does not match the source.
func TestNewChecksCommands(t *testing.T) {
	src := `redis.call('XPENDING', KEYS[1], ARGV[1]) return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])`
	script.New("ok", []string{"XPENDING", "xack"}, src) // any order, any case
	for _, tt := range []struct {
		name     string
		commands []string
		src      string
	}{
		{"missing", []string{"XACK"}, src},
		{"extra", []string{"XPENDING", "XACK", "XCLAIM"}, src},
		{"twice", []string{"XPENDING", "XACK", "XACK"}, src},
		{"subcommand left out", []string{"XGROUP"}, `redis.call('XGROUP', 'DESTROY', KEYS[1], ARGV[1])`},
		{"computed name", []string{"LPUSH", "RPUSH"}, `local c = 'LPUSH' redis.call(c, KEYS[1], 1)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if msg := fmt.Sprint(r); r == nil || !strings.Contains(msg, "script bad") {
					t.Errorf("New(%v) panicked with %v; want a panic naming the script", tt.commands, r)
				}
			}()
			script.New("bad", tt.commands, tt.src)
		})
	}
}

// Every Lua script in the module goes through script.New, which checks its
// declared commands when the script is built (at package initialisation, or
// for the queue's scripts in queue's own test).
func TestEveryScriptIsChecked(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	var raw []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "bench" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir // bench is a module of its own
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Dir(path) == filepath.Dir(file) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "redis.NewScript(") {
			raw = append(raw, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 0 {
		t.Errorf("redis.NewScript used directly in %v; use script.New, which names the script's commands in its errors", raw)
	}
}

// aclClient returns a client logged in as a new ACL user allowed only cmds,
// on every key; the user is deleted when the test ends.
func aclClient(t *testing.T, cmds ...string) *redis.Client {
	t.Helper()
	admin := redistest.Client(t)
	ctx := context.Background()
	user := strings.NewReplacer("/", "-", " ", "-").Replace("sg-" + t.Name())
	args := []any{"ACL", "SETUSER", user, "reset", "on", ">pw", "~*", "resetchannels", "-@all"}
	for _, c := range cmds {
		args = append(args, "+"+c)
	}
	if err := admin.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { admin.ACLDelUser(context.Background(), user) })
	opts := *admin.Options()
	opts.Username, opts.Password = user, "pw"
	rdb := redis.NewClient(&opts)
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// A run's error names the script and its commands, and stays the server's
// reply for the classifiers.
func TestRunWrapsErrors(t *testing.T) {
	admin := redistest.Client(t)
	key, _ := redistest.Names(t)
	ctx := context.Background()
	t.Cleanup(func() { admin.Del(context.Background(), key) })
	s := script.New("ack", []string{"GET", "XACK"}, `redis.call('GET', KEYS[1]) return redis.call('XACK', KEYS[1], 'g', '1-1')`)
	const label = "script ack (runs GET, XACK): "

	// A command the user may not run, inside the script.
	noXack := aclClient(t, "evalsha", "eval", "get")
	err := s.Run(ctx, noXack, []string{key}).Err()
	if err == nil || !strings.HasPrefix(err.Error(), label) {
		t.Errorf("Run without +xack = %v; want it to start with %q", err, label)
	}
	if _, ok := errors.AsType[redis.Error](err); !ok || !rediserr.IsReply(err) || rediserr.IsTransient(err) {
		t.Errorf("Run without +xack = %v; want a Redis reply, not transient", err)
	}

	// The script itself refused: NOPERM, still recognised.
	noEval := aclClient(t, "get")
	if err := s.Run(ctx, noEval, []string{key}).Err(); !rediserr.IsNoPerm(err) || !strings.HasPrefix(err.Error(), label) {
		t.Errorf("Run without +evalsha = %v; want NOPERM, named", err)
	}

	// An error reply from a command: classified as before.
	if err := admin.Set(ctx, key, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	cmd := s.Run(ctx, admin, []string{key})
	if _, err := cmd.Int64(); !rediserr.IsWrongType(err) || !strings.HasPrefix(err.Error(), label) {
		t.Errorf("Run on a string key = %v; want WRONGTYPE, named", err)
	}

	// In a pipeline, Eval's error is wrapped by Wrap.
	pipe := admin.Pipeline()
	ev := s.Eval(ctx, pipe, []string{key})
	_, _ = pipe.Exec(ctx)
	if err := s.Wrap(ev.Err()); !rediserr.IsWrongType(err) || !strings.HasPrefix(err.Error(), label) {
		t.Errorf("Wrap(Eval in a pipeline) = %v; want WRONGTYPE, named", err)
	}

	// A nil reply is no failure: redis.Nil itself.
	nilScript := script.New("nil", nil, `return false`)
	if err := nilScript.Run(ctx, admin, nil).Err(); err != redis.Nil { //nolint:errorlint // exactly redis.Nil
		t.Errorf("Run of a script returning false = %v; want redis.Nil", err)
	}
	if err := s.Wrap(nil); err != nil {
		t.Errorf("Wrap(nil) = %v", err)
	}
}
