package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

	"github.com/garde-sso/garde/broker/saml"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/testutil"
)

// testSP is a real SAML service provider (crewjam/saml's samlsp) served
// in-process: its /app page requires a SAML session and prints the
// session's attributes.
type testSP struct {
	t    testing.TB
	srv  *httptest.Server
	mw   *samlsp.Middleware
	id   string
	meta []byte
}

type spOptions struct {
	binding    string // how the SP sends its AuthnRequest
	forceAuthn bool
}

func newTestSP(t testing.TB, o spOptions) *testSP {
	t.Helper()
	sp := &testSP{t: t}
	var handler http.Handler = http.NotFoundHandler()
	sp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(sp.srv.Close)
	key, cert := selfSigned(t, "sp")
	root, _ := url.Parse(sp.srv.URL)
	mw, err := samlsp.New(samlsp.Options{
		URL: *root, Key: key, Certificate: cert, SignRequest: true, ForceAuthn: o.forceAuthn,
		IDPMetadata: &crewjam.EntityDescriptor{}, Binding: o.binding, LogoutBindings: []string{crewjam.HTTPRedirectBinding},
		SignLogout: true,
		// The SPs share the host 127.0.0.1, and cookies ignore ports.
		CookieName: "sp" + testutil.Random(t, 4),
	})
	if err != nil {
		t.Fatal(err)
	}
	// samlsp asks for transient NameIDs by default; Garde answers each SP
	// with the format configured for it, so the SP accepts any.
	mw.ServiceProvider.AuthnNameIDFormat = crewjam.UnspecifiedNameIDFormat
	sp.mw = mw
	sp.id = mw.ServiceProvider.MetadataURL.String()
	mux := http.NewServeMux()
	mux.Handle("/saml/", mw)
	mux.HandleFunc("/logout", mw.HandleStartLogout)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "SP home") })
	mux.Handle("/app", mw.RequireAccount(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := samlsp.SessionFromContext(r.Context())
		attrs := s.(samlsp.SessionWithAttributes).GetAttributes()
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		fmt.Fprintln(w, "SP application")
		for _, k := range keys {
			fmt.Fprintf(w, "%s=%s\n", k, strings.Join(attrs[k], "|"))
		}
		if jc, ok := s.(samlsp.JWTSessionClaims); ok {
			fmt.Fprintf(w, "subject=%s\n", jc.Subject)
		}
	})))
	handler = mux
	sp.meta, err = xml.Marshal(mw.ServiceProvider.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// trustGarde gives the SP Garde's IdP metadata.
func (sp *testSP) trustGarde(g *gardeUnderTest) {
	sp.t.Helper()
	resp, err := g.httpc.Get(g.issuer + saml.PathMetadata)
	if err != nil {
		sp.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ed crewjam.EntityDescriptor
	if err := xml.Unmarshal(b, &ed); err != nil {
		sp.t.Fatalf("IdP metadata: %v\n%s", err, b)
	}
	sp.mw.ServiceProvider.IDPMetadata = &ed
}

func selfSigned(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

// samlConfig registers SPs (metadata written to files) with Garde.
func samlConfig(t testing.TB, sps map[*testSP]string) string {
	var b strings.Builder
	b.WriteString("saml:\n  service_providers:\n")
	dir := t.TempDir()
	i := 0
	for sp, extra := range sps {
		i++
		f := filepath.Join(dir, fmt.Sprintf("sp%d.xml", i))
		if err := os.WriteFile(f, sp.meta, 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "    - entity_id: %q\n      name: Application SAML %d\n      metadata_file: %q\n%s", sp.id, i, f, extra)
	}
	return b.String()
}

var samlFieldRE = regexp.MustCompile(`<input type="hidden" name="(SAMLResponse|SAMLRequest|RelayState)" value="([^"]*)"`)

// samlForm reads a page carrying a SAML message with the HTTP-POST
// binding (Garde's or the SP's).
func samlForm(t testing.TB, p page) (string, url.Values) {
	t.Helper()
	v := url.Values{}
	for _, m := range samlFieldRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	m := actionRE.FindStringSubmatch(p.body)
	if m == nil || (v.Get("SAMLResponse") == "" && v.Get("SAMLRequest") == "") {
		t.Fatalf("expected a SAML POST form, got %d at %s:\n%s", p.status, p.url, truncate(p.body))
	}
	a, err := p.url.Parse(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return a.String(), v
}

// postSAML submits a SAML POST form as the script would.
func (b *browser) postSAML(p page) page {
	b.t.Helper()
	action, v := samlForm(b.t, p)
	return b.post(action, v, "")
}

// decodeResponse decodes the SAMLResponse of a POST form page.
func decodeResponse(t testing.TB, p page) string {
	t.Helper()
	_, v := samlForm(t, p)
	raw, err := base64.StdEncoding.DecodeString(v.Get("SAMLResponse"))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestSAML(t *testing.T) {
	for _, b := range []backend{embedded, servers} {
		t.Run(string(b), func(t *testing.T) {
			samlEndToEnd(t, b)
		})
	}
}

func samlEndToEnd(t *testing.T, b backend) {
	redirectSP := newTestSP(t, spOptions{binding: crewjam.HTTPRedirectBinding})
	postSP := newTestSP(t, spOptions{binding: crewjam.HTTPPostBinding})
	forceSP := newTestSP(t, spOptions{binding: crewjam.HTTPRedirectBinding, forceAuthn: true})
	g := startGardeWith(t, gardeOptions{backend: b, extraConfig: samlConfig(t, map[*testSP]string{
		redirectSP: "      sign: both\n",
		postSP:     "      sign: assertion\n      encrypt_assertion: true\n      name_id: email\n",
		forceSP:    "      sign: response\n",
	})})
	for _, sp := range []*testSP{redirectSP, postSP, forceSP} {
		sp.trustGarde(g)
	}
	user := testutil.SlapdJDupont
	br := g.newBrowser(t)

	// 1. SP-initiated, HTTP-Redirect binding, signed request; the response
	// and the assertion are signed and verified by samlsp.
	loginPage := br.get(redirectSP.srv.URL + "/app")
	if !strings.Contains(loginPage.body, "Application SAML") {
		t.Fatalf("login page should name the SAML application:\n%s", truncate(loginPage.body))
	}
	post := br.login(loginPage, user.Username, user.Password)
	app := br.postSAML(post)
	if app.status != http.StatusOK || !strings.Contains(app.body, "SP application") {
		t.Fatalf("SP did not accept the assertion: %d\n%s", app.status, truncate(app.body))
	}
	for _, want := range []string{
		"givenName=Jeanne", "sn=Dupont", "mail=" + user.Email, "uid=" + user.Username,
		"isMemberOf=medecins|personnel", "nationalId=" + user.NationalID, "nationalIdType=rpps",
		"assuranceLevel=http://eidas.europa.eu/LoA/low",
	} {
		if !strings.Contains(app.body, want) {
			t.Errorf("attribute %q missing:\n%s", want, app.body)
		}
	}
	pairwise := regexp.MustCompile(`subject=(p-\S+)`).FindStringSubmatch(app.body)
	if pairwise == nil {
		t.Fatalf("expected a persistent pairwise NameID:\n%s", app.body)
	}

	// 2. SSO: the HTTP-POST binding SP gets an encrypted assertion without
	// a login page, with an email NameID.
	p := br.get(postSP.srv.URL + "/app")
	p = br.postSAML(p) // the SP's AuthnRequest form, to Garde
	if strings.Contains(p.body, `name="password"`) {
		t.Fatal("SSO expected, got the login page")
	}
	if raw := decodeResponse(t, p); !strings.Contains(raw, "EncryptedAssertion") || strings.Contains(raw, user.Email) {
		t.Errorf("the assertion should be encrypted:\n%s", raw)
	}
	app = br.postSAML(p)
	if app.status != http.StatusOK || !strings.Contains(app.body, "subject="+user.Email) {
		t.Fatalf("encrypted assertion not accepted: %d\n%s", app.status, truncate(app.body))
	}

	// 3. The same session serves an OpenID Connect application.
	rp := g.newRP(t, appID, appSecret, appRedirect)
	a := rp.authURL()
	tok, err := rp.exchange(rp.code(br.get(a.url), a, g.issuer), a)
	if err != nil || tok.claim.Sub != "ad:"+user.GUID {
		t.Fatalf("OIDC after SAML: %v %+v", err, tok)
	}

	// 4. ForceAuthn: a fresh login is required despite the session.
	p = br.get(forceSP.srv.URL + "/app")
	if !strings.Contains(p.body, `name="password"`) {
		t.Fatalf("ForceAuthn should show the login page:\n%s", truncate(p.body))
	}
	app = br.postSAML(br.login(p, user.Username, user.Password))
	if !strings.Contains(app.body, "SP application") {
		t.Fatalf("ForceAuthn sign-in failed:\n%s", truncate(app.body))
	}

	// 5. Single Logout started by the redirect SP: Garde ends the session,
	// sends a LogoutRequest to the other SPs of the session in turn, and
	// answers the first.
	p = br.get(redirectSP.srv.URL + "/logout")
	hops := 0
	for p.status == http.StatusOK && strings.Contains(p.body, "SAMLRe") && hops < 6 {
		p = br.postSAML(p)
		hops++
	}
	if p.status != http.StatusOK || !strings.Contains(p.body, "SP home") {
		t.Fatalf("logout ended with %d at %s:\n%s", p.status, p.url, truncate(p.body))
	}
	// Every SP of the session was told: their sessions are gone too.
	for _, sp := range []*testSP{postSP, forceSP} {
		if p := br.get(sp.srv.URL + "/app"); !strings.Contains(p.body, `name="password"`) && !strings.Contains(p.body, "SAMLRequest") {
			t.Errorf("%s still has a session after Single Logout:\n%s", sp.id, truncate(p.body))
		}
	}
	a = rp.authURL()
	if p := br.get(a.url); !strings.Contains(p.body, `name="password"`) {
		t.Errorf("after SAML logout, Garde should ask for a password again:\n%s", truncate(p.body))
	}
	events := auditTypes(t, g)
	for _, want := range []string{saml.EventAssertionIssued, saml.EventLogout, "logout"} {
		if !slices.Contains(events, want) {
			t.Errorf("audit lacks %s: %v", want, events)
		}
	}
}

// auditTypes lists the types of the audit events recorded so far.
func auditTypes(t testing.TB, g *gardeUnderTest) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.app.Audit.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	evs, err := g.app.Durable.ListAuditEvents(ctx, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}
