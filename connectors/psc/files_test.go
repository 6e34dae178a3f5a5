package psc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/garde-sso/garde/connectors/psc/psctest"
)

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sim, err := psctest.New(psctest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	if _, err := LoadRootCAs(write("ca.pem", sim.CAPEM())); err != nil {
		t.Error(err)
	}
	if _, err := LoadRootCAs(write("junk.pem", []byte("junk"))); err == nil {
		t.Error("junk CA accepted")
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	kf := write("k.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if k, err := LoadPrivateKey(kf); err != nil || !k.(*ecdsa.PrivateKey).Equal(key) {
		t.Errorf("key: %v", err)
	}
	if _, err := LoadPrivateKey(write("no.pem", []byte("x"))); err == nil {
		t.Error("junk key accepted")
	}
	if _, err := LoadClientCertificate(filepath.Join(dir, "none.pem"), kf); err == nil {
		t.Error("missing certificate accepted")
	}
}
