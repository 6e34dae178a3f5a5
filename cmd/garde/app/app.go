// Package app wires Garde from its configuration: stores, keys,
// connectors, the sign-in flow, the OpenID Connect provider and the HTTP
// handlers. It is the only place that knows every other package; the
// binary's main and the end-to-end tests both build Garde through it.
package app

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/garde-sso/garde/broker/account"
	"github.com/garde-sso/garde/broker/admin"
	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/keys"
	"github.com/garde-sso/garde/broker/oidc"
	"github.com/garde-sso/garde/broker/saml"
	"github.com/garde-sso/garde/broker/session"
	"github.com/garde-sso/garde/broker/signout"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/memory"
	"github.com/garde-sso/garde/broker/store/postgres"
	redisstore "github.com/garde-sso/garde/broker/store/redis"
	"github.com/garde-sso/garde/broker/store/sqlite"
	"github.com/garde-sso/garde/broker/throttle"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/connectors/ldap"
	"github.com/garde-sso/garde/connectors/static"
	"github.com/garde-sso/garde/policies"
	"github.com/garde-sso/garde/web"
)

// App is a wired Garde.
type App struct {
	// Handler serves every public endpoint.
	Handler http.Handler
	// Metrics serves /metrics, for the separate metrics listener.
	Metrics http.Handler

	Config    *config.Config
	Durable   store.Durable
	Ephemeral store.Ephemeral
	Keys      *keys.Manager
	Audit     *audit.Recorder

	logger  *slog.Logger
	samlIdP *saml.IdP      // nil without a saml block
	admin   *admin.Console // nil without admin roles
	cancel  context.CancelFunc
	closers []func(context.Context) error
	cards   []cardListener
}

// Options are the parts a caller may supply instead of the defaults.
type Options struct {
	Logger *slog.Logger
	// Clock defaults to time.Now.
	Clock func() time.Time
	// Getenv reads the master key variable; default os.Getenv.
	Getenv func(string) string
	// BaseDir resolves relative paths in the configuration (SQLite file,
	// master key file); default the working directory.
	BaseDir string
}

// Build wires Garde. Close releases what it opened.
func Build(ctx context.Context, cfg *config.Config, o Options) (_ *App, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	a := &App{Config: cfg, logger: o.Logger}
	defer func() {
		if err != nil {
			_ = a.Close(context.Background())
		}
	}()
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel

	master, err := loadMasterKey(cfg, o)
	if err != nil {
		return nil, err
	}
	if a.Durable, err = openDurable(ctx, cfg, o); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.Durable.Close() })
	if a.Ephemeral, err = openEphemeral(ctx, cfg); err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func(context.Context) error { return a.Ephemeral.Close() })
	metrics := newMetrics()
	a.instrumentStores(metrics)

	// Checkpoints sign the audit chain's head with a key derived from the
	// master key. Stopped after the recorder has flushed (closers run in
	// reverse order) and before the database closes, so the last events
	// are signed.
	ck := audit.NewCheckpointer(a.Durable, audit.DeriveCheckpointKey(master), audit.CheckpointerOptions{Clock: o.Clock, Logger: o.Logger})
	ckCtx, ckStop := context.WithCancel(context.Background())
	ckDone := make(chan struct{})
	go func() { ck.Run(ckCtx); close(ckDone) }()
	a.closers = append(a.closers, func(ctx context.Context) error {
		ckStop()
		select {
		case <-ckDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})

	a.Audit = audit.New(a.Durable, o.Logger, o.Clock, 0)
	a.Audit.Observe(metrics.observe)
	// Registered before the stores' closers run (closers run in reverse):
	// queued events are written before the database closes. A database
	// that does not answer gets ten seconds, not forever.
	a.closers = append(a.closers, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return a.Audit.Close(ctx)
	})
	if err := a.startAudit(cfg, master, metrics, o); err != nil {
		return nil, err
	}

	longest := max(cfg.Tokens.AccessTokenLifetime, cfg.Tokens.IDTokenLifetime)
	for _, c := range cfg.Clients {
		longest = max(longest, c.AccessTokenLifetime)
	}
	a.Keys, err = keys.New(ctx, keys.Options{
		Store:               a.Durable,
		MasterKey:           master,
		Algs:                cfg.Keys.Algorithms,
		RotationPeriod:      cfg.Keys.RotationPeriod,
		RetainAfterRotation: longest + time.Minute,
		Clock:               o.Clock,
		Logger:              o.Logger,
		OnCreate: func(kid, alg string, generation int64) {
			a.Audit.Record(store.AuditEvent{Type: audit.KeyCreated, Outcome: audit.Success,
				Details: map[string]string{"kid": kid, "alg": alg, "generation": strconv.FormatInt(generation, 10)}})
		},
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	a.Audit.Record(store.AuditEvent{Type: audit.ConfigLoaded, Outcome: audit.Success, Details: map[string]string{
		"issuer": cfg.Issuer, "connectors": strconv.Itoa(len(cfg.Connectors)), "clients": strconv.Itoa(len(cfg.Clients)),
		"saml_service_providers": strconv.Itoa(len(cfg.SAML.ServiceProviders)),
		"policy_applications":    strconv.Itoa(len(cfg.Policies.Applications)),
		// A fingerprint of the access rules in force: an auditor sees
		// when they changed between two starts, and can match them to a
		// file (garde check-config prints the same).
		"policies_sha256": PolicyFingerprint(cfg),
	}})
	go a.purgeExpired(runCtx, o.Clock)
	go func() {
		if err := a.Keys.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			o.Logger.Error("key rotation loop stopped", "err", err)
		}
	}()

	passwords, err := openConnectors(cfg, o)
	if err != nil {
		return nil, err
	}
	for i := range passwords {
		passwords[i].Connector = timedPassword{id: passwords[i].ID, inner: passwords[i].Connector, m: metrics}
	}
	for _, p := range passwords {
		if c, ok := p.Connector.(interface{ Close() }); ok {
			a.closers = append(a.closers, func(context.Context) error { c.Close(); return nil })
		}
	}

	pages, err := web.NewRenderer(web.WithLogger(o.Logger))
	if err != nil {
		return nil, fmt.Errorf("web templates: %w", err)
	}
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	// Cookies are Secure and __Host- prefixed whenever the issuer is https.
	// Only the plain-HTTP loopback demo runs without: browsers drop Secure
	// cookies on http, and the configuration refuses http elsewhere.
	cookies := web.CookiePolicy{Secure: issuer.Scheme == "https"}
	csrf := web.NewCSRF(derive(master, "garde csrf"))
	sessions := session.NewManager(a.Ephemeral, cfg.Sessions.Lifetime, cfg.Sessions.IdleTimeout, o.Clock)
	limiter := throttle.New(a.Ephemeral, cfg.Throttle.AccountFailures, cfg.Throttle.AddressFailures, cfg.Throttle.Window)

	pk, err := newPasskeys(cfg, a.Durable, a.Ephemeral, derive(master, "garde webauthn user handle"), o.Clock, o, o.Logger)
	if err != nil {
		return nil, err
	}
	var keysAdapter flow.Authenticators
	if pk != nil {
		keysAdapter = authenticators{pk}
		if cfg.WebAuthn.MetadataFile != "" {
			go a.reloadMetadata(runCtx, pk)
		}
	}
	lookups := map[string]connectors.LookupConnector{}
	for _, p := range passwords {
		if l, ok := p.Connector.(connectors.LookupConnector); ok {
			lookups[p.ID] = l
		}
	}

	linker, redirects, cards, err := a.openUpstreams(ctx, cfg, o, passwords, metrics)
	if err != nil {
		return nil, err
	}

	policy, err := policies.Compile(cfg.PolicyConfig(), policies.WithLogger(o.Logger),
		policies.WithAvailableMethods(flow.OfferedMethods(keysAdapter != nil, len(cards), len(redirects))))
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	alertFn := a.emergencyAlerts(cfg, o)

	engine := flow.New(flow.Options{
		Ephemeral:   a.Ephemeral,
		Sessions:    sessions,
		Passwords:   passwords,
		Throttle:    limiter,
		Audit:       a.Audit,
		Pages:       pages,
		CSRF:        csrf,
		Cookies:     cookies,
		MACKey:      derive(master, "garde flow mac"),
		LoginPath:   "/login",
		ResumePaths: map[string]string{"oidc": oidc.PathResume, "account": account.PathResume, saml.Protocol: saml.PathResume},
		Clock:       o.Clock,
		Logger:      o.Logger,

		Keys:            keysAdapter,
		SecondFactor:    cfg.WebAuthn.SecondFactor,
		Lookups:         lookups,
		EnrollmentCodes: a.Durable,
		GraceUntil:      cfg.WebAuthn.Enrollment.Grace,

		Redirects: redirects,
		Cards:     cards,
		Linker:    linker,
		PublicURL: issuer.Scheme + "://" + issuer.Host,
		Signout:   &signout.Signout{Sessions: sessions, Refresh: a.Durable, Audit: a.Audit, Log: o.Logger},
		Policy:    policy,
		Alert:     alertFn,
	})
	var acct *account.Handlers
	if pk != nil {
		acct = account.New(account.Options{
			Sessions: sessions, Flow: engine, Ceremonies: keysAdapter, Creds: a.Durable,
			Ephemeral: a.Ephemeral, Audit: a.Audit, Pages: pages, CSRF: csrf, Cookies: cookies,
			Model: pk.Model, StrongWindow: cfg.WebAuthn.Enrollment.StrongFactorWindow,
			GraceUntil: cfg.WebAuthn.Enrollment.Grace, Clock: o.Clock, Logger: o.Logger,
		})
	}

	clients, err := buildClients(cfg, o)
	if err != nil {
		return nil, err
	}
	if ac := adminClient(cfg, master); ac != nil {
		clients = append(clients, ac)
	}
	storage := oidc.NewStorage(oidc.StorageOptions{
		Clients:         clients,
		Ephemeral:       a.Ephemeral,
		RefreshTokens:   a.Durable,
		Clock:           o.Clock,
		CodeLifetime:    cfg.Tokens.AuthorizationCodeLifetime,
		AccessLifetime:  longest,
		RefreshLifetime: cfg.Tokens.RefreshTokenLifetime,
	})
	provider, err := oidc.New(oidc.Options{
		Issuer:               cfg.Issuer,
		Storage:              storage,
		Keys:                 a.Keys,
		Flow:                 engine,
		Sessions:             sessions,
		RefreshTokens:        a.Durable,
		Audit:                a.Audit,
		Pages:                pages,
		CSRF:                 csrf,
		Cookies:              cookies,
		GlobalSecret:         derive(master, "garde token hmac"),
		AccessTokenLifetime:  cfg.Tokens.AccessTokenLifetime,
		IDTokenLifetime:      cfg.Tokens.IDTokenLifetime,
		RefreshTokenLifetime: cfg.Tokens.RefreshTokenLifetime,
		CodeLifetime:         cfg.Tokens.AuthorizationCodeLifetime,
		HTTPClient:           &http.Client{Timeout: 10 * time.Second},
		Logger:               o.Logger,
		UpstreamLogout:       a.logoutElsewhere(engine),
	})
	if err != nil {
		return nil, err
	}

	a.samlIdP, err = a.buildSAML(ctx, runCtx, cfg, o, samlDeps{master: master, flow: engine, sessions: sessions, pages: pages, cookies: cookies, clock: o.Clock})
	if err != nil {
		return nil, err
	}

	a.admin, err = a.buildAdmin(cfg, adminDeps{master: master, sessions: sessions, pages: pages, csrf: csrf, cookies: cookies,
		passwords: passwords, passkeys: pk, policy: policy, clock: o.Clock, logger: o.Logger})
	if err != nil {
		return nil, err
	}

	a.Metrics = metrics.handler()
	a.Handler = a.routes(provider, engine, acct, pages, clients, cfg, metrics)
	return a, nil
}

// Close stops background work and releases stores and connections.
func (a *App) Close(ctx context.Context) error {
	if a.cancel != nil {
		a.cancel()
	}
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	a.closers = nil
	return errors.Join(errs...)
}

// derive gives each use of the master key its own key, so that no two
// mechanisms (token HMAC, flow MACs, CSRF) share one.
func derive(master []byte, label string) []byte {
	k, err := hkdf.Key(sha256.New, master, nil, label, 32)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce; 32 is fine
	}
	return k
}

func resolve(base, path string) string {
	if path == "" || filepath.IsAbs(path) || base == "" {
		return path
	}
	return filepath.Join(base, path)
}

func loadMasterKey(cfg *config.Config, o Options) ([]byte, error) {
	mk := cfg.MasterKey
	file := resolve(o.BaseDir, mk.File)
	if file != "" && mk.GenerateIfMissing {
		if err := keys.GenerateMasterKeyFile(file); err != nil {
			return nil, err
		}
	}
	env := ""
	if mk.Env != "" {
		env = o.Getenv(mk.Env)
		if env == "" {
			return nil, fmt.Errorf("master key: environment variable %s is not set (32 random bytes, e.g. `openssl rand -base64 32`)", mk.Env)
		}
	}
	return keys.LoadMasterKey(env, file)
}

// OpenDurable opens the configured durable store, for admin commands that
// need nothing else.
func OpenDurable(ctx context.Context, cfg *config.Config, baseDir string) (store.Durable, error) {
	return openDurable(ctx, cfg, Options{BaseDir: baseDir})
}

func openDurable(ctx context.Context, cfg *config.Config, o Options) (store.Durable, error) {
	switch cfg.Storage.Durable.Driver {
	case "postgres":
		s, err := postgres.Open(ctx, cfg.Storage.Durable.PostgresDSN.Reveal())
		if err != nil {
			return nil, fmt.Errorf("durable store (postgres): %w", err)
		}
		return s, nil
	default:
		s, err := sqlite.Open(ctx, resolve(o.BaseDir, cfg.Storage.Durable.SQLitePath))
		if err != nil {
			return nil, fmt.Errorf("durable store (sqlite): %w", err)
		}
		return s, nil
	}
}

func openEphemeral(ctx context.Context, cfg *config.Config) (store.Ephemeral, error) {
	e := cfg.Storage.Ephemeral
	if e.Driver != "redis" || e.Redis == nil {
		return memory.New(nil), nil
	}
	opts := redisstore.Options{
		Addrs:      e.Redis.Addrs,
		MasterName: e.Redis.MasterName,
		Username:   e.Redis.Username,
		Password:   e.Redis.Password.Reveal(),
		DB:         e.Redis.DB,
		KeyPrefix:  e.Redis.KeyPrefix,
	}
	if e.Redis.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if e.Redis.CAFile != "" {
			pool, err := loadCAs(e.Redis.CAFile)
			if err != nil {
				return nil, fmt.Errorf("redis ca_file: %w", err)
			}
			tc.RootCAs = pool
		}
		opts.TLS = tc
	}
	s, err := redisstore.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("ephemeral store (redis): %w", err)
	}
	return s, nil
}

func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

func openConnectors(cfg *config.Config, o Options) ([]flow.PasswordSource, error) {
	var out []flow.PasswordSource
	for _, c := range cfg.Connectors {
		switch c.Type {
		case "ldap":
			l := c.LDAP
			lc := ldap.Config{
				ConnectorID:          c.ID,
				URLs:                 l.URLs,
				StartTLS:             l.StartTLS,
				InsecureNoTLS:        l.InsecureNoTLS,
				ServerName:           l.ServerName,
				BindDN:               l.BindDN,
				BindPassword:         l.BindPassword.Reveal(),
				BaseDN:               l.BaseDN,
				UserFilter:           l.UserFilter,
				IDAttribute:          l.Attributes.ID,
				UsernameAttribute:    l.Attributes.Username,
				EmailAttribute:       l.Attributes.Email,
				GivenNameAttribute:   l.Attributes.GivenName,
				FamilyNameAttribute:  l.Attributes.FamilyName,
				DisplayNameAttribute: l.Attributes.DisplayName,
				NationalIDAttribute:  l.Attributes.NationalID,
				MemberOfAttribute:    l.Attributes.MemberOf,
				GroupBaseDN:          l.GroupBaseDN,
				NestedGroups:         l.NestedGroups,
				GroupNameAttribute:   l.Attributes.GroupName,
				Timeout:              l.Timeout,
				PoolSize:             l.PoolSize,
				Now:                  o.Clock,
			}
			if l.CAFile != "" {
				pool, err := loadCAs(resolve(o.BaseDir, l.CAFile))
				if err != nil {
					return nil, fmt.Errorf("connector %s: ca_file: %w", c.ID, err)
				}
				lc.RootCAs = pool
			}
			conn, err := ldap.Open(lc, o.Logger.With("connector", c.ID))
			if err != nil {
				return nil, fmt.Errorf("connector %s: %w", c.ID, err)
			}
			out = append(out, flow.PasswordSource{ID: c.ID, Name: c.Name, Connector: conn})
		case "static":
			people := make([]static.Person, 0, len(c.Static.People))
			for _, p := range c.Static.People {
				people = append(people, static.Person{
					Username: p.Username, PasswordHash: p.PasswordHash, GivenName: p.GivenName,
					FamilyName: p.FamilyName, DisplayName: p.DisplayName, Email: p.Email,
					NationalID: p.NationalID, Groups: p.Groups,
				})
			}
			conn, err := static.New(c.ID, people)
			if err != nil {
				return nil, fmt.Errorf("connector %s: %w", c.ID, err)
			}
			out = append(out, flow.PasswordSource{ID: c.ID, Name: c.Name, Connector: conn})
		case "psc", "cps":
			// Not password connectors: openUpstreams builds them.
		default:
			return nil, fmt.Errorf("connector %s: unknown type %q", c.ID, c.Type)
		}
	}
	return out, nil
}

// purgeExpired deletes expired refresh tokens every hour. Each replica runs
// it; the delete is idempotent.
func (a *App) purgeExpired(ctx context.Context, clock func() time.Time) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := a.Durable.DeleteExpiredRefreshTokens(ctx, clock())
		if err != nil && ctx.Err() == nil {
			a.logger.Warn("purging expired refresh tokens failed", "err", err)
		} else if n > 0 {
			a.logger.Info("purged expired refresh tokens", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reloadMetadata rereads the FIDO metadata file every hour, so a blob the
// operator copied in takes effect without a restart. A file that fails to
// load leaves the previous one in use.
func (a *App) reloadMetadata(ctx context.Context, pk interface{ ReloadMetadata() error }) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := pk.ReloadMetadata(); err != nil {
				a.logger.Warn("reloading the FIDO metadata file failed; keeping the previous one", "err", err)
			}
		}
	}
}

// PolicyFingerprint is the SHA-256 of the access rules the configuration
// compiles to, in a stable encoding.
func PolicyFingerprint(cfg *config.Config) string {
	b, err := json.Marshal(cfg.PolicyConfig())
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
