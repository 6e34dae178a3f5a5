package app

import (
	"context"
	"fmt"
	"github.com/garde-sso/garde/broker/flow"
	"net/http"
	"time"

	"github.com/garde-sso/garde/broker/saml"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/web"
)

// samlSignatureAlgs maps configuration names to XML DSig URIs.
var samlSignatureAlgs = map[string]string{
	"rsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
	"rsa-sha512": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
	"rsa-sha1":   "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
}

var samlNameFormats = map[string]string{
	"uri":         saml.NameFormatURI,
	"basic":       saml.NameFormatBasic,
	"unspecified": "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
}

// samlDeps are the parts of the wired Garde the SAML IdP uses.
type samlDeps struct {
	master   []byte
	flow     saml.Flow
	sessions *session.Manager
	pages    *web.Renderer
	cookies  web.CookiePolicy
	clock    func() time.Time
}

// buildSAML wires the SAML identity provider, or returns nil when the
// configuration has no saml block. Its metadata refresh runs until ctx
// ends.
func (a *App) buildSAML(ctx, runCtx context.Context, cfg *config.Config, o Options, d samlDeps) (*saml.IdP, error) {
	sc := cfg.SAML
	if !sc.Enabled {
		return nil, nil
	}
	opts := saml.Options{
		BaseURL: cfg.Issuer, EntityID: sc.EntityID,
		Flow: d.flow, Sessions: d.sessions, Ephemeral: a.Ephemeral, Audit: a.Audit,
		Pages: d.pages, Cookies: d.cookies,
		PairwiseKey:     derive(d.master, "garde saml pairwise"),
		ClockSkew:       sc.ClockSkew,
		RequestMaxAge:   sc.RequestMaxAge,
		SessionLifetime: cfg.Sessions.Lifetime,
		MetadataRefresh: sc.MetadataRefresh,
		HTTPClient:      &http.Client{Timeout: 15 * time.Second},
		Clock:           d.clock,
		Logger:          o.Logger.With("component", "saml"),
	}
	var err error
	if sc.CertificateFile != "" {
		opts.Key, opts.Certificate, err = saml.LoadKeyPair(resolve(o.BaseDir, sc.CertificateFile), resolve(o.BaseDir, sc.KeyFile))
	} else {
		opts.Key, opts.Certificate, err = saml.LoadOrCreateKeyPair(ctx, a.Durable, d.master, opts.EntityID, d.clock())
	}
	if err != nil {
		return nil, err
	}
	for _, s := range sc.ServiceProviders {
		sp := saml.ServiceProvider{
			EntityID: s.EntityID, Name: s.Name, MetadataURL: s.MetadataURL,
			NameID: s.NameID, SignResponse: s.Sign != "assertion", SignAssertion: s.Sign != "response",
			SignatureAlgorithm: samlSignatureAlgs[s.SignatureAlgorithm], AllowSHA1: s.AllowSHA1,
			EncryptAssertion: s.EncryptAssertion, AssertionLifetime: s.AssertionLifetime,
			IdPInitiated: s.IdPInitiated, RequireSignedRequests: s.RequireSignedRequests,
		}
		if s.MetadataFile != "" {
			sp.MetadataFile = resolve(o.BaseDir, s.MetadataFile)
		}
		if s.Attributes != nil {
			sp.Attributes = []saml.Attribute{}
			for _, at := range s.Attributes {
				sp.Attributes = append(sp.Attributes, saml.Attribute{
					Name: at.Name, FriendlyName: at.FriendlyName, NameFormat: samlNameFormats[at.NameFormat], Source: at.Source,
				})
			}
		}
		opts.ServiceProviders = append(opts.ServiceProviders, sp)
	}
	idp, err := saml.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("saml: %w", err)
	}
	go idp.Run(runCtx)
	return idp, nil
}

// mountSAML serves the IdP's endpoints on mux.
func mountSAML(mux *http.ServeMux, idp *saml.IdP) {
	if idp == nil {
		return
	}
	h := idp.Handler()
	for _, p := range []string{saml.PathMetadata, saml.PathSSO, saml.PathSLO, saml.PathResume, saml.PathIdPInitiated, saml.PathSLOContinue} {
		mux.Handle(p, h)
	}
}

// logoutElsewhere is what an OpenID Connect logout does after ending the
// Garde session: tell the session's SAML applications (front-channel
// LogoutRequests, carried by the browser), then end the upstream
// provider's session (Pro Santé Connect), then go on to next. It returns
// "" when there is nothing to do elsewhere.
func (a *App) logoutElsewhere(engine *flow.Engine) func(ctx context.Context, s *session.Session, next string) (string, error) {
	return func(ctx context.Context, s *session.Session, next string) (string, error) {
		dest := next
		upstream, err := engine.UpstreamLogout(ctx, s, next)
		if err != nil {
			a.logger.Warn("upstream logout skipped", "sid", s.ID, "err", err)
		} else if upstream != "" {
			dest = upstream
		}
		if a.samlIdP != nil {
			propagate, err := a.samlIdP.StartLogout(ctx, s.ID, dest)
			if err != nil {
				a.logger.Warn("SAML logout propagation skipped", "sid", s.ID, "err", err)
			} else if propagate != "" {
				return propagate, nil
			}
		}
		return upstream, nil
	}
}
