package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// cpsFiles writes a PEM root, a PEM intermediate, a DER CRL, a file that
// is not PEM and a PEM file holding no certificate.
type cpsFiles struct{ root, inter, crl, notPEM, noCert string }

func writeCPSFiles(t *testing.T) cpsFiles {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(cn string) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	root, inter := mk("TEST AC RACINE IGC-SANTE FORT"), mk("TEST AC IGC-SANTE FORT PERSONNES")
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now(), NextUpdate: time.Now().Add(time.Hour)}, root, key)
	if err != nil {
		t.Fatal(err)
	}
	f := cpsFiles{filepath.Join(dir, "roots.pem"), filepath.Join(dir, "inter.pem"), filepath.Join(dir, "ACI-FO-PP.crl"), filepath.Join(dir, "chain.p7b"), filepath.Join(dir, "key.pem")}
	write := func(name string, data []byte) {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(f.root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}))
	write(f.inter, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw}))
	write(f.crl, crl)
	write(f.notPEM, []byte{0x30, 0x82, 0x01, 0x00})
	write(f.noCert, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")}))
	cpsListenTLS = "listen:\n  tls: {cert_file: " + f.root + ", key_file: " + f.noCert + "}\n"
	return f
}

// cpsConnector appends a cps connector to base at line 9; the body starts
// at line 12.
func cpsConnector(body string) string {
	return base + "  - id: carte\n    type: cps\n    cps:\n" + body + cpsListenTLS
}

// cpsListenTLS makes Garde terminate TLS, which a card listener needs; set
// by writeCPSFiles (the files must exist), after the connector so that line
// numbers in the connector do not move.
var cpsListenTLS string

func TestCPSValid(t *testing.T) {
	f := writeCPSFiles(t)
	yml := cpsConnector(`      anchors_files: [` + f.root + `]
      intermediates_files: [` + f.inter + `]
      policy_oids: [1.2.250.1.213.1.7.1.1.1.5.1]
      crl_files: [` + f.crl + `]
      crl_urls: [http://igc-sante.esante.gouv.fr/CRL/ACI-FO-PP.crl]
      listen_address: ":8443"
      proxy:
        trusted: [10.0.0.5, 10.1.0.0/16]
        header: X-SSL-Client-Cert
        format: pem_urlencoded
`)
	cfg, err := Parse("cps.yaml", []byte(yml), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Connectors[1].CPS
	if len(c.Anchors) != 1 || c.Anchors[0].Subject.CommonName != "TEST AC RACINE IGC-SANTE FORT" || len(c.Intermediates) != 1 {
		t.Errorf("certificates: %v %v", c.Anchors, c.Intermediates)
	}
	if c.Revocation != "crl" || c.Level != "high" || c.RefreshEvery != time.Hour || !slices.Equal(c.AMR, []string{"sc", "pin", "hwk", "mfa"}) || c.AllowStaleCRL {
		t.Errorf("defaults: %+v", c)
	}
	if c.Proxy == nil || len(c.Proxy.Trusted) != 2 || c.Proxy.Trusted[0].Bits() != 32 || c.Proxy.Format != "pem_urlencoded" || c.ListenAddress != ":8443" {
		t.Errorf("proxy: %+v", c.Proxy)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w, ".cps") {
			t.Errorf("warning: %q", w)
		}
	}
}

func TestCPSErrors(t *testing.T) {
	f := writeCPSFiles(t)
	anchors := "      anchors_files: [" + f.root + "]\n"
	listen := "      listen_address: \":8443\"\n"
	cases := []struct {
		name string
		body string
		want []string
	}{
		{"no anchors", listen, []string{`cps.yaml:12:7: connectors[1].cps.anchors_files: is required`}},
		{"anchors file missing", "      anchors_files: [/nonexistent/igc.pem]\n" + listen,
			[]string{`cps.yaml:12:23: connectors[1].cps.anchors_files[0]: file "/nonexistent/igc.pem" does not exist`}},
		{"anchors file is a .p7b", "      anchors_files: [" + f.notPEM + "]\n" + listen,
			[]string{`connectors[1].cps.anchors_files[0]: "` + f.notPEM + `" holds no PEM certificate; expected -----BEGIN CERTIFICATE----- blocks (convert the IGC-Santé .p7b with: openssl pkcs7`}},
		{"intermediates hold no certificate", anchors + "      intermediates_files: [" + f.noCert + "]\n" + listen,
			[]string{`connectors[1].cps.intermediates_files[0]: "` + f.noCert + `" holds no PEM certificate`}},
		{"bad policy OID", anchors + listen + "      policy_oids: [EL-PP-CL-AUTH]\n",
			[]string{`cps.yaml:14:21: connectors[1].cps.policy_oids[0]: "EL-PP-CL-AUTH" is not an OID`}},
		{"bad revocation", anchors + listen + "      revocation: crls\n",
			[]string{`cps.yaml:14:19: connectors[1].cps.revocation: "crls" is not a revocation mode; expected one of crl, crl_ocsp, ocsp, none (did you mean "crl"?)`}},
		{"CRL file is not a CRL", anchors + listen + "      crl_files: [" + f.root + "]\n",
			[]string{`connectors[1].cps.crl_files[0]: "` + f.root + `" is not a CRL`}},
		{"CRL file missing", anchors + listen + "      crl_files: [/nonexistent/ACI-FO-PP.crl]\n",
			[]string{`connectors[1].cps.crl_files[0]: file "/nonexistent/ACI-FO-PP.crl" does not exist`}},
		{"ldap CRL URL", anchors + listen + "      crl_urls: [\"ldap://igc/cn=crl\"]\n",
			[]string{`connectors[1].cps.crl_urls[0]: "ldap://igc/cn=crl" is not an http(s) URL`}},
		{"ocsp with CRL files", anchors + listen + "      revocation: ocsp\n      crl_files: [" + f.crl + "]\n",
			[]string{`connectors[1].cps.revocation: is ocsp but crl_files or crl_urls are set`}},
		{"refresh too often", anchors + listen + "      refresh_every: 10s\n",
			[]string{`cps.yaml:14:22: connectors[1].cps.refresh_every: 10s is out of range; expected 1m to 24h`}},
		{"bad level", anchors + listen + "      level: eidas3\n",
			[]string{`connectors[1].cps.level: "eidas3" is not a level of assurance; expected one of low, substantial, high`}},
		{"bad amr", anchors + listen + "      amr: [sc, smartcard]\n",
			[]string{`cps.yaml:14:17: connectors[1].cps.amr[1]: "smartcard" is not a known amr value (RFC 8176)`}},
		{"bad listen address", anchors + "      listen_address: \"8443\"\n",
			[]string{`connectors[1].cps.listen_address: "8443" is not host:port`}},
		{"card listener on the main listener", anchors + "      listen_address: \"127.0.0.1:5556\"\n",
			[]string{`connectors[1].cps.listen_address: "127.0.0.1:5556" is also listen.address`}},
		{"neither listener nor proxy", anchors,
			[]string{`cps.yaml:12:7: connectors[1].cps: neither listen_address nor proxy is set`}},
		{"proxy trusting everyone", anchors + "      proxy: {trusted: [\"::/0\"], header: X-SSL-Client-Cert, format: pem}\n",
			[]string{`connectors[1].cps.proxy.trusted[0]: ::/0 trusts every address, so anyone could forge a card certificate header`}},
		{"proxy incomplete", anchors + "      proxy: {trusted: [10.0.0.1/8]}\n", []string{
			`connectors[1].cps.proxy.trusted[0]: 10.0.0.1/8 has host bits set; expected 10.0.0.0/8`,
			`connectors[1].cps.proxy.header: is required`,
			`connectors[1].cps.proxy.format: is required; expected one of pem_urlencoded, base64_der, pem`}},
		{"proxy bad header and format", anchors + "      proxy: {trusted: [10.0.0.5], header: \"X SSL\", format: der}\n", []string{
			`connectors[1].cps.proxy.header: "X SSL" is not a header name`,
			`connectors[1].cps.proxy.format: "der" is not a certificate header format`}},
		{"proxy bad CIDR", anchors + "      proxy: {trusted: [10.0.0.0/33], header: X-SSL-Client-Cert, format: pem}\n",
			[]string{`connectors[1].cps.proxy.trusted[0]:`}},
		{"unknown key", anchors + listen + "      anchor_files: [x]\n",
			[]string{`cps.yaml:14:7: connectors[1].cps.anchor_files: unknown key "anchor_files"; did you mean "anchors_files"?`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("cps.yaml", []byte(cpsConnector(tc.body)), testEnv())
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain\n  %s\ngot:\n  %s", w, strings.ReplaceAll(err.Error(), "\n", "\n  "))
				}
			}
			var list Errors
			if !errors.As(err, &list) || len(list) != len(tc.want) {
				t.Errorf("want exactly %d problems, got:\n%v", len(tc.want), err)
			}
		})
	}
}

func TestCPSWarnings(t *testing.T) {
	f := writeCPSFiles(t)
	yml := cpsConnector("      anchors_files: [" + f.root + "]\n      listen_address: \":8443\"\n      revocation: none\n      allow_stale_crl: true\n")
	cfg, err := Parse("cps.yaml", []byte(yml), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Join(cfg.Warnings, "\n")
	for _, want := range []string{"connectors[1].cps.revocation: none: revoked cards", "connectors[1].cps.allow_stale_crl: a card revoked"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q lack %q", w, want)
		}
	}
}

func TestCPSBlockRequired(t *testing.T) {
	_, err := Parse("cps.yaml", []byte(base+"  - id: carte\n    type: cps\n"), testEnv())
	if err == nil || !strings.Contains(err.Error(), "connectors[1].cps: is required for type cps; expected cps: {anchors_files:") {
		t.Fatalf("err = %v", err)
	}
}

func TestCPSListenerNeedsTLS(t *testing.T) {
	f := writeCPSFiles(t)
	yml := base + "  - id: carte\n    type: cps\n    cps:\n      anchors_files: [" + f.root + "]\n      listen_address: \":8443\"\n"
	_, err := Parse("cps.yaml", []byte(yml), testEnv())
	if err == nil || !strings.Contains(err.Error(), `cps.yaml:13:23: connectors[1].cps.listen_address: needs Garde to terminate TLS itself`) {
		t.Fatalf("card listener without listen.tls: %v", err)
	}
}
