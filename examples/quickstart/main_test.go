package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/streamgroup/streamgroup/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// The example runs to the end against a real Redis, sends the four good
// emails and dead-letters the bad one.
func TestQuickstart(t *testing.T) {
	addr := redistest.Client(t).Options().Addr
	var out strings.Builder
	if err := run(context.Background(), &out, addr); err != nil {
		t.Fatalf("run = %v; output:\n%s", err, out.String())
	}
	checkOutput(t, out.String())
}

// Nothing listening at the address: a clear error that says what to do.
func TestQuickstartNoRedis(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), &out, "127.0.0.1:1")
	if err == nil {
		t.Fatalf("run(127.0.0.1:1) = nil; want an error. output:\n%s", out.String())
	}
	for _, want := range []string{"no Redis answers at 127.0.0.1:1", "run-quickstart.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("run(127.0.0.1:1) = %q; want it to contain %q", err, want)
		}
	}
}

// The README's first command works on a fresh machine: with REDIS_ADDR unset
// and redis-server on PATH, examples/run-quickstart.sh starts a throwaway
// server, runs the example against it and stops it.
func TestRunQuickstartScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the example through its script; skipped with -short")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server is not on PATH"
		if os.Getenv(redistest.EnvRequire) == "1" {
			t.Fatal(msg + "; failing because " + redistest.EnvRequire + "=1")
		}
		t.Skip(msg)
	}
	script, err := filepath.Abs(filepath.Join("..", "run-quickstart.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", script)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, redistest.EnvAddr+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	outb, err := cmd.CombinedOutput()
	out := string(outb)
	if err != nil {
		t.Fatalf("%s = %v; output:\n%s", script, err, out)
	}
	m := regexp.MustCompile(`(?m)^started a throwaway redis-server on (\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output lacks the started server's address:\n%s", out)
	}
	checkOutput(t, out)
	// The script stopped its server.
	if err := run(context.Background(), new(strings.Builder), m[1]); err == nil {
		t.Errorf("the throwaway redis-server at %s still answers after the script returned", m[1])
	}
}

func checkOutput(t *testing.T, got string) {
	t.Helper()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`published 5 jobs`),
		regexp.MustCompile(`(?m)^dead letter \S+: job \S+ after 3 deliveries: smtp: 550 no such mailbox$`),
		regexp.MustCompile(`(?m)^pending entries left: 0$`),
	} {
		if !want.MatchString(got) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, `sent "Welcome"`); n < 4 {
		t.Errorf("%d emails sent; want at least 4:\n%s", n, got)
	}
}
