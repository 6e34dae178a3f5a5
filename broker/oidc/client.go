package oidc

import (
	"github.com/google/uuid"

	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
)

// Client is a relying party registered in the configuration.
type Client struct {
	fosite.DefaultOpenIDConnectClient
	// Name is shown to people on the login page.
	Name string
	// PostLogoutRedirectURIs are the exact URIs end_session may return to.
	PostLogoutRedirectURIs []string
	// IDTokenAlg signs this client's ID and access tokens (RS256 or ES256).
	IDTokenAlg string
	// AccessTokenLifetime overrides the provider default when non-zero.
	AccessTokenLifetime time.Duration
	// Delegation, when set, makes this the client Pro Santé Connect
	// delegates authentication through (HospiConnect).
	Delegation *Delegation
}

// Delegation is what Pro Santé Connect expects of an identity provider it
// delegates to: `tid` and `oid` claims, amr values from an accepted list,
// phishing-resistant methods only, re-authentication at least every
// MaxAge.
type Delegation struct {
	TenantID  string
	AMRValues []string
	MaxAge    time.Duration
}

// ClientConfig is what the configuration says of a client; NewClient turns
// it into a Client.
type ClientConfig struct {
	ID     string
	Name   string
	Public bool
	// SecretSHA256 is the SHA-256 digest of the client secret (32 bytes).
	SecretSHA256            []byte
	TokenEndpointAuthMethod string
	JWKSURI                 string
	JWKS                    *jose.JSONWebKeySet
	RedirectURIs            []string
	PostLogoutRedirectURIs  []string
	GrantTypes              []string
	Scopes                  []string
	Audience                []string
	IDTokenAlg              string
	AccessTokenLifetime     time.Duration
	Delegation              *Delegation
}

// NewClient builds a client. The configuration loader has already checked
// the values; this only fills what fosite expects.
func NewClient(c ClientConfig) *Client {
	method := c.TokenEndpointAuthMethod
	if method == "" {
		method = "client_secret_basic"
		if c.Public {
			method = "none"
		}
	}
	alg := c.IDTokenAlg
	if alg == "" {
		alg = "RS256"
	}
	return &Client{
		DefaultOpenIDConnectClient: fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:     c.ID,
				Secret: slices.Clone(c.SecretSHA256),
				// Only exact, registered redirect URIs; only the code flow.
				RedirectURIs:  slices.Clone(c.RedirectURIs),
				GrantTypes:    slices.Clone(c.GrantTypes),
				ResponseTypes: []string{"code"},
				Scopes:        slices.Clone(c.Scopes),
				Audience:      slices.Clone(c.Audience),
				Public:        c.Public,
			},
			JSONWebKeysURI:                    c.JWKSURI,
			JSONWebKeys:                       c.JWKS,
			TokenEndpointAuthMethod:           method,
			TokenEndpointAuthSigningAlgorithm: "RS256",
		},
		Name:                   c.Name,
		PostLogoutRedirectURIs: slices.Clone(c.PostLogoutRedirectURIs),
		IDTokenAlg:             alg,
		AccessTokenLifetime:    c.AccessTokenLifetime,
		Delegation:             c.Delegation,
	}
}

// DisplayName is the name shown to people.
func (c *Client) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	return c.GetID()
}

// GetResponseModes limits clients to the query and form_post response
// modes: fragment is for the implicit and hybrid flows Garde never offers.
func (c *Client) GetResponseModes() []fosite.ResponseModeType {
	return []fosite.ResponseModeType{fosite.ResponseModeDefault, fosite.ResponseModeQuery, fosite.ResponseModeFormPost}
}

// GetEffectiveLifespan implements fosite.ClientWithCustomTokenLifespans for
// the per-client access-token lifetime.
func (c *Client) GetEffectiveLifespan(gt fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	if tt == fosite.AccessToken && c.AccessTokenLifetime > 0 {
		return c.AccessTokenLifetime
	}
	return fallback
}

// SecretDigest returns the digest stored for a client secret.
func SecretDigest(secret string) []byte {
	d := sha256.Sum256([]byte(secret))
	return d[:]
}

// SecretHasher compares client secrets with their SHA-256 digest.
//
// Client secrets are machine-generated and high-entropy (the configuration
// refuses short ones), so a slow password hash buys nothing against offline
// guessing and costs milliseconds on every token request: it is what holds
// Ory Hydra to ~100 tokens/s per core. A fast digest compared in constant
// time is the right tool here.
type SecretHasher struct{}

var errSecretMismatch = errors.New("client secret does not match")

// Compare implements fosite.Hasher.
func (SecretHasher) Compare(_ context.Context, hash, data []byte) error {
	d := sha256.Sum256(data)
	if len(hash) != len(d) || subtle.ConstantTimeCompare(hash, d[:]) != 1 {
		return errSecretMismatch
	}
	return nil
}

// Hash implements fosite.Hasher.
func (SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	d := sha256.Sum256(data)
	return d[:], nil
}

// ObjectID is the `oid` claim of a person for Pro Santé Connect: an
// immutable UUID, derived from Garde's issuer and the person's stable
// `sub` (name-based, RFC 9562 version 5), so it needs no storage and is the
// same on every replica. PSC pairs it with the national identity once.
func (p *Provider) ObjectID(subject string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(p.issuer+"#"+subject)).String()
}
