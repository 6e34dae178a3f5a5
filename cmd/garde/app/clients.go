package app

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/go-jose/go-jose/v3"

	"github.com/garde-sso/garde/broker/oidc"
	"github.com/garde-sso/garde/cmd/garde/config"
)

// buildClients turns configured clients into provider clients. Secrets are
// kept only as SHA-256 digests.
func buildClients(cfg *config.Config, o Options) ([]*oidc.Client, error) {
	out := make([]*oidc.Client, 0, len(cfg.Clients))
	for _, c := range cfg.Clients {
		cc := oidc.ClientConfig{
			ID:                      c.ID,
			Name:                    c.Name,
			Public:                  c.Public,
			TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
			JWKSURI:                 c.JWKSURI,
			RedirectURIs:            c.RedirectURIs,
			PostLogoutRedirectURIs:  c.PostLogoutRedirectURIs,
			GrantTypes:              c.GrantTypes,
			Scopes:                  c.Scopes,
			Audience:                c.Audience,
			IDTokenAlg:              c.IDTokenSignedResponseAlg,
			AccessTokenLifetime:     c.AccessTokenLifetime,
		}
		if d := c.PSCDelegation; d != nil {
			cc.Delegation = &oidc.Delegation{TenantID: d.TenantID, AMRValues: d.AMRValues, MaxAge: d.MaxAge}
		}
		switch {
		case c.Secret.IsSet():
			cc.SecretSHA256 = oidc.SecretDigest(c.Secret.Reveal())
		case c.SecretSHA256 != "":
			d, err := hex.DecodeString(c.SecretSHA256)
			if err != nil || len(d) != 32 {
				return nil, fmt.Errorf("client %s: secret_sha256 must be 64 hex characters", c.ID)
			}
			cc.SecretSHA256 = d
		}
		if c.JWKSFile != "" {
			b, err := os.ReadFile(resolve(o.BaseDir, c.JWKSFile))
			if err != nil {
				return nil, fmt.Errorf("client %s: jwks_file: %w", c.ID, err)
			}
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(b, &set); err != nil {
				return nil, fmt.Errorf("client %s: jwks_file %s: %w", c.ID, c.JWKSFile, err)
			}
			if len(set.Keys) == 0 {
				return nil, fmt.Errorf("client %s: jwks_file %s holds no key", c.ID, c.JWKSFile)
			}
			cc.JWKS = &set
		}
		out = append(out, oidc.NewClient(cc))
	}
	return out, nil
}
