package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CPSPKI is an IGC-Santé-shaped PKI for tests: a root ("AC RACINE
// IGC-SANTE TEST"), an intermediate issuing card certificates ("AC
// IGC-SANTE FORT PERSONNES") and their CRLs, as files a card connector's
// configuration names.
type CPSPKI struct {
	Root, Inter         *x509.Certificate
	rootKey, interKey   *ecdsa.PrivateKey
	RootFile, InterFile string
	// CRLFiles are the intermediate's (cards) and the root's
	// (intermediates) CRLs; RevokeCard rewrites the first.
	CRLFiles []string
	serial   int64
	revoked  []*big.Int
}

// CPSCard describes a card certificate to issue.
type CPSCard struct {
	IDNat, Given, Family string
	// Title is the profession label ("Médecin"); OU the structure id of
	// a staff card.
	Title, OU string
}

var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSN    = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGN    = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidTitle = asn1.ObjectIdentifier{2, 5, 4, 12}
	oidOU    = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidC     = asn1.ObjectIdentifier{2, 5, 4, 6}
)

// NewCPSPKI creates the PKI and writes its files in a temporary directory.
func NewCPSPKI(t testing.TB) *CPSPKI {
	t.Helper()
	p := &CPSPKI{serial: 100}
	dir := t.TempDir()
	var err error
	p.rootKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.interKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "AC RACINE IGC-SANTE TEST", Organization: []string{"AGENCE DU NUMERIQUE EN SANTE"}, Country: []string{"FR"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if p.Root, err = createCert(rootTmpl, rootTmpl, &p.rootKey.PublicKey, p.rootKey); err != nil {
		t.Fatal(err)
	}
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "AC IGC-SANTE FORT PERSONNES", Organization: []string{"AGENCE DU NUMERIQUE EN SANTE"}, Country: []string{"FR"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if p.Inter, err = createCert(interTmpl, p.Root, &p.interKey.PublicKey, p.rootKey); err != nil {
		t.Fatal(err)
	}
	p.RootFile = writePEM(t, filepath.Join(dir, "igc-sante-root.pem"), p.Root.Raw)
	p.InterFile = writePEM(t, filepath.Join(dir, "igc-sante-fort-personnes.pem"), p.Inter.Raw)
	p.CRLFiles = []string{filepath.Join(dir, "ACI-FO-PP.crl"), filepath.Join(dir, "ARL.crl")}
	p.writeCRL(t, p.CRLFiles[1], p.Root, p.rootKey, nil)
	p.writeCRL(t, p.CRLFiles[0], p.Inter, p.interKey, nil)
	return p
}

func createCert(tmpl, parent *x509.Certificate, pub any, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func writePEM(t testing.TB, path string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *CPSPKI) writeCRL(t testing.TB, path string, issuer *x509.Certificate, key *ecdsa.PrivateKey, revoked []*big.Int) {
	t.Helper()
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, s := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(now.UnixNano()), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, der, 0o600); err != nil {
		t.Fatal(err)
	}
}

// IssueCard issues a card's authentication certificate (clientAuth), with
// CN, SN and GN in one multi-valued RDN as on CPS cards, and returns it
// with its key, ready for a TLS client.
func (p *CPSPKI) IssueCard(t testing.TB, c CPSCard) tls.Certificate {
	t.Helper()
	p.serial++
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rdns := pkix.RDNSequence{
		{{Type: oidC, Value: "FR"}},
		{{Type: oidO, Value: "CPS TEST"}},
	}
	if c.OU != "" {
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oidOU, Value: c.OU}})
	}
	if c.Title != "" {
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: oidTitle, Value: c.Title}})
	}
	rdns = append(rdns, pkix.RelativeDistinguishedNameSET{
		{Type: oidCN, Value: c.IDNat}, {Type: oidSN, Value: c.Family}, {Type: oidGN, Value: c.Given},
	})
	raw, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), RawSubject: raw,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(3 * 365 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cert, err := createCert(tmpl, p.Inter, &key.PublicKey, p.interKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw, p.Inter.Raw}, PrivateKey: key, Leaf: cert}
}

// RevokeCard adds the card to the intermediate's CRL file (a connector
// reads it again at its next refresh).
func (p *CPSPKI) RevokeCard(t testing.TB, card tls.Certificate) {
	t.Helper()
	p.revoked = append(p.revoked, card.Leaf.SerialNumber)
	p.writeCRL(t, p.CRLFiles[0], p.Inter, p.interKey, p.revoked)
}
