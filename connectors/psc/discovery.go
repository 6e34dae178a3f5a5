package psc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// maxBody bounds every response read from PSC: its documents are a few
// kilobytes; a larger answer is a fault, not something to buffer.
const maxBody = 1 << 20

// metadata is the part of PSC's discovery document Garde uses.
type metadata struct {
	Issuer                        string   `json:"issuer"`
	AuthorizationEndpoint         string   `json:"authorization_endpoint"`
	TokenEndpoint                 string   `json:"token_endpoint"`
	UserinfoEndpoint              string   `json:"userinfo_endpoint"`
	JWKSURI                       string   `json:"jwks_uri"`
	EndSessionEndpoint            string   `json:"end_session_endpoint"`
	BackchannelAuthEndpoint       string   `json:"backchannel_authentication_endpoint"`
	IDTokenSigningAlgs            []string `json:"id_token_signing_alg_values_supported"`
	BackchannelLogoutSupported    bool     `json:"backchannel_logout_supported"`
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
}

// discovered is a validated discovery document and the key set it names.
type discovered struct {
	meta    metadata
	keys    *keySet
	algs    []string // asymmetric signing algorithms accepted on tokens
	fetched time.Time
}

// discoveryRetry is how long a failed first fetch of discovery is
// remembered: while PSC is down, sign-ins fail at once instead of each
// waiting for a timeout, and PSC is not hammered when it comes back.
const discoveryRetry = 5 * time.Second

// asymmetricAlgs are the JWS algorithms Garde accepts from PSC. HS* (keyed
// with the client secret) and none are never accepted, whatever discovery
// lists: a secret shared with PSC must not be able to mint identities.
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.EdDSA,
}

// provider returns PSC's metadata, fetching it when absent or older than
// the TTL. When a refresh fails the previous document is kept: endpoints
// rarely move, and PSC's token endpoint will say so if they did.
func (c *Connector) provider(ctx context.Context) (*discovered, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.disc != nil && now.Sub(c.disc.fetched) < c.discoveryTTL {
		return c.disc, nil
	}
	if c.disc == nil && c.discErr != nil && now.Sub(c.discFailed) < discoveryRetry {
		return nil, c.discErr
	}
	m, err := c.fetchMetadata(ctx)
	if err != nil {
		c.discErr, c.discFailed = err, now
		if c.disc != nil {
			c.log.WarnContext(ctx, "psc: discovery refresh failed; keeping the previous document", "connector", c.id, "err", err)
			c.disc.fetched = now
			return c.disc, nil
		}
		return nil, err
	}
	d := &discovered{meta: *m, fetched: now}
	for _, a := range m.IDTokenSigningAlgs {
		if slices.Contains(asymmetricAlgs, a) {
			d.algs = append(d.algs, a)
		}
	}
	if len(d.algs) == 0 {
		d.algs = []string{oidc.RS256}
	}
	if c.disc != nil && c.disc.meta.JWKSURI == m.JWKSURI {
		d.keys = c.disc.keys // keep the cached keys
	} else {
		d.keys = newKeySet(m.JWKSURI, c.client, c.now, d.algs)
	}
	c.disc = d
	return d, nil
}

func (c *Connector) fetchMetadata(ctx context.Context) (*metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.discoveryURL, nil)
	if err != nil {
		return nil, unavailable("discovery %s: %v", c.discoveryURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, unavailable("discovery %s unreachable: %v", c.discoveryURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, unavailable("discovery %s: reading: %v", c.discoveryURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, unavailable("discovery %s answered HTTP %d", c.discoveryURL, resp.StatusCode)
	}
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct != "application/json" {
		return nil, unavailable("discovery %s answered %q, not application/json", c.discoveryURL, ct)
	}
	var m metadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, unavailable("discovery %s: invalid JSON: %v", c.discoveryURL, err)
	}
	// OpenID Connect Discovery §4.3: the issuer in the document must be
	// the one configured, or tokens could be accepted from another realm.
	if m.Issuer != c.issuer {
		return nil, unavailable("discovery %s names issuer %q; expected %q", c.discoveryURL, m.Issuer, c.issuer)
	}
	for name, u := range map[string]string{
		"authorization_endpoint": m.AuthorizationEndpoint,
		"token_endpoint":         m.TokenEndpoint,
		"userinfo_endpoint":      m.UserinfoEndpoint,
		"jwks_uri":               m.JWKSURI,
	} {
		if err := checkHTTPSURL(u); err != nil {
			return nil, unavailable("discovery %s: %s: %v", c.discoveryURL, name, err)
		}
	}
	for name, u := range map[string]string{
		"end_session_endpoint":                m.EndSessionEndpoint,
		"backchannel_authentication_endpoint": m.BackchannelAuthEndpoint,
	} {
		if u == "" {
			continue
		}
		if err := checkHTTPSURL(u); err != nil {
			return nil, unavailable("discovery %s: %s: %v", c.discoveryURL, name, err)
		}
	}
	return &m, nil
}

// readBody reads a bounded response body.
func readBody(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("response larger than %d bytes", maxBody)
	}
	return b, nil
}
