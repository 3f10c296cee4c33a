package health_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/streamgroup/streamgroup/health"
)

func fixed(s health.Status) health.Checker { return health.Func(func() health.Status { return s }) }

var (
	fine = fixed(health.Status{Name: "group/s/g/a", Ready: true, Live: true, Started: time.Unix(1, 0)})
	down = fixed(health.Status{
		Name: "queue/q/b", Live: true, Reason: "redis unavailable for 3s: dial tcp: connection refused",
		UnreachableSince: time.Unix(2, 0), Err: errors.New("dial tcp: connection refused"),
	})
	dead = fixed(health.Status{Name: "claim/s/g/c", Stopped: true, Reason: "stopped: group: key is not a stream", Err: errors.New("group: key is not a stream")})
)

func get(t *testing.T, h http.Handler, target string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body), rec.Result().Header
}

func TestProbes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		h        http.Handler
		target   string
		code     int
		body     string // exact, when not empty
		contains []string
	}{
		{name: "ready, all pass", h: health.Ready(fine), target: "/readyz", code: 200, body: "ok\n"},
		{name: "no checkers", h: health.Ready(), target: "/readyz", code: 200, body: "ok\n"},
		{name: "ready, verbose", h: health.Ready(fine), target: "/readyz?verbose", code: 200,
			body: "[+]group/s/g/a ok\nreadyz check passed\n"},
		{name: "ready, one down", h: health.Ready(fine, down), target: "/readyz", code: 503,
			body: "[+]group/s/g/a ok\n[-]queue/q/b failed: redis unavailable for 3s: dial tcp: connection refused\nreadyz check failed\n"},
		{name: "live through an outage", h: health.Live(fine, down), target: "/livez", code: 200, body: "ok\n"},
		{name: "live, verbose", h: health.Live(fine, down), target: "/livez?verbose=1", code: 200,
			body: "[+]group/s/g/a ok\n[+]queue/q/b ok\nlivez check passed\n"},
		{name: "not live after Run's error", h: health.Live(fine, dead), target: "/livez", code: 503,
			contains: []string{"[-]claim/s/g/c failed: stopped: group: key is not a stream\n", "livez check failed\n"}},
		{name: "exclude", h: health.Ready(fine, down), target: "/readyz?exclude=queue/q/b", code: 200, body: "ok\n"},
		{name: "exclude unknown", h: health.Ready(fine), target: "/readyz?exclude=nope&verbose", code: 200,
			body: "[+]group/s/g/a ok\nwarn: some health checks cannot be excluded: no matches for \"nope\"\nreadyz check passed\n"},
		{name: "unnamed, multi-line reason", h: health.Ready(fixed(health.Status{Reason: "a\nb"})), target: "/readyz", code: 503,
			body: "[-]checker-0 failed: a b\nreadyz check failed\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, hdr := get(t, tc.h, tc.target)
			if code != tc.code {
				t.Errorf("GET %s = %d; want %d (body %q)", tc.target, code, tc.code, body)
			}
			if tc.body != "" && body != tc.body {
				t.Errorf("GET %s body = %q; want %q", tc.target, body, tc.body)
			}
			for _, c := range tc.contains {
				if !strings.Contains(body, c) {
					t.Errorf("GET %s body = %q; want it to contain %q", tc.target, body, c)
				}
			}
			if ct := hdr.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q; want text/plain; charset=utf-8", ct)
			}
		})
	}
}

func TestProbeJSON(t *testing.T) {
	code, body, hdr := get(t, health.Ready(fine, down, dead), "/readyz?format=json")
	if code != 503 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /readyz?format=json = %d, %s; want 503, application/json", code, hdr.Get("Content-Type"))
	}
	var got struct {
		Status string
		Checks []map[string]any
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	if got.Status != "failed" || len(got.Checks) != 3 {
		t.Fatalf("body = %s; want status failed and 3 checks", body)
	}
	want := []map[string]any{
		{"name": "group/s/g/a", "pass": true, "ready": true, "live": true, "started": "1970-01-01T00:00:01Z"},
		{"name": "queue/q/b", "pass": false, "ready": false, "live": true, "reason": "redis unavailable for 3s: dial tcp: connection refused",
			"unreachable_since": "1970-01-01T00:00:02Z", "error": "dial tcp: connection refused"},
		{"name": "claim/s/g/c", "pass": false, "ready": false, "live": false, "stopped": true,
			"reason": "stopped: group: key is not a stream", "error": "group: key is not a stream"},
	}
	for i, w := range want {
		g := got.Checks[i]
		if len(g) != len(w) {
			t.Errorf("check %d = %v; want %v", i, g, w)
			continue
		}
		for k, v := range w {
			if k == "started" || k == "unreachable_since" {
				gt, _ := time.Parse(time.RFC3339, g[k].(string))
				wt, _ := time.Parse(time.RFC3339, v.(string))
				if !gt.Equal(wt) {
					t.Errorf("check %d: %s = %v; want %v", i, k, g[k], v)
				}
				continue
			}
			if g[k] != v {
				t.Errorf("check %d: %s = %v; want %v", i, k, g[k], v)
			}
		}
	}
}

func TestProbeMethods(t *testing.T) {
	h := health.Live(fine)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/livez", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /livez = %d, Allow %q; want 405, GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
	rec = httptest.NewRecorder()
	health.Ready(down).ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("HEAD /readyz = %d; want 503", rec.Code)
	}
}
