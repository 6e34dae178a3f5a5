package oidc

import (
	"maps"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"
)

// Session is the fosite session Garde stores with every code and token.
//
// It serves fosite twice: as an openid.Session (ID-token claims and header)
// and as an oauth2.JWTSessionContainer (access tokens are JWTs signed with
// the same keys, so resource servers can validate them offline).
type Session struct {
	openid.DefaultSession
	AccessClaims *jwt.JWTClaims `json:"access_claims,omitempty"`
	AccessHeader *jwt.Headers   `json:"access_header,omitempty"`
	// SID is the SSO session id (the ID token's sid); empty for
	// client_credentials. Userinfo returns the ID token's profile claims
	// (Claims.Extra), which the granted scopes selected.
	SID string `json:"sid,omitempty"`
}

// NewSession returns an empty session ready for fosite to fill.
func NewSession() *Session {
	return &Session{
		DefaultSession: openid.DefaultSession{
			Claims:  &jwt.IDTokenClaims{},
			Headers: &jwt.Headers{},
		},
		AccessClaims: &jwt.JWTClaims{},
		AccessHeader: &jwt.Headers{},
	}
}

// GetJWTClaims implements oauth2.JWTSessionContainer.
func (s *Session) GetJWTClaims() jwt.JWTClaimsContainer {
	if s.AccessClaims == nil {
		s.AccessClaims = &jwt.JWTClaims{}
	}
	return s.AccessClaims
}

// GetJWTHeader implements oauth2.JWTSessionContainer.
func (s *Session) GetJWTHeader() *jwt.Headers {
	if s.AccessHeader == nil {
		s.AccessHeader = &jwt.Headers{}
	}
	return s.AccessHeader
}

// Clone deep-copies the session by hand: fosite clones on every token, and
// the reflection-based deepcopy of openid.DefaultSession is a measurable
// share of a token request.
func (s *Session) Clone() fosite.Session {
	if s == nil {
		return nil
	}
	c := *s
	if s.Claims != nil {
		cl := *s.Claims
		cl.Audience = slices.Clone(cl.Audience)
		cl.AuthenticationMethodsReferences = slices.Clone(cl.AuthenticationMethodsReferences)
		cl.Extra = cloneMap(cl.Extra)
		c.Claims = &cl
	}
	c.Headers = cloneHeaders(s.Headers)
	if s.AccessClaims != nil {
		ac := *s.AccessClaims
		ac.Audience = slices.Clone(ac.Audience)
		ac.Scope = slices.Clone(ac.Scope)
		ac.Extra = cloneMap(ac.Extra)
		c.AccessClaims = &ac
	}
	c.AccessHeader = cloneHeaders(s.AccessHeader)
	c.ExpiresAt = maps.Clone(s.ExpiresAt)
	return &c
}

func cloneHeaders(h *jwt.Headers) *jwt.Headers {
	if h == nil {
		return nil
	}
	return &jwt.Headers{Extra: cloneMap(h.Extra)}
}

// cloneMap copies a claims map; values are JSON scalars or string slices,
// which are copied too.
func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch t := v.(type) {
		case []string:
			out[k] = slices.Clone(t)
		case []any:
			out[k] = slices.Clone(t)
		default:
			out[k] = v
		}
	}
	return out
}

// expiresAt returns the session's expiry for a token type, or fallback.
func (s *Session) expiresAt(tt fosite.TokenType, fallback time.Time) time.Time {
	if t := s.GetExpiresAt(tt); !t.IsZero() {
		return t
	}
	return fallback
}
