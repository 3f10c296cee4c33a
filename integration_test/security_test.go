package integration_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/claim"
	"github.com/streamgroup/streamgroup/group"
	"github.com/streamgroup/streamgroup/handler"
	"github.com/streamgroup/streamgroup/internal/redistest"
	"github.com/streamgroup/streamgroup/stream"
)

// workerACL is every command the library sends, for producers, consumers,
// reclaimers, readers and the manager, directly or from its Lua scripts.
// docs/reliability.md gives the ACL line built from it.
var workerACL = []string{
	// Producer: XADD (MAXLEN with UnsafeTrim), XTRIM; the safe-trim script
	// runs TYPE, XINFO GROUPS, XRANGE, XREVRANGE, XPENDING, XLEN, XTRIM.
	"xadd", "xtrim", "type", "xlen",
	// Reader.
	"xrange", "xrevrange",
	// Consumer and reclaimer: group creation, reads, acks, delivery
	// counts; the claim, retry, lease and dead-letter scripts run
	// XAUTOCLAIM, XCLAIM, XPENDING, XACK and XADD.
	"xgroup|create", "xreadgroup", "xack", "xpending", "xclaim", "xautoclaim",
	// Manager: MULTI/EXEC with EXISTS, XGROUP SETID/DESTROY, XINFO; the
	// delete-consumer script runs EXISTS, XINFO CONSUMERS, XGROUP DELCONSUMER.
	"xgroup|setid", "xgroup|destroy", "xgroup|delconsumer", "xinfo|groups", "xinfo|consumers", "exists", "multi", "exec",
	// Scripts: EVALSHA, and EVAL on NOSCRIPT and in pipelines.
	"evalsha", "eval",
	// The consumer name's liveness key: SET NX at start, and the renew
	// and release scripts run GET, SET, DEL.
	"set", "get", "del",
	// Stopping: a consumer wakes its own blocked XREADGROUP.
	"client|unblock",
}

// aclLine is the ACL SETUSER arguments for a user named user with password
// pass, limited to keys matching pattern and the commands in cmds.
func aclLine(user, pass, pattern string, cmds []string) []any {
	// The keys of a stream named by pattern, and its helper keys, which
	// wrap the stream's name in a hash tag ({jobs:email}:live:...).
	args := []any{"ACL", "SETUSER", user, "reset", "on", ">" + pass, "~" + pattern, "~{" + pattern, "resetchannels", "-@all"}
	for _, c := range cmds {
		args = append(args, "+"+c)
	}
	return args
}

func setUser(t *testing.T, admin *redis.Client, user, pass, pattern string, cmds []string) {
	t.Helper()
	if err := admin.Do(context.Background(), aclLine(user, pass, pattern, cmds)...).Err(); err != nil {
		t.Fatalf("ACL SETUSER %s: %v", user, err)
	}
}

// aclDenials returns the ACL LOG entries (what was denied, to whom), leaving
// out CLIENT SETINFO, which go-redis sends on connect on Redis >= 7.2 and
// whose failure it ignores, and CONFIG GET: producers and consumers read
// maxmemory-policy with it to warn about eviction, an optional check that
// is logged as not done when refused (TestEvictionPolicyUnchecked).
// workerACL does not grant it on purpose: CONFIG GET reads every setting,
// requirepass and masterauth included.
func aclDenials(t *testing.T, admin *redis.Client) []string {
	t.Helper()
	entries, err := admin.ACLLog(context.Background(), 1000).Result()
	if err != nil {
		t.Fatalf("ACL LOG: %v", err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Object, "client|setinfo") || e.Object == "config|get" {
			continue
		}
		out = append(out, fmt.Sprintf("%s denied %s %q (context %s, user %s)", e.Reason, e.Object, e.Object, e.Context, e.Username))
	}
	return out
}

// commandsCalled returns the commands (and subcommands) the server has run
// at least once, from INFO commandstats: "xgroup|create", "xadd", ...
func commandsCalled(t *testing.T, admin *redis.Client) map[string]bool {
	t.Helper()
	info, err := admin.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || strings.HasPrefix(rest, "calls=0,") {
			continue
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = true
	}
	return out
}

// secErrors collects OnError reports.
type secErrors struct {
	mu   sync.Mutex
	errs []error
}

func (s *secErrors) add(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

func (s *secErrors) all() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

func (s *secErrors) find(substrs ...string) error {
	for _, err := range s.all() {
		if containsAll(err.Error(), substrs...) {
			return err
		}
	}
	return nil
}

func containsAll(s string, substrs ...string) bool {
	for _, sub := range substrs {
		if !strings.Contains(strings.ToLower(s), strings.ToLower(sub)) {
			return false
		}
	}
	return true
}

// wholeFlow exercises every Redis path of the library through rdb, on
// stream key: a producer with safe and unsafe trimming, a consumer whose
// handler succeeds, fails once (retry), fails permanently and always
// (dead letters) and runs slowly (lease renewals), a standalone reclaimer
// and the consumer's own taking over an abandoned entry, a reader, and
// every Manager method. It fails t on anything unexpected, and returns
// what OnError reported.
func wholeFlow(t *testing.T, rdb *redis.Client, key string) []error {
	t.Helper()
	ctx := context.Background()
	const grp = "workers"
	dead := stream.DeadLetterKey(key) // "{jobs:email}:dead": matches ~{jobs:*

	p, err := stream.NewProducer(rdb, key, &stream.ProducerOptions{MaxLen: 1000, TrimInterval: 1})
	if err != nil {
		t.Fatal(err)
	}
	var entries []stream.Entry
	for _, kind := range []string{"ok", "ok", "ok", "flaky", "poison", "failing", "slow", "ok"} {
		entries = append(entries, stream.Entry{Values: map[string]any{"kind": kind}})
	}
	ids, err := p.AddBatch(ctx, entries)
	if err != nil {
		t.Fatalf("AddBatch: %v", err)
	}
	if _, err := p.AddPayload(ctx, map[string]string{"kind": "ok"}); err != nil {
		t.Fatalf("AddPayload: %v", err)
	}
	if _, err := p.Trim(ctx); err != nil {
		t.Fatalf("Trim: %v", err)
	}
	unsafeP, err := stream.NewProducer(rdb, key, &stream.ProducerOptions{MaxLen: 1000, UnsafeTrim: true, ExactTrim: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unsafeP.Add(ctx, map[string]any{"kind": "ok"}); err != nil {
		t.Fatalf("Add with XADD MAXLEN: %v", err)
	}
	if _, err := unsafeP.Trim(ctx); err != nil {
		t.Fatalf("unsafe Trim: %v", err)
	}

	m, err := group.NewManager(rdb)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	if _, err := m.EnsureGroup(ctx, key, grp, group.StartAll); err != nil {
		t.Fatalf("EnsureGroup: %v", err)
	}
	// "ghost" reads the first entry and dies: a reclaimer must take it over.
	abandon(t, rdb, key, grp, "ghost", 1)

	var errs secErrors
	var flakyFailed atomic.Bool
	rec := newRecorder(func(ctx context.Context, msg *stream.Message) error {
		switch msg.Values["kind"] {
		case "flaky":
			if flakyFailed.CompareAndSwap(false, true) {
				return errors.New("flaky: try again")
			}
		case "poison":
			return handler.Permanent(errors.New("poison"))
		case "failing":
			return errors.New("always fails")
		case "slow":
			select {
			case <-time.After(300 * time.Millisecond): // several lease intervals
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	opts := fastOptions()
	opts.MinIdle = 300 * time.Millisecond
	opts.MaxDeliveries = 2
	opts.OnError = errs.add
	c := newConsumer(t, rdb, key, grp, "c1", rec.as("c1"), opts)
	r, err := claim.NewReclaimer(rdb, key, grp, "r1", rec.as("r1"), reclaimerOptions(opts))
	if err != nil {
		t.Fatal(err)
	}
	runC := start(t, c.Run)
	runR := start(t, r.Run)
	eventually(t, 20*time.Second, "every entry handled or dead-lettered, nothing pending", func() bool {
		for _, run := range []*running{runC, runR} {
			if err, ok := run.Exited(); ok {
				t.Fatalf("Run returned early: %v (OnError: %v)", err, errs.all())
			}
		}
		n, ok := pendingOK(rdb, key, grp)
		dl, _ := rdb.XLen(ctx, dead).Result()
		return ok && n == 0 && dl == 2 && rec.distinct() == len(ids)+2
	})
	for _, run := range []*running{runC, runR} {
		if err := run.Stop(); err != nil {
			t.Fatalf("Run = %v; want nil (OnError: %v)", err, errs.all())
		}
	}
	if rec.count(ids[0]) != 1 {
		t.Errorf("abandoned entry handled %d times; want 1 (reclaimed)", rec.count(ids[0]))
	}
	if s := c.Stats(); s.LeaseRenewals == 0 || s.Retried == 0 {
		t.Errorf("consumer Stats = %+v; want lease renewals and retries to have happened", s)
	}

	rd, err := stream.NewReader(rdb, key, &stream.ReaderOptions{PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range rd.Range(ctx, "-", "+") {
		if err != nil {
			t.Fatalf("Range: %v", err)
		}
		n++
	}
	for _, err := range rd.RevRange(ctx, "+", "-") {
		if err != nil {
			t.Fatalf("RevRange: %v", err)
		}
	}
	if n != len(ids)+2 {
		t.Errorf("Range read %d entries; want %d", n, len(ids)+2)
	}

	if gs, err := m.Groups(ctx, key); err != nil || len(gs) != 1 {
		t.Errorf("Groups = %+v, %v; want one group", gs, err)
	}
	if cs, err := m.Consumers(ctx, key, grp); err != nil || len(cs) < 2 {
		t.Errorf("Consumers = %+v, %v; want ghost, c1 and r1", cs, err)
	}
	if ps, err := m.Pending(ctx, key, grp); err != nil || ps.Count != 0 {
		t.Errorf("Pending = %+v, %v; want 0", ps, err)
	}
	if pe, err := m.PendingEntries(ctx, key, grp, nil); err != nil || len(pe) != 0 {
		t.Errorf("PendingEntries = %+v, %v; want none", pe, err)
	}
	if err := m.SetID(ctx, key, grp, group.StartNew); err != nil {
		t.Errorf("SetID: %v", err)
	}
	if err := m.DeleteConsumer(ctx, key, grp, "ghost"); err != nil {
		t.Errorf("DeleteConsumer: %v", err)
	}
	if _, err := m.SweepConsumers(ctx, key, grp, time.Millisecond); err != nil {
		t.Errorf("SweepConsumers: %v", err)
	}
	if _, err := m.EnsureGroup(ctx, key, "audit", group.StartNew); err != nil {
		t.Errorf("EnsureGroup audit: %v", err)
	}
	if ok, err := m.Destroy(ctx, key, "audit"); err != nil || !ok {
		t.Errorf("Destroy = %v, %v; want true, nil", ok, err)
	}
	return errs.all()
}

// TestACLLeastPrivilege runs the whole flow as an ACL user limited to the
// key pattern jobs:* and the commands in workerACL: nothing is denied
// (ACL LOG stays empty), every error reported is a handler failure, and
// every granted command was needed (the server ran each at least once).
func TestACLLeastPrivilege(t *testing.T) {
	s := redistest.StartSecureServer(t, &redistest.SecureOptions{Password: "admin-" + randHex(t)})
	admin := s.Client(t)
	pass := "worker-" + randHex(t)
	setUser(t, admin, "worker", pass, "jobs:*", workerACL)
	worker := s.ClientAs(t, "worker", pass)
	if err := admin.ConfigResetStat(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}

	errs := wholeFlow(t, worker, "jobs:email")

	for _, err := range errs {
		if !strings.Contains(err.Error(), "handler failed on entry") {
			t.Errorf("OnError got %v; want only handler failures", err)
		}
	}
	if d := aclDenials(t, admin); len(d) != 0 {
		t.Errorf("ACL LOG has denials:\n%s", strings.Join(d, "\n"))
	}
	called := commandsCalled(t, admin)
	for _, c := range workerACL {
		if !called[c] {
			t.Errorf("granted command %q was never run: the grant is not needed, or the flow misses a path", c)
		}
	}
	t.Logf("ACL SETUSER worker on >password ~jobs:* ~{jobs:* resetchannels -@all +%s", strings.Join(workerACL, " +"))
	// Nothing outside the pattern is reachable.
	if err := worker.XAdd(context.Background(), &redis.XAddArgs{Stream: "other", Values: []any{"f", "v"}}).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Errorf("XADD to a key outside jobs:* = %v; want NOPERM", err)
	}
}

// TestACLMissingPermission removes one permission at a time: the consumer
// (or reclaimer) must say so clearly, naming the command (or the key
// denied) and the stream, by returning from Run or through OnError, and
// must not spin.
func TestACLMissingPermission(t *testing.T) {
	s := redistest.StartSecureServer(t, &redistest.SecureOptions{Password: "admin-" + randHex(t)})
	admin := s.Client(t)
	without := func(cmds ...string) []string {
		return slices.DeleteFunc(slices.Clone(workerACL), func(c string) bool { return slices.Contains(cmds, c) })
	}
	tests := []struct {
		name      string
		cmds      []string
		reclaimer bool   // run a claim.Reclaimer instead of a Consumer
		permanent bool   // the handler fails permanently (dead-letters)
		fails     bool   // the handler fails once (a retry follows)
		dead      string // DeadLetterStream; "" for the default
		runStops  bool   // Run returns the error; else OnError reports it
		want      []string
	}{
		{name: "xgroup create", cmds: without("xgroup|create"), runStops: true, want: []string{"NOPERM", "xgroup|create"}},
		{name: "xreadgroup", cmds: without("xreadgroup"), runStops: true, want: []string{"NOPERM", "xreadgroup"}},
		// The retry is a script: a failed entry needs EVALSHA.
		{name: "evalsha", cmds: without("evalsha", "eval"), fails: true, runStops: true, want: []string{"NOPERM", "evalsha"}},
		// A command refused inside a script: the error names the script
		// and the commands it runs, which Redis's reply does not. The
		// lease renewal or the retry, whichever runs first, hits it.
		{name: "xclaim in a script", cmds: without("xclaim"), fails: true, runStops: true, want: []string{"(runs XPENDING, XCLAIM"}},
		{name: "xautoclaim", cmds: without("xautoclaim"), reclaimer: true, runStops: true, want: []string{"NOPERM", "xautoclaim"}},
		{name: "xack", cmds: without("xack"), runStops: true, want: []string{"NOPERM", "xack", "workers"}},
		{name: "dead-letter key outside the pattern", cmds: workerACL, permanent: true, dead: "elsewhere:dead", want: []string{"NOPERM", "keys", "elsewhere:dead"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user := fmt.Sprintf("w%d", i)
			pass := randHex(t)
			setUser(t, admin, user, pass, "jobs:*", tt.cmds)
			rdb := s.ClientAs(t, user, pass)
			key := fmt.Sprintf("jobs:%d", i)
			if err := admin.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: []any{"kind", "x"}}).Err(); err != nil {
				t.Fatal(err)
			}
			if tt.reclaimer {
				// An entry abandoned by "ghost", for the reclaimer to take.
				if err := admin.XGroupCreate(context.Background(), key, "workers", "0").Err(); err != nil {
					t.Fatal(err)
				}
				abandon(t, admin, key, "workers", "ghost", 0)
			}
			var errs secErrors
			opts := fastOptions()
			opts.MinIdle = 100 * time.Millisecond
			opts.OnError = errs.add
			opts.DeadLetterStream = tt.dead
			var failed atomic.Bool
			h := handler.Func(func(context.Context, *stream.Message) error {
				if tt.permanent {
					return handler.Permanent(errors.New("bad job"))
				}
				if tt.fails && !failed.Swap(true) {
					return errors.New("try again")
				}
				return nil
			})
			var run *running
			if tt.reclaimer {
				r, err := claim.NewReclaimer(rdb, key, "workers", "r1", h, reclaimerOptions(opts))
				if err != nil {
					t.Fatal(err)
				}
				run = start(t, r.Run)
			} else {
				run = start(t, newConsumer(t, rdb, key, "workers", "c1", h, opts).Run)
			}
			want := append(slices.Clone(tt.want), key)
			if tt.dead != "" {
				want = tt.want
			}
			if tt.runStops {
				var err error
				eventually(t, 10*time.Second, "Run to return", func() bool {
					var ok bool
					err, ok = run.Exited()
					return ok
				})
				if err == nil || !containsAll(err.Error(), want...) {
					t.Fatalf("Run = %v; want an error mentioning %q", err, want)
				}
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for errs.find(want...) == nil {
				if err, ok := run.Exited(); ok {
					t.Fatalf("Run returned %v; want it to carry on and report", err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("OnError did not report an error mentioning %q within 10s; it got %v", want, errs.all())
				}
				time.Sleep(10 * time.Millisecond)
			}
			// It does not spin: over one second, a handful of reports at
			// most (one per MinIdle reclaim at the fastest).
			n0 := len(errs.all())
			<-time.After(time.Second)
			if n := len(errs.all()) - n0; n > 30 {
				t.Errorf("%d errors reported in one second; want a bounded rate, not a spin", n)
			}
			if err := run.Stop(); err != nil {
				t.Errorf("Run = %v; want nil", err)
			}
			if n := pending(t, admin, key, "workers"); n != 1 {
				t.Errorf("pending = %d; want 1: the entry must not be lost", n)
			}
		})
	}
}

// TestTLS runs the flow over TLS only (--port 0 --tls-port), with a CA and
// server certificate generated for the test (ECDSA) and a client that
// trusts only that CA; a plain-TCP client and a client without the CA are
// refused.
func TestTLS(t *testing.T) {
	s := redistest.StartSecureServer(t, &redistest.SecureOptions{TLS: true, Password: "admin-" + randHex(t)})
	ctx := context.Background()
	rdb := s.Client(t)
	if port, err := rdb.ConfigGet(ctx, "port").Result(); err != nil || port["port"] != "0" {
		t.Fatalf("CONFIG GET port = %v, %v; want 0 (no plain-TCP listener)", port, err)
	}

	plainOpts := s.Options("", "")
	plainOpts.TLSConfig = nil
	plainOpts.MaxRetries = -1
	plain := redis.NewClient(plainOpts)
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("PING over plain TCP to the TLS port succeeded; want a failure")
	}
	noCAOpts := s.Options("", "")
	noCAOpts.TLSConfig = &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12} // system roots only
	noCAOpts.MaxRetries = -1
	noCA := redis.NewClient(noCAOpts)
	defer noCA.Close()
	if err := noCA.Ping(ctx).Err(); !errors.As(err, new(x509.UnknownAuthorityError)) && !errors.As(err, new(*tls.CertificateVerificationError)) {
		t.Errorf("PING without the test CA = %v; want a certificate verification error", err)
	}

	key := "jobs:tls"
	p, err := stream.NewProducer(rdb, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := p.AddPayload(ctx, map[string]int{"n": i}); err != nil {
			t.Fatalf("AddPayload over TLS: %v", err)
		}
	}
	var handled atomic.Int64
	h := handler.Typed(nil, func(_ context.Context, _ *stream.Message, v map[string]int) error {
		handled.Add(1)
		if v["n"] == 7 {
			return handler.Permanent(errors.New("seven"))
		}
		return nil
	})
	c := newConsumer(t, rdb, key, "workers", "c1", h, fastOptions())
	r := start(t, c.Run)
	eventually(t, 10*time.Second, "20 entries handled over TLS", func() bool {
		n, ok := pendingOK(rdb, key, "workers")
		return handled.Load() == 20 && ok && n == 0
	})
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	if s := c.Stats(); s.Acked != 19 || s.DeadLettered != 1 {
		t.Errorf("Stats = %+v; want Acked=19 DeadLettered=1", s)
	}
}

func randHex(t testing.TB) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// leakCheck fails t if secret appears in the logs or in any reported error.
func leakCheck(t *testing.T, logs string, errs []error, secrets map[string]string) {
	t.Helper()
	for what, secret := range secrets {
		if i := strings.Index(logs, secret); i >= 0 {
			line := logs[strings.LastIndex(logs[:i], "\n")+1:]
			if j := strings.IndexByte(line, '\n'); j >= 0 {
				line = line[:j]
			}
			t.Errorf("the %s appears in a log line: %s", what, line)
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the %s appears in an error reported to OnError: %v", what, err)
			}
		}
	}
}

// TestNoSecretsInLogsOrErrors runs a consumer against a password-protected
// server with a JSON logger at debug level and OnError collecting errors,
// through successes, failures, retries, panics, permanent failures, an
// undecodable payload, dead letters and a Redis outage (SIGKILL, restart
// empty, group recreated), on entries carrying a secret in field names,
// values and payloads. Neither the secret nor the password may appear in a
// log line or an error string.
func TestNoSecretsInLogsOrErrors(t *testing.T) {
	password := "pw-" + randHex(t)
	secret := "S3CR3T" + randHex(t)
	s := redistest.StartSecureServer(t, &redistest.SecureOptions{Password: password})
	rdb := s.Client(t)
	ctx := context.Background()
	key, grp := "jobs:secret", "workers"

	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var errs secErrors
	opts := fastOptions()
	opts.Logger = logger
	opts.OnError = errs.add
	opts.MaxDeliveries = 2
	opts.MinIdle = 300 * time.Millisecond

	type job struct {
		Kind string `json:"kind"`
		To   string `json:"to"`
		Note string `json:"note"`
	}
	var mu sync.Mutex
	kinds := map[string]int{}
	h := handler.Typed(nil, func(ctx context.Context, _ *stream.Message, j job) error {
		mu.Lock()
		kinds[j.Kind]++
		mu.Unlock()
		switch j.Kind {
		case "fail":
			return errors.New("smtp: 451 try again later")
		case "panic":
			panic("handler blew up")
		case "permanent":
			return handler.Permanent(errors.New("address rejected"))
		}
		return nil
	})
	p, err := stream.NewProducer(rdb, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	publishAll := func(phase string) {
		t.Helper()
		for _, kind := range []string{"ok", "fail", "panic", "permanent", "ok"} {
			if _, err := p.AddPayload(ctx, job{Kind: kind, To: secret + "@example.com", Note: phase + " " + secret}); err != nil {
				t.Fatalf("AddPayload: %v", err)
			}
		}
		// An undecodable payload and plain fields, with the secret in the
		// field name and value.
		if _, err := p.Add(ctx, map[string]any{stream.PayloadField: "{" + secret}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Add(ctx, map[string]any{"kind": "ok", "to": secret, "x-" + secret: secret}); err != nil {
			t.Fatal(err)
		}
	}
	deadCount := func() int64 { n, _ := rdb.XLen(ctx, stream.DeadLetterKey(key)).Result(); return n }

	publishAll("before")
	c := newConsumer(t, rdb, key, grp, "c1", h, opts)
	r := start(t, c.Run)
	// Per phase four entries are dead-lettered: "fail" and "panic" after
	// MaxDeliveries, "permanent" and the undecodable one at once.
	eventually(t, 20*time.Second, "the first phase handled and dead-lettered", func() bool {
		n, ok := pendingOK(rdb, key, grp)
		return ok && n == 0 && deadCount() == 4
	})

	// Outage: kill the server, let the consumer report it, bring it back
	// empty (no persistence): the group is recreated.
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the outage reported", func() bool {
		return errs.find("connect") != nil || errs.find("EOF") != nil || errs.find("refused") != nil
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	publishAll("after")
	eventually(t, 20*time.Second, "the second phase handled and dead-lettered", func() bool {
		n, ok := pendingOK(rdb, key, grp)
		return ok && n == 0 && deadCount() == 4
	})
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}

	out := logs.String()
	all := errs.all()
	// The test can fail: the logs and errors cover what happened.
	for _, want := range []string{`"level":"DEBUG"`, "entry dead-lettered", "will retry", "redis unavailable", "consumer group created"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q; the run did not cover that path:\n%s", want, out)
		}
	}
	var sawPanic bool
	for _, err := range all {
		_, isPanic := errors.AsType[*handler.PanicError](err)
		sawPanic = sawPanic || isPanic
	}
	if !sawPanic || len(all) < 8 {
		t.Errorf("OnError got %d errors (panic among them: %v); want failures, a panic and the outage", len(all), sawPanic)
	}
	leakCheck(t, out, all, map[string]string{"secret": secret, "password": password})
	mu.Lock()
	got := maps.Clone(kinds)
	mu.Unlock()
	if got["ok"] < 4 || got["permanent"] != 2 {
		t.Errorf("handled kinds %v; want ok at least 4 times and permanent twice", got)
	}
}

// TestDecodeErrorsDoNotLeakPayload: a payload that is valid JSON but does
// not fit the handler's type (a time, a ",string" number) is dead-lettered
// at once; the decode error that goes to the logs and OnError must not
// carry the payload's values.
func TestDecodeErrorsDoNotLeakPayload(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	key, grp := redistest.Names(t)
	secret := "S3CR3T" + randHex(t)
	var logs syncBuffer
	var errs secErrors
	opts := fastOptions()
	opts.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.OnError = errs.add
	type job struct {
		At    time.Time `json:"at"`
		Count int       `json:"count,string"`
	}
	h := handler.Typed(nil, func(context.Context, *stream.Message, job) error { return nil })
	for _, payload := range []string{`{"at":"` + secret + `"}`, `{"count":"` + secret + `"}`} {
		if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: []any{stream.PayloadField, payload}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c := newConsumer(t, rdb, key, grp, "c1", h, opts)
	r := start(t, c.Run)
	eventually(t, 10*time.Second, "both entries dead-lettered", func() bool { return c.Stats().DeadLettered == 2 })
	if err := r.Stop(); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	leakCheck(t, logs.String(), errs.all(), map[string]string{"payload value": secret})
}
