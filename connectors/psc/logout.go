package psc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// EndSessionURL returns PSC's logout URL for the browser: PSC ends its own
// session (4 h, shared by every service the person used) and sends the
// browser back to postLogoutRedirectURI, which must be registered with PSC,
// with state.
func (c *Connector) EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirectURI, state string) (string, error) {
	if postLogoutRedirectURI != "" {
		if err := checkCallback(postLogoutRedirectURI); err != nil {
			return "", fmt.Errorf("psc: post-logout redirect URI: %v: %w", err, ErrInvalidRequest)
		}
	}
	d, err := c.provider(ctx)
	if err != nil {
		return "", err
	}
	if d.meta.EndSessionEndpoint == "" {
		return "", fmt.Errorf("psc: discovery has no end_session_endpoint: %w", ErrNotSupported)
	}
	u, err := url.Parse(d.meta.EndSessionEndpoint)
	if err != nil {
		return "", unavailable("end_session_endpoint: %v", err)
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	if postLogoutRedirectURI != "" {
		// Keycloak requires id_token_hint or client_id with a
		// post-logout redirect; sending both is always accepted.
		q.Set("client_id", c.clientID)
		q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
		if state != "" {
			q.Set("state", state)
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// BackChannelLogoutEvent is the event a logout token must carry.
const BackChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken is a verified OpenID Connect back-channel logout token.
// Either Subject or SessionID (or both) is set.
type LogoutToken struct {
	// Subject is PSC's sub (Identity.Upstream.Subject), not a person key.
	Subject string
	// SessionID is PSC's sid (Identity.Upstream.SessionID).
	SessionID string
	// JTI identifies the token: the caller must refuse one seen before
	// (within the token's lifetime) to stop replays.
	JTI      string
	IssuedAt time.Time
}

// logoutClaims are the claims of a logout token, as sent.
type logoutClaims struct {
	Iss    string                     `json:"iss"`
	Sub    string                     `json:"sub"`
	Aud    audience                   `json:"aud"`
	Iat    *json.Number               `json:"iat"`
	Exp    *json.Number               `json:"exp"`
	JTI    string                     `json:"jti"`
	SID    string                     `json:"sid"`
	Events map[string]json.RawMessage `json:"events"`
	Nonce  *json.RawMessage           `json:"nonce"`
}

// parseLogoutClaims decodes and checks a logout token's claims, apart from
// the signature and time (OpenID Connect Back-Channel Logout 1.0 §2.6).
func parseLogoutClaims(payload []byte, issuer, clientID string) (*logoutClaims, error) {
	var lc logoutClaims
	if err := json.Unmarshal(payload, &lc); err != nil {
		return nil, fmt.Errorf("claims: %v", err)
	}
	switch {
	case lc.Iss != issuer:
		return nil, fmt.Errorf("issuer %q is not %q", lc.Iss, issuer)
	case !slices.Contains(lc.Aud, clientID):
		return nil, fmt.Errorf("audience %q does not include %q", []string(lc.Aud), clientID)
	case lc.Iat == nil:
		return nil, errors.New("no iat")
	case lc.Nonce != nil:
		// A nonce marks an ID token: refusing it stops an ID token from
		// being replayed as a logout token.
		return nil, errors.New("a logout token must not contain a nonce")
	case lc.Sub == "" && lc.SID == "":
		return nil, errors.New("neither sub nor sid is set")
	case lc.JTI == "":
		return nil, errors.New("no jti")
	}
	ev, ok := lc.Events[BackChannelLogoutEvent]
	if !ok {
		return nil, fmt.Errorf("events does not contain %s", BackChannelLogoutEvent)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(ev, &obj); err != nil || obj == nil {
		return nil, errors.New("the back-channel logout event is not a JSON object")
	}
	return &lc, nil
}

func numberTime(n *json.Number) (time.Time, error) {
	if f, err := n.Float64(); err == nil {
		return time.Unix(int64(f), 0), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a number", n.String())
}

// VerifyLogoutToken checks a back-channel logout token from PSC: signature
// (PSC's keys, refetched on an unknown kid), iss, aud, iat within the
// clock skew, exp when present, the back-channel logout event, no nonce,
// and sub or sid. Replays are the caller's to refuse, by JTI.
func (c *Connector) VerifyLogoutToken(ctx context.Context, raw string) (LogoutToken, error) {
	if len(raw) > maxBody {
		return LogoutToken{}, fmt.Errorf("psc: logout token too large: %w", ErrInvalidLogoutToken)
	}
	d, err := c.provider(ctx)
	if err != nil {
		return LogoutToken{}, err
	}
	payload, err := c.verifyJWS(ctx, d, raw)
	if err != nil {
		return LogoutToken{}, fmt.Errorf("psc: logout token: %v: %w", err, ErrInvalidLogoutToken)
	}
	lc, err := parseLogoutClaims(payload, c.issuer, c.clientID)
	if err != nil {
		return LogoutToken{}, fmt.Errorf("psc: logout token: %v: %w", err, ErrInvalidLogoutToken)
	}
	now := c.now()
	iat, err := numberTime(lc.Iat)
	if err != nil {
		return LogoutToken{}, fmt.Errorf("psc: logout token iat: %v: %w", err, ErrInvalidLogoutToken)
	}
	// A token from far in the past or the future is refused: the replay
	// cache keyed on jti only needs to cover this window.
	if iat.After(now.Add(DefaultLeeway)) || iat.Before(now.Add(-DefaultLeeway)) {
		return LogoutToken{}, fmt.Errorf("psc: logout token issued at %s, outside %s of now: %w", iat.UTC().Format(time.RFC3339), DefaultLeeway, ErrInvalidLogoutToken)
	}
	if lc.Exp != nil {
		exp, err := numberTime(lc.Exp)
		if err != nil {
			return LogoutToken{}, fmt.Errorf("psc: logout token exp: %v: %w", err, ErrInvalidLogoutToken)
		}
		if !now.Before(exp) {
			return LogoutToken{}, fmt.Errorf("psc: logout token expired at %s: %w", exp.UTC().Format(time.RFC3339), ErrInvalidLogoutToken)
		}
	}
	return LogoutToken{Subject: lc.Sub, SessionID: lc.SID, JTI: lc.JTI, IssuedAt: iat}, nil
}
