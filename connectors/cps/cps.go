// Package cps is the CPS smart-card connector: it signs health
// professionals in with the authentication certificate of their CPS (or
// CPE, CPA, CPF) card, presented through TLS client authentication either
// to Garde's own listener or to a TLS-terminating proxy that forwards it in
// a header.
//
// Trust comes from configuration only: the IGC-Santé anchors (production
// and TEST bundles) and optional intermediates. Certificates presented by
// the client are hints for path building, never anchors. Revocation is read
// from caches (CRLs kept until their nextUpdate, OCSP responses) that a
// background loop refreshes: a sign-in never waits on the network
// (Keycloak #26473 fetched a CRL per sign-in).
package cps

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// Revocation modes (Options.Revocation).
const (
	// RevocationCRL checks CRLs only (the default).
	RevocationCRL = "crl"
	// RevocationCRLOCSP checks CRLs, and a cached OCSP response when no
	// fresh CRL can answer.
	RevocationCRLOCSP = "crl_ocsp"
	// RevocationOCSP checks cached OCSP responses only.
	RevocationOCSP = "ocsp"
	// RevocationNone checks nothing: a stolen, revoked card still signs in.
	// For tests and emergencies only.
	RevocationNone = "none"
)

// Header formats (Options.HeaderFormat).
const (
	// FormatPEMURLEncoded is nginx's $ssl_client_escaped_cert.
	FormatPEMURLEncoded = "pem_urlencoded"
	// FormatBase64DER is HAProxy's ssl_c_der,base64.
	FormatBase64DER = "base64_der"
	// FormatPEM is PEM with its line breaks kept as spaces or tabs (headers
	// cannot carry line breaks), as Apache's SSL_CLIENT_CERT or Traefik
	// write it.
	FormatPEM = "pem"
)

// Defaults.
const (
	DefaultConnectorID  = "cps"
	DefaultRefreshEvery = time.Hour
	// minRefreshWait stops a CRL whose nextUpdate has passed (and whose
	// source keeps serving it) from turning the refresh loop into a busy
	// loop.
	minRefreshWait = 30 * time.Second
	fetchTimeout   = 30 * time.Second
)

// DefaultAMR is what a card sign-in proves: something held (the card,
// hardware-protected key), something known (its PIN).
func DefaultAMR() []string {
	return []string{assurance.AMRSmartCard, assurance.AMRPIN, assurance.AMRHardwareKey, assurance.AMRMultiFactor}
}

// Errors Authenticate and ClientChain return, wrapped with detail; Reason
// maps each to a stable code for audit and the page a person sees.
var (
	ErrCardMissing       = errors.New("no client certificate presented")
	ErrCardUntrusted     = errors.New("certificate does not chain to a configured CPS anchor")
	ErrCardExpired       = errors.New("certificate expired or not yet valid")
	ErrNotClientAuth     = errors.New("certificate is not for client authentication")
	ErrPolicy            = errors.New("certificate does not assert an accepted policy")
	ErrRevoked           = errors.New("certificate revoked")
	ErrRevocationUnknown = errors.New("certificate revocation status unknown")
	ErrBadSubject        = errors.New("certificate subject is not a CPS identity")
	ErrUntrustedHeader   = errors.New("client certificate header from an untrusted peer")
	errNoChain           = errors.New("no verified chain")
)

// Reason returns the stable reason code of an error from this package
// ("card_revoked", ...), or "card_error" for anything else.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrUntrustedHeader):
		return "card_untrusted_header"
	case errors.Is(err, ErrCardMissing):
		return "card_missing"
	case errors.Is(err, ErrRevoked):
		return "card_revoked"
	case errors.Is(err, ErrRevocationUnknown):
		return "card_revocation_unknown"
	case errors.Is(err, ErrCardExpired):
		return "card_expired"
	case errors.Is(err, ErrNotClientAuth):
		return "card_not_client_auth"
	case errors.Is(err, ErrPolicy):
		return "card_policy"
	case errors.Is(err, ErrBadSubject):
		return "card_bad_subject"
	case errors.Is(err, ErrCardUntrusted):
		return "card_untrusted"
	}
	return "card_error"
}

// Options configures a Connector.
type Options struct {
	// ConnectorID is copied into Identity.Connector. Default "cps".
	ConnectorID string
	// Anchors are the configured roots (production and/or TEST bundles).
	// Required.
	Anchors []*x509.Certificate
	// Intermediates are configured CAs of the card chains (e.g. AC
	// IGC-SANTE FORT PERSONNES). Their presence also lets browsers offer
	// only card certificates (TLSConfig).
	Intermediates []*x509.Certificate
	// PolicyOIDs, when set, require the leaf to assert one of these
	// certificate policies (dotted OIDs).
	PolicyOIDs []string
	// Revocation is crl (default), crl_ocsp, ocsp or none.
	Revocation string
	// AllowStaleCRL accepts a CRL past its nextUpdate (default: fail
	// closed).
	AllowStaleCRL bool
	// CRLFiles are local CRL files (DER or PEM), loaded by New and
	// re-read by each Refresh: for hospitals whose servers cannot reach
	// the internet.
	CRLFiles []string
	// CRLURLs are distribution points fetched from the first Refresh on,
	// before any card has named them (e.g. the IGC-Santé ACI-*-PP.crl).
	// Distribution points named by the configured intermediates and by
	// cards seen later are added on their own.
	CRLURLs []string
	// RefreshEvery is the background refresh period. Default 1h; a CRL is
	// also refreshed before its nextUpdate.
	RefreshEvery time.Duration
	// HTTPClient fetches CRLs and OCSP responses. Default: a client with a
	// 30s timeout.
	HTTPClient *http.Client
	// Level is the assurance a card sign-in reaches. Default High.
	Level assurance.Level
	// AMR are the RFC 8176 methods of a card sign-in. Default DefaultAMR().
	AMR []string

	// TrustedProxies are the TLS-terminating proxies whose Header is
	// believed. A header from any other peer is refused.
	TrustedProxies []netip.Prefix
	// Header carries the client certificate from the proxy, e.g.
	// "X-SSL-Client-Cert". Empty: no proxy deployment.
	Header string
	// HeaderFormat is pem_urlencoded, base64_der or pem.
	HeaderFormat string

	// Clock is the time source. Default time.Now.
	Clock func() time.Time
	// Logger receives operational logs. Default: discarded.
	Logger *slog.Logger
}

// Connector authenticates CPS card certificates. It is safe for concurrent
// use.
type Connector struct {
	o        Options
	roots    *x509.CertPool
	inters   []*x509.Certificate
	policies []x509.OID
	log      *slog.Logger
	now      func() time.Time
	client   *http.Client

	// kick wakes Run when a sign-in meets a distribution point or an OCSP
	// target the caches do not hold yet.
	kick chan struct{}
	// refreshMu serialises Refresh (Run and explicit calls).
	refreshMu sync.Mutex
	// onRefresh, when set (tests), is called after each Refresh by Run.
	onRefresh func(error)

	mu sync.RWMutex
	// cas are the certificates allowed to sign CRLs and OCSP responses:
	// the configured anchors and intermediates, and intermediates that
	// were part of a verified chain. Keyed by SHA-256 of the DER.
	cas map[[32]byte]*x509.Certificate
	// dps are the CRL distribution points to fetch.
	dps map[string]bool
	// crls are the valid CRLs held, by source (URL or "file:"+path).
	crls map[string]*crlEntry
	// ocspTargets are the (certificate, issuer) pairs to ask OCSP about.
	ocspTargets map[ocspKey]ocspTarget
	// ocsp are the cached OCSP answers.
	ocsp map[ocspKey]*ocspEntry
}

var _ interface {
	Authenticate(context.Context, []*x509.Certificate) (connectors.Identity, error)
} = (*Connector)(nil)

// New checks the options and loads the CRL files. It fetches nothing and
// starts nothing: call Refresh, then Run.
func New(ctx context.Context, o Options) (*Connector, error) {
	if len(o.Anchors) == 0 {
		return nil, errors.New("cps: no trust anchors configured")
	}
	if o.ConnectorID == "" {
		o.ConnectorID = DefaultConnectorID
	}
	switch o.Revocation {
	case "":
		o.Revocation = RevocationCRL
	case RevocationCRL, RevocationCRLOCSP, RevocationOCSP, RevocationNone:
	default:
		return nil, fmt.Errorf("cps: unknown revocation mode %q; expected crl, crl_ocsp, ocsp or none", o.Revocation)
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = DefaultRefreshEvery
	}
	if o.Level == assurance.None {
		o.Level = assurance.High
	}
	if len(o.AMR) == 0 {
		o.AMR = DefaultAMR()
	}
	if o.Header != "" {
		switch o.HeaderFormat {
		case FormatPEMURLEncoded, FormatBase64DER, FormatPEM:
		default:
			return nil, fmt.Errorf("cps: unknown header format %q; expected pem_urlencoded, base64_der or pem", o.HeaderFormat)
		}
		if len(o.TrustedProxies) == 0 {
			return nil, errors.New("cps: a certificate header needs trusted proxies")
		}
	}
	c := &Connector{
		o:           o,
		roots:       x509.NewCertPool(),
		inters:      slices.Clone(o.Intermediates),
		log:         o.Logger,
		now:         o.Clock,
		client:      o.HTTPClient,
		kick:        make(chan struct{}, 1),
		cas:         map[[32]byte]*x509.Certificate{},
		dps:         map[string]bool{},
		crls:        map[string]*crlEntry{},
		ocspTargets: map[ocspKey]ocspTarget{},
		ocsp:        map[ocspKey]*ocspEntry{},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.client == nil {
		c.client = &http.Client{Timeout: fetchTimeout}
	}
	for i, a := range o.Anchors {
		if a == nil {
			return nil, fmt.Errorf("cps: anchor %d is nil", i)
		}
		c.roots.AddCert(a)
		c.cas[sha256.Sum256(a.Raw)] = a
	}
	for i, in := range o.Intermediates {
		if in == nil {
			return nil, fmt.Errorf("cps: intermediate %d is nil", i)
		}
		c.cas[sha256.Sum256(in.Raw)] = in
		c.addDPs(in)
	}
	for _, s := range o.PolicyOIDs {
		oid, err := x509.ParseOID(s)
		if err != nil {
			return nil, fmt.Errorf("cps: policy OID %q: %w", s, err)
		}
		c.policies = append(c.policies, oid)
	}
	for _, u := range o.CRLURLs {
		if !isHTTPURL(u) {
			return nil, fmt.Errorf("cps: CRL URL %q is not an http(s) URL", u)
		}
		c.dps[u] = true
	}
	if err := c.loadCRLFiles(); err != nil {
		return nil, err
	}
	_ = ctx // reserved: loading files needs no context today
	return c, nil
}

// TLSConfig returns base (cloned; nil for a fresh one) set up for Garde's
// card listener. The client certificate is requested, not required nor
// verified by the handshake: Authenticate verifies it, so that a person
// with an expired or revoked card gets a page saying so rather than a
// browser's handshake error. ClientCAs names the configured CAs in the
// certificate request, so browsers offer only card certificates.
func (c *Connector) TLSConfig(base *tls.Config) *tls.Config {
	var cfg *tls.Config
	if base != nil {
		cfg = base.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	cfg.ClientAuth = tls.RequestClientCert
	pool := x509.NewCertPool()
	for _, a := range c.o.Anchors {
		pool.AddCert(a)
	}
	for _, in := range c.o.Intermediates {
		pool.AddCert(in)
	}
	cfg.ClientCAs = pool
	return cfg
}

// Authenticate verifies a presented chain (leaf first; the rest are
// untrusted hints) and returns the card holder's identity. It reads only
// in-memory caches: no network access happens here.
func (c *Connector) Authenticate(ctx context.Context, chain []*x509.Certificate) (connectors.Identity, error) {
	if len(chain) == 0 || chain[0] == nil {
		return connectors.Identity{}, ErrCardMissing
	}
	leaf := chain[0]
	now := c.now()
	verified, err := c.verify(leaf, chain[1:], now)
	if err != nil {
		return connectors.Identity{}, err
	}
	if err := c.checkPolicy(leaf); err != nil {
		return connectors.Identity{}, err
	}
	if err := c.checkRevocation(ctx, verified, now); err != nil {
		return connectors.Identity{}, err
	}
	p, err := parseSubject(leaf.RawSubject, leaf.Extensions)
	if err != nil {
		return connectors.Identity{}, err
	}
	return c.identity(p, now), nil
}

func (c *Connector) identity(p person, now time.Time) connectors.Identity {
	id := connectors.Identity{
		Connector:      c.o.ConnectorID,
		Subject:        p.idNat,
		NationalID:     p.idNat,
		NationalIDType: connectors.NationalIDTypeOf(p.idNat),
		GivenName:      p.given,
		FamilyName:     p.family,
		DisplayName:    p.displayName(),
		AMR:            slices.Clone(c.o.AMR),
		Assurance:      c.o.Level,
		AuthTime:       now,
	}
	label := p.title
	if label == "" && id.NationalIDType == "adeli" {
		// ADELI-era cards carry the profession in OU rather than title.
		label = p.ou
	}
	if label != "" {
		id.Professions = []connectors.Profession{{Label: label}}
	}
	if id.NationalIDType == "structure" {
		// Staff cards (CPE, CPA): OU is the structure's idNat_Struct. On
		// other cards OU, when present, means something else.
		id.Structure = p.ou
	}
	return id
}

// verify builds a chain from the leaf to a configured anchor and returns
// the verified chains.
func (c *Connector) verify(leaf *x509.Certificate, presented []*x509.Certificate, now time.Time) ([][]*x509.Certificate, error) {
	if leaf.IsCA {
		return nil, fmt.Errorf("%w: the presented certificate is a CA certificate", ErrCardUntrusted)
	}
	// The card's authentication certificate names clientAuth explicitly;
	// a certificate without EKU (which x509 treats as "any") or with
	// anyExtendedKeyUsage, such as a signature certificate, is refused.
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return nil, fmt.Errorf("%w: no clientAuth extended key usage", ErrNotClientAuth)
	}
	inter := x509.NewCertPool()
	for _, in := range c.inters {
		inter.AddCert(in)
	}
	for _, in := range presented {
		// Presented certificates only help to build a path: a root among
		// them is not an anchor, since Roots holds only configured ones.
		if in != nil {
			inter.AddCert(in)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         c.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) {
			switch inv.Reason {
			case x509.Expired:
				return nil, fmt.Errorf("%w: %v", ErrCardExpired, err)
			case x509.IncompatibleUsage:
				return nil, fmt.Errorf("%w: %v", ErrNotClientAuth, err)
			}
		}
		return nil, fmt.Errorf("%w: %v", ErrCardUntrusted, err)
	}
	if len(chains) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrCardUntrusted, errNoChain)
	}
	return chains, nil
}

func (c *Connector) checkPolicy(leaf *x509.Certificate) error {
	if len(c.policies) == 0 {
		return nil
	}
	for _, have := range leaf.Policies {
		for _, want := range c.policies {
			if have.Equal(want) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: none of the configured policies is asserted", ErrPolicy)
}

func isHTTPURL(u string) bool {
	return len(u) > 7 && (u[:7] == "http://" || len(u) > 8 && u[:8] == "https://")
}
