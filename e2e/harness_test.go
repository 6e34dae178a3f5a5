// Package e2e runs Garde end to end: a real OpenLDAP directory, real stores
// (SQLite + memory, or PostgreSQL + Redis), Garde's full HTTP stack over TLS,
// a browser-like cookie-keeping client, and relying parties built on
// coreos/go-oidc and golang.org/x/oauth2.
package e2e

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/cmd/garde/app"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/internal/testutil"
)

// Client credentials of the test relying parties.
const (
	appID       = "patients"
	appSecret   = "patients-secret-0123456789abcdef0123456789"
	appRedirect = "https://patients.test/callback"
	appLogout   = "https://patients.test/bye"
	labID       = "labo"
	labSecret   = "labo-secret-0123456789abcdef0123456789abcdef"
	labRedirect = "https://labo.test/cb"
	spaID       = "planning"
	spaRedirect = "https://planning.test/cb"
	// A static break-glass account, in case AD is down.
	breakGlassUser     = "secours"
	breakGlassPassword = "Secours-bris-de-glace-42"
)

// gardeUnderTest is a running Garde.
type gardeUnderTest struct {
	srv    *httptest.Server
	app    *app.App
	issuer string
	ldap   *testutil.Slapd
	cfg    *config.Config
	// httpc trusts the server's certificate.
	httpc *http.Client
	// cardOrigin is the card listener's origin, when one runs.
	cardOrigin string
}

type backend string

const (
	embedded backend = "sqlite+memory"
	servers  backend = "postgres+redis"
)

var breakGlassHash string

func TestMain(m *testing.M) {
	// One argon2id hash for the whole package: 64 MiB per hash.
	h, err := hashPassword(breakGlassPassword)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	breakGlassHash = h
	os.Exit(m.Run())
}

const configTemplate = `
issuer: {{ISSUER}}
listen:
  address: "127.0.0.1:5556"
  metrics_address: ""
{{LISTEN_TLS}}master_key:
  env: GARDE_E2E_MASTER_KEY
storage:
{{STORAGE}}
sessions:
  lifetime: 4h
  idle_timeout: 30m
throttle:
  account_failures: 3
  address_failures: 100
  window: 15m
connectors:
  - id: ad
    type: ldap
    name: Active Directory
    ldap:
      urls: [{{LDAPS}}]
      ca_file: {{CAFILE}}
      bind_dn: "{{BINDDN}}"
      bind_password: ${GARDE_E2E_BIND_PASSWORD}
      base_dn: "{{BASEDN}}"
      nested_groups: auto
      attributes:
        national_id: employeeNumber
      timeout: 3s
  - id: secours
    type: static
    name: Comptes de secours
    static:
      people:
        - username: secours
          password_hash: "{{BGHASH}}"
          given_name: Compte
          family_name: Secours
          groups: [bris-de-glace]
{{EXTRA_CONNECTORS}}
clients:
  - id: patients
    name: Dossier patient
    secret: ${GARDE_E2E_APP_SECRET}
    redirect_uris: [https://patients.test/callback]
    post_logout_redirect_uris: [https://patients.test/bye]
    grant_types: [authorization_code, refresh_token, client_credentials]
  - id: labo
    name: Laboratoire
    secret: ${GARDE_E2E_LAB_SECRET}
    token_endpoint_auth_method: client_secret_post
    redirect_uris: [https://labo.test/cb]
    id_token_signed_response_alg: ES256
  - id: planning
    name: Planning
    public: true
    redirect_uris: [https://planning.test/cb]
{{EXTRA_CLIENTS}}
{{EXTRA_CONFIG}}
`

// startGarde starts slapd and Garde on the given backend. extraClients is
// YAML appended to the clients list.
func startGarde(t testing.TB, b backend, extraClients string) *gardeUnderTest {
	return startGardeWith(t, gardeOptions{backend: b, extraClients: extraClients})
}

// gardeOptions vary the Garde under test.
type gardeOptions struct {
	backend      backend
	extraClients string
	// extraConfig is YAML appended at the top level (e.g. a webauthn
	// section).
	extraConfig string
	// localhost serves Garde as https://localhost:PORT with a certificate
	// for that name (WebAuthn refuses IP addresses as RP IDs), and serves
	// /test-app/ as the test applications' landing page.
	localhost bool
	// extraConnectors is YAML appended to the connectors list; it may use
	// {{CARD_LISTEN}}, the address of a card listener the harness starts
	// (with the server's certificate) when the configuration asks for one.
	extraConnectors string
	// clock, when set, is Garde's clock (nil: time.Now).
	clock func() time.Time
}

func startGardeWith(t testing.TB, opt gardeOptions) *gardeUnderTest {
	t.Helper()
	b, extraClients := opt.backend, opt.extraClients
	ldap := testutil.StartSlapd(t)
	g := &gardeUnderTest{ldap: ldap}
	var handler http.Handler = http.NotFoundHandler()
	mux := http.NewServeMux()
	mux.HandleFunc("/test-app/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "application landing page\n")
	})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	if opt.localhost {
		tlsCfg, pool := localhostTLS(t)
		g.srv = httptest.NewUnstartedServer(mux)
		g.srv.TLS = tlsCfg
		g.srv.StartTLS()
		g.issuer = "https://localhost:" + g.srv.Listener.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.1:"):]
		g.httpc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	} else {
		g.srv = httptest.NewTLSServer(mux)
		g.issuer = g.srv.URL
		g.httpc = g.srv.Client()
	}
	t.Cleanup(g.srv.Close)

	var storage string
	switch b {
	case embedded:
		storage = fmt.Sprintf("  durable: {driver: sqlite, sqlite_path: %q}\n  ephemeral: {driver: memory}", filepath.Join(t.TempDir(), "garde.db"))
	case servers:
		storage = fmt.Sprintf("  durable: {driver: postgres, postgres_dsn: %q}\n  ephemeral:\n    driver: redis\n    redis: {addrs: [%q], key_prefix: %q}",
			testutil.PostgresDSN(t), testutil.RedisAddr(), "e2e-"+testutil.Random(t, 6)+":")
	}
	// A card listener, when a connector names {{CARD_LISTEN}}: its port is
	// reserved now so the configuration can name it.
	var cardLn net.Listener
	listenTLS := ""
	if strings.Contains(opt.extraConnectors, "{{CARD_LISTEN}}") {
		var err error
		if cardLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cardLn.Close() })
		// Garde's own TLS is what a card listener needs; the files only
		// have to exist here, as the harness serves with g.srv's certificate.
		dummy := filepath.Join(t.TempDir(), "tls.pem")
		if err := os.WriteFile(dummy, []byte("see harness"), 0o600); err != nil {
			t.Fatal(err)
		}
		listenTLS = fmt.Sprintf("  tls: {cert_file: %q, key_file: %q}\n", dummy, dummy)
	}
	cardAddr := ""
	if cardLn != nil {
		cardAddr = cardLn.Addr().String()
	}
	r := strings.NewReplacer(
		"{{LISTEN_TLS}}", listenTLS, "{{EXTRA_CONNECTORS}}", opt.extraConnectors, "{{CARD_LISTEN}}", cardAddr,
		"{{ISSUER}}", g.issuer, "{{STORAGE}}", storage, "{{LDAPS}}", ldap.LDAPSURL, "{{CAFILE}}", ldap.CAFile,
		"{{BINDDN}}", testutil.SlapdServiceDN, "{{BASEDN}}", testutil.SlapdBaseDN, "{{BGHASH}}", breakGlassHash,
		"{{EXTRA_CLIENTS}}", extraClients, "{{EXTRA_CONFIG}}", opt.extraConfig,
	)
	master := base64.StdEncoding.EncodeToString(sha256.New().Sum([]byte(t.Name())))[:43]
	env := map[string]string{
		"GARDE_E2E_MASTER_KEY":    master,
		"GARDE_E2E_BIND_PASSWORD": testutil.SlapdServicePassword,
		"GARDE_E2E_APP_SECRET":    appSecret,
		"GARDE_E2E_LAB_SECRET":    labSecret,
	}
	// Extra clients and configuration may name the issuer too.
	text := strings.ReplaceAll(r.Replace(configTemplate), "{{ISSUER}}", g.issuer)
	text = strings.ReplaceAll(text, "{{CARD_LISTEN}}", cardAddr)
	cfg, err := config.Parse("e2e.yaml", []byte(text), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	g.cfg = cfg
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := app.Build(context.Background(), cfg, app.Options{
		Logger: logger,
		Getenv: func(k string) string { return env[k] },
		Clock:  opt.clock,
	})
	if err != nil {
		t.Fatalf("build garde: %v", err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	g.app = a
	handler = a.Handler
	for _, cs := range a.CardServers() {
		csrv := &http.Server{Handler: a.Handler, TLSConfig: cs.TLSConfig(&tls.Config{Certificates: g.srv.TLS.Certificates}),
			ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = csrv.ServeTLS(cardLn, "", "") }()
		t.Cleanup(func() { _ = csrv.Close() })
		g.cardOrigin = "https://" + cardAddr
	}
	return g
}

// browser is a cookie-keeping HTTP client that follows Garde's redirects and
// stops at the applications' hosts (*.test), as a real browser lands there.
type browser struct {
	t testing.TB
	c *http.Client
}

func (g *gardeUnderTest) newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{
		Jar:       jar,
		Transport: g.httpc.Transport,
		Timeout:   20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasSuffix(req.URL.Hostname(), ".test") {
				return http.ErrUseLastResponse
			}
			if len(via) > 10 {
				return fmt.Errorf("too many redirects")
			}
			return nil
		},
	}
	return &browser{t: t, c: c}
}

// page is a response with its body read.
type page struct {
	status int
	url    *url.URL
	header http.Header
	body   string
}

// location is where a stopped redirect points.
func (p page) location() *url.URL {
	u, _ := url.Parse(p.header.Get("Location"))
	return u
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	if req.Header.Get("Accept-Language") == "" {
		req.Header.Set("Accept-Language", "fr-FR,fr;q=0.9")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
}

func (b *browser) get(u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

// post submits a form as a browser would from a page at origin.
func (b *browser) post(u string, form url.Values, origin string) page {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	return b.do(req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)"`)
var actionRE = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)

// form extracts a page's form action and hidden fields.
func (p page) form(t testing.TB) (string, url.Values) {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	action := p.url.String()
	if m := actionRE.FindStringSubmatch(p.body); m != nil && m[1] != "" {
		a, err := p.url.Parse(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatalf("form action %q: %v", m[1], err)
		}
		action = a.String()
	}
	return action, v
}

// login fills the login page and submits it.
func (b *browser) login(loginPage page, username, password string) page {
	b.t.Helper()
	if loginPage.status != http.StatusOK || !strings.Contains(loginPage.body, `name="password"`) {
		b.t.Fatalf("expected the login page, got %d at %s:\n%s", loginPage.status, loginPage.url, truncate(loginPage.body))
	}
	action, form := loginPage.form(b.t)
	form.Set("username", username)
	form.Set("password", password)
	return b.post(action, form, originOf(loginPage.url))
}

func originOf(u *url.URL) string { return u.Scheme + "://" + u.Host }

func truncate(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}

// rp is a relying party built on go-oidc and x/oauth2.
type rp struct {
	t        testing.TB
	ctx      context.Context
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (g *gardeUnderTest) newRP(t testing.TB, id, secret, redirect string, scopes ...string) *rp {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), g.httpc)
	p, err := oidc.NewProvider(ctx, g.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email", "groups", oidc.ScopeOfflineAccess}
	}
	conf := oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: redirect, Endpoint: p.Endpoint(), Scopes: scopes}
	return &rp{t: t, ctx: ctx, provider: p, conf: conf,
		verifier: p.Verifier(&oidc.Config{ClientID: id, SupportedSigningAlgs: []string{"RS256", "ES256"}})}
}

// authRequest is one authorization request in flight.
type authRequest struct {
	url, state, nonce, verifier string
}

func (r *rp) authURL(extra ...oauth2.AuthCodeOption) authRequest {
	a := authRequest{state: "st-" + randomString(), nonce: "n-" + randomString(), verifier: oauth2.GenerateVerifier()}
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(a.verifier), oidc.Nonce(a.nonce)}, extra...)
	a.url = r.conf.AuthCodeURL(a.state, opts...)
	return a
}

// code checks an authorization response landing at the application and
// returns its code.
func (r *rp) code(p page, a authRequest, issuer string) string {
	r.t.Helper()
	if p.status != http.StatusSeeOther && p.status != http.StatusFound {
		r.t.Fatalf("expected a redirect to the application, got %d at %s:\n%s", p.status, p.url, truncate(p.body))
	}
	loc := p.location()
	if !strings.HasPrefix(loc.String(), r.conf.RedirectURL) {
		r.t.Fatalf("redirected to %s, want %s", loc, r.conf.RedirectURL)
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		r.t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != a.state {
		r.t.Fatalf("state %q, want %q", q.Get("state"), a.state)
	}
	if q.Get("iss") != issuer {
		r.t.Fatalf("iss %q, want %q (RFC 9207)", q.Get("iss"), issuer)
	}
	return q.Get("code")
}

// tokens are what an exchange returned, verified.
type tokens struct {
	oauth *oauth2.Token
	raw   string
	id    *oidc.IDToken
	claim idClaims
}

type idClaims struct {
	Sub      string   `json:"sub"`
	ACR      string   `json:"acr"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
	Nonce    string   `json:"nonce"`
	SID      string   `json:"sid"`
	Name     string   `json:"name"`
	Email    string   `json:"email"`
	Groups   []string `json:"groups"`
	NatID    string   `json:"national_id"`
	NatType  string   `json:"national_id_type"`
}

func (r *rp) exchange(code string, a authRequest) (*tokens, error) {
	tok, err := r.conf.Exchange(r.ctx, code, oauth2.VerifierOption(a.verifier))
	if err != nil {
		return nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("no id_token in the token response")
	}
	id, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("verify id_token: %w", err)
	}
	out := &tokens{oauth: tok, raw: raw, id: id}
	if err := id.Claims(&out.claim); err != nil {
		return nil, err
	}
	if out.claim.Nonce != a.nonce {
		return nil, fmt.Errorf("nonce %q, want %q", out.claim.Nonce, a.nonce)
	}
	return out, nil
}

func randomString() string {
	return testutilRandom()
}
