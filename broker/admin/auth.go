package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/web"
)

// Cookies of the console. The console session is its own cookie, apart
// from the SSO session's: it has its own, shorter, timeouts, and ending it
// does not sign the admin out of their applications.
const (
	cookieSession = "garde_admin"
	cookieLogin   = "garde_admin_login"
)

// CSRFHeader carries the CSRF token of API calls made with the console
// cookie.
const CSRFHeader = "X-CSRF-Token"

// Principal is who is calling: an admin signed in to the console, or an
// automation client with a bearer token.
type Principal struct {
	// Subject and Name are the admin's (empty for a client).
	Subject string `json:"subject,omitempty"`
	Name    string `json:"name,omitempty"`
	// Client is the automation client's id (empty for an admin).
	Client string `json:"client,omitempty"`
	Roles  []Role `json:"roles"`
	// CSRFToken is the token forms and cookie API calls must carry (empty
	// for a client).
	CSRFToken string `json:"csrf_token,omitempty"`

	sid     string // the SSO session behind the console session
	binding string
	secret  string
}

// By names the principal in audit events.
func (p *Principal) By() string {
	if p.Client != "" {
		return "client:" + p.Client
	}
	return p.Subject
}

// consoleSession is what the ephemeral store keeps of a console session,
// under the SHA-256 of its cookie secret.
type consoleSession struct {
	Subject  string    `json:"sub"`
	Name     string    `json:"name"`
	Roles    []Role    `json:"roles"`
	SID      string    `json:"sid"`
	Binding  string    `json:"b"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"seen"`
}

func consoleKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "admsess:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// errNoConsole: no valid console session.
var errNoConsole = errors.New("admin: no console session")

// fromCookie returns the console session of the request, touching it, or
// errNoConsole. The SSO session it was opened from must still be alive:
// an admin signed out everywhere (or revoked) loses the console at once.
func (c *Console) fromCookie(ctx context.Context, r *http.Request) (*Principal, error) {
	secret, ok := c.o.Cookies.Get(r, cookieSession)
	if !ok {
		return nil, errNoConsole
	}
	key := consoleKey(secret)
	raw, err := c.o.Ephemeral.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoConsole
	} else if err != nil {
		return nil, fmt.Errorf("read console session: %w", err)
	}
	var cs consoleSession
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, errNoConsole
	}
	now := c.o.Clock()
	if now.Sub(cs.Created) >= c.o.Lifetime || now.Sub(cs.LastSeen) >= c.o.IdleTimeout {
		_ = c.o.Ephemeral.Delete(ctx, key)
		return nil, errNoConsole
	}
	sso, err := c.o.Sessions.GetByID(ctx, cs.SID)
	if err != nil || sso.Subject != cs.Subject || c.o.Emergency(sso) {
		_ = c.o.Ephemeral.Delete(ctx, key)
		if err != nil && !errors.Is(err, session.ErrNoSession) {
			return nil, err
		}
		return nil, errNoConsole
	}
	cs.LastSeen = now
	if err := c.saveConsole(ctx, key, &cs); err != nil {
		return nil, err
	}
	return &Principal{Subject: cs.Subject, Name: cs.Name, Roles: cs.Roles, sid: cs.SID, binding: cs.Binding, secret: secret,
		CSRFToken: c.o.CSRF.Token(cs.Binding, "admin")}, nil
}

func (c *Console) saveConsole(ctx context.Context, key string, cs *consoleSession) error {
	ttl := min(c.o.IdleTimeout, cs.Created.Add(c.o.Lifetime).Sub(c.o.Clock()))
	if ttl <= 0 {
		return errNoConsole
	}
	b, _ := json.Marshal(cs)
	if err := c.o.Ephemeral.Set(ctx, key, b, ttl); err != nil {
		return fmt.Errorf("store console session: %w", err)
	}
	return nil
}

// checkCSRF verifies a form's or a cookie API call's token.
func (c *Console) checkCSRF(p *Principal, token string) bool {
	return p.binding != "" && c.o.CSRF.Verify(p.binding, "admin", token)
}

// fromBearer authenticates an automation client by its access token,
// which Garde's introspection endpoint vouches for (so a revoked or
// expired token fails at once).
func (c *Console) fromBearer(ctx context.Context, token string) (*Principal, int) {
	info, err := c.rp.introspect(ctx, token)
	if err != nil {
		c.o.Logger.Error("admin API: introspection failed", "err", err)
		return nil, http.StatusServiceUnavailable
	}
	if !info.Active {
		return nil, http.StatusUnauthorized
	}
	for _, a := range c.o.APIClients {
		if subtle.ConstantTimeCompare([]byte(a.ClientID), []byte(info.ClientID)) == 1 {
			return &Principal{Client: a.ClientID, Roles: []Role{a.Role}}, http.StatusOK
		}
	}
	// A valid token of any other client (an application's token for a
	// clinician, say) opens nothing here.
	return nil, http.StatusForbidden
}

func clientAddr(r *http.Request) string { return clientaddr.From(r).String() }

// ---- sign-in: the console as a relying party of Garde

// relyingParty signs admins in with the authorization code flow and PKCE
// against Garde's own endpoints, and introspects automation tokens.
type relyingParty struct {
	issuer   string
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
	httpc    *http.Client
}

const (
	oidcAuthorize  = "/authorize"
	oidcToken      = "/token"
	oidcJWKS       = "/jwks"
	oidcIntrospect = "/introspect"
)

func newRelyingParty(o Options) *relyingParty {
	base := strings.TrimSuffix(o.Issuer, "/")
	ctx := oidc.ClientContext(context.Background(), o.HTTPClient)
	// No discovery: the endpoints are Garde's own, and the key set is
	// fetched lazily, so building the console does not need the server up.
	keys := oidc.NewRemoteKeySet(ctx, base+oidcJWKS)
	return &relyingParty{
		issuer: o.Issuer,
		conf: oauth2.Config{
			ClientID: ClientID, ClientSecret: o.Secret, RedirectURL: base + PathCallback,
			Endpoint: oauth2.Endpoint{AuthURL: base + oidcAuthorize, TokenURL: base + oidcToken, AuthStyle: oauth2.AuthStyleInHeader},
			Scopes:   []string{oidc.ScopeOpenID, "profile", "groups"},
		},
		verifier: oidc.NewVerifier(o.Issuer, keys, &oidc.Config{ClientID: ClientID, SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256}}),
		httpc:    o.HTTPClient,
	}
}

type introspection struct {
	Active   bool   `json:"active"`
	ClientID string `json:"client_id"`
}

func (rp *relyingParty) introspect(ctx context.Context, token string) (introspection, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(rp.issuer, "/")+oidcIntrospect, strings.NewReader(form.Encode()))
	if err != nil {
		return introspection{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(rp.conf.ClientID), url.QueryEscape(rp.conf.ClientSecret))
	resp, err := rp.httpc.Do(req)
	if err != nil {
		return introspection{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return introspection{}, fmt.Errorf("introspection answered %d", resp.StatusCode)
	}
	var out introspection
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<16)).Decode(&out); err != nil {
		return introspection{}, fmt.Errorf("introspection: %w", err)
	}
	return out, nil
}

// loginState is kept between /admin/login and /admin/callback.
type loginState struct {
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Return   string `json:"return"`
}

const loginTTL = 10 * time.Minute

func loginKey(state string) string { return "admlogin:" + state }

// login starts a sign-in through Garde, asking for the console's level.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	ret := r.URL.Query().Get("return")
	if !localPath(ret) {
		ret = PathHome
	}
	b, _ := json.Marshal(loginState{Nonce: nonce, Verifier: verifier, Return: ret})
	if err := c.o.Ephemeral.Set(ctx, loginKey(state), b, loginTTL); err != nil {
		c.failPage(w, r, http.StatusServiceUnavailable, "admin_signin_failed", err)
		return
	}
	// The state is bound to this browser: a callback carrying a state the
	// browser did not start (login CSRF) is refused.
	c.o.Cookies.Set(w, cookieLogin, state, loginTTL, http.SameSiteLaxMode)
	u := c.rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("acr_values", c.o.MinLevel.ACR()))
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// localPath accepts only console paths as a return target (no open
// redirect).
func localPath(p string) bool {
	if u, err := url.Parse(p); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return false
	}
	return strings.HasPrefix(p, PathHome) && !strings.HasPrefix(p, "//") && !strings.ContainsAny(p, "\\\r\n") &&
		(len(p) == len(PathHome) || p[len(PathHome)] == '/' || p[len(PathHome)] == '?')
}

type idClaims struct {
	Name     string   `json:"name"`
	Username string   `json:"preferred_username"`
	ACR      string   `json:"acr"`
	SID      string   `json:"sid"`
	Groups   []string `json:"groups"`
	Nonce    string   `json:"nonce"`
}

// callback completes the sign-in and opens the console session, if the
// ID token proves enough: the level, a role, a live non-emergency session.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	cookie, _ := c.o.Cookies.Get(r, cookieLogin)
	c.o.Cookies.Clear(w, cookieLogin)
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(cookie)) != 1 {
		c.failPage(w, r, http.StatusBadRequest, "admin_signin_failed", errors.New("state does not match the browser's"))
		return
	}
	raw, err := c.o.Ephemeral.Take(ctx, loginKey(state))
	if err != nil {
		c.failPage(w, r, http.StatusBadRequest, "admin_signin_failed", fmt.Errorf("login state: %w", err))
		return
	}
	var ls loginState
	if err := json.Unmarshal(raw, &ls); err != nil {
		c.failPage(w, r, http.StatusBadRequest, "admin_signin_failed", err)
		return
	}
	if e := q.Get("error"); e != "" {
		c.signInRefused(w, r, "", "upstream_"+e, http.StatusForbidden, web.MsgAccessDenied)
		return
	}
	rctx := oidc.ClientContext(ctx, c.rp.httpc)
	tok, err := c.rp.conf.Exchange(rctx, q.Get("code"), oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		c.failPage(w, r, http.StatusBadGateway, "admin_signin_failed", fmt.Errorf("code exchange: %w", err))
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := c.rp.verifier.Verify(rctx, rawID)
	if err != nil {
		c.failPage(w, r, http.StatusBadGateway, "admin_signin_failed", fmt.Errorf("id token: %w", err))
		return
	}
	var cl idClaims
	if err := idt.Claims(&cl); err != nil || subtle.ConstantTimeCompare([]byte(cl.Nonce), []byte(ls.Nonce)) != 1 {
		c.failPage(w, r, http.StatusBadRequest, "admin_signin_failed", errors.New("nonce mismatch"))
		return
	}
	level, _ := assurance.ParseACR(cl.ACR)
	if level < c.o.MinLevel {
		c.signInRefused(w, r, idt.Subject, "level_too_low", http.StatusForbidden, "admin_level_too_low", c.o.MinLevel.ACR())
		return
	}
	sso, err := c.o.Sessions.GetByID(ctx, cl.SID)
	if err != nil || sso.Subject != idt.Subject {
		c.failPage(w, r, http.StatusForbidden, "admin_signin_failed", errors.New("the SSO session of the ID token is gone"))
		return
	}
	if c.o.Emergency(sso) {
		c.signInRefused(w, r, idt.Subject, "emergency_session", http.StatusForbidden, "admin_emergency_session")
		return
	}
	roles := c.rolesOf(cl.Groups)
	if len(roles) == 0 {
		// A clinician (or anyone without an admin group) gets no console
		// session at all.
		c.signInRefused(w, r, idt.Subject, "no_role", http.StatusForbidden, "admin_no_role")
		return
	}
	now := c.o.Clock().UTC()
	name := cl.Name
	if name == "" {
		name = cl.Username
	}
	cs := consoleSession{Subject: idt.Subject, Name: name, Roles: roles, SID: cl.SID, Binding: web.NewBinding(), Created: now, LastSeen: now}
	secret := randomToken()
	if err := c.saveConsole(ctx, consoleKey(secret), &cs); err != nil {
		c.failPage(w, r, http.StatusServiceUnavailable, "admin_signin_failed", err)
		return
	}
	// Strict: no other site can make the browser send it, not even with a
	// top-level link.
	c.o.Cookies.Set(w, cookieSession, secret, 0, http.SameSiteStrictMode)
	rs := make([]string, len(roles))
	for i, r := range roles {
		rs[i] = string(r)
	}
	c.o.Audit.Record(store.AuditEvent{Type: EventSignIn, Person: idt.Subject, App: ClientID, ClientAddr: clientAddr(r),
		Outcome: audit.Success, SessionID: cl.SID, Details: map[string]string{"roles": strings.Join(rs, ","), "acr": cl.ACR}})
	http.Redirect(w, r, ls.Return, http.StatusSeeOther)
}

func (c *Console) signInRefused(w http.ResponseWriter, r *http.Request, subject, reason string, status int, msg string, args ...any) {
	c.o.Audit.Record(store.AuditEvent{Type: EventSignIn, Person: subject, App: ClientID, ClientAddr: clientAddr(r),
		Outcome: audit.Failure, Reason: reason})
	c.o.Pages.Render(w, r, status, web.PageError, web.ErrorPage{MessageKey: msg, Args: args})
}

func (c *Console) failPage(w http.ResponseWriter, r *http.Request, status int, msg string, err error) {
	ref := randomToken()[:12]
	c.o.Logger.Warn("admin console", "ref", ref, "path", r.URL.Path, "err", err)
	c.o.Pages.Render(w, r, status, web.PageError, web.ErrorPage{MessageKey: msg, Ref: ref})
}

// logout ends the console session (not the SSO session).
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	p, err := c.fromCookie(r.Context(), r)
	if err == nil {
		if !c.checkCSRF(p, r.PostFormValue(web.FieldCSRF)) {
			c.o.Pages.Render(w, r, http.StatusForbidden, web.PageError, web.ErrorPage{MessageKey: web.MsgCSRFFailed})
			return
		}
		_ = c.o.Ephemeral.Delete(r.Context(), consoleKey(p.secret))
	}
	c.o.Cookies.Clear(w, cookieSession)
	c.o.Pages.Render(w, r, http.StatusOK, web.PageLoggedOut, nil)
}
