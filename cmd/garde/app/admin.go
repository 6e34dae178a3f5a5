package app

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/admin"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/oidc"
	"github.com/garde-sso/garde/broker/passkeys"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/signout"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/policies"
	"github.com/garde-sso/garde/web"
)

// adminSecret is the console's client secret: derived from the master
// key like the other internal secrets, so every replica agrees on it and
// nobody has to configure it.
func adminSecret(master []byte) string {
	return hex.EncodeToString(derive(master, "garde admin console client secret"))
}

// adminClient registers the console as a confidential client of Garde's
// OpenID provider, or returns nil when the console is off.
func adminClient(cfg *config.Config, master []byte) *oidc.Client {
	if !cfg.Admin.Enabled() {
		return nil
	}
	alg := "RS256"
	if len(cfg.Keys.Algorithms) > 0 {
		alg = cfg.Keys.Algorithms[0]
	}
	return oidc.NewClient(oidc.ClientConfig{
		ID: admin.ClientID, Name: "Garde — console d'administration",
		RedirectURIs:            []string{strings.TrimSuffix(cfg.Issuer, "/") + admin.PathCallback},
		GrantTypes:              []string{"authorization_code"},
		Scopes:                  []string{"openid", "profile", "groups"},
		TokenEndpointAuthMethod: "client_secret_basic",
		IDTokenAlg:              alg,
		SecretSHA256:            oidc.SecretDigest(adminSecret(master)),
	})
}

// adminDeps are the parts of Build the console needs.
type adminDeps struct {
	master    []byte
	sessions  *session.Manager
	pages     *web.Renderer
	csrf      *web.CSRF
	cookies   web.CookiePolicy
	passwords []flow.PasswordSource
	passkeys  *passkeys.Service
	policy    *policies.Engine
	clock     func() time.Time
	logger    *slog.Logger
}

// buildAdmin builds the console, or returns nil when it is off. Its HTTP
// client reaches Garde's own endpoints in-process (handlerTransport), so
// signing in to the console needs neither a network round trip nor a
// certificate the server would have to trust.
func (a *App) buildAdmin(cfg *config.Config, d adminDeps) (*admin.Console, error) {
	ac := cfg.Admin
	if !ac.Enabled() {
		return nil, nil
	}
	level, ok := assurance.ParseACR(ac.MinLevel)
	if !ok {
		return nil, fmt.Errorf("admin.min_level %q", ac.MinLevel)
	}
	var dirs []admin.Directory
	for _, p := range d.passwords {
		dir := admin.Directory{ID: p.ID}
		dir.Users, _ = p.Connector.(connectors.UsernameLookup)
		dir.Subjects, _ = p.Connector.(connectors.LookupConnector)
		dirs = append(dirs, dir)
	}
	apps := adminApps(cfg, d.policy)
	var apiClients []admin.APIClient
	for _, c := range ac.APIClients {
		apiClients = append(apiClients, admin.APIClient{ClientID: c.Client, Role: admin.Role(c.Role)})
	}
	var model func([]byte) string
	if d.passkeys != nil {
		model = d.passkeys.Model
	}
	return admin.New(admin.Options{
		Issuer:     cfg.Issuer,
		Secret:     adminSecret(d.master),
		HTTPClient: &http.Client{Transport: handlerTransport{app: a, https: strings.HasPrefix(cfg.Issuer, "https:")}, Timeout: 30 * time.Second},
		Sessions:   d.sessions,
		Signout:    &signout.Signout{Sessions: d.sessions, Refresh: a.Durable, Audit: a.Audit, Log: d.logger},
		Ephemeral:  a.Ephemeral,
		AuditLog:   a.Durable,
		Audit:      a.Audit,
		Creds:      a.Durable,
		Codes:      a.Durable,
		Links:      a.Durable,
		Pages:      d.pages,
		CSRF:       d.csrf,
		Cookies:    d.cookies,
		Roles: map[admin.Role][]string{
			admin.RoleAdmin: ac.Roles.Admin, admin.RoleHelpdesk: ac.Roles.Helpdesk, admin.RoleAuditor: ac.Roles.Auditor,
		},
		MinLevel:     level,
		IdleTimeout:  ac.IdleTimeout,
		Lifetime:     ac.Lifetime,
		APIClients:   apiClients,
		Directories:  dirs,
		Apps:         apps,
		Model:        model,
		CodeLifetime: cfg.WebAuthn.Enrollment.CodeLifetime,
		Clock:        d.clock,
		Logger:       d.logger,
	}), nil
}

// adminApps lists the configured applications with their effective
// policy.
func adminApps(cfg *config.Config, engine *policies.Engine) []admin.App {
	var out []admin.App
	for _, c := range cfg.Clients {
		out = append(out, admin.App{ID: c.ID, Name: c.Name, Kind: "oidc", Policy: engine.Effective(c.ID)})
	}
	for _, sp := range cfg.SAML.ServiceProviders {
		name := sp.Name
		if name == "" {
			name = sp.EntityID
		}
		out = append(out, admin.App{ID: sp.EntityID, Name: name, Kind: "saml", Policy: engine.Effective(sp.EntityID)})
	}
	out = append(out, admin.App{ID: admin.ClientID, Name: "Garde — console d'administration", Kind: "oidc", Policy: engine.Effective(admin.ClientID)})
	return out
}

// handlerTransport serves the console's requests to Garde's own endpoints
// with the app's handler, in-process.
type handlerTransport struct {
	app   *App
	https bool
}

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h := t.app.Handler
	if h == nil {
		return nil, fmt.Errorf("garde is not built yet")
	}
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.Host = req.URL.Host
	in.RemoteAddr = "127.0.0.1:0"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	if t.https {
		in.TLS = &tls.ConnectionState{}
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	h.ServeHTTP(rec, in)
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

// recorder is a minimal http.ResponseWriter that keeps the response.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if !r.wrote {
		r.status, r.wrote = status, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
