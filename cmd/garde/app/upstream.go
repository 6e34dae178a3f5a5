package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/linking"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/connectors/cps"
	"github.com/garde-sso/garde/connectors/psc"
	"github.com/garde-sso/garde/internal/assurance"
)

// openUpstreams builds the linker over the password directories, and the
// Pro Santé Connect and CPS card connectors of the configuration.
func (a *App) openUpstreams(ctx context.Context, cfg *config.Config, o Options, passwords []flow.PasswordSource, m *metrics) (*linking.Linker, []flow.RedirectSource, []flow.CardSource, error) {
	var dirs []linking.Directory
	for _, p := range passwords {
		d := linking.Directory{ID: p.ID}
		d.ByNationalID, _ = p.Connector.(connectors.NationalIDLookup)
		d.BySubject, _ = p.Connector.(connectors.LookupConnector)
		dirs = append(dirs, d)
	}
	linker := linking.New(linking.Options{
		Links: a.Durable, Directories: dirs, NoMatch: cfg.Linking.NoMatch,
		Audit: a.Audit, Clock: o.Clock, Logger: o.Logger,
	})

	var redirects []flow.RedirectSource
	var cards []flow.CardSource
	for _, c := range cfg.Connectors {
		name := c.Name
		if name == "" {
			name = c.ID
		}
		switch {
		case c.Type == "psc" && c.PSC != nil:
			conn, err := openPSC(ctx, c.ID, c.PSC, o)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("connector %s: %w", c.ID, err)
			}
			base := pscAdapter{c: conn, backchannel: c.PSC.BackChannelLogout, m: m, id: c.ID}
			var adapter flow.RedirectConnector = base
			if ch := c.PSC.DecoupledChannels(); len(ch) > 0 {
				// Only a connector the configuration enables offers the
				// decoupled sign-in: the flow finds it by this type.
				adapter = pscDecoupledAdapter{base, ch}
			}
			redirects = append(redirects, flow.RedirectSource{ID: c.ID, Name: name, Connector: adapter})
		case c.Type == "cps" && c.CPS != nil:
			conn, err := a.openCPS(ctx, c.ID, c.CPS, o, m)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("connector %s: %w", c.ID, err)
			}
			cards = append(cards, flow.CardSource{ID: c.ID, Name: name, Connector: cpsAdapter{conn}, Origin: cardOrigin(cfg, c.CPS)})
			a.cards = append(a.cards, cardListener{conn: conn, address: c.CPS.ListenAddress})
		}
	}
	return linker, redirects, cards, nil
}

func openPSC(ctx context.Context, id string, c *config.PSCConnector, o Options) (*psc.Connector, error) {
	opts := psc.Options{
		ConnectorID: id, Environment: c.Environment, Issuer: c.Issuer, DiscoveryURL: c.DiscoveryURL,
		ClientID: c.ClientID, ClientSecret: c.ClientSecret.Reveal(), AuthMethod: c.AuthMethod,
		Scopes: c.Scopes, ACRValues: c.ACRValues, Clock: o.Clock, Logger: o.Logger,
	}
	var err error
	if c.ClientCertificateFile != "" {
		if opts.ClientCertificate, err = psc.LoadClientCertificate(resolve(o.BaseDir, c.ClientCertificateFile), resolve(o.BaseDir, c.ClientKeyFile)); err != nil {
			return nil, err
		}
	}
	if c.CAFile != "" {
		if opts.RootCAs, err = psc.LoadRootCAs(resolve(o.BaseDir, c.CAFile)); err != nil {
			return nil, err
		}
	}
	if c.UserinfoDecryptionKeyFile != "" {
		if opts.UserinfoDecryptionKey, err = psc.LoadPrivateKey(resolve(o.BaseDir, c.UserinfoDecryptionKeyFile)); err != nil {
			return nil, err
		}
	}
	for _, r := range c.Assurance {
		level, _ := assurance.ParseACR(r.Level)
		opts.Assurance = append(opts.Assurance, psc.AssuranceRule{ACR: r.ACR, AuthMode: r.AuthMode, Level: level, AMR: r.AMR})
	}
	return psc.New(ctx, opts)
}

// openCPS builds a card connector and fetches its CRLs once: a CRL that
// cannot be fetched makes card sign-ins fail closed until the background
// refresh succeeds, which the log says.
func (a *App) openCPS(ctx context.Context, id string, c *config.CPSConnector, o Options, m *metrics) (*cps.Connector, error) {
	level, _ := assurance.ParseACR(c.Level)
	opts := cps.Options{
		ConnectorID: id, Anchors: c.Anchors, Intermediates: c.Intermediates, PolicyOIDs: c.PolicyOIDs,
		Revocation: c.Revocation, AllowStaleCRL: c.AllowStaleCRL, CRLURLs: c.CRLURLs,
		RefreshEvery: c.RefreshEvery,
		HTTPClient: &http.Client{Timeout: 15 * time.Second,
			Transport: timedTransport{next: http.DefaultTransport, m: m, connector: id, op: cardFetchOp}},
		Level: level, AMR: c.AMR, Clock: o.Clock, Logger: o.Logger,
	}
	for _, f := range c.CRLFiles {
		opts.CRLFiles = append(opts.CRLFiles, resolve(o.BaseDir, f))
	}
	if p := c.Proxy; p != nil {
		opts.TrustedProxies, opts.Header, opts.HeaderFormat = p.Trusted, p.Header, p.Format
	}
	conn, err := cps.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	refreshCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := conn.Refresh(refreshCtx); err != nil {
		o.Logger.Warn("card connector: revocation lists not all fetched at start; card sign-ins fail closed until they are", "connector", id, "err", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { conn.Run(runCtx); close(done) }()
	a.closers = append(a.closers, func(context.Context) error { stop(); <-done; return nil })
	return conn, nil
}

// cardOrigin is where browsers reach the card sign-in: the issuer's host on
// the card listener's port, or the issuer's origin behind a proxy (which
// asks for the certificate on the card path itself).
func cardOrigin(cfg *config.Config, c *config.CPSConnector) string {
	issuer := cfg.Issuer
	if c.ListenAddress == "" {
		return originOf(issuer)
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return originOf(issuer)
	}
	_, port, err := net.SplitHostPort(c.ListenAddress)
	if err != nil {
		return originOf(issuer)
	}
	return "https://" + net.JoinHostPort(u.Hostname(), port)
}

// pscAdapter fits the PSC connector to the flow's interfaces.
type pscAdapter struct {
	c           *psc.Connector
	backchannel bool
	m           *metrics
	id          string
}

func (p pscAdapter) AuthCodeURL(ctx context.Context, callbackURL, state, nonce, codeChallenge, loginHint string) (string, error) {
	return p.c.AuthCodeURL(ctx, psc.AuthRequest{CallbackURL: callbackURL, State: state, Nonce: nonce, CodeChallenge: codeChallenge, LoginHint: loginHint})
}

func (p pscAdapter) Exchange(ctx context.Context, callbackURL, code, codeVerifier, nonce string) (connectors.Identity, error) {
	start := time.Now()
	id, err := p.c.Exchange(ctx, callbackURL, code, codeVerifier, nonce)
	if p.m != nil {
		p.m.connCall(p.id, "exchange", start, err)
	}
	return id, err
}

func (pscAdapter) Reason(err error) string { return psc.Reason(err) }

func (p pscAdapter) EndSessionURL(ctx context.Context, idTokenHint, postLogoutRedirectURI, state string) (string, error) {
	return p.c.EndSessionURL(ctx, idTokenHint, postLogoutRedirectURI, state)
}

func (p pscAdapter) VerifyLogoutToken(ctx context.Context, raw string) (string, string, string, error) {
	if !p.backchannel {
		return "", "", "", fmt.Errorf("back-channel logout is not enabled for this connector")
	}
	t, err := p.c.VerifyLogoutToken(ctx, raw)
	return t.Subject, t.SessionID, t.JTI, err
}

// pscDecoupledAdapter is a PSC connector with the decoupled sign-in
// (CIBA) enabled on channels.
type pscDecoupledAdapter struct {
	pscAdapter
	channels []string
}

var _ flow.DecoupledConnector = pscDecoupledAdapter{}

func (p pscDecoupledAdapter) StartDecoupled(ctx context.Context, idNat, channel string) (flow.DecoupledStart, error) {
	d, err := p.c.StartDecoupled(ctx, idNat, channel)
	return flow.DecoupledStart{AuthReqID: d.AuthReqID, BindingMessage: d.BindingMessage, Interval: d.Interval, ExpiresIn: d.ExpiresIn}, err
}

func (p pscDecoupledAdapter) PollDecoupled(ctx context.Context, authReqID string) (connectors.Identity, error) {
	return p.c.PollDecoupled(ctx, authReqID)
}

func (pscDecoupledAdapter) Pending(err error) bool {
	return errors.Is(err, psc.ErrAuthorizationPending)
}
func (pscDecoupledAdapter) SlowDown(err error) bool { return errors.Is(err, psc.ErrSlowDown) }

func (p pscDecoupledAdapter) DecoupledChannels() []string { return p.channels }

// cpsAdapter fits the card connector to the flow's interface.
type cpsAdapter struct{ c *cps.Connector }

func (c cpsAdapter) ClientChain(r *http.Request) ([]*x509.Certificate, error) {
	return c.c.ClientChain(r)
}

func (c cpsAdapter) Authenticate(ctx context.Context, chain []*x509.Certificate) (connectors.Identity, error) {
	return c.c.Authenticate(ctx, chain)
}

func (cpsAdapter) Reason(err error) string { return cps.Reason(err) }

// cardListener is a TLS listener that asks browsers for a card certificate.
type cardListener struct {
	conn    *cps.Connector
	address string
}

// CardServer is a listener Garde runs for card sign-in: it serves the same
// handler as the main listener, over TLS that asks the browser for a
// client certificate.
type CardServer struct {
	// Address is host:port to listen on.
	Address string
	// TLSConfig returns the listener's TLS configuration from the main
	// listener's (its server certificate).
	TLSConfig func(base *tls.Config) *tls.Config
}

// CardServers are the card listeners the configuration asks for.
func (a *App) CardServers() []CardServer {
	var out []CardServer
	for _, c := range a.cards {
		if c.address != "" {
			out = append(out, CardServer{Address: c.address, TLSConfig: c.conn.TLSConfig})
		}
	}
	return out
}

func originOf(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return issuer
	}
	return u.Scheme + "://" + u.Host
}
