package psc

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/garde-sso/garde/connectors"
)

// Decoupled sign-in (OpenID Connect CIBA) as PSC offers it: Garde names the
// professional (idNat), PSC pushes the request to their e-CPS app or card
// reader, showing a two-digit binding message that Garde also shows, and
// Garde polls the token endpoint until the person approves. It lets a
// shared workstation sign someone in without a browser redirect.

// Channels PSC accepts for a decoupled sign-in.
const (
	ChannelCard   = "CARD"
	ChannelMobile = "MOBILE"
)

// cibaGrantType is the token request grant of a decoupled sign-in.
const cibaGrantType = "urn:openid:params:grant-type:ciba"

// Decoupled is a started decoupled sign-in.
type Decoupled struct {
	// AuthReqID is PSC's handle, passed to PollDecoupled.
	AuthReqID string
	// BindingMessage is the two digits to show the person, who checks
	// that the app or reader shows the same.
	BindingMessage string
	// Interval is how long to wait between polls; ExpiresIn how long the
	// request lives.
	Interval  time.Duration
	ExpiresIn time.Duration
}

// maxIDNatLen bounds a login hint: idNat_PS are at most a structure id, a
// slash and a local id.
const maxIDNatLen = 64

// StartDecoupled asks PSC to push a sign-in to the professional idNat on
// channel CARD or MOBILE.
func (c *Connector) StartDecoupled(ctx context.Context, idNat, channel string) (Decoupled, error) {
	idNat = strings.TrimSpace(idNat)
	switch {
	case idNat == "" || len(idNat) > maxIDNatLen || strings.ContainsAny(idNat, " \t\r\n"):
		return Decoupled{}, fmt.Errorf("psc: %q is not a national identifier: %w", idNat, ErrInvalidRequest)
	case channel != ChannelCard && channel != ChannelMobile:
		return Decoupled{}, fmt.Errorf("psc: channel %q; expected CARD or MOBILE: %w", channel, ErrInvalidRequest)
	}
	d, err := c.provider(ctx)
	if err != nil {
		return Decoupled{}, err
	}
	if d.meta.BackchannelAuthEndpoint == "" {
		return Decoupled{}, fmt.Errorf("psc: discovery has no backchannel_authentication_endpoint: %w", ErrNotSupported)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(100))
	if err != nil {
		return Decoupled{}, fmt.Errorf("psc: binding message: %w", err)
	}
	binding := fmt.Sprintf("%02d", n.Int64())
	form := url.Values{
		"scope":           {strings.Join(c.scopes, " ")},
		"acr_values":      {c.acrValues},
		"login_hint":      {idNat},
		"binding_message": {binding},
		"channel":         {channel},
	}
	var resp struct {
		AuthReqID string      `json:"auth_req_id"`
		ExpiresIn json.Number `json:"expires_in"`
		Interval  json.Number `json:"interval"`
	}
	if err := c.post(ctx, "decoupled sign-in", d.meta.BackchannelAuthEndpoint, form, &resp); err != nil {
		return Decoupled{}, err
	}
	if resp.AuthReqID == "" {
		return Decoupled{}, fmt.Errorf("psc: decoupled sign-in: no auth_req_id in the answer: %w", ErrProvider)
	}
	out := Decoupled{AuthReqID: resp.AuthReqID, BindingMessage: binding, Interval: 5 * time.Second, ExpiresIn: 2 * time.Minute}
	if n, err := resp.Interval.Int64(); err == nil && n > 0 && n < 60 {
		out.Interval = time.Duration(n) * time.Second
	}
	if n, err := resp.ExpiresIn.Int64(); err == nil && n > 0 && n < 3600 {
		out.ExpiresIn = time.Duration(n) * time.Second
	}
	return out, nil
}

// PollDecoupled asks whether the person approved. It returns their
// identity, or ErrAuthorizationPending (poll again after the interval),
// ErrSlowDown (wait longer: add 5 s to the interval), ErrDenied or
// ErrExpired.
func (c *Connector) PollDecoupled(ctx context.Context, authReqID string) (connectors.Identity, error) {
	if authReqID == "" || len(authReqID) > 1024 {
		return connectors.Identity{}, fmt.Errorf("psc: invalid auth_req_id: %w", ErrInvalidRequest)
	}
	d, err := c.provider(ctx)
	if err != nil {
		return connectors.Identity{}, err
	}
	var resp struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		IDToken     string `json:"id_token"`
	}
	form := url.Values{"grant_type": {cibaGrantType}, "auth_req_id": {authReqID}}
	if err := c.post(ctx, "decoupled sign-in poll", d.meta.TokenEndpoint, form, &resp); err != nil {
		return connectors.Identity{}, err
	}
	if resp.AccessToken == "" {
		return connectors.Identity{}, fmt.Errorf("psc: decoupled sign-in: no access token: %w", ErrProvider)
	}
	tok := (&oauth2.Token{AccessToken: resp.AccessToken, TokenType: resp.TokenType}).WithExtra(map[string]any{"id_token": resp.IDToken})
	// A decoupled sign-in has no nonce: the ID token must carry none.
	return c.finish(ctx, d, tok, "")
}

// post sends a form to a PSC back-channel endpoint with the configured
// client authentication and decodes the JSON answer into out.
func (c *Connector) post(ctx context.Context, what, endpoint string, form url.Values, out any) error {
	switch c.authMethod {
	case AuthClientSecretPost:
		form.Set("client_id", c.clientID)
		form.Set("client_secret", c.clientSecret)
	case AuthTLSClientAuth:
		form.Set("client_id", c.clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("psc: %s: %v: %w", what, err, ErrInvalidRequest)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.authMethod == AuthClientSecretBasic {
		// RFC 6749 §2.3.1: form-encode both before Basic.
		req.SetBasicAuth(url.QueryEscape(c.clientID), url.QueryEscape(c.clientSecret))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return unavailable("%s: %v", what, err)
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return unavailable("%s: reading: %v", what, err)
	}
	if resp.StatusCode >= 500 {
		return unavailable("%s: HTTP %d", what, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &e)
		return tokenError(what, &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: e.Error, ErrorDescription: e.Description})
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("psc: %s: invalid JSON answer: %v: %w", what, err, ErrProvider)
	}
	return nil
}
