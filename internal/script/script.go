// Package script wraps go-redis's Lua scripts with the list of Redis
// commands each script runs, so that an error says which script failed and
// which commands it needs.
//
// A command a script may not run (an ACL user lacking it) fails inside Lua,
// and Redis's reply names neither the command nor the script's purpose:
// "ERR The user executing the script can't run this command or subcommand
// script: <sha>". A [Script] wraps every error of a run as
// "script <name> (runs XPENDING, XCLAIM, XACK): <reply>", so the user knows
// what to grant. The list is declared next to the source and checked
// against the source's redis.call and redis.pcall at construction, so it
// cannot go stale.
package script

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/rediserr"
)

// Script is a Lua script with a name and the commands it runs. It is
// immutable and safe for concurrent use. The zero value is not usable: call
// [New].
type Script struct {
	name     string
	commands []string // as declared, upper case
	label    string   // "script name (runs A, B)"
	s        *redis.Script
}

// New returns the script src, called name in errors, which runs exactly
// commands: "XACK", or for a container command with its subcommand,
// "XGROUP DELCONSUMER" (any case). It panics, a programmer error, when
// commands does not match the commands the source calls with redis.call or
// redis.pcall, or when the source computes a command's name instead of
// writing it as a string literal.
func New(name string, commands []string, src string) *Script {
	found, err := Commands(src)
	if err != nil {
		panic(fmt.Sprintf("script %s: %v", name, err))
	}
	declared := make([]string, len(commands))
	for i, c := range commands {
		declared[i] = strings.ToUpper(strings.Join(strings.Fields(c), " "))
	}
	set := slices.Clone(declared)
	slices.Sort(set)
	if set = slices.Compact(set); !slices.Equal(set, found) || len(set) != len(declared) {
		panic(fmt.Sprintf("script %s: declared commands %v; the source calls %v (each once in the list)", name, commands, found))
	}
	return &Script{
		name:     name,
		commands: declared,
		label:    fmt.Sprintf("script %s (runs %s)", name, strings.Join(declared, ", ")),
		s:        redis.NewScript(src),
	}
}

// Name returns the script's name.
func (s *Script) Name() string { return s.name }

// Run runs the script with EVALSHA, and with EVAL when the server does not
// have it cached (see [redis.Script.Run]). An error is wrapped by [Script.Wrap].
func (s *Script) Run(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd {
	cmd := s.s.Run(ctx, c, keys, args...)
	if err := cmd.Err(); err != nil {
		cmd.SetErr(s.Wrap(err))
	}
	return cmd
}

// Eval queues or runs the script with EVAL, for a pipeline (which cannot
// fall back on NOSCRIPT). The command runs later; pass its error to
// [Script.Wrap].
func (s *Script) Eval(ctx context.Context, c redis.Scripter, keys []string, args ...any) *redis.Cmd {
	return s.s.Eval(ctx, c, keys, args...)
}

// Wrap returns err with the script's name and commands in front:
// "script retry (runs XPENDING, XCLAIM, XACK): <err>". It returns nil and
// redis.Nil (a nil reply, not a failure) as they are. The result wraps err,
// so errors.Is, errors.As and the rediserr classifiers see through it.
func (s *Script) Wrap(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	return fmt.Errorf("%s: %w", s.label, err)
}

// callRE matches a call and its first two arguments when they are string
// literals.
var callRE = regexp.MustCompile(`redis\.p?call\s*\(\s*(?:'([^']*)'|"([^"]*)")?(?:\s*,\s*(?:'([^']*)'|"([^"]*)"))?`)

// Commands returns the commands src calls with redis.call or redis.pcall,
// upper case, sorted, each once; a container command with its subcommand
// ("XINFO CONSUMERS"). Comments are ignored. It fails when a call's command
// is not a string literal, so that it cannot be checked.
func Commands(src string) ([]string, error) {
	code := stripComments(src)
	var out []string
	for _, m := range callRE.FindAllStringSubmatch(code, -1) {
		cmd := m[1] + m[2]
		if cmd == "" {
			return nil, fmt.Errorf("%q: the command is not a string literal; write each command's name out, so the commands the script needs can be checked", m[0])
		}
		cmd = strings.ToUpper(cmd)
		if rediserr.HasSubcommands(cmd) {
			sub := m[3] + m[4]
			if sub == "" {
				return nil, fmt.Errorf("%q: the subcommand of %s is not a string literal", m[0], cmd)
			}
			cmd += " " + strings.ToUpper(sub)
		}
		out = append(out, cmd)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// stripComments returns src with its Lua comments ("--" to the end of the
// line, and "--[[ ... ]]" blocks) blanked out, leaving string literals
// alone.
func stripComments(src string) string {
	var b strings.Builder
	for i := 0; i < len(src); {
		switch c := src[i]; {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(src) && src[j] != c && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			j = min(j+1, len(src))
			b.WriteString(src[i:j])
			i = j
		case strings.HasPrefix(src[i:], "--[["):
			end := strings.Index(src[i:], "]]")
			if end < 0 {
				return b.String()
			}
			i += end + 2
			b.WriteByte(' ')
		case strings.HasPrefix(src[i:], "--"):
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				return b.String()
			}
			i += end
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}
