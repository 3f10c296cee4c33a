package health

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Live returns the handler of a liveness probe (mount it on /livez) over
// cs: it answers 200 when every checker is [Status.Live], else 503 Service
// Unavailable. Without checkers it answers 200.
//
// The body is in the manner of the Kubernetes API server's own probes:
// "ok" when every check passes; otherwise, or with the query parameter
// verbose, one line per checker, "[+]name ok" or "[-]name failed: reason",
// then "livez check passed" or "livez check failed". With format=json it
// is a JSON object instead (see [Ready]). The query parameter exclude
// (repeatable) leaves out the checkers of that name. Only GET and HEAD are
// allowed.
//
// The reasons carry error text from Redis and the network (addresses,
// key names): serve the probes on a port that only the kubelet and
// operators reach.
func Live(cs ...Checker) http.Handler {
	return &probe{path: "livez", cs: slices.Clone(cs), pass: func(s Status) bool { return s.Live }}
}

// Ready returns the handler of a readiness probe (mount it on /readyz)
// over cs: it answers 200 when every checker is [Status.Ready], else 503
// Service Unavailable. Without checkers it answers 200. The body is as for
// [Live], the last line reading "readyz check passed" or "readyz check
// failed".
//
// With the query parameter format=json the body is an object:
//
//	{"status": "ok" or "failed",
//	 "checks": [{"name", "pass", "ready", "live", "reason", "started",
//	   "last_fetch", "unreachable_since", "group_missing", "draining",
//	   "stopped", "wedged", "error"}, ...]}
//
// with one check per checker, "pass" telling whether it passed this probe,
// times in RFC 3339 and fields at their zero value left out.
func Ready(cs ...Checker) http.Handler {
	return &probe{path: "readyz", cs: slices.Clone(cs), pass: func(s Status) bool { return s.Ready }}
}

type probe struct {
	path string
	cs   []Checker
	pass func(Status) bool
}

type check struct {
	s    Status
	pass bool
}

func (p *probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	exclude := q["exclude"]
	excluded := make([]bool, len(exclude))
	checks := make([]check, 0, len(p.cs))
	failed := false
	for i, c := range p.cs {
		s := c.Health()
		if s.Name == "" {
			s.Name = fmt.Sprintf("checker-%d", i)
		}
		if j := slices.Index(exclude, s.Name); j >= 0 {
			excluded[j] = true
			continue
		}
		ok := p.pass(s)
		failed = failed || !ok
		checks = append(checks, check{s, ok})
	}
	code := http.StatusOK
	if failed {
		code = http.StatusServiceUnavailable
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if q.Get("format") == "json" {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(jsonBody(checks, failed))
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, verbose := q["verbose"]
	if !failed && !verbose {
		fmt.Fprintln(w, "ok")
		return
	}
	var b strings.Builder
	for _, c := range checks {
		if c.pass {
			fmt.Fprintf(&b, "[+]%s ok\n", oneLine(c.s.Name))
		} else {
			fmt.Fprintf(&b, "[-]%s failed: %s\n", oneLine(c.s.Name), oneLine(c.s.Reason))
		}
	}
	var unmatched []string
	for j, name := range exclude {
		if !excluded[j] {
			unmatched = append(unmatched, fmt.Sprintf("%q", name))
		}
	}
	if len(unmatched) > 0 {
		fmt.Fprintf(&b, "warn: some health checks cannot be excluded: no matches for %s\n", oneLine(strings.Join(unmatched, ",")))
	}
	if failed {
		fmt.Fprintf(&b, "%s check failed\n", p.path)
	} else {
		fmt.Fprintf(&b, "%s check passed\n", p.path)
	}
	_, _ = w.Write([]byte(b.String()))
}

// oneLine keeps s on one line of the body.
func oneLine(s string) string {
	if s == "" {
		return "(no reason given)"
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

type jsonCheck struct {
	Name             string    `json:"name"`
	Pass             bool      `json:"pass"`
	Ready            bool      `json:"ready"`
	Live             bool      `json:"live"`
	Reason           string    `json:"reason,omitempty"`
	Started          time.Time `json:"started,omitzero"`
	LastFetch        time.Time `json:"last_fetch,omitzero"`
	UnreachableSince time.Time `json:"unreachable_since,omitzero"`
	GroupMissing     bool      `json:"group_missing,omitempty"`
	Draining         bool      `json:"draining,omitempty"`
	Stopped          bool      `json:"stopped,omitempty"`
	Wedged           bool      `json:"wedged,omitempty"`
	Error            string    `json:"error,omitempty"`
}

type jsonProbe struct {
	Status string      `json:"status"`
	Checks []jsonCheck `json:"checks"`
}

func jsonBody(checks []check, failed bool) jsonProbe {
	out := jsonProbe{Status: "ok", Checks: make([]jsonCheck, 0, len(checks))}
	if failed {
		out.Status = "failed"
	}
	for _, c := range checks {
		s := c.s
		j := jsonCheck{
			Name: s.Name, Pass: c.pass, Ready: s.Ready, Live: s.Live, Reason: s.Reason,
			Started: s.Started.Round(0), LastFetch: s.LastFetch.Round(0), UnreachableSince: s.UnreachableSince.Round(0),
			GroupMissing: s.GroupMissing, Draining: s.Draining, Stopped: s.Stopped, Wedged: s.Wedged,
		}
		if s.Err != nil {
			j.Error = s.Err.Error()
		}
		out.Checks = append(out.Checks, j)
	}
	return out
}
