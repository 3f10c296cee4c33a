package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// The fields of a job's entry or envelope, read by the workers' handler.
const (
	jobField   = "job"   // the unique job key
	kindField  = "kind"  // kindOK, kindPoison or kindPermanent
	sleepField = "sleep" // milliseconds the handler sleeps first; absent for none
	padField   = "pad"   // a few bytes of payload
)

// Job kinds.
const (
	kindOK        = "ok"        // handled: counted in the ledger
	kindPoison    = "poison"    // always fails with a plain error: dead-lettered after MaxDeliveries
	kindPermanent = "permanent" // always fails with handler.ErrPermanent: dead-lettered at once
)

// job is one job of the scenario.
type job struct {
	key   string
	kind  string // kindOK, kindPoison or kindPermanent
	sleep int    // milliseconds the handler sleeps first
}

// planJobs draws the jobs from the seed: about one in 500 is a poison job
// (half of them permanent), about one in 400 sleeps between half and 1.6
// times MinIdle.
func planJobs(cfg config) []job {
	r := rand.New(rand.NewPCG(cfg.seed, 1))
	jobs := make([]job, cfg.jobs)
	for i := range jobs {
		jobs[i] = job{key: fmt.Sprintf("job-%07d", i), kind: kindOK}
	}
	perm := r.Perm(cfg.jobs)
	poison := max(4, cfg.jobs/500)
	for n, i := range perm[:poison] {
		jobs[i].kind = kindPoison
		if n%2 == 1 {
			jobs[i].kind = kindPermanent
		}
	}
	lo, hi := int(cfg.minIdle.Milliseconds()/2), int(cfg.minIdle.Milliseconds()*16/10)
	for _, i := range perm[poison : poison+max(4, cfg.jobs/400)] {
		jobs[i].sleep = lo + r.IntN(hi-lo+1)
	}
	return jobs
}

// faultKind is what a fault does.
type faultKind int

const (
	faultKill    faultKind = iota // SIGKILL a worker; restart it after d
	faultTerm                     // SIGTERM a worker (graceful drain); restart it after d
	faultRedis                    // SIGKILL redis-server; start it again after d
	faultCut                      // cut every proxied connection; refuse new ones for d
	faultLatency                  // add latency lat to the proxy for d
	faultStall                    // stall the proxy for d
	faultDestroy                  // XGROUP DESTROY the consumer group
	numFaultKinds
)

func (k faultKind) String() string {
	return [...]string{"kill", "term", "redis-restart", "cut", "latency", "stall", "group-destroy"}[k]
}

// fault is one scheduled fault.
type fault struct {
	at     time.Duration // from the start of the scenario
	kind   faultKind
	worker int // index of the worker, for kill and term
	d      time.Duration
	lat    time.Duration
}

func (f fault) String() string {
	s := fmt.Sprintf("%6.2fs %s", f.at.Seconds(), f.kind)
	switch f.kind {
	case faultKill, faultTerm:
		s += fmt.Sprintf(" worker-%d, down %v", f.worker+1, f.d)
	case faultRedis:
		s += fmt.Sprintf(", down %v", f.d)
	case faultCut:
		s += fmt.Sprintf(", refusing %v", f.d)
	case faultLatency:
		s += fmt.Sprintf(" %v for %v", f.lat, f.d)
	case faultStall:
		s += fmt.Sprintf(" %v", f.d)
	}
	return s
}

// planFaults draws the fault schedule from the seed: one fault about every
// two seconds of the window, at least one of each kind, and exactly one
// group deletion, in the middle third.
func planFaults(cfg config) []fault {
	r := rand.New(rand.NewPCG(cfg.seed, 2))
	between := func(lo, hi time.Duration) time.Duration {
		return lo + time.Duration(r.Int64N(int64(hi-lo)+1)).Round(time.Millisecond)
	}
	n := max(int(cfg.duration/(2*time.Second)), int(faultDestroy))
	kinds := make([]faultKind, 0, n)
	for k := range faultDestroy {
		kinds = append(kinds, k)
	}
	weights := []int{faultKill: 25, faultTerm: 15, faultRedis: 10, faultCut: 15, faultLatency: 15, faultStall: 20}
	for len(kinds) < n {
		x := r.IntN(100)
		for k, w := range weights {
			if x < w {
				kinds = append(kinds, faultKind(k))
				break
			}
			x -= w
		}
	}
	r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })

	slot := cfg.duration / time.Duration(n)
	faults := make([]fault, 0, n+1)
	for i, k := range kinds {
		f := fault{at: time.Duration(i)*slot + between(0, slot/2), kind: k}
		switch k {
		case faultKill, faultTerm:
			f.worker = r.IntN(cfg.workers)
			f.d = between(200*time.Millisecond, 2*time.Second)
		case faultRedis:
			f.d = between(200*time.Millisecond, 1500*time.Millisecond)
		case faultCut:
			f.d = between(time.Second, 3*time.Second)
		case faultLatency:
			f.lat = between(5*time.Millisecond, 60*time.Millisecond)
			f.d = between(2*time.Second, 5*time.Second)
		case faultStall:
			f.d = between(300*time.Millisecond, 2500*time.Millisecond)
		}
		faults = append(faults, f)
	}
	faults = append(faults, fault{at: between(cfg.duration/3, cfg.duration*2/3), kind: faultDestroy})
	slices.SortStableFunc(faults, func(a, b fault) int { return int(a.at - b.at) })
	return faults
}

// jobValues are the fields of job j.
func jobValues(j job) map[string]any {
	v := map[string]any{jobField: j.key, kindField: j.kind, padField: "0123456789abcdef0123456789abcdef"}
	if j.sleep > 0 {
		v[sleepField] = strconv.Itoa(j.sleep)
	}
	return v
}

// sabotaged is the job the workers lose on purpose under -sabotage: the
// first one that is not poison.
func sabotaged(jobs []job) string {
	for _, j := range jobs {
		if j.kind == kindOK {
			return j.key
		}
	}
	return ""
}
