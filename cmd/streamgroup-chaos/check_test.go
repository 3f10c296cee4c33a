package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSummary checks the result lines against the format main.go's
// package comment documents.
func TestSummary(t *testing.T) {
	r := &result{target: targetStreams, seed: 11, published: 20000, handled: 19960, dups: 7, dead: 40,
		kills: 3, terms: 2, restarts: 1, cuts: 4, drain: 3540 * time.Millisecond}
	want := "chaos: target=streams seed=11 published=20000 handled=19960 lost=0 duplicates=7 dead=40 pending=0 kills=3 term=2 redis_restarts=1 cuts=4 drain_s=3.5"
	if got := r.summary(); got != want {
		t.Errorf("summary() = %q; want %q", got, want)
	}
	r.target, r.extra = targetLists, " recovered=12"
	want = strings.Replace(want, "target=streams", "target=lists", 1) + " recovered=12"
	if got := r.summary(); got != want {
		t.Errorf("summary() = %q; want %q", got, want)
	}
}

// counts are the figures tally adds up.
type counts struct{ published, handled, lost, dups, dead int64 }

func TestTally(t *testing.T) {
	jobs := []job{{key: "a", kind: kindOK}, {key: "b", kind: kindOK}, {key: "p", kind: kindPoison}}
	ids := []string{"1", "2", "3"}
	fine := func() map[string]int64 { return map[string]int64{"a": 1, "b": 1} }
	deadP := []deadLetter{{where: "the dead-letter stream", key: "p"}}
	noVet := func(int, deadLetter) string { return "" }
	tests := []struct {
		name    string
		ids     []string
		ledger  map[string]int64
		letters []deadLetter
		vet     func(int, deadLetter) string
		want    counts
		lost    []int
		fails   []string // a substring of each problem, in order
	}{
		{name: "pass", ledger: fine(), letters: deadP,
			want: counts{published: 3, handled: 2, dead: 1}},
		{name: "duplicates", ledger: map[string]int64{"a": 3, "b": 1}, letters: deadP,
			want: counts{published: 3, handled: 2, dups: 2, dead: 1}},
		{name: "lost", ledger: map[string]int64{"b": 1}, letters: deadP,
			want: counts{published: 3, handled: 1, lost: 1, dead: 1}, lost: []int{0}},
		{name: "not published", ids: []string{"1", "", "3"}, ledger: fine(), letters: deadP,
			want:  counts{published: 2, handled: 2, dead: 1},
			fails: []string{"published 2 jobs of 3"}},
		{name: "poison handled", ledger: map[string]int64{"a": 1, "b": 1, "p": 1}, letters: deadP,
			want:  counts{published: 3, handled: 2, dead: 1},
			fails: []string{"poison job p (3) is counted 1 times in the ledger L"}},
		{name: "poison not dead-lettered", ledger: fine(),
			want:  counts{published: 3, handled: 2},
			fails: []string{"poison job p (3, poison) was not dead-lettered"}},
		{name: "not poison but dead-lettered", ledger: fine(), letters: append(deadP, deadLetter{key: "a"}),
			want:  counts{published: 3, handled: 2, dead: 1},
			fails: []string{"job a (1) is not poison but was dead-lettered"}},
		{name: "not poison, from a queue", ledger: fine(), letters: append(deadP, deadLetter{key: "a", from: "q", reason: "boom"}),
			want:  counts{published: 3, handled: 2, dead: 1},
			fails: []string{"job a (1) is not poison but was dead-lettered from q: boom"}},
		{name: "no job", ledger: map[string]int64{"a": 1, "b": 1, "x": 1}, letters: append(deadP, deadLetter{where: "W", key: "y"}),
			want:  counts{published: 3, handled: 2, dead: 1},
			fails: []string{`W holds "y", which is no job`, `the ledger L counts "x", which is no job`}},
		{name: "bad record", ledger: fine(), letters: append(deadP, deadLetter{where: "W", bad: "no reason", raw: "{}"}),
			want:  counts{published: 3, handled: 2, dead: 1},
			fails: []string{"W holds an unexpected record (no reason): {}"}},
		{name: "same ID twice", ledger: fine(), letters: []deadLetter{{key: "p", id: "9"}, {key: "p", id: "9"}},
			want:  counts{published: 3, handled: 2, dead: 1},
			fails: []string{"job p (ID 9) was dead-lettered twice"}},
		{name: "two IDs", ledger: fine(), letters: []deadLetter{{key: "p", id: "9"}, {key: "p", id: "10"}},
			want: counts{published: 3, handled: 2, dead: 1}},
		{name: "vetted", ledger: fine(), letters: deadP, vet: func(i int, d deadLetter) string { return "vet " + d.key },
			want:  counts{published: 3, handled: 2, dead: 1},
			fails: []string{"vet p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ids == nil {
				tt.ids = ids
			}
			if tt.vet == nil {
				tt.vet = noVet
			}
			var r result
			lost := r.tally(jobs, tt.ids, "L", tt.ledger, tt.letters, tt.vet)
			problems := r.problems
			if got := (counts{r.published, r.handled, r.lost, r.dups, r.dead}); got != tt.want {
				t.Errorf("tally counts %+v; want %+v", got, tt.want)
			}
			if !slices.Equal(lost, tt.lost) {
				t.Errorf("tally returned lost %v; want %v", lost, tt.lost)
			}
			if len(problems) != len(tt.fails) {
				t.Fatalf("tally problems %q; want %d matching %q", problems, len(tt.fails), tt.fails)
			}
			for i, p := range problems {
				if !strings.Contains(p, tt.fails[i]) {
					t.Errorf("problem %d = %q; want it to contain %q", i, p, tt.fails[i])
				}
			}
		})
	}
}
