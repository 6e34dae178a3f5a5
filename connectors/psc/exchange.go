package psc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/connectors"
)

// AuthRequest is one sign-in's parameters, chosen and kept by the caller.
type AuthRequest struct {
	// CallbackURL is Garde's redirect URI, registered with PSC exactly.
	CallbackURL string
	// State and Nonce are unguessable values bound to the browser.
	State string
	Nonce string
	// CodeChallenge is the PKCE S256 challenge of a verifier the caller
	// keeps for Exchange.
	CodeChallenge string
	// LoginHint is an optional idNat_PS to prefill.
	LoginHint string
}

// minRandomLen is the shortest state, nonce or code challenge accepted: a
// caller passing a short or empty value has a bug that would weaken CSRF
// or replay protection, so it is refused rather than sent.
const minRandomLen = 16

// AuthCodeURL returns the URL of PSC's wallet to send the browser to.
func (c *Connector) AuthCodeURL(ctx context.Context, a AuthRequest) (string, error) {
	switch {
	case checkCallback(a.CallbackURL) != nil:
		return "", fmt.Errorf("psc: callback URL: %v: %w", checkCallback(a.CallbackURL), ErrInvalidRequest)
	case len(a.State) < minRandomLen:
		return "", fmt.Errorf("psc: state shorter than %d characters: %w", minRandomLen, ErrInvalidRequest)
	case len(a.Nonce) < minRandomLen:
		return "", fmt.Errorf("psc: nonce shorter than %d characters: %w", minRandomLen, ErrInvalidRequest)
	case len(a.LoginHint) > maxIDNatLen || strings.ContainsFunc(a.LoginHint, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "", fmt.Errorf("psc: login hint is not a national identifier: %w", ErrInvalidRequest)
	case len(a.CodeChallenge) != 43:
		// base64url(SHA-256) without padding is always 43 characters.
		return "", fmt.Errorf("psc: code challenge is not an S256 challenge: %w", ErrInvalidRequest)
	}
	d, err := c.provider(ctx)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("acr_values", c.acrValues),
		oauth2.SetAuthURLParam("nonce", a.Nonce),
		oauth2.SetAuthURLParam("code_challenge", a.CodeChallenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"),
	}
	if a.LoginHint != "" {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", a.LoginHint))
	}
	return c.oauth2Config(d, a.CallbackURL).AuthCodeURL(a.State, opts...), nil
}

func checkCallback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL without fragment", raw)
	}
	return nil
}

func (c *Connector) oauth2Config(d *discovered, callbackURL string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if c.authMethod != AuthClientSecretBasic {
		// client_secret_post, and tls_client_auth which sends client_id
		// in the body and no secret (RFC 8705 §2).
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     c.clientID,
		ClientSecret: c.clientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   d.meta.AuthorizationEndpoint,
			TokenURL:  d.meta.TokenEndpoint,
			AuthStyle: style,
		},
		RedirectURL: callbackURL,
		Scopes:      c.scopes,
	}
}

// CallbackError reads the error PSC put on the callback URL instead of a
// code: nil when there is none, ErrDenied for access_denied (the person
// cancelled, or PSC refused), else ErrProvider.
func CallbackError(q url.Values) error {
	code := q.Get("error")
	if code == "" {
		return nil
	}
	// The description is PSC's text: bounded, and kept out of anything
	// shown as Garde's own words.
	desc := q.Get("error_description")
	if len(desc) > 200 {
		desc = desc[:200]
	}
	if code == "access_denied" {
		return fmt.Errorf("psc: %s (%q): %w", code, desc, ErrDenied)
	}
	return fmt.Errorf("psc: callback error %q (%q): %w", code, desc, ErrProvider)
}

// Exchange redeems an authorization code and returns who signed in. It
// verifies the ID token (signature, iss, aud, exp, nonce), fetches
// userinfo at once (the access token lives 120 s at PSC) and maps both.
func (c *Connector) Exchange(ctx context.Context, callbackURL, code, codeVerifier, nonce string) (connectors.Identity, error) {
	switch {
	case code == "":
		return connectors.Identity{}, fmt.Errorf("psc: no authorization code: %w", ErrInvalidRequest)
	case len(codeVerifier) < 43:
		return connectors.Identity{}, fmt.Errorf("psc: code verifier shorter than 43 characters (RFC 7636): %w", ErrInvalidRequest)
	case nonce == "":
		return connectors.Identity{}, fmt.Errorf("psc: no nonce: %w", ErrInvalidRequest)
	}
	d, err := c.provider(ctx)
	if err != nil {
		return connectors.Identity{}, err
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, c.client)
	tok, err := c.oauth2Config(d, callbackURL).Exchange(hctx, code, oauth2.VerifierOption(codeVerifier))
	if err != nil {
		return connectors.Identity{}, tokenError("code exchange", err)
	}
	return c.finish(ctx, d, tok, nonce)
}

// tokenError classifies a token endpoint failure.
func tokenError(what string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.Response != nil && re.Response.StatusCode >= 500 {
			return unavailable("%s: token endpoint answered HTTP %d", what, re.Response.StatusCode)
		}
		switch re.ErrorCode {
		case "access_denied":
			return fmt.Errorf("psc: %s: %s: %w", what, re.ErrorCode, ErrDenied)
		case "authorization_pending":
			return ErrAuthorizationPending
		case "slow_down":
			return ErrSlowDown
		case "expired_token":
			return fmt.Errorf("psc: %s: %w", what, ErrExpired)
		case "":
			return fmt.Errorf("psc: %s: token endpoint answered HTTP %d: %w", what, statusOf(re.Response), ErrProvider)
		}
		desc := re.ErrorDescription
		if len(desc) > 200 {
			desc = desc[:200]
		}
		return fmt.Errorf("psc: %s: %s (%q): %w", what, re.ErrorCode, desc, ErrProvider)
	}
	return unavailable("%s: %v", what, err)
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

// idClaims are the ID token claims Garde reads beyond go-oidc's.
type idClaims struct {
	AuthTime          json.Number `json:"auth_time"`
	SID               string      `json:"sid"`
	SessionState      string      `json:"session_state"`
	AuthMode          flexString  `json:"authMode"`
	AZP               string      `json:"azp"`
	PreferredUsername flexString  `json:"preferred_username"`
	GivenName         flexString  `json:"given_name"`
	FamilyName        flexString  `json:"family_name"`
}

// verified is a checked ID token.
type verified struct {
	raw    string
	token  *oidc.IDToken
	claims idClaims
	acrs   []string
}

// finish verifies the token response, fetches userinfo and maps the
// identity. nonce is "" for decoupled sign-ins, which have none.
func (c *Connector) finish(ctx context.Context, d *discovered, tok *oauth2.Token, nonce string) (connectors.Identity, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return connectors.Identity{}, fmt.Errorf("psc: token response has no id_token: %w", ErrInvalidToken)
	}
	v, err := c.verifyIDToken(ctx, d, raw, nonce)
	if err != nil {
		return connectors.Identity{}, err
	}
	if v.token.AccessTokenHash != "" {
		if err := v.token.VerifyAccessToken(tok.AccessToken); err != nil {
			return connectors.Identity{}, fmt.Errorf("psc: at_hash does not match the access token: %w", ErrInvalidToken)
		}
	}
	u, err := c.userinfo(ctx, d, tok.AccessToken)
	if err != nil {
		return connectors.Identity{}, err
	}
	// OpenID Connect Core §5.3.2: userinfo for another subject than the ID
	// token's is a substitution attack, not a glitch.
	if string(u.Sub) != v.token.Subject {
		return connectors.Identity{}, fmt.Errorf("psc: userinfo sub differs from the ID token's: %w", ErrUserinfo)
	}
	return c.identity(v, u)
}

func (c *Connector) verifyIDToken(ctx context.Context, d *discovered, raw, nonce string) (*verified, error) {
	verifier := oidc.NewVerifier(c.issuer, d.keys, &oidc.Config{
		ClientID:             c.clientID,
		SupportedSigningAlgs: d.algs,
		Now:                  c.now,
	})
	// The signature first, on its own: go-oidc flattens errors to text,
	// and PSC's key set being unreachable is an outage, not a bad token.
	if _, err := d.keys.VerifySignature(ctx, raw); err != nil {
		if errors.Is(err, connectors.ErrUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("psc: ID token: %v: %w", err, ErrInvalidToken)
	}
	t, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("psc: ID token: %v: %w", err, ErrInvalidToken)
	}
	if t.Nonce != nonce {
		return nil, fmt.Errorf("psc: ID token nonce does not match this sign-in: %w", ErrInvalidToken)
	}
	var payload json.RawMessage
	if err := t.Claims(&payload); err != nil {
		return nil, fmt.Errorf("psc: ID token claims: %v: %w", err, ErrInvalidToken)
	}
	v := &verified{raw: raw, token: t}
	if err := json.Unmarshal(payload, &v.claims); err != nil {
		return nil, fmt.Errorf("psc: ID token claims: %v: %w", err, ErrInvalidToken)
	}
	// With several audiences the token must name Garde as its
	// authorised party (OpenID Connect Core §3.1.3.7).
	if len(t.Audience) > 1 && v.claims.AZP != c.clientID || v.claims.AZP != "" && v.claims.AZP != c.clientID {
		return nil, fmt.Errorf("psc: ID token azp %q is not this client: %w", v.claims.AZP, ErrInvalidToken)
	}
	if v.acrs, err = topLevelStrings(payload, "acr"); err != nil {
		return nil, fmt.Errorf("psc: ID token claims: %v: %w", err, ErrInvalidToken)
	}
	return v, nil
}

// topLevelStrings returns every value of key in a JSON object, in order.
// encoding/json keeps only the last of duplicated keys; PSC has sent acr
// twice, and Garde wants to see both.
func topLevelStrings(obj []byte, key string) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if k != key {
			continue
		}
		var s flexString
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%s: %v", key, err)
		}
		out = append(out, string(s))
	}
	return out, nil
}

// userinfo fetches and verifies the userinfo response.
func (c *Connector) userinfo(ctx context.Context, d *discovered, accessToken string) (*userinfoClaims, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.meta.UserinfoEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("psc: userinfo: %v: %w", err, ErrUserinfo)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json, application/jwt")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, unavailable("userinfo: %v", err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, unavailable("userinfo: reading: %v", err)
	}
	switch {
	case resp.StatusCode >= 500:
		return nil, unavailable("userinfo answered HTTP %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("psc: userinfo answered HTTP %d (%s): %w", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), ErrUserinfo)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var payload []byte
	switch ct {
	case "application/json":
		payload = body
	case "application/jwt":
		if payload, err = c.userinfoJWT(ctx, d, strings.TrimSpace(string(body))); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("psc: userinfo content type %q; expected application/json or application/jwt: %w", ct, ErrUserinfo)
	}
	u, err := parseUserinfo(payload)
	if err != nil {
		return nil, fmt.Errorf("psc: %v: %w", err, ErrUserinfo)
	}
	return u, nil
}

// Algorithms accepted to decrypt userinfo. RSA1_5 is left out although
// PSC's discovery lists it: PKCS#1 v1.5 decryption is open to padding
// oracles, and Keycloak defaults to RSA-OAEP.
var (
	keyAlgs = []jose.KeyAlgorithm{jose.RSA_OAEP, jose.RSA_OAEP_256, jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW}
	encAlgs = []jose.ContentEncryption{jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512, jose.A128GCM, jose.A192GCM, jose.A256GCM}
)

// userinfoJWT verifies a signed (and possibly encrypted) userinfo and
// returns its claims.
func (c *Connector) userinfoJWT(ctx context.Context, d *discovered, raw string) ([]byte, error) {
	if strings.Count(raw, ".") == 4 {
		if c.decryptKey == nil {
			return nil, fmt.Errorf("psc: userinfo is encrypted but no decryption key is configured: %w", ErrUserinfo)
		}
		jwe, err := jose.ParseEncrypted(raw, keyAlgs, encAlgs)
		if err != nil {
			return nil, fmt.Errorf("psc: encrypted userinfo: %v: %w", err, ErrUserinfo)
		}
		inner, err := jwe.Decrypt(c.decryptKey)
		if err != nil {
			return nil, fmt.Errorf("psc: encrypted userinfo: %v: %w", err, ErrUserinfo)
		}
		raw = strings.TrimSpace(string(inner))
		// Encryption alone proves nothing about the sender: anyone holding
		// Garde's public key could have written it. Only a nested JWS
		// signed by PSC is accepted.
		if strings.Count(raw, ".") != 2 {
			return nil, fmt.Errorf("psc: encrypted userinfo does not contain a signed JWT: %w", ErrUserinfo)
		}
	}
	payload, err := c.verifyJWS(ctx, d, raw)
	if err != nil {
		return nil, fmt.Errorf("psc: signed userinfo: %v: %w", err, ErrUserinfo)
	}
	var std struct {
		Iss string   `json:"iss"`
		Aud audience `json:"aud"`
	}
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, fmt.Errorf("psc: signed userinfo: %v: %w", err, ErrUserinfo)
	}
	// OpenID Connect Core §5.3.2: a signed response SHOULD carry iss and
	// aud; when it does they must be PSC and Garde.
	if std.Iss != "" && std.Iss != c.issuer {
		return nil, fmt.Errorf("psc: signed userinfo from issuer %q: %w", std.Iss, ErrUserinfo)
	}
	if len(std.Aud) > 0 && !slices.Contains(std.Aud, c.clientID) {
		return nil, fmt.Errorf("psc: signed userinfo for audience %q: %w", std.Aud, ErrUserinfo)
	}
	return payload, nil
}

// verifyJWS checks a compact JWS against PSC's keys, with the algorithms
// discovery allows (never none or HS*), and returns its payload.
func (c *Connector) verifyJWS(ctx context.Context, d *discovered, raw string) ([]byte, error) {
	return d.keys.VerifySignature(ctx, raw)
}

// audience is a JWT aud: a string or a list of strings.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor a list of strings")
	}
	*a = many
	return nil
}

// identity maps a verified ID token and userinfo to a connectors.Identity.
func (c *Connector) identity(v *verified, u *userinfoClaims) (connectors.Identity, error) {
	idNat := u.nationalID()
	if idNat == "" {
		idNat = strings.TrimSpace(string(v.claims.PreferredUsername))
	}
	if idNat == "" {
		return connectors.Identity{}, fmt.Errorf("psc: neither SubjectNameID nor preferred_username is set: %w", ErrNoSubject)
	}
	authMode := string(u.AuthMode)
	if authMode == "" {
		authMode = string(v.claims.AuthMode)
	}
	level, amr := assess(c.rules, v.acrs, authMode)
	id := connectors.Identity{
		Connector:      c.id,
		Subject:        idNat,
		Username:       idNat,
		NationalID:     idNat,
		NationalIDType: connectors.NationalIDTypeOf(idNat),
		GivenName:      firstNonEmpty(string(u.GivenName), string(v.claims.GivenName)),
		FamilyName:     firstNonEmpty(string(u.FamilyName), string(v.claims.FamilyName)),
		Email:          string(u.Email),
		AuthMode:       authMode,
		AMR:            amr,
		Assurance:      level,
		AuthTime:       c.now(),
		Upstream: &connectors.Upstream{
			Subject:   v.token.Subject,
			SessionID: firstNonEmpty(v.claims.SID, v.claims.SessionState),
			IDToken:   v.raw,
		},
	}
	id.DisplayName = strings.TrimSpace(id.GivenName + " " + id.FamilyName)
	if id.NationalIDType == "structure" {
		if s, _, ok := strings.Cut(idNat, "/"); ok {
			id.Structure = s
		}
	}
	if f, err := v.claims.AuthTime.Float64(); err == nil && f > 0 {
		// A time in the future (clock drift at PSC) would make the
		// sign-in look fresher than it is for as long: take now instead.
		if at := time.Unix(int64(f), 0); at.Before(id.AuthTime) {
			id.AuthTime = at
		}
	}
	for _, e := range u.SubjectRefPro.Exercices {
		p := connectors.Profession{Code: string(e.CodeProfession), Category: string(e.CodeCategorie)}
		if e.CodeSavoirFaire != "" {
			p.Specialties = []string{string(e.CodeSavoirFaire)}
		}
		for _, a := range e.Activities {
			p.Activities = append(p.Activities, connectors.Activity{
				FinessSite:  string(a.NumeroFinessSite),
				FinessLegal: string(a.NumeroFinessetablissementJuridique),
				SiteName:    strings.TrimSpace(string(a.RaisonSocialeSite)),
				Role:        firstNonEmpty(string(a.CodeRole), string(a.CodeModeExercice)),
			})
		}
		if p.Code == "" && p.Category == "" && len(p.Specialties) == 0 && len(p.Activities) == 0 {
			continue
		}
		id.Professions = append(id.Professions, p)
	}
	return id, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
