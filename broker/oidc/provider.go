// Package oidc is Garde's OpenID Connect provider: fosite wired with
// Garde's stores, keys and sign-in flow, and the endpoints fosite does not
// provide (discovery, JWKS, userinfo, end_session).
//
// What Garde offers is deliberately narrow (RFC 9700 posture): the
// authorization code flow with PKCE S256 for every client, refresh tokens
// with rotation and reuse detection, client credentials, PAR, and nothing
// else — no implicit, hybrid or password grant.
package oidc

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/web"
)

// KeySource is what the provider needs of package keys.
type KeySource interface {
	// Signer signs with the current key of the alg named in the header
	// ("alg"), defaulting to defaultAlg.
	Signer(defaultAlg string) jwt.Signer
	// JWKS is the published key set, precomputed.
	JWKS() []byte
	// PublicKey finds a published key by kid.
	PublicKey(kid string) (crypto.PublicKey, string, bool)
}

// Paths of the endpoints, relative to the issuer.
const (
	PathDiscovery  = "/.well-known/openid-configuration"
	PathJWKS       = "/jwks"
	PathAuthorize  = "/authorize"
	PathResume     = "/authorize/resume"
	PathToken      = "/token"
	PathUserinfo   = "/userinfo"
	PathIntrospect = "/introspect"
	PathRevoke     = "/revoke"
	PathEndSession = "/logout"
	PathPAR        = "/par"
)

// Options configure a Provider.
type Options struct {
	Issuer   string
	Storage  *Storage
	Keys     KeySource
	Flow     *flow.Engine
	Sessions *session.Manager
	// RefreshTokens is used at logout to revoke the session's grants.
	RefreshTokens store.RefreshTokens
	Audit         *audit.Recorder
	Pages         *web.Renderer
	CSRF          *web.CSRF
	Cookies       web.CookiePolicy
	// GlobalSecret keys the HMAC of codes and refresh tokens (≥ 32 bytes,
	// the same on every replica).
	GlobalSecret         []byte
	AccessTokenLifetime  time.Duration
	IDTokenLifetime      time.Duration
	RefreshTokenLifetime time.Duration
	CodeLifetime         time.Duration
	// HTTPClient fetches clients' jwks_uri (private_key_jwt).
	HTTPClient *http.Client
	Logger     *slog.Logger
	// UpstreamLogout, when set, returns where to send the browser to end
	// the upstream provider's session of an ended session ("" if none),
	// which sends it back to next afterwards.
	UpstreamLogout func(ctx context.Context, s *session.Session, next string) (string, error)
}

// Provider serves the OpenID Connect endpoints.
type Provider struct {
	issuer    string
	oauth     fosite.OAuth2Provider
	storage   *Storage
	keys      KeySource
	flow      *flow.Engine
	sessions  *session.Manager
	refresh   store.RefreshTokens
	audit     *audit.Recorder
	pages     *web.Renderer
	csrf      *web.CSRF
	cookies   web.CookiePolicy
	hmac      *oauth2.HMACSHAStrategy
	discovery []byte
	log       *slog.Logger

	upstreamLogout func(ctx context.Context, s *session.Session, next string) (string, error)
}

// New wires fosite and returns the provider.
func New(o Options) (*Provider, error) {
	cfg := &fosite.Config{
		AccessTokenLifespan:   o.AccessTokenLifetime,
		RefreshTokenLifespan:  o.RefreshTokenLifetime,
		AuthorizeCodeLifespan: o.CodeLifetime,
		IDTokenLifespan:       o.IDTokenLifetime,
		IDTokenIssuer:         o.Issuer,
		AccessTokenIssuer:     o.Issuer,
		// private_key_jwt assertions must be addressed to the token endpoint.
		TokenURL:                        o.Issuer + PathToken,
		ScopeStrategy:                   fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:        fosite.DefaultAudienceMatchingStrategy,
		EnforcePKCE:                     true,
		EnforcePKCEForPublicClients:     true,
		EnablePKCEPlainChallengeMethod:  false,
		GlobalSecret:                    o.GlobalSecret,
		ClientSecretsHasher:             SecretHasher{},
		JWTScopeClaimKey:                jwt.JWTScopeFieldString,
		PushedAuthorizeRequestURIPrefix: "urn:ietf:params:oauth:request_uri:",
		PushedAuthorizeContextLifespan:  90 * time.Second,
		MinParameterEntropy:             fosite.MinParameterEntropy,
		SendDebugMessagesToClients:      false,
		AllowedPromptValues:             []string{"login", "none", "consent", "select_account"},
	}
	signer := o.Keys.Signer("RS256")
	hmacStrategy := compose.NewOAuth2HMACStrategy(cfg)
	strategy := &compose.CommonStrategy{
		CoreStrategy: &oauth2.DefaultJWTStrategy{
			Signer:          signer,
			HMACSHAStrategy: hmacStrategy,
			Config:          cfg,
		},
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: signer, Config: cfg},
		Signer:                     signer,
	}
	// An explicit list of handlers: ComposeAllEnabled would also enable the
	// implicit and password grants, which Garde must never offer.
	oauth := compose.Compose(cfg, o.Storage, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		compose.OAuth2PKCEFactory,
		compose.PushedAuthorizeHandlerFactory,
	)
	for i, h := range cfg.TokenEndpointHandlers {
		cfg.TokenEndpointHandlers[i] = quietTokenHandler{h}
	}
	p := &Provider{
		issuer: o.Issuer, oauth: oauth, storage: o.Storage, keys: o.Keys, flow: o.Flow,
		sessions: o.Sessions, refresh: o.RefreshTokens, audit: o.Audit, pages: o.Pages,
		csrf: o.CSRF, cookies: o.Cookies, log: o.Logger, hmac: hmacStrategy,
		upstreamLogout: o.UpstreamLogout,
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	var err error
	if p.discovery, err = json.Marshal(p.discoveryDocument()); err != nil {
		return nil, err
	}
	return p, nil
}

// Register mounts the endpoints on mux. formGuard wraps the endpoints
// that people's browsers post forms to (cross-origin protection).
func (p *Provider) Register(mux *http.ServeMux, formGuard func(http.Handler) http.Handler) {
	mux.HandleFunc("GET "+PathDiscovery, p.serveDiscovery)
	mux.HandleFunc("GET "+PathJWKS, p.serveJWKS)
	mux.HandleFunc("GET "+PathAuthorize, p.authorize)
	mux.HandleFunc("POST "+PathAuthorize, p.authorize)
	mux.HandleFunc("GET "+PathResume, p.resume)
	mux.HandleFunc("POST "+PathToken, p.token)
	mux.HandleFunc("GET "+PathUserinfo, p.userinfo)
	mux.HandleFunc("POST "+PathUserinfo, p.userinfo)
	mux.HandleFunc("POST "+PathIntrospect, p.introspect)
	mux.HandleFunc("POST "+PathRevoke, p.revoke)
	mux.Handle(PathEndSession, formGuard(http.HandlerFunc(p.endSession)))
	mux.HandleFunc("POST "+PathPAR, p.par)
}

func (p *Provider) discoveryDocument() map[string]any {
	return map[string]any{
		"issuer":                                           p.issuer,
		"authorization_endpoint":                           p.issuer + PathAuthorize,
		"token_endpoint":                                   p.issuer + PathToken,
		"userinfo_endpoint":                                p.issuer + PathUserinfo,
		"jwks_uri":                                         p.issuer + PathJWKS,
		"introspection_endpoint":                           p.issuer + PathIntrospect,
		"revocation_endpoint":                              p.issuer + PathRevoke,
		"end_session_endpoint":                             p.issuer + PathEndSession,
		"pushed_authorization_request_endpoint":            p.issuer + PathPAR,
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query", "form_post"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token", "client_credentials"},
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{"RS256", "ES256"},
		"userinfo_signing_alg_values_supported":            []string{"none"},
		"scopes_supported":                                 []string{"openid", "profile", "email", "groups", "offline_access"},
		"token_endpoint_auth_methods_supported":            []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "ES256", "PS256"},
		"introspection_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"revocation_endpoint_auth_methods_supported":       []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"claims_supported":                                 []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "name", "given_name", "family_name", "preferred_username", "email", "groups", "national_id", "national_id_type"},
		"acr_values_supported":                             []string{"http://eidas.europa.eu/LoA/low", "http://eidas.europa.eu/LoA/substantial", "http://eidas.europa.eu/LoA/high"},
		"prompt_values_supported":                          []string{"none", "login"},
		"authorization_response_iss_parameter_supported":   true,
		"require_pushed_authorization_requests":            false,
		"request_parameter_supported":                      false,
		"request_uri_parameter_supported":                  false,
		"claims_parameter_supported":                       false,
		"frontchannel_logout_supported":                    false,
		"backchannel_logout_supported":                     false,
		"ui_locales_supported":                             []string{"fr", "en"},
	}
}

func (p *Provider) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(p.discovery)
}

func (p *Provider) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	// Short: relying parties must notice a rotation quickly.
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(p.keys.JWKS())
}

// errorPage renders an error for a person.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, status int, key string, err error) {
	flow.ErrorPage(p.pages, p.log, w, r, status, key, err)
}

// sessionOf returns the browser's SSO session and its cookie secret.
func (p *Provider) sessionOf(ctx context.Context, r *http.Request) (*session.Session, string) {
	secret, ok := p.cookies.Get(r, flow.CookieSession)
	if !ok {
		return nil, ""
	}
	s, err := p.sessions.Get(ctx, secret)
	if err != nil {
		return nil, ""
	}
	return s, secret
}

// quietTokenHandler asks a token handler whether the grant is its own
// before fosite makes it build its refusal. fosite calls every handler's
// PopulateTokenEndpointResponse, and each that does not handle the grant
// answers ErrUnknownRequest wrapped with a captured stack trace: a few
// percent of a token request's CPU, for nothing.
type quietTokenHandler struct{ fosite.TokenEndpointHandler }

func (h quietTokenHandler) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	err := h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, req, resp)
	// Of two concurrent redemptions of one code, the loser may pass the
	// request checks before the winner marks the code used, then find it
	// used here; fosite reports that as server_error. It is the client's
	// reuse of a code: invalid_grant.
	if err != nil && (errors.Is(err, fosite.ErrInvalidatedAuthorizeCode) || errors.Is(err, fosite.ErrNotFound)) {
		return fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.").WithWrap(err)
	}
	return err
}
