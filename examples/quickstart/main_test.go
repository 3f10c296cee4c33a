package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/streamgroup/streamgroup/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// The README's first command must work: the example runs to the end, sends
// the four good emails and dead-letters the bad one.
func TestQuickstart(t *testing.T) {
	t.Setenv("REDIS_ADDR", redistest.Client(t).Options().Addr)
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("run = %v; output:\n%s", err, out.String())
	}
	got := out.String()
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
