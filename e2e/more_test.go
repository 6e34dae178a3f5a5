package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	gjwt "github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/testutil"
)

// TestEnglishLoginPage: English by Accept-Language, or by the switch.
func TestEnglishLoginPage(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, app.authURL().url, nil)
	req.Header.Set("Accept-Language", "en-GB,en;q=0.9,fr;q=0.5")
	p := br.do(req)
	if !strings.Contains(p.body, `lang="en"`) || !strings.Contains(p.text(), "Sign in to Dossier patient") {
		t.Fatalf("Accept-Language en should give the English page:\n%s", truncate(p.body))
	}
	// The switch (?lang=fr) wins over the header and sticks in a cookie.
	req, _ = http.NewRequest(http.MethodGet, p.url.String()+"&lang=fr", nil)
	req.Header.Set("Accept-Language", "en")
	if p := br.do(req); !strings.Contains(p.body, `lang="fr"`) {
		t.Fatalf("?lang=fr should give French")
	}
	req, _ = http.NewRequest(http.MethodGet, p.url.String(), nil)
	req.Header.Set("Accept-Language", "en")
	if p := br.do(req); !strings.Contains(p.body, `lang="fr"`) {
		t.Fatalf("the language choice should stick in the garde_lang cookie")
	}
}

// TestDirectoryUnavailable: when AD does not answer, people get a clear
// page, not a 500 and not "wrong password".
func TestDirectoryUnavailable(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	lp := br.get(app.authURL().url)
	g.ldap.Stop()
	p := br.login(lp, testutil.SlapdJDupont.Username, testutil.SlapdJDupont.Password)
	if p.status != http.StatusServiceUnavailable || !strings.Contains(errorBox(t, p), "momentanément indisponible") {
		t.Fatalf("got %d %q, want 503 directory_unavailable", p.status, errorBox(t, p))
	}
	// The break-glass static account still works while AD is down.
	a := app.authURL()
	if _, err := app.exchange(app.code(br.login(br.get(a.url), breakGlassUser, breakGlassPassword), a, g.issuer), a); err != nil {
		t.Fatalf("break-glass account while AD is down: %v", err)
	}
}

// TestReadiness: /readyz answers 200 only while both stores answer.
func TestReadiness(t *testing.T) {
	g := startGarde(t, embedded, "")
	get := func(path string) int {
		resp, err := g.httpc.Get(g.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get("/readyz"); s != http.StatusOK {
		t.Fatalf("readyz: %d", s)
	}
	// Let the start-up events land first: this test pulls the database
	// out from under a running Garde.
	if err := g.app.Audit.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := g.app.Durable.Close(); err != nil {
		t.Fatal(err)
	}
	if s := get("/readyz"); s != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the durable store closed: %d, want 503", s)
	}
	if s := get("/healthz"); s != http.StatusOK {
		t.Fatalf("healthz: %d", s)
	}
}

// TestPrivateKeyJWT: a client authenticates with a signed assertion; a
// replayed assertion fails.
func TestPrivateKeyJWT(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	b, _ := json.Marshal(jwks)
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGarde(t, embedded, `  - id: batch
    name: Traitement par lots
    token_endpoint_auth_method: private_key_jwt
    jwks_file: `+path+`
    grant_types: [client_credentials]
    scopes: [api]
`)
	assertion := func(jti string, k *rsa.PrivateKey) string {
		tok := gjwt.NewWithClaims(gjwt.SigningMethodRS256, gjwt.MapClaims{
			"iss": "batch", "sub": "batch", "aud": g.issuer + "/token", "jti": jti,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
		})
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {"batch"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	a1 := assertion("jti-1", key)
	if s, body := tokenPost(t, g, form(a1), "", ""); s != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("private_key_jwt: %d %v", s, body)
	}
	if s, body := tokenPost(t, g, form(a1), "", ""); s != http.StatusBadRequest || body["error"] != "jti_known" {
		t.Errorf("replayed assertion: %d %v, want 400 jti_known", s, body)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if s, body := tokenPost(t, g, form(assertion("jti-2", other)), "", ""); s != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("assertion signed by another key: %d %v, want 401 invalid_client", s, body)
	}
}

// TestPushedAuthorizationRequest: PAR (RFC 9126) end to end.
func TestPushedAuthorizationRequest(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	a := app.authURL()
	u, _ := url.Parse(a.url)
	params := u.Query()
	req, _ := http.NewRequest(http.MethodPost, g.issuer+"/par", strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(appID, appSecret)
	resp, err := g.httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var par struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&par)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(par.RequestURI, "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("PAR: %d %+v", resp.StatusCode, par)
	}
	authz := g.issuer + "/authorize?" + url.Values{"client_id": {appID}, "request_uri": {par.RequestURI}}.Encode()
	tok, err := app.exchange(app.code(br.login(br.get(authz), testutil.SlapdJDupont.Username, testutil.SlapdJDupont.Password), a, g.issuer), a)
	if err != nil {
		t.Fatalf("PAR flow: %v", err)
	}
	if tok.claim.Sub == "" {
		t.Fatal("no subject")
	}
	// The request_uri is single-use.
	if p := br.get(authz); p.status == http.StatusSeeOther && p.location().Query().Get("code") != "" {
		t.Fatalf("a used request_uri issued another code")
	}
}

// TestAuditTrail: sign-ins, tokens, refreshes, revocations and logouts are
// recorded with the person, the application and the outcome.
func TestAuditTrail(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	br.login(br.get(app.authURL().url), testutil.SlapdJDupont.Username, "wrong")
	code, a := signIn(t, g, br, app, testutil.SlapdJDupont)
	tok, err := app.exchange(code, a)
	if err != nil {
		t.Fatal(err)
	}
	tokenPost(t, g, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.oauth.RefreshToken}}, appID, appSecret)
	br.get(g.issuer + "/logout?" + url.Values{"id_token_hint": {tok.raw}, "post_logout_redirect_uri": {appLogout}}.Encode())

	ctx := context.Background()
	if err := g.app.Audit.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	events, err := g.app.Durable.ListAuditEvents(ctx, store.AuditQuery{App: appID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ typ, outcome, reason, person string }{
		{audit.SignInFailure, audit.Failure, "invalid_credentials", ""},
		{audit.SignInSuccess, audit.Success, "", tok.claim.Sub},
		{audit.TokenIssued, audit.Success, "", tok.claim.Sub},
		{audit.TokenRefreshed, audit.Success, "", tok.claim.Sub},
		{audit.Logout, audit.Success, "", tok.claim.Sub},
	}
	if len(events) != len(want) {
		for _, e := range events {
			t.Logf("%+v", e)
		}
		t.Fatalf("%d events, want %d", len(events), len(want))
	}
	for i, w := range want {
		e := events[i]
		if e.Type != w.typ || e.Outcome != w.outcome || e.Reason != w.reason || e.Person != w.person || e.App != appID || e.ClientAddr == "" {
			t.Errorf("event %d = %+v, want %+v", i, e, w)
		}
	}
	// The same events feed the Prometheus counters.
	rec := httptest.NewRecorder()
	g.app.Metrics.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`garde_signins_total{method="password",outcome="failure",reason="invalid_credentials"} 1`,
		`garde_signins_total{method="password",outcome="success",reason=""} 1`,
		`garde_audit_events_total{outcome="success",type="token.refreshed"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if events[4].Details["how"] != "app" || events[4].SessionID != tok.claim.SID {
		t.Errorf("logout event: %+v", events[4])
	}
	for _, e := range events {
		for _, v := range e.Details {
			if strings.Contains(v, testutil.SlapdJDupont.Password) || strings.Contains(v, "wrong") {
				t.Errorf("a password reached the audit trail: %+v", e)
			}
		}
	}
}

// TestAcrWithoutKeys: with security keys unavailable (this Garde's issuer is
// an IP address, so WebAuthn is off), an application asking for a
// substantial level still gets an answer from the session: its acr says
// what it really is.
func TestAcrWithoutKeys(t *testing.T) {
	g := startGarde(t, embedded, "")
	app := g.newRP(t, appID, appSecret, appRedirect)
	br := g.newBrowser(t)
	code, a := signIn(t, g, br, app, testutil.SlapdJDupont)
	if _, err := app.exchange(code, a); err != nil {
		t.Fatal(err)
	}
	a2 := app.authURL(oauth2.SetAuthURLParam("acr_values", "http://eidas.europa.eu/LoA/substantial"))
	p := br.get(a2.url)
	tok, err := app.exchange(app.code(p, a2, g.issuer), a2)
	if err != nil {
		t.Fatal(err)
	}
	if tok.claim.ACR != "http://eidas.europa.eu/LoA/low" {
		t.Errorf("acr = %q, want low (nothing stronger was proven)", tok.claim.ACR)
	}
}
