// Package psctest is a simulator of Pro Santé Connect for tests: a Keycloak
// realm esante-wallet as ANS publishes it, built from the published
// contract (discovery at the non-standard wallet-openid-configuration path,
// the authorization endpoint on a separate "wallet" host, RS256 tokens with
// kid, 120 s access tokens, userinfo shaped like ANS's BAS samples, logout,
// back-channel logout tokens, CIBA).
//
// Both servers use real TLS with certificates from one test CA (RootCAs).
// The issuer server asks for a client certificate (optional at the TLS
// layer, like Keycloak's mTLS aliases), so tls_client_auth is checked on
// the real handshake.
//
// It is a test double: it keeps everything in memory and signs in whoever
// SetNextUser names, without asking anything.
package psctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Realm path of PSC's Keycloak, appended to the issuer server's URL.
const RealmPath = "/auth/realms/esante-wallet"

// Client authentication methods the simulated client may be registered
// with.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthTLSClientAuth     = "tls_client_auth"
)

// Userinfo formats (SetUserinfoFormat).
const (
	FormatJSON = "json" // application/json, as in every captured sample
	FormatJWT  = "jwt"  // application/jwt, signed
	FormatJWE  = "jwe"  // application/jwt, signed then encrypted
)

// Lifetimes PSC uses.
const (
	AccessTokenLifetime  = 120 * time.Second
	RefreshTokenLifetime = 30 * time.Minute
	CodeLifetime         = time.Minute
	IDTokenLifetime      = 5 * time.Minute
)

// Config registers the one client the simulator knows.
type Config struct {
	// ClientID defaults to "garde-test".
	ClientID string
	// ClientSecret defaults to a fixed test value (ClientSecret()).
	ClientSecret string
	// AuthMethod is client_secret_basic (default), client_secret_post or
	// tls_client_auth.
	AuthMethod string
	// RedirectURIs are matched exactly.
	RedirectURIs []string
	// PostLogoutRedirectURIs are matched exactly.
	PostLogoutRedirectURIs []string
	// Clock defaults to time.Now.
	Clock func() time.Time
}

// Sim is a running PSC simulator.
type Sim struct {
	issuerSrv *httptest.Server
	walletSrv *httptest.Server
	issuer    string
	caPool    *x509.CertPool
	caPEM     []byte
	ca        *x509.Certificate
	caKey     *ecdsa.PrivateKey
	clientDN  string // subject registered for tls_client_auth
	now       func() time.Time

	mu        sync.Mutex
	cfg       Config
	keys      []signingKey // current first
	next      User
	denyNext  string // OAuth error for the next authorization
	format    string
	encKey    any // public key for FormatJWE
	acr       string
	dupACR    bool
	tamper    func(map[string]any)
	codes     map[string]*grant
	tokens    map[string]*grant // access tokens
	cibas     map[string]*cibaRequest
	loggedOut []string // sids ended at the logout endpoint
	calls     map[string]int
	down      bool
	downEP    map[string]bool
}

// grant is what a code or access token stands for.
type grant struct {
	user          User
	nonce         string
	redirectURI   string
	codeChallenge string
	sid           string
	authTime      time.Time
	expires       time.Time
}

// defaultSecret is the client secret when Config.ClientSecret is empty.
const defaultSecret = "psc-simulator-secret-0123456789abcdef"

// New starts the simulator's two servers.
func New(cfg Config) (*Sim, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = "garde-test"
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = defaultSecret
	}
	if cfg.AuthMethod == "" {
		cfg.AuthMethod = AuthClientSecretBasic
	}
	switch cfg.AuthMethod {
	case AuthClientSecretBasic, AuthClientSecretPost, AuthTLSClientAuth:
	default:
		return nil, fmt.Errorf("psctest: unknown auth method %q", cfg.AuthMethod)
	}
	s := &Sim{
		cfg:      cfg,
		now:      cfg.Clock,
		format:   FormatJSON,
		acr:      "eidas1",
		next:     DefaultUser(),
		codes:    map[string]*grant{},
		tokens:   map[string]*grant{},
		cibas:    map[string]*cibaRequest{},
		calls:    map[string]int{},
		clientDN: "CN=garde-test,OU=499700000000001,O=HOPITAL GARDE TEST,C=FR",
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.newCA(); err != nil {
		return nil, err
	}
	if err := s.RotateKey(); err != nil {
		return nil, err
	}
	serverCert, err := s.issue(pkix.Name{CommonName: "psc-simulator"}, false)
	if err != nil {
		return nil, err
	}
	s.issuerSrv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveIssuer))
	s.issuerSrv.TLS = &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		// Like Keycloak behind its mTLS aliases: a certificate is asked
		// for, checked against the CA when given, and required only by
		// the token endpoint for a tls_client_auth client.
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  s.caPool,
		MinVersion: tls.VersionTLS12,
	}
	s.issuerSrv.StartTLS()
	s.walletSrv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveWallet))
	s.walletSrv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}
	s.walletSrv.StartTLS()
	s.issuer = s.issuerSrv.URL + RealmPath
	return s, nil
}

// Close stops both servers.
func (s *Sim) Close() {
	s.issuerSrv.Close()
	s.walletSrv.Close()
}

// Issuer is the realm's issuer URL.
func (s *Sim) Issuer() string { return s.issuer }

// DiscoveryURL is where the discovery document is served.
func (s *Sim) DiscoveryURL() string {
	return s.issuer + "/.well-known/wallet-openid-configuration"
}

// WalletURL is the wallet server's base URL (authorization endpoint host).
func (s *Sim) WalletURL() string { return s.walletSrv.URL }

// RootCAs trusts both servers (and no one else).
func (s *Sim) RootCAs() *x509.CertPool { return s.caPool }

// CAPEM is the test CA certificate in PEM, e.g. for a browser.
func (s *Sim) CAPEM() []byte { return s.caPEM }

// ClientID and ClientSecret are the registered client's credentials.
func (s *Sim) ClientID() string     { return s.cfg.ClientID }
func (s *Sim) ClientSecret() string { return s.cfg.ClientSecret }

// ClientCertificate returns a certificate for the registered client's
// subject DN, issued by the test CA: what a hospital presents with
// tls_client_auth.
func (s *Sim) ClientCertificate() (tls.Certificate, error) {
	name := pkix.Name{CommonName: "garde-test", OrganizationalUnit: []string{"499700000000001"}, Organization: []string{"HOPITAL GARDE TEST"}, Country: []string{"FR"}}
	return s.issue(name, true)
}

// OtherClientCertificate returns a certificate from the same CA for
// another subject: accepted by TLS, refused as this client's credential.
func (s *Sim) OtherClientCertificate() (tls.Certificate, error) {
	return s.issue(pkix.Name{CommonName: "intruder", Country: []string{"FR"}}, true)
}

// AddRedirectURI registers one more redirect URI.
func (s *Sim) AddRedirectURI(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.RedirectURIs = append(s.cfg.RedirectURIs, uri)
}

// AddPostLogoutRedirectURI registers one more post-logout redirect URI.
func (s *Sim) AddPostLogoutRedirectURI(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.PostLogoutRedirectURIs = append(s.cfg.PostLogoutRedirectURIs, uri)
}

// SetNextUser chooses who signs in at the next authorization (and every
// one after, until changed).
func (s *Sim) SetNextUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = u
}

// DenyNext makes the next authorization redirect back with this OAuth
// error (e.g. "access_denied") instead of a code.
func (s *Sim) DenyNext(oauthError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyNext = oauthError
}

// SetUserinfoFormat chooses FormatJSON, FormatJWT or FormatJWE; for
// FormatJWE, encryptTo is the client's public key (RSA or ECDSA).
func (s *Sim) SetUserinfoFormat(format string, encryptTo any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.format, s.encKey = format, encryptTo
}

// SetACR sets the acr claim of ID tokens (default "eidas1"); duplicate
// writes "acr":"1" before it, as an old PSC token did.
func (s *Sim) SetACR(acr string, duplicate bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acr, s.dupACR = acr, duplicate
}

// TamperIDToken installs a hook that edits ID token claims before they
// are signed (nil removes it): for wrong nonce, iss, aud or exp tests.
func (s *Sim) TamperIDToken(f func(claims map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tamper = f
}

// SetDown makes both servers answer 503 to everything (true) or work.
func (s *Sim) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// SetEndpointDown makes one endpoint (a name as for Calls) answer 503.
func (s *Sim) SetEndpointDown(endpoint string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.downEP == nil {
		s.downEP = map[string]bool{}
	}
	s.downEP[endpoint] = down
}

// Calls returns how often an endpoint was called ("discovery", "certs",
// "auth", "token", "userinfo", "logout", "ciba").
func (s *Sim) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[endpoint]
}

// LoggedOut returns the sids ended at the logout endpoint.
func (s *Sim) LoggedOut() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.loggedOut...)
}

func (s *Sim) count(endpoint string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[endpoint]++
	return s.down || s.downEP[endpoint]
}

// ---- certificates

func (s *Sim) newCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "PSC simulator test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	s.ca, err = x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	s.caKey = key
	s.caPool = x509.NewCertPool()
	s.caPool.AddCert(s.ca)
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return nil
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 1}

func (s *Sim) issue(name pkix.Name, client bool) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial.Lock()
	serial.n++
	sn := serial.n
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn),
		Subject:      name,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.ca, &key.PublicKey, s.caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ---- signing keys

type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

// RotateKey makes a new RS256 signing key current. The JWKS then lists
// the new key and the previous one, as Keycloak does while rotating.
func (s *Sim) RotateKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("psctest: %w", err)
	}
	kid := randomID(16)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append([]signingKey{{kid: kid, key: key}}, s.keys...)
	if len(s.keys) > 2 {
		s.keys = s.keys[:2]
	}
	return nil
}

// CurrentKID is the kid tokens are signed with now.
func (s *Sim) CurrentKID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[0].kid
}
