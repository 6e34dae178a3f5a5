package psctest

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// sign signs payload with the current key: RS256 with kid, as PSC does.
func (s *Sim) sign(payload []byte, typ string) (string, error) {
	s.mu.Lock()
	k := s.keys[0]
	s.mu.Unlock()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader(jose.HeaderKey("kid"), k.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.key}, opts)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// MintJWT signs any claims with the simulator's current key: for tests
// that need a token PSC would never send.
func (s *Sim) MintJWT(claims map[string]any) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return s.sign(b, "JWT")
}

// LogoutToken returns a back-channel logout token (OpenID Connect
// Back-Channel Logout 1.0) for PSC's sub and/or sid, as PSC would POST it.
func (s *Sim) LogoutToken(sub, sid string) string {
	now := s.now()
	c := map[string]any{
		"iss":    s.issuer,
		"aud":    s.cfg.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    uuid(),
		"typ":    "Logout",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if sub != "" {
		c["sub"] = sub
	}
	if sid != "" {
		c["sid"] = sid
	}
	b, _ := json.Marshal(c)
	tok, err := s.sign(b, "logout+jwt")
	if err != nil {
		panic(fmt.Sprintf("psctest: signing a logout token: %v", err))
	}
	return tok
}

// SendLogoutToken POSTs a logout token to a back-channel logout URL as PSC
// does (application/x-www-form-urlencoded, logout_token=...) and returns
// the HTTP status.
func (s *Sim) SendLogoutToken(ctx context.Context, client *http.Client, endpoint, token string) (int, error) {
	form := url.Values{"logout_token": {token}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// idToken builds and signs an ID token for g.
func (s *Sim) idToken(g *grant, accessToken string) (string, error) {
	now := s.now()
	s.mu.Lock()
	acr, dup, tamper := s.acr, s.dupACR, s.tamper
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(accessToken))
	c := map[string]any{
		"exp":                now.Add(IDTokenLifetime).Unix(),
		"iat":                now.Unix(),
		"auth_time":          g.authTime.Unix(),
		"jti":                uuid(),
		"iss":                s.issuer,
		"aud":                s.cfg.ClientID,
		"sub":                g.user.Sub(),
		"typ":                "ID",
		"azp":                s.cfg.ClientID,
		"session_state":      g.sid,
		"sid":                g.sid,
		"at_hash":            base64.RawURLEncoding.EncodeToString(sum[:16]),
		"acr":                acr,
		"authMode":           g.user.AuthMode,
		"preferred_username": g.user.IDNat,
		"given_name":         g.user.GivenName,
		"family_name":        g.user.FamilyName,
	}
	if g.nonce != "" {
		c["nonce"] = g.nonce
	}
	if tamper != nil {
		tamper(c)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	if dup {
		// An old PSC token held acr twice: "acr":"1" then the real one.
		b = append([]byte(`{"acr":"1",`), b[1:]...)
	}
	return s.sign(b, "JWT")
}

// accessToken builds a Keycloak-like JWT access token living 120 s.
func (s *Sim) accessToken(g *grant) (string, time.Time, error) {
	now := s.now()
	exp := now.Add(AccessTokenLifetime)
	c := map[string]any{
		"exp": exp.Unix(), "iat": now.Unix(), "auth_time": g.authTime.Unix(),
		"jti": uuid(), "iss": s.issuer, "sub": g.user.Sub(), "typ": "Bearer",
		"azp": s.cfg.ClientID, "nonce": g.nonce, "session_state": g.sid, "sid": g.sid,
		"acr": "eidas3", "scope": "openid scope_all", "authMode": g.user.AuthMode,
		"preferred_username": g.user.IDNat,
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, err
	}
	tok, err := s.sign(b, "JWT")
	return tok, exp, err
}

// userinfoBody renders userinfo in the configured format.
func (s *Sim) userinfoBody(g *grant) (contentType string, body []byte, err error) {
	s.mu.Lock()
	format, encKey := s.format, s.encKey
	s.mu.Unlock()
	claims := g.user.UserinfoClaims()
	if format == FormatJSON {
		b, err := json.Marshal(claims)
		return "application/json", b, err
	}
	claims["iss"] = s.issuer
	claims["aud"] = s.cfg.ClientID
	b, err := json.Marshal(claims)
	if err != nil {
		return "", nil, err
	}
	jws, err := s.sign(b, "JWT")
	if err != nil {
		return "", nil, err
	}
	if format == FormatJWT {
		return "application/jwt", []byte(jws), nil
	}
	var alg jose.KeyAlgorithm
	switch encKey.(type) {
	case *rsa.PublicKey:
		alg = jose.RSA_OAEP_256
	case *ecdsa.PublicKey:
		alg = jose.ECDH_ES_A256KW
	default:
		return "", nil, fmt.Errorf("psctest: FormatJWE needs an *rsa.PublicKey or *ecdsa.PublicKey, got %T", encKey)
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: alg, Key: encKey},
		(&jose.EncrypterOptions{}).WithContentType("JWT").WithType("JWT"))
	if err != nil {
		return "", nil, err
	}
	obj, err := enc.Encrypt([]byte(jws))
	if err != nil {
		return "", nil, err
	}
	out, err := obj.CompactSerialize()
	return "application/jwt", []byte(out), err
}

// verifyOwn checks that raw was signed by one of the simulator's keys and
// returns its claims (for id_token_hint).
func (s *Sim) verifyOwn(raw string) (map[string]any, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	keys := append([]signingKey(nil), s.keys...)
	s.mu.Unlock()
	for _, k := range keys {
		if payload, err := jws.Verify(&k.key.PublicKey); err == nil {
			var c map[string]any
			if err := json.Unmarshal(payload, &c); err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("signature does not verify")
}

// jwks is the realm's public keys.
func (s *Sim) jwks() jose.JSONWebKeySet {
	s.mu.Lock()
	defer s.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range s.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.kid, Algorithm: "RS256", Use: "sig"})
	}
	return set
}
