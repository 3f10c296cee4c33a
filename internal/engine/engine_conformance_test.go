package engine_test

import (
	"testing"
	"testing/synctest"

	"github.com/streamgroup/streamgroup/internal/engine/enginetest"
)

// The suite on the in-memory fake, under testing/synctest: backoffs,
// keep-alives, sweeps and drain timeouts run on the bubble's clock.
func TestConformanceFake(t *testing.T) {
	h := enginetest.FakeHarness()
	h.Bubble = func(t *testing.T, f func(*testing.T)) { synctest.Test(t, f) }
	enginetest.Run(t, h)
}

// The suite on the fake in real time, as it runs on Redis: it checks that
// the scenarios' waits hold without a synctest clock.
func TestConformanceFakeRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of real time; -short skips it (TestConformanceFake covers the same in a bubble)")
	}
	enginetest.Run(t, enginetest.FakeHarness())
}
