package psctest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const oidcPath = RealmPath + "/protocol/openid-connect"

func (s *Sim) discovery() map[string]any {
	p := s.issuer + "/protocol/openid-connect"
	return map[string]any{
		"issuer":                                     s.issuer,
		"authorization_endpoint":                     s.walletSrv.URL + "/auth",
		"token_endpoint":                             p + "/token",
		"introspection_endpoint":                     p + "/token/introspect",
		"userinfo_endpoint":                          p + "/userinfo",
		"end_session_endpoint":                       p + "/logout",
		"jwks_uri":                                   p + "/certs",
		"backchannel_authentication_endpoint":        p + "/ext/ciba/auth",
		"grant_types_supported":                      []string{"authorization_code", "implicit", "refresh_token", "password", "client_credentials", "urn:openid:params:grant-type:ciba", "urn:ietf:params:oauth:grant-type:device_code"},
		"response_types_supported":                   []string{"code", "none", "id_token", "token", "id_token token", "code id_token", "code token", "code id_token token"},
		"subject_types_supported":                    []string{"public", "pairwise"},
		"id_token_signing_alg_values_supported":      []string{"PS384", "ES384", "RS384", "HS256", "HS512", "ES256", "RS256", "HS384", "ES512", "PS256", "PS512", "RS512"},
		"userinfo_signing_alg_values_supported":      []string{"PS384", "ES384", "RS384", "HS256", "HS512", "ES256", "RS256", "HS384", "ES512", "PS256", "PS512", "RS512", "none"},
		"id_token_encryption_alg_values_supported":   []string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"},
		"token_endpoint_auth_methods_supported":      []string{"private_key_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth", "client_secret_jwt"},
		"scopes_supported":                           []string{"openid", "microprofile-jwt", "rpps", "referentiel", "web-origins", "basic", "identity", "acr", "offline_access", "eidas1", "profile", "roles", "email", "scope_all", "phone", "interop", "scope_1", "address", "scope_2", "eidas2"},
		"acr_values_supported":                       []string{"0", "0"},
		"claims_supported":                           []string{"aud", "sub", "iss", "auth_time", "name", "given_name", "family_name", "preferred_username", "email", "acr"},
		"code_challenge_methods_supported":           []string{"plain", "S256"},
		"tls_client_certificate_bound_access_tokens": true,
		"backchannel_logout_supported":               true,
		"backchannel_logout_session_supported":       true,
		"frontchannel_logout_supported":              true,
		"backchannel_token_delivery_modes_supported": []string{"poll", "ping"},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Sim) serveIssuer(w http.ResponseWriter, r *http.Request) {
	endpoint := map[string]string{
		RealmPath + "/.well-known/wallet-openid-configuration": "discovery",
		oidcPath + "/certs":         "certs",
		oidcPath + "/token":         "token",
		oidcPath + "/userinfo":      "userinfo",
		oidcPath + "/logout":        "logout",
		oidcPath + "/ext/ciba/auth": "ciba",
	}[r.URL.Path]
	if endpoint == "" {
		// Including the standard /.well-known/openid-configuration: PSC
		// serves discovery only at its own path.
		http.NotFound(w, r)
		return
	}
	if s.count(endpoint) {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	switch endpoint {
	case "discovery":
		writeJSON(w, http.StatusOK, s.discovery())
	case "certs":
		writeJSON(w, http.StatusOK, s.jwks())
	case "token":
		s.token(w, r)
	case "userinfo":
		s.userinfo(w, r)
	case "logout":
		s.logout(w, r)
	case "ciba":
		s.cibaAuth(w, r)
	}
}

func (s *Sim) serveWallet(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/auth" && r.URL.Path != "/auth/" {
		http.NotFound(w, r)
		return
	}
	if s.count("auth") {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	s.authorize(w, r)
}

// errorPage is what PSC shows when it cannot redirect back safely.
func errorPage(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte("<!doctype html><title>Erreur</title><p>" + html.EscapeString(msg) + "</p>"))
}

func (s *Sim) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	registered := slices.Contains(s.cfg.RedirectURIs, q.Get("redirect_uri"))
	s.mu.Unlock()
	if q.Get("client_id") != s.cfg.ClientID {
		errorPage(w, "Client not found.")
		return
	}
	redirect := q.Get("redirect_uri")
	if !registered {
		// Never redirect to an unregistered URI (RFC 6749 §4.1.2.1).
		errorPage(w, "Invalid parameter: redirect_uri")
		return
	}
	back := func(params url.Values) {
		u, _ := url.Parse(redirect)
		v := u.Query()
		for k, vs := range params {
			v[k] = vs
		}
		if st := q.Get("state"); st != "" {
			v.Set("state", st)
		}
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	fail := func(code, desc string) {
		back(url.Values{"error": {code}, "error_description": {desc}})
	}
	scopes := strings.Fields(q.Get("scope"))
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "Client is not allowed to initiate browser login with given response_type.")
	case !slices.Contains(scopes, "openid") || !slices.Contains(scopes, "scope_all"):
		fail("invalid_scope", "scope must contain openid and scope_all")
	case !slices.Contains(strings.Fields(q.Get("acr_values")), "eidas1"):
		fail("invalid_request", "acr_values must be eidas1")
	case q.Get("state") == "":
		fail("invalid_request", "Missing parameter: state")
	case q.Get("nonce") == "":
		fail("invalid_request", "Missing parameter: nonce")
	case q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "Invalid parameter: code challenge method is not configured one")
	case len(q.Get("code_challenge")) != 43:
		fail("invalid_request", "Invalid parameter: code_challenge")
	default:
		s.mu.Lock()
		deny := s.denyNext
		s.denyNext = ""
		user := s.next
		s.mu.Unlock()
		if deny != "" {
			fail(deny, "The user cancelled the authentication")
			return
		}
		code := randomID(24)
		g := &grant{
			user:          user,
			nonce:         q.Get("nonce"),
			redirectURI:   redirect,
			codeChallenge: q.Get("code_challenge"),
			sid:           uuid(),
			authTime:      s.now(),
			expires:       s.now().Add(CodeLifetime),
		}
		s.mu.Lock()
		s.codes[code] = g
		s.mu.Unlock()
		back(url.Values{"code": {code}, "session_state": {g.sid}})
	}
}

// authenticateClient checks the client's credentials per its registered
// method, as Keycloak's client authenticators do.
func (s *Sim) authenticateClient(r *http.Request) (ok bool, desc string) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both are form-urlencoded inside Basic.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	switch s.cfg.AuthMethod {
	case AuthClientSecretBasic:
		if !basic {
			return false, "Invalid client credentials: HTTP Basic expected"
		}
		return id == s.cfg.ClientID && eq(secret, s.cfg.ClientSecret), "Invalid client or Invalid client credentials"
	case AuthClientSecretPost:
		if basic {
			return false, "Invalid client credentials: client_secret_post expected"
		}
		return formID == s.cfg.ClientID && eq(formSecret, s.cfg.ClientSecret), "Invalid client or Invalid client credentials"
	case AuthTLSClientAuth:
		if formID != s.cfg.ClientID || basic || formSecret != "" {
			return false, "Invalid client: tls_client_auth expects client_id and no secret"
		}
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return false, "Client certificate missing, or its issuer DN is not trusted"
		}
		if got := r.TLS.PeerCertificates[0].Subject.String(); got != s.clientDN {
			return false, "Certificate's SubjectDN does not match: " + got
		}
		return true, ""
	}
	return false, "unknown method"
}

func (s *Sim) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST expected")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	if ok, desc := s.authenticateClient(r); !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_client", desc)
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		s.codeGrant(w, r)
	case "urn:openid:params:grant-type:ciba":
		s.cibaGrant(w, r)
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
	}
}

func (s *Sim) codeGrant(w http.ResponseWriter, r *http.Request) {
	code := r.PostForm.Get("code")
	s.mu.Lock()
	g := s.codes[code]
	delete(s.codes, code) // single use, even when the request fails below
	s.mu.Unlock()
	switch {
	case g == nil:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Code not valid")
		return
	case !s.now().Before(g.expires):
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Code is expired")
		return
	case r.PostForm.Get("redirect_uri") != g.redirectURI:
		oauthError(w, http.StatusBadRequest, "invalid_grant", "Incorrect redirect_uri")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != g.codeChallenge {
		oauthError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed: Invalid code verifier")
		return
	}
	s.issueTokens(w, g)
}

func (s *Sim) issueTokens(w http.ResponseWriter, g *grant) {
	at, exp, err := s.accessToken(g)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	idt, err := s.idToken(g, at)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	ag := *g
	ag.expires = exp
	s.mu.Lock()
	s.tokens[at] = &ag
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":       at,
		"expires_in":         int(AccessTokenLifetime.Seconds()),
		"refresh_expires_in": int(RefreshTokenLifetime.Seconds()),
		"refresh_token":      randomID(32),
		"token_type":         "Bearer",
		"id_token":           idt,
		"not-before-policy":  0,
		"session_state":      g.sid,
		"scope":              "openid scope_all",
	})
}

func (s *Sim) userinfo(w http.ResponseWriter, r *http.Request) {
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	g := s.tokens[at]
	s.mu.Unlock()
	if !ok || g == nil || !s.now().Before(g.expires) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="esante-wallet", error="invalid_token", error_description="Token verification failed"`)
		oauthError(w, http.StatusUnauthorized, "invalid_token", "Token verification failed")
		return
	}
	ct, body, err := s.userinfoBody(g)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(body)
}

func (s *Sim) logout(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	hint := r.Form.Get("id_token_hint")
	redirect := r.Form.Get("post_logout_redirect_uri")
	var sid string
	if hint != "" {
		c, err := s.verifyOwn(hint)
		if err != nil || c["aud"] != s.cfg.ClientID {
			errorPage(w, "Invalid parameter: id_token_hint")
			return
		}
		sid, _ = c["sid"].(string)
	}
	if redirect != "" {
		if hint == "" && r.Form.Get("client_id") != s.cfg.ClientID {
			errorPage(w, "Either the parameter client_id or the parameter id_token_hint is required when post_logout_redirect_uri is used.")
			return
		}
		s.mu.Lock()
		registered := slices.Contains(s.cfg.PostLogoutRedirectURIs, redirect)
		s.mu.Unlock()
		if !registered {
			errorPage(w, "Invalid redirect uri")
			return
		}
	}
	s.mu.Lock()
	if sid != "" {
		s.loggedOut = append(s.loggedOut, sid)
	}
	s.mu.Unlock()
	if redirect == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>Déconnexion</title><p>Vous êtes déconnecté.</p>"))
		return
	}
	u, _ := url.Parse(redirect)
	if st := r.Form.Get("state"); st != "" {
		v := u.Query()
		v.Set("state", st)
		u.RawQuery = v.Encode()
	}
	http.Redirect(w, r, u.String(), http.StatusFound)
}
