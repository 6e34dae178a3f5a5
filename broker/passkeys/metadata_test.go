package passkeys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/descope/virtualwebauthn"
	"github.com/golang-jwt/jwt/v5"
)

// testPKI is a metadata trust anchor and a blob signing certificate.
type testPKI struct {
	roots   *x509.CertPool
	signKey *ecdsa.PrivateKey
	chain   []string // x5c: signing certificate, then intermediates
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Test FIDO Root"},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	signKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "Test MDS signer"},
		NotBefore:    time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2039, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &signKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return testPKI{roots: roots, signKey: signKey, chain: []string{base64.StdEncoding.EncodeToString(leafDER)}}
}

// entry is one MDS3 payload entry for aaguid with a status and UV methods.
func mdsEntry(aaguid, description, status string, uv ...string) map[string]any {
	var alt []any
	for _, m := range uv {
		alt = append(alt, []any{map[string]any{"userVerificationMethod": m}})
	}
	return map[string]any{
		"aaguid": aaguid,
		"metadataStatement": map[string]any{
			"aaguid":                  aaguid,
			"description":             description,
			"schema":                  3,
			"protocolFamily":          "fido2",
			"attestationTypes":        []string{"basic_full"},
			"userVerificationDetails": alt,
		},
		"statusReports":          []any{map[string]any{"status": status, "effectiveDate": "2024-01-01"}},
		"timeOfLastStatusChange": "2024-01-01",
	}
}

// writeBlob signs an MDS3 payload with pki and writes it to a file.
func writeBlob(t *testing.T, pki testPKI, nextUpdate string, entries ...map[string]any) string {
	t.Helper()
	payload := map[string]any{"legalHeader": "test", "no": 42, "nextUpdate": nextUpdate, "entries": entries}
	raw, _ := json.Marshal(payload)
	var claims jwt.MapClaims
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["x5c"] = pki.chain
	signed, err := tok.SignedString(pki.signKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "blob.jwt")
	if err := os.WriteFile(path, []byte(signed+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const revokedAAGUID = "11111111-2222-4333-8444-555555555555"

func TestMetadata(t *testing.T) {
	pki := newTestPKI(t)
	blob := writeBlob(t, pki, "2099-01-01",
		mdsEntry(testAAGUIDString, "Clé de test certifiée", "FIDO_CERTIFIED_L1", "passcode_internal"),
		mdsEntry(revokedAAGUID, "Clé révoquée", "REVOKED"),
	)
	f := newFixture(t, Policy{MetadataFile: blob, MetadataRoots: pki.roots})
	if info := f.svc.MetadataInfo(); !info.Loaded || info.Number != 42 || info.Entries != 2 || info.Stale {
		t.Fatalf("MetadataInfo = %+v", info)
	}

	// Certified model: accepted, named, and its UV method is known.
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{UserHandle: UserHandle(testKey, alice.Subject)})
	rec := f.mustRegister(auth, alice, true)
	if got := f.svc.Model(rec.AAGUID); got != "Clé de test certifiée" {
		t.Fatalf("Model = %q", got)
	}
	res, err := f.passwordless(testRP, auth, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hwk", "user", "pin", "mfa"}; !slices.Equal(res.AMR, want) {
		t.Fatalf("AMR = %v, want %v", res.AMR, want)
	}

	// Revoked model: refused.
	revoked := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	copy(revoked.Aaguid[:], mustUUID(t, revokedAAGUID))
	if _, err := f.register(revoked, bob, false, ""); !errors.Is(err, ErrNotAllowedByPolicy) {
		t.Fatalf("revoked model = %v, want ErrNotAllowedByPolicy", err)
	}

	// Unknown model: accepted unless RequireMetadata.
	unknown := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	unknown.Aaguid = [16]byte{9, 9, 9}
	if _, err := f.register(unknown, bob, false, ""); err != nil {
		t.Fatalf("unknown model without RequireMetadata: %v", err)
	}
	if f.svc.Model(unknown.Aaguid[:]) != "" {
		t.Fatal("Model of an unknown AAGUID")
	}
	strict := newFixture(t, Policy{MetadataFile: blob, MetadataRoots: pki.roots, RequireMetadata: true})
	if _, err := strict.register(unknown, bob, false, ""); !errors.Is(err, ErrNotAllowedByPolicy) {
		t.Fatalf("unknown model with RequireMetadata = %v, want ErrNotAllowedByPolicy", err)
	}
	if _, err := strict.register(newAuthenticator(virtualwebauthn.AuthenticatorOptions{}), bob, false, ""); err != nil {
		t.Fatalf("known model with RequireMetadata: %v", err)
	}
}

// A model revoked after registration stops signing in once the new blob is
// loaded.
func TestMetadataReloadRevokes(t *testing.T) {
	pki := newTestPKI(t)
	blob := writeBlob(t, pki, "2099-01-01", mdsEntry(testAAGUIDString, "Clé", "FIDO_CERTIFIED"))
	f := newFixture(t, Policy{MetadataFile: blob, MetadataRoots: pki.roots})
	auth := newAuthenticator(virtualwebauthn.AuthenticatorOptions{})
	f.mustRegister(auth, alice, false)
	if _, err := f.secondFactor(auth, alice.Subject, 0, 1); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(writeBlob(t, pki, "2099-01-01", mdsEntry(testAAGUIDString, "Clé", "USER_KEY_PHYSICAL_COMPROMISE")))
	if err := os.WriteFile(blob, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ReloadMetadata(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.secondFactor(auth, alice.Subject, 0, 1); !errors.Is(err, ErrNotAllowedByPolicy) {
		t.Fatalf("compromised model = %v, want ErrNotAllowedByPolicy", err)
	}
	// A blob that fails verification leaves the loaded one in place.
	if err := os.WriteFile(blob, []byte("not a jwt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ReloadMetadata(); err == nil {
		t.Fatal("garbage blob accepted")
	}
	if !f.svc.MetadataInfo().Loaded {
		t.Fatal("failed reload dropped the index")
	}
}

func TestMetadataWrongRoot(t *testing.T) {
	pki, other := newTestPKI(t), newTestPKI(t)
	blob := writeBlob(t, pki, "2099-01-01", mdsEntry(testAAGUIDString, "Clé", "FIDO_CERTIFIED"))
	p := Policy{RPID: testRPID, RPName: "Garde", Origins: []string{testOrigin}, MetadataFile: blob, MetadataRoots: other.roots}
	if _, err := New(p, newMemCreds(), newTestEphemeral(t), testKey, nil); err == nil {
		t.Fatal("blob signed under another root accepted")
	}
	// Self-signed signer in x5c: chains to nothing configured.
	self := testPKI{roots: other.roots, signKey: pki.signKey}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &pki.signKey.PublicKey, pki.signKey)
	self.chain = []string{base64.StdEncoding.EncodeToString(der)}
	p.MetadataFile = writeBlob(t, self, "2099-01-01")
	if _, err := New(p, newMemCreds(), newTestEphemeral(t), testKey, nil); err == nil {
		t.Fatal("self-signed blob accepted")
	}
}

func TestMetadataStale(t *testing.T) {
	pki := newTestPKI(t)
	blob := writeBlob(t, pki, "2025-01-01", mdsEntry(testAAGUIDString, "Clé", "FIDO_CERTIFIED"))
	f := newFixture(t, Policy{MetadataFile: blob, MetadataRoots: pki.roots})
	if info := f.svc.MetadataInfo(); !info.Loaded || !info.Stale {
		t.Fatalf("MetadataInfo = %+v, want loaded and stale", info)
	}
	if _, err := f.register(newAuthenticator(virtualwebauthn.AuthenticatorOptions{}), alice, false, ""); err != nil {
		t.Fatalf("stale blob stops registration: %v", err)
	}
}

func TestUVMethods(t *testing.T) {
	pki := newTestPKI(t)
	ids := []string{
		"00000000-0000-4000-8000-000000000001",
		"00000000-0000-4000-8000-000000000002",
		"00000000-0000-4000-8000-000000000003",
		"00000000-0000-4000-8000-000000000004",
	}
	blob := writeBlob(t, pki, "2099-01-01",
		mdsEntry(ids[0], "pin", "FIDO_CERTIFIED", "passcode_internal", "presence_internal"),
		mdsEntry(ids[1], "fingerprint or pin", "FIDO_CERTIFIED", "fingerprint_internal", "passcode_internal"),
		mdsEntry(ids[2], "face", "FIDO_CERTIFIED", "faceprint_internal"),
		mdsEntry(ids[3], "voice", "FIDO_CERTIFIED", "voiceprint_internal"),
	)
	f := newFixture(t, Policy{MetadataFile: blob, MetadataRoots: pki.roots})
	for i, want := range [][]string{{"pin"}, nil, {"face"}, nil} {
		if got := f.svc.uvMethods(mustUUID(t, ids[i])); !slices.Equal(got, want) {
			t.Errorf("%s: uvMethods = %v, want %v", ids[i], got, want)
		}
	}
}

func mustUUID(t *testing.T, s string) []byte {
	t.Helper()
	m, err := parseAAGUIDs("test", []string{s})
	if err != nil {
		t.Fatal(err)
	}
	for id := range m {
		return id[:]
	}
	return nil
}
