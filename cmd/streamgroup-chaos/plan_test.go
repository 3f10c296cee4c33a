package main

import (
	"io"
	"slices"
	"testing"
)

// TestPlanPinned pins what seed 11 draws in CI mode: a replay command
// printed by an older build must still run the same scenario. The figures
// are those the run logs (-v logs the planned faults).
func TestPlanPinned(t *testing.T) {
	cfg, err := parseFlags([]string{"-mode", "ci", "-seed", "11"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range planFaults(cfg) {
		got = append(got, f.String())
	}
	want := []string{
		"  0.34s cut, refusing 2.183s",
		"  2.02s redis-restart, down 641ms",
		"  4.26s term worker-1, down 812ms",
		"  6.93s cut, refusing 1.755s",
		"  8.11s stall 2.154s",
		" 10.50s latency 41ms for 4.164s",
		" 12.56s latency 21ms for 3.215s",
		" 14.33s term worker-1, down 1.813s",
		" 15.47s group-destroy",
		" 16.08s term worker-2, down 558ms",
		" 18.70s kill worker-4, down 1.336s",
		" 20.21s latency 44ms for 2.933s",
		" 22.55s kill worker-2, down 804ms",
		" 24.65s kill worker-1, down 663ms",
		" 26.19s latency 25ms for 4.088s",
		" 28.94s stall 1.178s",
	}
	if !slices.Equal(got, want) {
		t.Errorf("planFaults(seed 11) =\n%q\nwant\n%q", got, want)
	}

	poison, sleepers := 0, 0
	for _, j := range planJobs(cfg) {
		if j.kind != kindOK {
			poison++
		}
		if j.sleep > 0 {
			sleepers++
		}
	}
	if poison != 40 || sleepers != 50 {
		t.Errorf("planJobs(seed 11): %d poison jobs and %d sleepers; want 40 and 50", poison, sleepers)
	}
	if got := newListsTarget(&env{cfg: cfg}).plan(); !slices.Equal(got, []any{"high_priority", 6594}) {
		t.Errorf("lists plan(seed 11) = %v; want [high_priority 6594]", got)
	}
}
