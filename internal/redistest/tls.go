package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SecureOptions configures a server started by [StartSecureServer]. The zero
// value is a plain server without persistence, like [StartServer]'s.
type SecureOptions struct {
	// TLS makes the server accept TLS connections only (--port 0
	// --tls-port): a CA and a server certificate (ECDSA P-256, valid for
	// 127.0.0.1 and localhost) are generated for the test. Clients verify
	// the server against that CA; the server asks for no client
	// certificate. False means plain TCP.
	TLS bool

	// Password, when not empty, is required of the default user
	// (requirepass). Empty means no password.
	Password string

	// Args are extra redis-server arguments, such as "--maxmemory", "10mb".
	Args []string
}

// ErrNoTLS is wrapped by the error of a TLS server start when the
// redis-server binary was built without TLS support.
var ErrNoTLS = errors.New("redistest: redis-server was built without TLS support")

// SecureServer is a Redis server the test owns, serving TLS and/or
// requiring a password (see [SecureOptions]). Like [Server], it can be
// killed and started again on the same address. Its methods are safe for
// concurrent use. The zero value is not usable: get one from
// [StartSecureServer].
type SecureServer struct {
	t       testing.TB
	bin     string
	dir     string
	logPath string
	port    int
	opts    SecureOptions
	certs   *testCerts // nil without TLS

	mu  sync.Mutex // serializes start and kill
	cur *run
}

// StartSecureServer starts a server owned by t (killed with t.Cleanup). It
// needs redis-server on PATH; otherwise it skips or fails as [Client] does.
// When opts.TLS is set and the binary has no TLS support, t is skipped
// with that reason (it fails under STREAMGROUP_REQUIRE_REDIS=1).
func StartSecureServer(t testing.TB, opts *SecureOptions) *SecureServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "StartSecureServer needs redis-server on PATH")
	}
	s := &SecureServer{t: t, bin: bin, dir: t.TempDir()}
	if opts != nil {
		s.opts = *opts
		s.opts.Args = append([]string(nil), opts.Args...)
	}
	s.logPath = filepath.Join(s.dir, "redis.log")
	if s.opts.TLS {
		if s.certs, err = writeTestCerts(s.dir); err != nil {
			t.Fatalf("redistest: StartSecureServer: %v", err)
		}
	}
	for range portAttempts {
		if s.port, err = freePort(); err != nil {
			t.Fatalf("redistest: StartSecureServer: %v", err)
		}
		if err = s.Start(); err == nil {
			break
		}
		se, ok := errors.AsType[*startError](err)
		if !ok || !strings.Contains(se.tail, "Address already in use") {
			break
		}
	}
	if errors.Is(err, ErrNoTLS) {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%v; failing because %s=1", err, EnvRequire)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("redistest: StartSecureServer: %v", err)
	}
	t.Cleanup(func() { _ = s.Kill() })
	return s
}

// Addr is the server's host:port (its TLS port when it serves TLS).
func (s *SecureServer) Addr() string { return net.JoinHostPort("127.0.0.1", itoa(s.port)) }

// LogFile is the path of the server's log.
func (s *SecureServer) LogFile() string { return s.logPath }

// CAFile is the PEM file of the CA that signed the server's certificate, or
// "" without TLS.
func (s *SecureServer) CAFile() string {
	if s.certs == nil {
		return ""
	}
	return s.certs.caFile
}

// TLSConfig returns a new client TLS configuration that trusts only the
// test CA, or nil without TLS.
func (s *SecureServer) TLSConfig() *tls.Config {
	if s.certs == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.certs.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Options returns client options for the user named user (empty for the
// default user, with the server's password) with the server's TLS
// configuration, and the harness's short timeouts.
func (s *SecureServer) Options(user, password string) *redis.Options {
	o := clientOptions(s.Addr())
	o.TLSConfig = s.TLSConfig()
	if user == "" && password == "" {
		password = s.opts.Password
	}
	o.Username, o.Password = user, password
	return o
}

// Client returns a client of the default user (with the server's password
// and TLS configuration), closed with t.Cleanup.
func (s *SecureServer) Client(t testing.TB) *redis.Client {
	return s.ClientAs(t, "", "")
}

// ClientAs returns a client that authenticates as user with password,
// closed with t.Cleanup.
func (s *SecureServer) ClientAs(t testing.TB, user, password string) *redis.Client {
	c := redis.NewClient(s.Options(user, password))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *SecureServer) args() []string {
	args := []string{
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
	}
	if s.certs != nil {
		args = append(args,
			"--port", "0",
			"--tls-port", itoa(s.port),
			"--tls-cert-file", s.certs.certFile,
			"--tls-key-file", s.certs.keyFile,
			"--tls-ca-cert-file", s.certs.caFile,
			"--tls-auth-clients", "no",
		)
	} else {
		args = append(args, "--port", itoa(s.port))
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	return append(args, s.opts.Args...)
}

// Start starts a killed server again on the same address, and waits until
// it answers PING. A fresh server has no data (no persistence).
func (s *SecureServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		return errRunning
	}
	log, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	defer log.Close()
	var offset int64
	if fi, err := log.Stat(); err == nil {
		offset = fi.Size()
	}
	fail := func(err error) error {
		tail := readTail(s.logPath, offset)
		low := strings.ToLower(tail)
		if s.certs != nil && strings.Contains(low, "tls") && (strings.Contains(low, "bad directive") || strings.Contains(low, "not supported")) {
			err = fmt.Errorf("%w: %v", ErrNoTLS, err)
		}
		return &startError{err: err, logPath: s.logPath, tail: tail}
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Stdout, cmd.Stderr = log, log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("redistest: start redis-server: %w", err))
	}
	r := &run{cmd: cmd, done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	if err := s.waitReady(cmd.Process.Pid, r); err != nil {
		_ = cmd.Process.Kill()
		<-r.done
		return fail(fmt.Errorf("redistest: redis-server on %s: %w", s.Addr(), err))
	}
	s.cur = r
	return nil
}

// Kill sends SIGKILL and waits for the process to exit.
func (s *SecureServer) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.cur
	if r == nil {
		return errNotRunning
	}
	s.cur = nil
	_ = r.cmd.Process.Kill()
	<-r.done
	return nil
}

func (s *SecureServer) waitReady(pid int, r *run) error {
	opts := s.Options("", "")
	opts.MaxRetries = -1
	opts.PoolSize = 1
	opts.DialTimeout = 500 * time.Millisecond
	opts.DialerRetries = 1
	c := redis.NewClient(opts)
	defer c.Close()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		var conn net.Conn
		if conn, last = net.DialTimeout("tcp", s.Addr(), 500*time.Millisecond); last == nil {
			_ = conn.Close()
			last = pingPid(c, pid, s.Addr())
		}
		if last == nil {
			return nil
		}
		select {
		case <-r.done:
			return fmt.Errorf("exited before ready: %v", r.err)
		case <-deadline.C:
			return fmt.Errorf("not ready after %v: %w", readyTimeout, last)
		case <-tick.C:
		}
	}
}

// testCerts are the PEM files of a test CA and a server certificate it
// signed.
type testCerts struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

// writeTestCerts generates an ECDSA P-256 CA and a server certificate for
// 127.0.0.1 and localhost, valid for a day, and writes them to dir.
func writeTestCerts(dir string) (*testCerts, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("redistest: CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "redistest server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("redistest: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &testCerts{
		caFile:   filepath.Join(dir, "ca.crt"),
		certFile: filepath.Join(dir, "server.crt"),
		keyFile:  filepath.Join(dir, "server.key"),
		pool:     x509.NewCertPool(),
	}
	c.pool.AddCert(ca)
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{c.caFile, "CERTIFICATE", caDER, 0o644},
		{c.certFile, "CERTIFICATE", der, 0o644},
		{c.keyFile, "PRIVATE KEY", keyDER, 0o600},
	} {
		b := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(f.path, b, f.mode); err != nil {
			return nil, fmt.Errorf("redistest: %w", err)
		}
	}
	return c, nil
}
