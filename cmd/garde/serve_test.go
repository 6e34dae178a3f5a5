package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestServeHTTPS runs `garde serve` with a TLS certificate from the
// configuration: Garde answers over HTTPS, metrics answer on their own
// listener, and SIGTERM shuts it down cleanly.
func TestServeHTTPS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	port, mport := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "garde.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`issuer: https://localhost:%d
listen:
  address: "127.0.0.1:%d"
  metrics_address: "127.0.0.1:%d"
  tls: {cert_file: %s, key_file: %s}
master_key: {file: %s, generate_if_missing: true}
storage:
  durable: {driver: sqlite, sqlite_path: %s}
connectors:
  - id: local
    type: static
    static:
      people:
        - username: a
          password_hash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$JoudYuwo5d+ejbdMzWJQUHdSExa6WWkMAS72fZ6NlAw"
`, port, port, mport, certFile, keyFile, filepath.Join(dir, "master.key"), filepath.Join(dir, "garde.db"))), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"serve", "--config", cfg}, strings.NewReader(""), io.Discard, &stderr) }()

	pool := x509.NewCertPool()
	pool.AddCert(tmpl)
	cert, _ := x509.ParseCertificate(der)
	pool.AddCert(cert)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	var resp *http.Response
	for i := 0; i < 100; i++ {
		resp, err = client.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", port))
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("garde did not answer over HTTPS: %v\n%s", err, stderr.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("readyz over HTTPS: %d", resp.StatusCode)
	}
	// The HSTS header is sent over HTTPS.
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=") {
		t.Errorf("no HSTS over HTTPS: %q", h)
	}
	// The metrics listener starts beside the main one: give it a moment.
	var m *http.Response
	for i := 0; i < 100; i++ {
		if m, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if !strings.Contains(string(body), "garde_http_requests_total") {
		t.Errorf("metrics lack garde_http_requests_total")
	}
	// Plain HTTP on the TLS port is refused.
	if r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port)); err == nil && r.StatusCode == http.StatusOK {
		t.Errorf("plain HTTP answered on the TLS listener")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
}
