package redistest

import (
	"context"
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
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamgroup/streamgroup/internal/redisproc"
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
	p     *redisproc.Server
	opts  SecureOptions
	certs *testCerts // nil without TLS
}

// StartSecureServer starts a server owned by t (killed with t.Cleanup). It
// needs redis-server on PATH; otherwise it skips or fails as [Client] does.
// When opts.TLS is set and the binary has no TLS support, t is skipped
// with that reason (it fails under STREAMGROUP_REQUIRE_REDIS=1).
func StartSecureServer(t testing.TB, opts *SecureOptions) *SecureServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "StartSecureServer needs redis-server on PATH")
	}
	dir := t.TempDir()
	s := &SecureServer{}
	if opts != nil {
		s.opts = *opts
		s.opts.Args = append([]string(nil), opts.Args...)
	}
	po := &redisproc.Options{Password: s.opts.Password, Args: s.opts.Args}
	if s.opts.TLS {
		var err error
		if s.certs, err = writeTestCerts(dir); err != nil {
			t.Fatalf("redistest: StartSecureServer: %v", err)
		}
		po.TLS = &redisproc.TLS{CertFile: s.certs.certFile, KeyFile: s.certs.keyFile, CAFile: s.certs.caFile, Config: s.TLSConfig()}
	}
	p, err := redisproc.Start(context.Background(), dir, po)
	err = s.noTLS(err)
	if errors.Is(err, ErrNoTLS) {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%v; failing because %s=1", err, EnvRequire)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatalf("redistest: StartSecureServer: %v", err)
	}
	s.p = p
	t.Cleanup(func() { _ = s.Kill() })
	return s
}

// Addr is the server's host:port (its TLS port when it serves TLS).
func (s *SecureServer) Addr() string { return s.p.Addr() }

// LogFile is the path of the server's log.
func (s *SecureServer) LogFile() string { return s.p.LogFile() }

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

// Start starts a killed server again on the same address, and waits until
// it answers PING. A fresh server has no data (no persistence).
func (s *SecureServer) Start() error {
	return s.noTLS(s.p.Start(context.Background()))
}

// Kill sends SIGKILL and waits for the process to exit.
func (s *SecureServer) Kill() error { return s.p.Kill() }

// noTLS wraps [ErrNoTLS] into err when a TLS server did not start because
// the binary lacks TLS support, as its log says.
func (s *SecureServer) noTLS(err error) error {
	se, ok := errors.AsType[*redisproc.StartError](err)
	if !ok || s.certs == nil {
		return err
	}
	low := strings.ToLower(se.Tail)
	if strings.Contains(low, "tls") && (strings.Contains(low, "bad directive") || strings.Contains(low, "not supported")) {
		return fmt.Errorf("%w: %w", ErrNoTLS, err)
	}
	return err
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
