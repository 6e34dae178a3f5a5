package saml

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/memory"
	"github.com/garde-sso/garde/broker/store/sqlite"
	"github.com/garde-sso/garde/broker/throttle"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
	"github.com/garde-sso/garde/web"
)

// fixture is a Garde IdP on a real HTTP server, with the real sign-in flow
// and stores, and a SAML SP (crewjam's ServiceProvider) that crafts
// requests, honest or not.
type fixture struct {
	t       *testing.T
	idp     *IdP
	srv     *httptest.Server
	sp      *crewjam.ServiceProvider
	other   *rsa.PrivateKey // a key the SP never registered
	durable interface {
		store.AuditLog
	}
	rec   *audit.Recorder
	clock *testutil.Clock
}

const spEntity = "https://dpi.hopital.test/saml/metadata"
const spACS = "https://dpi.hopital.test/saml/acs"

func keyPair(t testing.TB) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return key, c
}

// spMetadataXML is the SP's metadata: AuthnRequestsSigned, one POST ACS,
// a redirect SLO, its signing certificate.
func spMetadataXML(t testing.TB, cert *x509.Certificate, signed bool) []byte {
	yes := signed
	idx := true
	ed := crewjam.EntityDescriptor{
		EntityID: spEntity,
		SPSSODescriptors: []crewjam.SPSSODescriptor{{
			SSODescriptor: crewjam.SSODescriptor{
				RoleDescriptor: crewjam.RoleDescriptor{
					ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
					KeyDescriptors: []crewjam.KeyDescriptor{{Use: "signing", KeyInfo: crewjam.KeyInfo{X509Data: crewjam.X509Data{
						X509Certificates: []crewjam.X509Certificate{{Data: base64.StdEncoding.EncodeToString(cert.Raw)}}}}}},
				},
				SingleLogoutServices: []crewjam.Endpoint{{Binding: BindingRedirect, Location: "https://dpi.hopital.test/saml/slo"}},
			},
			AuthnRequestsSigned:       &yes,
			AssertionConsumerServices: []crewjam.IndexedEndpoint{{Binding: BindingPOST, Location: spACS, Index: 1, IsDefault: &idx}},
		}},
	}
	b, err := xml.Marshal(ed)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	clock := testutil.NewClock(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	eph := memory.New(clock.Now)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := audit.New(db, logger, clock.Now, 0)
	t.Cleanup(func() { _ = rec.Close(context.Background()) })
	pages, err := web.NewRenderer(web.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	sessions := session.NewManager(eph, 4*time.Hour, 30*time.Minute, clock.Now)
	engine := flow.New(flow.Options{
		Ephemeral: eph, Sessions: sessions, Throttle: throttle.New(eph, 5, 50, 15*time.Minute),
		Audit: rec, Pages: pages, CSRF: web.NewCSRF(bytes.Repeat([]byte{1}, 32)), MACKey: bytes.Repeat([]byte{2}, 32),
		ResumePaths: map[string]string{Protocol: PathResume}, Clock: clock.Now, Logger: logger,
	})
	spKey, spCert := keyPair(t)
	mdFile := filepath.Join(t.TempDir(), "sp.xml")
	if err := os.WriteFile(mdFile, spMetadataXML(t, spCert, true), 0o600); err != nil {
		t.Fatal(err)
	}
	idpKey, idpCert := keyPair(t)
	f := &fixture{t: t, rec: rec, durable: db, clock: clock}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.idp.Handler().ServeHTTP(w, r) }))
	t.Cleanup(f.srv.Close)
	f.idp, err = New(ctx, Options{
		BaseURL: f.srv.URL, Key: idpKey, Certificate: idpCert,
		ServiceProviders: []ServiceProvider{{EntityID: spEntity, Name: "DPI", MetadataFile: mdFile, SignResponse: true, SignAssertion: true}},
		Flow:             engine, Sessions: sessions, Ephemeral: eph, Audit: rec, Pages: pages,
		PairwiseKey: bytes.Repeat([]byte{3}, 32), Clock: clock.Now, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.idp.sps[spEntity].md.Load() == nil {
		t.Fatalf("SP metadata did not load: %v", *f.idp.sps[spEntity].lastErr.Load())
	}
	acs, _ := url.Parse(spACS)
	md, _ := url.Parse(spEntity)
	f.sp = &crewjam.ServiceProvider{
		EntityID: spEntity, Key: spKey, Certificate: spCert, AcsURL: *acs, MetadataURL: *md,
		IDPMetadata: f.idp.Metadata(), SignatureMethod: dsig.RSASHA256SignatureMethod,
		AuthnNameIDFormat: crewjam.UnspecifiedNameIDFormat, Clock: dsig.NewFakeClockAt(clock.Now()),
	}
	f.other, _ = keyPair(t)
	return f
}

// authnRequest is an honest request, IssueInstant now.
func (f *fixture) authnRequest() *crewjam.AuthnRequest {
	f.t.Helper()
	req, err := f.sp.MakeAuthenticationRequest(f.srv.URL+PathSSO, crewjam.HTTPRedirectBinding, crewjam.HTTPPostBinding)
	if err != nil {
		f.t.Fatal(err)
	}
	req.IssueInstant = f.clock.Now()
	// crewjam signs it already; each test signs (or not) what it sends.
	req.Signature = nil
	return req
}

// redirect sends a request with the HTTP-Redirect binding, signed by key
// (nil: unsigned) with sigAlg.
func (f *fixture) redirect(xmlBytes []byte, key *rsa.PrivateKey, sigAlg string) *http.Response {
	f.t.Helper()
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = w.Write(xmlBytes)
	_ = w.Close()
	q := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes())) + "&RelayState=rs"
	if key != nil {
		q += "&SigAlg=" + url.QueryEscape(sigAlg)
		sig := signQuery(f.t, key, sigAlg, q)
		q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	}
	return f.get(f.srv.URL + PathSSO + "?" + q)
}

func (f *fixture) get(u string) *http.Response {
	f.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// post sends a request with the HTTP-POST binding.
func (f *fixture) post(path string, xmlBytes []byte) *http.Response {
	f.t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(f.srv.URL+path, url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(xmlBytes)}})
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

// signedXML signs an element (enveloped) with key, as an SP would.
func signedXML(t testing.TB, el *etree.Element, key *rsa.PrivateKey, cert *x509.Certificate, alg string) *etree.Element {
	t.Helper()
	ctx, err := dsig.NewSigningContext(key, [][]byte{cert.Raw})
	if err != nil {
		t.Fatal(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(alg); err != nil {
		t.Fatal(err)
	}
	out, err := ctx.SignEnveloped(el)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func toBytes(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func body(t testing.TB, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// lastRefusal returns the reason of the last saml.request_refused event.
func (f *fixture) lastRefusalDetail() string {
	_ = f.rec.Flush(context.Background())
	evs, _ := f.durable.ListAuditEvents(context.Background(), store.AuditQuery{Type: EventRequestRefused, Limit: 100})
	if len(evs) == 0 {
		return ""
	}
	return evs[len(evs)-1].Details["error"]
}

func (f *fixture) lastRefusal() string {
	f.t.Helper()
	if err := f.rec.Flush(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	evs, err := f.durable.ListAuditEvents(context.Background(), store.AuditQuery{Type: EventRequestRefused, Limit: 100})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(evs) == 0 {
		return ""
	}
	return evs[len(evs)-1].Reason
}

var samlResponseRE = regexp.MustCompile(`name="SAMLResponse" value="([^"]*)"`)
var actionRE = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)

// statusResponse decodes the status Response a page posts to the SP.
func statusResponse(t testing.TB, page string) (action string, r crewjam.Response) {
	t.Helper()
	m := samlResponseRE.FindStringSubmatch(page)
	a := actionRE.FindStringSubmatch(page)
	if m == nil || a == nil {
		t.Fatalf("expected a SAML Response form:\n%s", page)
	}
	raw, _ := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err := xml.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return html.UnescapeString(a[1]), r
}

func TestHonestRequestStartsSignIn(t *testing.T) {
	f := newFixture(t)
	req := f.authnRequest()
	resp := f.redirect(toBytes(t, req.Element()), f.sp.Key.(*rsa.PrivateKey), algRSASHA256)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?flow=") {
		t.Fatalf("expected a redirect to the login page, got %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body(t, resp))
	}
	// POST binding, enveloped signature.
	req = f.authnRequest()
	el := signedXML(t, req.Element(), f.sp.Key.(*rsa.PrivateKey), f.sp.Certificate, dsig.RSASHA256SignatureMethod)
	if resp := f.post(PathSSO, toBytes(t, el)); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST binding: got %d\n%s", resp.StatusCode, body(t, resp))
	}
}

// TestRefusedRequests is the negative suite: each attack fails, with the
// reason in the audit trail.
func TestRefusedRequests(t *testing.T) {
	type tc struct {
		name   string
		send   func(f *fixture) *http.Response
		status int    // HTTP status of an error page; 0 for a SAML status response
		saml   string // second-level status of the Response to the registered ACS
		reason string
	}
	key := func(f *fixture) *rsa.PrivateKey { return f.sp.Key.(*rsa.PrivateKey) }
	cases := []tc{
		{"unsigned redirect request", func(f *fixture) *http.Response {
			return f.redirect(toBytes(t, f.authnRequest().Element()), nil, "")
		}, 400, "", "signature_invalid"},
		{"unsigned POST request", func(f *fixture) *http.Response {
			return f.post(PathSSO, toBytes(t, f.authnRequest().Element()))
		}, 400, "", "signature_invalid"},
		{"redirect signed with another key", func(f *fixture) *http.Response {
			return f.redirect(toBytes(t, f.authnRequest().Element()), f.other, algRSASHA256)
		}, 400, "", "signature_invalid"},
		{"POST signed with another key and its certificate", func(f *fixture) *http.Response {
			k, c := keyPair(t)
			return f.post(PathSSO, toBytes(t, signedXML(t, f.authnRequest().Element(), k, c, dsig.RSASHA256SignatureMethod)))
		}, 400, "", "signature_invalid"},
		{"SHA-1 redirect signature", func(f *fixture) *http.Response {
			return f.redirect(toBytes(t, f.authnRequest().Element()), key(f), algRSASHA1)
		}, 400, "", "signature_invalid"},
		{"SHA-1 enveloped signature", func(f *fixture) *http.Response {
			return f.post(PathSSO, toBytes(t, signedXML(t, f.authnRequest().Element(), key(f), f.sp.Certificate, dsig.RSASHA1SignatureMethod)))
		}, 400, "", "signature_invalid"},
		{"tampered after signing", func(f *fixture) *http.Response {
			el := signedXML(t, f.authnRequest().Element(), key(f), f.sp.Certificate, dsig.RSASHA256SignatureMethod)
			el.CreateAttr("ForceAuthn", "true")
			return f.post(PathSSO, toBytes(t, el))
		}, 400, "", "signature_invalid"},
		{"ACS URL not registered", func(f *fixture) *http.Response {
			req := f.authnRequest()
			req.AssertionConsumerServiceURL = "https://evil.example/acs"
			return f.redirect(toBytes(t, req.Element()), key(f), algRSASHA256)
		}, 400, "", "acs_not_registered"},
		{"wrong Destination", func(f *fixture) *http.Response {
			req := f.authnRequest()
			req.Destination = "https://other-idp.example/sso"
			return f.redirect(toBytes(t, req.Element()), key(f), algRSASHA256)
		}, 0, "", "destination"},
		{"IssueInstant an hour old", func(f *fixture) *http.Response {
			req := f.authnRequest()
			req.IssueInstant = f.clock.Now().Add(-time.Hour)
			return f.redirect(toBytes(t, req.Element()), key(f), algRSASHA256)
		}, 0, crewjam.StatusRequestDenied, "clock_skew"},
		{"IssueInstant in the future", func(f *fixture) *http.Response {
			req := f.authnRequest()
			req.IssueInstant = f.clock.Now().Add(10 * time.Minute)
			return f.redirect(toBytes(t, req.Element()), key(f), algRSASHA256)
		}, 0, crewjam.StatusRequestDenied, "clock_skew"},
		{"replayed request", func(f *fixture) *http.Response {
			b := toBytes(t, f.authnRequest().Element())
			if r := f.redirect(b, key(f), algRSASHA256); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("first use refused: %d", r.StatusCode)
			}
			return f.redirect(b, key(f), algRSASHA256)
		}, 0, crewjam.StatusRequestDenied, "replay"},
		{"NameID format the SP is not configured for", func(f *fixture) *http.Response {
			req := f.authnRequest()
			email := FormatEmail
			req.NameIDPolicy.Format = &email
			return f.redirect(toBytes(t, req.Element()), key(f), algRSASHA256)
		}, 0, crewjam.StatusInvalidNameIDPolicy, "name_id_policy"},
		{"unknown authentication context", func(f *fixture) *http.Response {
			req := f.authnRequest()
			req.RequestedAuthnContext = &crewjam.RequestedAuthnContext{Comparison: "exact", AuthnContextClassRef: "urn:example:unknown"}
			return f.redirect(toBytes(t, req.Element()), key(f), algRSASHA256)
		}, 0, crewjam.StatusNoAuthnContext, "authn_context"},
		{"DOCTYPE", func(f *fixture) *http.Response {
			b := toBytes(t, f.authnRequest().Element())
			b = append([]byte(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>`), b...)
			return f.redirect(b, key(f), algRSASHA256)
		}, 400, "", "malformed"},
		{"deflate bomb", func(f *fixture) *http.Response {
			b := append([]byte("<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">"), bytes.Repeat([]byte(" "), 10<<20)...)
			return f.redirect(b, nil, "")
		}, 400, "", "malformed"},
		{"signature wrapping: signed request inside an unsigned one", func(f *fixture) *http.Response {
			// The honest signed request hides in an Extensions element of
			// a forged request that names another ACS.
			signed := signedXML(t, f.authnRequest().Element(), key(f), f.sp.Certificate, dsig.RSASHA256SignatureMethod)
			forged := f.authnRequest()
			forged.ID = signed.SelectAttrValue("ID", "")
			forged.AssertionConsumerServiceURL = "https://evil.example/acs"
			el := forged.Element()
			ext := el.CreateElement("samlp:Extensions")
			ext.AddChild(signed)
			return f.post(PathSSO, toBytes(t, el))
		}, 400, "", "malformed"},
		{"signature wrapping: signature references another element", func(f *fixture) *http.Response {
			// The forged root carries the signature of the honest request,
			// which sits elsewhere in the document with its own ID.
			signed := signedXML(t, f.authnRequest().Element(), key(f), f.sp.Certificate, dsig.RSASHA256SignatureMethod)
			// goxmldsig appends the signature without reparenting it:
			// filter the token list rather than RemoveChild.
			var sig *etree.Element
			var kept []etree.Token
			for _, tok := range signed.Child {
				if c, ok := tok.(*etree.Element); ok && c.Tag == "Signature" {
					sig = c.Copy()
					continue
				}
				kept = append(kept, tok)
			}
			signed.Child = kept
			forged := f.authnRequest()
			forged.ForceAuthn = nil
			el := forged.Element()
			el.InsertChildAt(1, sig)
			ext := el.CreateElement("samlp:Extensions")
			ext.AddChild(signed)
			return f.post(PathSSO, toBytes(t, el))
		}, 400, "", "signature_invalid"},
		{"duplicated Issuer", func(f *fixture) *http.Response {
			el := f.authnRequest().Element()
			iss := el.FindElement("./Issuer").Copy()
			iss.SetText("https://other.example/sp")
			el.InsertChildAt(0, iss)
			return f.redirect(toBytes(t, el), key(f), algRSASHA256)
		}, 400, "", "malformed"},
		{"unknown SP", func(f *fixture) *http.Response {
			el := f.authnRequest().Element()
			el.FindElement("./Issuer").SetText("https://unknown.example/sp")
			return f.redirect(toBytes(t, el), key(f), algRSASHA256)
		}, 400, "", "unknown_sp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			resp := c.send(f)
			page := body(t, resp)
			if c.status != 0 {
				if resp.StatusCode != c.status {
					t.Fatalf("status %d, want %d\n%s", resp.StatusCode, c.status, page)
				}
				if strings.Contains(page, "SAMLResponse") {
					t.Fatalf("an error page was expected, not a response to the SP:\n%s", page)
				}
			} else {
				action, r := statusResponse(t, page)
				if action != spACS {
					t.Fatalf("status response sent to %q, want the registered ACS", action)
				}
				if r.Status.StatusCode.Value == crewjam.StatusSuccess || r.Assertion != nil || r.EncryptedAssertion != nil {
					t.Fatalf("refusal carried an assertion or success: %+v", r.Status)
				}
				if c.saml != "" && (r.Status.StatusCode.StatusCode == nil || r.Status.StatusCode.StatusCode.Value != c.saml) {
					t.Fatalf("second-level status %+v, want %s", r.Status.StatusCode.StatusCode, c.saml)
				}
			}
			if got := f.lastRefusal(); got != c.reason {
				t.Errorf("audit reason %q, want %q (%s)", got, c.reason, f.lastRefusalDetail())
			}
		})
	}
}

func TestPassiveWithoutSession(t *testing.T) {
	f := newFixture(t)
	req := f.authnRequest()
	yes := true
	req.IsPassive = &yes
	resp := f.redirect(toBytes(t, req.Element()), f.sp.Key.(*rsa.PrivateKey), algRSASHA256)
	_, r := statusResponse(t, body(t, resp))
	if r.Status.StatusCode.Value != crewjam.StatusResponder || r.Status.StatusCode.StatusCode.Value != crewjam.StatusNoPassive {
		t.Fatalf("status %+v, want Responder/NoPassive", r.Status.StatusCode)
	}
	if r.InResponseTo != req.ID {
		t.Errorf("InResponseTo %q, want %q", r.InResponseTo, req.ID)
	}
}

func TestLogoutRequestRefused(t *testing.T) {
	f := newFixture(t)
	lr, err := f.sp.MakeLogoutRequest(f.srv.URL+PathSLO, "p-someone")
	if err != nil {
		t.Fatal(err)
	}
	lr.IssueInstant = f.clock.Now()
	lr.Signature = nil
	// Unsigned, from an SP with a registered key.
	if resp := f.post(PathSLO, toBytes(t, lr.Element())); resp.StatusCode == http.StatusOK || f.lastRefusal() != "signature_invalid" {
		t.Fatalf("unsigned LogoutRequest: %d, reason %q", resp.StatusCode, f.lastRefusal())
	}
	// Signed with another key.
	k, c := keyPair(t)
	if resp := f.post(PathSLO, toBytes(t, signedXML(t, lr.Element(), k, c, dsig.RSASHA256SignatureMethod))); resp.StatusCode == http.StatusOK || f.lastRefusal() != "signature_invalid" {
		t.Fatalf("foreign-key LogoutRequest: %d", resp.StatusCode)
	}
	// Wrapped: the signed request hidden under a forged one.
	signed := signedXML(t, lr.Element(), f.sp.Key.(*rsa.PrivateKey), f.sp.Certificate, dsig.RSASHA256SignatureMethod)
	forged := lr.Element()
	forged.CreateElement("samlp:Extensions").AddChild(signed)
	if resp := f.post(PathSLO, toBytes(t, forged)); resp.StatusCode != http.StatusBadRequest || f.lastRefusal() != "malformed" {
		t.Fatalf("wrapped LogoutRequest: %d, reason %q", resp.StatusCode, f.lastRefusal())
	}
}

func TestAuthnContextMapping(t *testing.T) {
	low, sub, high := "http://eidas.europa.eu/LoA/low", "http://eidas.europa.eu/LoA/substantial", "http://eidas.europa.eu/LoA/high"
	cases := []struct {
		cmp     string
		classes []string
		have    int
		want    string // "" = NoAuthnContext
	}{
		{"exact", []string{ClassPasswordProtectedTransport}, 1, ClassPasswordProtectedTransport},
		{"exact", []string{sub}, 1, ""},
		{"exact", []string{sub}, 3, sub},
		{"minimum", []string{low, sub}, 2, sub},
		{"better", []string{low}, 1, ""},
		{"better", []string{low}, 2, sub},
		{"maximum", []string{sub}, 3, ""},
		{"maximum", []string{sub}, 1, low},
		{"maximum", []string{ClassPasswordProtectedTransport, sub}, 1, ClassPasswordProtectedTransport},
		{"", nil, 3, high},
		{"exact", []string{"urn:unknown"}, 3, ""},
	}
	for _, c := range cases {
		ac := authnContext{Comparison: c.cmp, Classes: c.classes}
		got, err := ac.answer(assurance.Level(c.have))
		if (err != nil) != (c.want == "") || got != c.want {
			t.Errorf("%s %v with level %d: got %q %v, want %q", c.cmp, c.classes, c.have, got, err, c.want)
		}
	}
}

// signQuery signs an HTTP-Redirect query string as an SP does.
func signQuery(t testing.TB, key *rsa.PrivateKey, alg, q string) []byte {
	t.Helper()
	h, digest := crypto.SHA256, sha256.Sum256([]byte(q))
	d := digest[:]
	if alg == algRSASHA1 {
		s := sha1.Sum([]byte(q)) //nolint:gosec // the attack under test
		h, d = crypto.SHA1, s[:]
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, d)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestIdPInitiatedOnlyWhenEnabled(t *testing.T) {
	f := newFixture(t)
	u := f.srv.URL + PathIdPInitiated + "?" + url.Values{"sp": {spEntity}}.Encode()
	if resp := f.get(u); resp.StatusCode != http.StatusForbidden || f.lastRefusal() != "idp_initiated_disabled" {
		t.Fatalf("disabled IdP-initiated SSO: %d, reason %q", resp.StatusCode, f.lastRefusal())
	}
	f.idp.sps[spEntity].IdPInitiated = true
	if resp := f.get(u); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?flow=") {
		t.Fatalf("enabled IdP-initiated SSO should start a sign-in, got %d", resp.StatusCode)
	}
}
