// Package deploy holds Garde's deployment files. Its test keeps the example
// configuration valid: a change to the configuration schema that breaks
// garde.example.yaml fails here rather than in a hospital.
package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/cmd/garde/config"
)

// filePath matches the files the example names under /etc/garde (CA
// bundles, TLS files): the validator checks that they exist, so the test
// creates them in a temporary directory and points the file there.
var filePath = regexp.MustCompile(`/etc/garde/[A-Za-z0-9._/-]+`)

// env holds a plausible value for every ${VAR} of the example.
var env = map[string]string{
	"GARDE_MASTER_KEY":       "q1Xh1m0wK0l3oQ9o6bq4m8b0qfV0n3o3pR4k8wXo0yE=",
	"GARDE_PG_PASSWORD":      "pg-password-from-the-vault",
	"GARDE_REDIS_PASSWORD":   "redis-password-from-the-vault",
	"GARDE_AD_BIND_PASSWORD": "ad-service-account-password",
	"GARDE_ALERT_SECRET":     "alert-webhook-secret-from-the-vault-0123456789",
	// garde.compose.yaml
	"POSTGRES_PASSWORD": "garde-demo-postgres",
	"REDIS_PASSWORD":    "garde-demo-redis",
}

func TestExampleConfigParses(t *testing.T) {
	cfg := parse(t, "garde.example.yaml")
	for _, w := range cfg.Warnings {
		t.Errorf("garde.example.yaml gives a warning: %s", w)
	}
	if len(cfg.Connectors) != 4 || len(cfg.Clients) != 2 || len(cfg.Policies.Applications) != 2 || !cfg.Admin.Enabled() {
		t.Errorf("got %d connectors, %d clients, %d application policies, console %v; want 4, 2, 2, on",
			len(cfg.Connectors), len(cfg.Clients), len(cfg.Policies.Applications), cfg.Admin.Enabled())
	}
}

// TestComposeConfigParses checks the configuration compose.yaml mounts. It
// may warn (plain-text Redis inside the compose network).
func TestComposeConfigParses(t *testing.T) {
	cfg := parse(t, "garde.compose.yaml")
	if cfg.Storage.Durable.Driver != "postgres" || cfg.Storage.Ephemeral.Driver != "redis" {
		t.Errorf("garde.compose.yaml should use postgres and redis, uses %s and %s",
			cfg.Storage.Durable.Driver, cfg.Storage.Ephemeral.Driver)
	}
}

// parse reads a configuration file of this directory as Garde would, with
// the files it names created in a temporary directory and env as the
// environment.
func parse(t *testing.T, name string) *config.Config {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := filePath.ReplaceAllStringFunc(string(data), func(p string) string {
		local := filepath.Join(dir, strings.TrimPrefix(p, "/etc/garde/"))
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			t.Fatal(err)
		}
		content := []byte("placeholder\n")
		if strings.Contains(p, "igc-sante") {
			// The card connector reads its anchors when the file loads.
			content = testCAPEM(t)
		}
		if err := os.WriteFile(local, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return local
	})

	lookup := func(key string) (string, bool) {
		v, ok := env[key]
		if !ok {
			t.Errorf("%s uses ${%s}: give it a value in the test's env", name, key)
		}
		return v, ok
	}
	cfg, err := config.Parse(name, []byte(text), lookup)
	if err != nil {
		t.Fatalf("%s is not valid:\n%v", name, err)
	}
	return cfg
}

// testCAPEM is a self-signed CA certificate, standing for an IGC-Santé
// bundle.
func testCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "AC RACINE IGC-SANTE TEST"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
