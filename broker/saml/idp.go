// Package saml makes Garde a SAML 2.0 identity provider: SP-initiated and
// (per SP) IdP-initiated Web Browser SSO over the HTTP-Redirect and
// HTTP-POST bindings, and front-channel Single Logout.
//
// Sign-ins go through the same flow (broker/flow) as OpenID Connect, so
// one SSO session, one set of policies and one audit trail serve both
// protocols.
//
// crewjam/saml provides the schema types, metadata parsing and XML
// encryption; the security-critical checks are Garde's own (message.go):
// inbound messages are size-limited before and after inflating, parsed
// without DTDs, checked for signature-wrapping shapes, and verified with
// the service provider's registered keys only; Garde then reads the
// message from the element the signature covers and from nothing else.
package saml

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/clientaddr"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/web"
)

// Paths served by Handler.
const (
	PathMetadata     = "/saml/metadata"
	PathSSO          = "/saml/sso"
	PathSLO          = "/saml/slo"
	PathResume       = "/saml/resume"
	PathIdPInitiated = "/saml/idp-initiated"
)

// Protocol is the flow.Request protocol name of SAML sign-ins.
const Protocol = "saml"

// Audit event types (documented in docs/saml.md and docs/audit.md).
const (
	// EventAssertionIssued: an assertion went to an SP.
	EventAssertionIssued = "saml.assertion_issued"
	// EventRequestRefused: a request was refused (Reason says why).
	EventRequestRefused = "saml.request_refused"
	// EventLogout: a SAML Single Logout ended a session.
	EventLogout = "saml.logout"
)

// Flow is what the IdP needs of the sign-in flow (a *flow.Engine).
type Flow interface {
	Authorize(w http.ResponseWriter, r *http.Request, req flow.Request) (flow.Result, error)
	Resume(w http.ResponseWriter, r *http.Request) (flow.Request, *session.Session, error)
}

// Sessions is what the IdP needs of the session manager.
type Sessions interface {
	Get(ctx context.Context, secret string) (*session.Session, error)
	End(ctx context.Context, secret string) (*session.Session, error)
	EndByID(ctx context.Context, sid string) (*session.Session, error)
}

// Options configure an IdP.
type Options struct {
	// BaseURL is Garde's public URL (the issuer); endpoints are under it.
	BaseURL string
	// EntityID defaults to BaseURL + PathMetadata.
	EntityID string
	// Key and Certificate sign assertions, responses and logout messages.
	Key         *rsa.PrivateKey
	Certificate *x509.Certificate

	ServiceProviders []ServiceProvider

	Flow      Flow
	Sessions  Sessions
	Ephemeral store.Ephemeral
	Audit     *audit.Recorder
	Pages     *web.Renderer
	Cookies   web.CookiePolicy
	// PairwiseKey keys persistent NameIDs and session indexes (32 bytes,
	// derived from the master key, shared by replicas).
	PairwiseKey []byte
	// ClockSkew tolerated on IssueInstant (default 2m); RequestMaxAge is
	// how old a request may be (default 5m).
	ClockSkew     time.Duration
	RequestMaxAge time.Duration
	// SessionLifetime bounds how long SSO participation is remembered for
	// logout (default 12h).
	SessionLifetime time.Duration
	// MetadataRefresh is how often SP metadata is reloaded (default 1h).
	MetadataRefresh time.Duration
	HTTPClient      *http.Client
	Clock           func() time.Time
	Logger          *slog.Logger
}

// IdP is the SAML identity provider.
type IdP struct {
	o        Options
	base     string
	entityID string
	sps      map[string]*sp
	order    []*sp
	now      func() time.Time
	log      *slog.Logger
}

// New builds the IdP and loads every SP's metadata once. An SP whose
// metadata cannot be loaded is logged and left unavailable (its sign-ins
// show a page saying so) until a refresh succeeds: one SP's broken
// metadata must not keep every other application from signing in.
func New(ctx context.Context, o Options) (*IdP, error) {
	if o.Key == nil || o.Certificate == nil {
		return nil, errors.New("saml: a signing key and certificate are required")
	}
	if _, err := url.Parse(o.BaseURL); err != nil || o.BaseURL == "" {
		return nil, fmt.Errorf("saml: base URL %q: %v", o.BaseURL, err)
	}
	if len(o.PairwiseKey) < 32 {
		return nil, errors.New("saml: pairwise key must be 32 bytes")
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = 2 * time.Minute
	}
	if o.RequestMaxAge <= 0 {
		o.RequestMaxAge = 5 * time.Minute
	}
	if o.SessionLifetime <= 0 {
		o.SessionLifetime = 12 * time.Hour
	}
	if o.MetadataRefresh <= 0 {
		o.MetadataRefresh = time.Hour
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p := &IdP{
		o: o, base: strings.TrimRight(o.BaseURL, "/"), entityID: o.EntityID,
		sps: map[string]*sp{}, now: o.Clock, log: o.Logger,
	}
	if p.entityID == "" {
		p.entityID = p.base + PathMetadata
	}
	for _, c := range o.ServiceProviders {
		if c.EntityID == "" {
			return nil, errors.New("saml: a service provider has no entity id")
		}
		if _, dup := p.sps[c.EntityID]; dup {
			return nil, fmt.Errorf("saml: service provider %s is registered twice", c.EntityID)
		}
		if c.Name == "" {
			c.Name = c.EntityID
		}
		if c.NameID == "" {
			c.NameID = NameIDPersistent
		}
		if c.Attributes == nil {
			c.Attributes = DefaultAttributes()
		}
		if c.SignatureAlgorithm == "" {
			c.SignatureAlgorithm = algRSASHA256
		}
		if c.SignatureAlgorithm == algRSASHA1 && !c.AllowSHA1 {
			return nil, fmt.Errorf("saml: service provider %s: rsa-sha1 needs allow_sha1", c.EntityID)
		}
		if !c.SignResponse && !c.SignAssertion {
			return nil, fmt.Errorf("saml: service provider %s: sign the response, the assertion or both", c.EntityID)
		}
		if c.AssertionLifetime <= 0 {
			c.AssertionLifetime = 5 * time.Minute
		}
		s := &sp{ServiceProvider: c}
		p.sps[c.EntityID] = s
		p.order = append(p.order, s)
		if err := s.load(ctx, o.HTTPClient, p.now()); err != nil {
			p.log.Error("SAML service provider unavailable until its metadata loads", "sp", c.EntityID, "err", err)
		}
	}
	return p, nil
}

// EntityID is the IdP's entity id.
func (p *IdP) EntityID() string { return p.entityID }

func (p *IdP) url(path string) string { return p.base + path }

// Handler serves the IdP's endpoints (mount it on the Paths above).
func (p *IdP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PathMetadata, p.serveMetadata)
	mux.HandleFunc(PathSSO, p.serveSSO)
	mux.HandleFunc(PathResume, p.serveResume)
	mux.HandleFunc(PathIdPInitiated, p.serveIdPInitiated)
	mux.HandleFunc(PathSLO, p.serveSLO)
	mux.HandleFunc("GET "+PathSLOContinue, p.serveSLOContinue)
	return mux
}

// Run reloads SP metadata every MetadataRefresh, and every minute for SPs
// whose metadata is not loaded, until ctx ends. A failed reload keeps the
// previous metadata.
func (p *IdP) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	last := p.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		all := p.now().Sub(last) >= p.o.MetadataRefresh
		if all {
			last = p.now()
		}
		for _, s := range p.order {
			if !all && s.md.Load() != nil {
				continue
			}
			if err := s.load(ctx, p.o.HTTPClient, p.now()); err != nil {
				p.log.Warn("reloading SAML metadata failed; keeping the previous metadata", "sp", s.EntityID, "err", err)
			}
		}
	}
}

// Reload reloads every SP's metadata now and returns the errors.
func (p *IdP) Reload(ctx context.Context) error {
	var errs []error
	for _, s := range p.order {
		errs = append(errs, s.load(ctx, p.o.HTTPClient, p.now()))
	}
	return errors.Join(errs...)
}

// audit records an event with the request's client address.
func (p *IdP) audit(r *http.Request, e store.AuditEvent) {
	if e.ClientAddr == "" {
		e.ClientAddr = clientaddr.From(r).String()
	}
	p.o.Audit.Record(e)
}

// errorPage shows a person a readable page; the detail goes to the log.
func (p *IdP) errorPage(w http.ResponseWriter, r *http.Request, status int, key string, err error) {
	flow.ErrorPage(p.o.Pages, p.log, w, r, status, key, err)
}
