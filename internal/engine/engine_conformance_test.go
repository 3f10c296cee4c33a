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
