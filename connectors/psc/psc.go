// Package psc is the connector for Pro Santé Connect (PSC), the national
// OpenID Connect provider for health professionals run by the Agence du
// Numérique en Santé (a Keycloak realm, esante-wallet).
//
// Garde is a PSC client: it sends the browser to PSC's wallet with the
// authorization code flow (PKCE S256, nonce, acr_values=eidas1), exchanges
// the code, verifies the ID token, fetches userinfo at once (PSC access
// tokens live 120 s) and maps the professional's national identity
// (SubjectNameID, never sub) and sector identity (SubjectRefPro) to a
// connectors.Identity. PSC says how the person signed in (authMode) but
// sends no amr, and its acr has been seen to disagree with the means used,
// so Garde derives its own level from a configurable table.
//
// The redirect itself (cookies, flow state) is the sign-in flow's job; this
// package builds URLs and checks what comes back.
package psc

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/garde-sso/garde/connectors"
)

// Environments (Options.Environment).
const (
	EnvProduction = "production"
	EnvBAS        = "bas"
	EnvCustom     = "custom"
)

// Issuers of the two PSC environments, exactly as PSC writes them in the
// iss claim.
const (
	IssuerProduction = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet"
	IssuerBAS        = "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet"
)

// DiscoveryPath is where PSC serves its discovery document under the
// issuer: not the standard /.well-known/openid-configuration.
const DiscoveryPath = "/.well-known/wallet-openid-configuration"

// Client authentication methods at PSC's token endpoint.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthTLSClientAuth     = "tls_client_auth"
)

// Defaults.
const (
	DefaultConnectorID = "psc"
	DefaultACRValues   = "eidas1"
	// DefaultDiscoveryTTL is how long a fetched discovery document is used
	// before it is fetched again. A stale document is kept when PSC cannot
	// be reached, so an outage of discovery alone does not stop sign-ins.
	DefaultDiscoveryTTL = time.Hour
	// DefaultLeeway is the clock skew tolerated on iat of logout tokens.
	DefaultLeeway = 5 * time.Minute
	// DefaultTimeout bounds each HTTP request to PSC.
	DefaultTimeout = 10 * time.Second
)

// DefaultScopes are the scopes every PSC client sends.
func DefaultScopes() []string { return []string{"openid", "scope_all"} }

// Options configures the connector. Zero values take the defaults above.
type Options struct {
	// ConnectorID is the configured id, copied into Identity.Connector.
	ConnectorID string
	// Environment is production, bas (ANS's test platform) or custom.
	// production and bas fill Issuer and DiscoveryURL; custom needs Issuer.
	Environment string
	// Issuer is compared byte for byte with the iss of every token.
	Issuer string
	// DiscoveryURL defaults to Issuer + DiscoveryPath.
	DiscoveryURL string
	ClientID     string
	// ClientSecret is required for client_secret_basic and _post.
	ClientSecret string
	// AuthMethod is client_secret_basic (default), client_secret_post or
	// tls_client_auth.
	AuthMethod string
	// ClientCertificate is presented on every TLS connection to PSC
	// (required for tls_client_auth): the hospital's IGC-Santé
	// organisation certificate. PSC may bind access tokens to it, so
	// userinfo is fetched over the same client.
	ClientCertificate *tls.Certificate
	// RootCAs verifies PSC's server certificates (nil: system roots).
	RootCAs *x509.CertPool
	// Scopes default to DefaultScopes; openid is always sent.
	Scopes []string
	// ACRValues defaults to eidas1, the only value PSC's own connector
	// sends.
	ACRValues string
	// Assurance maps PSC's acr and authMode to Garde's level and amr;
	// nil takes DefaultAssurance.
	Assurance []AssuranceRule
	// UserinfoDecryptionKey decrypts userinfo sent as a JWE (RSA or EC
	// private key registered with PSC). Nil refuses encrypted userinfo.
	UserinfoDecryptionKey crypto.PrivateKey
	// HTTPClient, when set, is used as is for every request to PSC (then
	// RootCAs and ClientCertificate are the caller's business).
	HTTPClient *http.Client
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// DiscoveryTTL defaults to DefaultDiscoveryTTL.
	DiscoveryTTL time.Duration
}

// Connector signs professionals in through Pro Santé Connect. It is safe
// for concurrent use.
type Connector struct {
	id           string
	issuer       string
	discoveryURL string
	clientID     string
	clientSecret string
	authMethod   string
	scopes       []string
	acrValues    string
	rules        []AssuranceRule
	decryptKey   crypto.PrivateKey
	client       *http.Client
	now          func() time.Time
	log          *slog.Logger
	discoveryTTL time.Duration

	mu         sync.Mutex
	disc       *discovered // nil until the first successful fetch
	discErr    error       // the last failed fetch, and when
	discFailed time.Time
}

// Errors the connector returns (wrapped: use errors.Is, or Reason).
var (
	// ErrDenied: the person refused or PSC denied (error=access_denied).
	ErrDenied = errors.New("pro santé connect denied the sign-in")
	// ErrProvider: PSC answered with another OAuth error.
	ErrProvider = errors.New("pro santé connect returned an error")
	// ErrInvalidToken: an ID token failed verification.
	ErrInvalidToken = errors.New("invalid token from pro santé connect")
	// ErrUserinfo: userinfo could not be fetched, verified or read.
	ErrUserinfo = errors.New("invalid userinfo from pro santé connect")
	// ErrNoSubject: userinfo names no national identifier.
	ErrNoSubject = errors.New("pro santé connect sent no national identifier")
	// ErrInvalidRequest: the caller passed an unusable argument.
	ErrInvalidRequest = errors.New("invalid pro santé connect request")
	// ErrInvalidLogoutToken: a back-channel logout token was refused.
	ErrInvalidLogoutToken = errors.New("invalid logout token")
	// ErrNotSupported: PSC's discovery does not offer what was asked.
	ErrNotSupported = errors.New("not offered by pro santé connect")
	// ErrAuthorizationPending: a decoupled sign-in is not approved yet.
	ErrAuthorizationPending = errors.New("decoupled sign-in pending")
	// ErrSlowDown: poll less often (the interval has been increased).
	ErrSlowDown = errors.New("decoupled sign-in polled too fast")
	// ErrExpired: the decoupled sign-in request expired.
	ErrExpired = errors.New("decoupled sign-in expired")
)

// Reason returns a stable code for audit events and for choosing the
// message shown to the person. Unknown errors give "psc_error".
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, connectors.ErrUnavailable):
		return "psc_unavailable"
	case errors.Is(err, ErrDenied):
		return "psc_denied"
	case errors.Is(err, ErrInvalidToken):
		return "psc_invalid_token"
	case errors.Is(err, ErrUserinfo):
		return "psc_userinfo"
	case errors.Is(err, ErrNoSubject):
		return "psc_no_subject"
	case errors.Is(err, ErrInvalidRequest):
		return "psc_invalid_request"
	case errors.Is(err, ErrInvalidLogoutToken):
		return "psc_invalid_logout_token"
	case errors.Is(err, ErrNotSupported):
		return "psc_not_supported"
	case errors.Is(err, ErrAuthorizationPending):
		return "psc_pending"
	case errors.Is(err, ErrSlowDown):
		return "psc_slow_down"
	case errors.Is(err, ErrExpired):
		return "psc_expired"
	case errors.Is(err, ErrProvider):
		return "psc_provider_error"
	}
	return "psc_error"
}

// unavailable wraps connectors.ErrUnavailable with what failed.
func unavailable(format string, args ...any) error {
	return fmt.Errorf("pro santé connect: %s: %w", fmt.Sprintf(format, args...), connectors.ErrUnavailable)
}

// New checks the options and returns a connector. It does not contact PSC:
// Garde must start while PSC is down; discovery is fetched on first use.
func New(_ context.Context, o Options) (*Connector, error) {
	c := &Connector{
		id:           o.ConnectorID,
		issuer:       o.Issuer,
		discoveryURL: o.DiscoveryURL,
		clientID:     o.ClientID,
		clientSecret: o.ClientSecret,
		authMethod:   o.AuthMethod,
		acrValues:    o.ACRValues,
		rules:        o.Assurance,
		decryptKey:   o.UserinfoDecryptionKey,
		client:       o.HTTPClient,
		now:          o.Clock,
		log:          o.Logger,
		discoveryTTL: o.DiscoveryTTL,
	}
	if c.id == "" {
		c.id = DefaultConnectorID
	}
	switch o.Environment {
	case EnvProduction, EnvBAS:
		preset := IssuerProduction
		if o.Environment == EnvBAS {
			preset = IssuerBAS
		}
		if c.issuer != "" && c.issuer != preset {
			return nil, fmt.Errorf("psc: environment %s has issuer %s; leave Issuer empty or use environment custom", o.Environment, preset)
		}
		c.issuer = preset
	case EnvCustom, "":
		if c.issuer == "" {
			return nil, errors.New("psc: Issuer is required for environment custom")
		}
	default:
		return nil, fmt.Errorf("psc: unknown environment %q; expected production, bas or custom", o.Environment)
	}
	if err := checkHTTPSURL(c.issuer); err != nil {
		return nil, fmt.Errorf("psc: issuer: %w", err)
	}
	if c.discoveryURL == "" {
		c.discoveryURL = c.issuer + DiscoveryPath
	}
	if err := checkHTTPSURL(c.discoveryURL); err != nil {
		return nil, fmt.Errorf("psc: discovery URL: %w", err)
	}
	if c.clientID == "" {
		return nil, errors.New("psc: ClientID is required")
	}
	if c.authMethod == "" {
		c.authMethod = AuthClientSecretBasic
	}
	switch c.authMethod {
	case AuthClientSecretBasic, AuthClientSecretPost:
		if c.clientSecret == "" {
			return nil, fmt.Errorf("psc: ClientSecret is required for %s", c.authMethod)
		}
	case AuthTLSClientAuth:
		if o.ClientCertificate == nil && o.HTTPClient == nil {
			return nil, errors.New("psc: ClientCertificate is required for tls_client_auth")
		}
		// With mTLS the certificate is the credential: a secret sent as
		// well would be one more thing to leak.
		c.clientSecret = ""
	default:
		return nil, fmt.Errorf("psc: unknown auth method %q; expected client_secret_basic, client_secret_post or tls_client_auth", c.authMethod)
	}
	c.scopes = []string{"openid"}
	scopes := o.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes()
	}
	for _, s := range scopes {
		if s != "openid" && s != "" {
			c.scopes = append(c.scopes, s)
		}
	}
	if c.acrValues == "" {
		c.acrValues = DefaultACRValues
	}
	if c.rules == nil {
		c.rules = DefaultAssurance()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.discoveryTTL <= 0 {
		c.discoveryTTL = DefaultDiscoveryTTL
	}
	if c.client == nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
		if o.ClientCertificate != nil {
			tc.Certificates = []tls.Certificate{*o.ClientCertificate}
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		c.client = &http.Client{
			Transport: tr,
			Timeout:   DefaultTimeout,
			// PSC's back-end endpoints never redirect; following one
			// would send the client's credentials elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c, nil
}

// ID returns the connector's configured id.
func (c *Connector) ID() string { return c.id }

// Issuer returns PSC's issuer as configured.
func (c *Connector) Issuer() string { return c.issuer }

func checkHTTPSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%q does not use https", raw)
	}
	if strings.HasSuffix(raw, "/") && u.Path != "/" {
		return fmt.Errorf("%q must not end with /", raw)
	}
	return nil
}
