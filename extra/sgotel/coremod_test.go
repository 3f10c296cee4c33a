package sgotel_test

import (
	"os"
	"strings"
	"testing"
)

// The core module must not require OpenTelemetry directly: the adapter
// lives here so that it does not (an indirect requirement, through the
// test harness's testcontainers, is not the core's).
func TestCoreHasNoOTelRequirement(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "module github.com/streamgroup/streamgroup\n") {
		t.Fatalf("../../go.mod is not the core module's:\n%s", b)
	}
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, "go.opentelemetry.io/") && !strings.Contains(line, "// indirect") {
			t.Errorf("the core go.mod requires OpenTelemetry directly: %s", strings.TrimSpace(line))
		}
	}
}
