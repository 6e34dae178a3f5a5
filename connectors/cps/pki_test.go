package cps

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/garde-sso/garde/internal/testutil"
)

// An IGC-Santé-shaped test PKI: a root, a "FORT PERSONNES" intermediate,
// card certificates with the subject layout of real CPS cards, and CRLs
// served over HTTP.

var (
	oidSmartCardLogon = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}
	testPolicy        = "1.2.250.1.213.1.7.1.1.1.5.1"
	t0                = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	serialCounter     atomic.Int64
)

type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func nextSerial() *big.Int { return big.NewInt(1000 + serialCounter.Add(1)) }

func igcName(cn string) pkix.Name {
	return pkix.Name{Country: []string{"FR"}, Organization: []string{"ASIP-SANTE"}, OrganizationalUnit: []string{"IGC-SANTE"}, CommonName: cn}
}

func newRoot(t testing.TB, cn string) *ca {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               igcName(cn),
		NotBefore:             t0.AddDate(-5, 0, 0),
		NotAfter:              t0.AddDate(15, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ca{cert, key}
}

func (p *ca) intermediate(t testing.TB, cn, crlURL string) *ca {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               igcName(cn),
		NotBefore:             t0.AddDate(-3, 0, 0),
		NotAfter:              t0.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	if crlURL != "" {
		tmpl.CRLDistributionPoints = []string{crlURL}
	}
	return &ca{p.sign(t, tmpl, key), key}
}

func (p *ca) sign(t testing.TB, tmpl *x509.Certificate, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// cardOpts describes a card certificate; the zero value of each field
// takes the default of a pharmacist's CPS card.
type cardOpts struct {
	rdns      pkix.RDNSequence // whole subject; default built from the fields below
	cn        string
	sn, gn    string
	title, ou string
	upn       string // "-" for none
	notBefore time.Time
	notAfter  time.Time
	eku       []x509.ExtKeyUsage
	policies  []string
	crlURL    string // "-" for none
	ocspURL   string
	isCA      bool
}

func attr(oid asn1.ObjectIdentifier, v string) pkix.AttributeTypeAndValue {
	return pkix.AttributeTypeAndValue{Type: oid, Value: v}
}

func (o cardOpts) subject() pkix.RDNSequence {
	if o.rdns != nil {
		return o.rdns
	}
	rdns := pkix.RDNSequence{{attr(asn1.ObjectIdentifier{2, 5, 4, 6}, "FR")}}
	if o.ou != "" {
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{attr(oidOU, o.ou)})
	}
	if o.title != "" {
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{attr(oidTitle, o.title)})
	}
	// The multi-valued RDN of CPS cards: SN=...+CN=idNat+GN=...
	return append(rdns, pkix.RelativeDistinguishedNameSET{attr(oidSN, o.sn), attr(oidCN, o.cn), attr(oidGN, o.gn)})
}

// upnSAN builds a subjectAltName holding one UPN otherName.
func upnSAN(t testing.TB, upns ...string) pkix.Extension {
	t.Helper()
	var names []byte
	for _, upn := range upns {
		val, err := asn1.MarshalWithParams(upn, "utf8")
		if err != nil {
			t.Fatal(err)
		}
		oid, _ := asn1.Marshal(oidUPN)
		explicit, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: val})
		on, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, explicit...)})
		names = append(names, on...)
	}
	// An rfc822Name too, as cards may carry one: it must be skipped.
	names = append(names, mustMarshal(t, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte("carole@example.fr")})...)
	der := mustMarshal(t, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: names})
	return pkix.Extension{Id: oidSAN, Value: der}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type card struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (p *ca) card(t testing.TB, o cardOpts) card {
	t.Helper()
	if o.cn == "" {
		o.cn = "899700075122"
	}
	if o.sn == "" {
		o.sn = "PHARMACH0007512"
	}
	if o.gn == "" {
		o.gn = "CAROLE"
	}
	if o.upn == "" {
		o.upn = "8.99700075122@carte-cps.fr"
	}
	if o.notBefore.IsZero() {
		o.notBefore = t0.AddDate(0, -6, 0)
	}
	if o.notAfter.IsZero() {
		o.notAfter = t0.AddDate(3, 0, 0)
	}
	if o.eku == nil {
		o.eku = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if o.policies == nil {
		o.policies = []string{testPolicy}
	}
	raw, err := asn1.Marshal(o.subject())
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       nextSerial(),
		RawSubject:         raw,
		NotBefore:          o.notBefore,
		NotAfter:           o.notAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        o.eku,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidSmartCardLogon},
	}
	if o.isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	for _, s := range o.policies {
		oid, err := x509.ParseOID(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.Policies = append(tmpl.Policies, oid)
	}
	if o.upn != "-" {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, upnSAN(t, o.upn))
	}
	if o.crlURL != "-" {
		tmpl.CRLDistributionPoints = []string{o.crlURL}
	}
	if o.ocspURL != "" {
		tmpl.OCSPServer = []string{o.ocspURL}
	}
	key := newKey(t)
	return card{p.sign(t, tmpl, key), key}
}

// crl returns a DER CRL signed by the CA.
func (p *ca) crl(t testing.TB, thisUpdate, nextUpdate time.Time, revoked ...*x509.Certificate) []byte {
	t.Helper()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(thisUpdate.Unix()),
		ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate,
	}
	for _, c := range revoked {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: thisUpdate.Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// crlServer serves CRLs by path and counts requests.
type crlServer struct {
	*httptest.Server
	mu   sync.Mutex
	crls map[string][]byte
	hits atomic.Int64
}

func newCRLServer(t testing.TB) *crlServer {
	s := &crlServer{crls: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		b, ok := s.crls[r.URL.Path]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *crlServer) set(path string, der []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crls[path] = der
}

// fixture is a PKI, its CRL server and a clock.
type fixture struct {
	clock   *testutil.Clock
	root    *ca
	inter   *ca
	srv     *crlServer
	leafCRL string // the intermediate's CRL (cards)
	rootCRL string // the root's CRL (intermediates)
}

const (
	leafCRLPath = "/CRL/ACI-FO-PP.crl"
	rootCRLPath = "/CRL/ARL-FO.crl"
)

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{clock: testutil.NewClock(t0), srv: newCRLServer(t)}
	f.leafCRL = f.srv.URL + leafCRLPath
	f.rootCRL = f.srv.URL + rootCRLPath
	f.root = newRoot(t, "TEST AC RACINE IGC-SANTE FORT")
	f.inter = f.root.intermediate(t, "TEST AC IGC-SANTE FORT PERSONNES", f.rootCRL)
	f.publish(t)
	return f
}

// publish serves fresh CRLs (valid 24h from now) revoking the given
// certificates.
func (f *fixture) publish(t testing.TB, revoked ...*x509.Certificate) {
	t.Helper()
	now := f.clock.Now()
	var leaves, inters []*x509.Certificate
	for _, c := range revoked {
		if c.IsCA {
			inters = append(inters, c)
		} else {
			leaves = append(leaves, c)
		}
	}
	f.srv.set(leafCRLPath, f.inter.crl(t, now.Add(-time.Hour), now.Add(24*time.Hour), leaves...))
	f.srv.set(rootCRLPath, f.root.crl(t, now.Add(-time.Hour), now.Add(24*time.Hour), inters...))
}

func (f *fixture) card(t testing.TB, o cardOpts) card {
	t.Helper()
	if o.crlURL == "" {
		o.crlURL = f.leafCRL
	}
	return f.inter.card(t, o)
}

func (f *fixture) options() Options {
	return Options{
		ConnectorID:   "cps",
		Anchors:       []*x509.Certificate{f.root.cert},
		Intermediates: []*x509.Certificate{f.inter.cert},
		CRLURLs:       []string{f.leafCRL},
		HTTPClient:    f.srv.Client(),
		Clock:         f.clock.Now,
	}
}

// connector builds a connector and runs the start-up Refresh, which must
// succeed.
func (f *fixture) connector(t testing.TB, mods ...func(*Options)) *Connector {
	t.Helper()
	o := f.options()
	for _, m := range mods {
		m(&o)
	}
	c, err := New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return c
}

var (
	randReader = rand.Reader
	bigOne     = big.NewInt(1)
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func proxies(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}
