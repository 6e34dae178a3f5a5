package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A real argon2id hash (of "admin-demo"), reused by the test configurations.
const testHash = "$argon2id$v=19$m=65536,t=1,p=2$Y1qkfVwiPZcvzXENyvsBAw$7EjRWBXtLIXi7kxZM4rS+tITsPFKNYgQr2zgAO1quFY"

// Distinctive secret values: none may ever appear in an error or a dump.
const (
	secretBind   = "Bind-P4ssw0rd-do-not-print"
	secretPG     = "PgP4ss-do-not-print"
	secretRedis  = "Redis-P4ss-do-not-print"
	secretClient = "dpi-0123456789abcdefghijklmnopqrstuv-do-not-print" // ≥ 32 characters
	secretShort  = "short-do-not-print"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func testEnv() func(string) (string, bool) {
	return envMap(map[string]string{
		"GARDE_MASTER_KEY": "master-key-value-do-not-print",
		"APP_SECRET":       secretClient,
	})
}

func TestDemo(t *testing.T) {
	cfg, err := Parse(DemoFile, DemoYAML(), nil)
	if err != nil {
		t.Fatalf("demo.yaml: %v", err)
	}
	if got := Demo(); got.Issuer != cfg.Issuer {
		t.Fatalf("Demo().Issuer = %q", got.Issuer)
	}
	if !cfg.IsLoopbackDemo() {
		t.Error("demo is not a loopback demo")
	}
	if cfg.Issuer != "http://localhost:5556" || cfg.Listen.Address != "127.0.0.1:5556" || cfg.Listen.MetricsAddress != "127.0.0.1:9464" {
		t.Errorf("demo listen: %q %+v", cfg.Issuer, cfg.Listen)
	}
	if cfg.Storage.Durable.SQLitePath != "garde-demo.db" || cfg.Storage.Ephemeral.Driver != "memory" {
		t.Errorf("demo storage: %+v", cfg.Storage)
	}
	if mk := cfg.MasterKey; mk.File != "garde-demo.key" || !mk.GenerateIfMissing || mk.Env != "" {
		t.Errorf("demo master key: %+v", mk)
	}
	if len(cfg.Connectors) != 1 || cfg.Connectors[0].Static == nil || len(cfg.Connectors[0].Static.People) != 3 {
		t.Fatalf("demo connectors: %+v", cfg.Connectors)
	}
	martin := cfg.Connectors[0].Static.People[0]
	if martin.Username != "dr.martin" || martin.NationalID != "810001234567" || !slices.Equal(martin.Groups, []string{"medecins", "urgences"}) {
		t.Errorf("dr.martin: %+v", martin)
	}
	if len(cfg.Clients) != 2 {
		t.Fatalf("demo clients: %+v", cfg.Clients)
	}
	app, spa := cfg.Clients[0], cfg.Clients[1]
	if app.Secret.Reveal() != "demo-secret" || app.TokenEndpointAuthMethod != "client_secret_basic" || !slices.Contains(app.GrantTypes, "client_credentials") {
		t.Errorf("demo-app: %+v", app)
	}
	if !spa.Public || spa.TokenEndpointAuthMethod != "none" || spa.IDTokenSignedResponseAlg != "ES256" || spa.Secret.IsSet() {
		t.Errorf("demo-spa: %+v", spa)
	}
	// The short demo secret and the password-only console are warnings,
	// accepted only because the demo runs on loopback.
	if len(cfg.Warnings) != 2 || !strings.Contains(cfg.Warnings[0], "clients[0].secret: is shorter than 32 characters") ||
		!strings.Contains(cfg.Warnings[1], "admin.min_level: low opens the console with a password alone") {
		t.Errorf("demo warnings: %q", cfg.Warnings)
	}
	if !cfg.Admin.Enabled() || len(cfg.Policies.Applications) != 1 || cfg.Policies.Applications[0].ID != "demo-spa" {
		t.Errorf("demo policies and console: %+v %+v", cfg.Admin, cfg.Policies)
	}
}

const hospitalYAML = `# Centre hospitalier : production
issuer: https://sso.chu-exemple.fr
listen:
  address: ":8443"
  tls:
    cert_file: ${TLS_DIR}/cert.pem
    key_file: ${TLS_DIR}/key.pem
  trusted_proxies: [10.0.0.0/8, 192.0.2.10, "2001:db8::/32"]
log: {level: info, format: json}
master_key: {env: GARDE_MASTER_KEY}
storage:
  durable:
    driver: postgres
    postgres_dsn: postgres://garde:${PG_PASSWORD}@db.chu-exemple.local/garde?sslmode=verify-full
  ephemeral:
    driver: redis
    redis:
      addrs: [redis1.chu-exemple.local:6379]
      password: ${REDIS_PASSWORD}
      tls: true
      ca_file: ${TLS_DIR}/ca.pem
keys:
  algorithms: [RS256]
tokens:
  access_token_lifetime: 5m
sessions:
  idle_timeout: 20m
throttle:
  account_failures: 3
connectors:
  - id: ad
    type: ldap
    name: "Active Directory"
    ldap:
      urls: [ldaps://dc1.chu-exemple.local, ldaps://dc2.chu-exemple.local]
      ca_file: ${TLS_DIR}/ca.pem
      bind_dn: "CN=garde-svc,OU=Service,DC=chu-exemple,DC=local"
      bind_password: ${AD_BIND_PASSWORD}
      base_dn: "DC=chu-exemple,DC=local"
      nested_groups: in_chain
      attributes:
        national_id: extensionAttribute1
  - id: secours
    type: static
    name: "Comptes de secours"
    static:
      people:
        - username: secours1
          password_hash: "` + testHash + `"
          display_name: "Compte de secours 1"
          groups: [garde-admins]
clients:
  - id: dossier-patient
    name: "Dossier patient informatisé"
    secret: ${DPI_SECRET}
    redirect_uris: [https://dpi.chu-exemple.fr/oidc/callback]
    post_logout_redirect_uris: [https://dpi.chu-exemple.fr/]
    audience: [https://dpi.chu-exemple.fr/api]
  - id: labo
    secret_sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
    token_endpoint_auth_method: client_secret_post
    grant_types: [client_credentials]
    scopes: [labo.read]
    access_token_lifetime: 2m
`

func hospitalEnv(t *testing.T) func(string) (string, bool) {
	dir := t.TempDir()
	for _, f := range []string{"cert.pem", "key.pem", "ca.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return envMap(map[string]string{
		"TLS_DIR":          dir,
		"GARDE_MASTER_KEY": "master-key-value-do-not-print",
		"PG_PASSWORD":      secretPG,
		"REDIS_PASSWORD":   secretRedis,
		"AD_BIND_PASSWORD": secretBind,
		"DPI_SECRET":       secretClient,
	})
}

func TestHospital(t *testing.T) {
	env := hospitalEnv(t)
	dir, _ := env("TLS_DIR")
	yml := hospitalYAML
	cfg, err := Parse("garde.yaml", []byte(yml), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %q", cfg.Warnings)
	}
	if cfg.IsLoopbackDemo() {
		t.Error("hospital config is not a loopback demo")
	}

	// Values from the file and the environment.
	if cfg.Listen.Address != ":8443" || cfg.Listen.TLS == nil || cfg.Listen.TLS.CertFile != dir+"/cert.pem" {
		t.Errorf("listen: %+v %+v", cfg.Listen, cfg.Listen.TLS)
	}
	wantProxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::/32")}
	if !slices.Equal(cfg.Listen.TrustedProxies, wantProxies) {
		t.Errorf("trusted proxies: %v", cfg.Listen.TrustedProxies)
	}
	if got := cfg.Storage.Durable.PostgresDSN.Reveal(); got != "postgres://garde:"+secretPG+"@db.chu-exemple.local/garde?sslmode=verify-full" {
		t.Errorf("postgres dsn not expanded as expected")
	}
	if cfg.Storage.Durable.SQLitePath != "" {
		t.Errorf("sqlite path defaulted with postgres: %q", cfg.Storage.Durable.SQLitePath)
	}
	r := cfg.Storage.Ephemeral.Redis
	if r == nil || r.Password.Reveal() != secretRedis || !r.TLS || r.KeyPrefix != "garde:" {
		t.Errorf("redis: %+v", r)
	}

	// Defaults.
	checks := []struct {
		name      string
		got, want any
	}{
		{"metrics address", cfg.Listen.MetricsAddress, "127.0.0.1:9464"},
		{"log", cfg.Log, Log{Level: "info", Format: "json"}},
		{"rotation", cfg.Keys.RotationPeriod, 720 * time.Hour},
		{"tokens", cfg.Tokens, Tokens{AccessTokenLifetime: 5 * time.Minute, IDTokenLifetime: 10 * time.Minute, RefreshTokenLifetime: 24 * time.Hour, AuthorizationCodeLifetime: time.Minute}},
		{"sessions", cfg.Sessions, Sessions{Lifetime: 4 * time.Hour, IdleTimeout: 20 * time.Minute}},
		{"throttle", cfg.Throttle, Throttle{AccountFailures: 3, AddressFailures: 50, Window: 15 * time.Minute}},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	ad := cfg.Connectors[0]
	l := ad.LDAP
	if ad.Type != "ldap" || l == nil {
		t.Fatalf("connector ad: %+v", ad)
	}
	if l.BindPassword.Reveal() != secretBind || l.UserFilter != DefaultLDAPUserFilter || l.Timeout != 5*time.Second || l.PoolSize != 8 || l.NestedGroups != "in_chain" {
		t.Errorf("ldap: %+v", l)
	}
	wantAttrs := LDAPAttributes{ID: "objectGUID", Username: "sAMAccountName", Email: "mail", GivenName: "givenName", FamilyName: "sn", DisplayName: "displayName", NationalID: "extensionAttribute1", MemberOf: "memberOf", GroupName: "cn"}
	if l.Attributes != wantAttrs {
		t.Errorf("attributes: %+v", l.Attributes)
	}
	if s := cfg.Connectors[1]; s.Name != "Comptes de secours" || s.Static == nil || s.Static.People[0].PasswordHash != testHash {
		t.Errorf("static: %+v", s)
	}

	dpi, labo := cfg.Clients[0], cfg.Clients[1]
	if dpi.TokenEndpointAuthMethod != "client_secret_basic" || dpi.Public || dpi.IDTokenSignedResponseAlg != "RS256" ||
		!slices.Equal(dpi.GrantTypes, DefaultGrantTypes()) || !slices.Equal(dpi.Scopes, DefaultScopes()) || dpi.AccessTokenLifetime != 0 {
		t.Errorf("dossier-patient: %+v", dpi)
	}
	if labo.Name != "labo" || labo.TokenEndpointAuthMethod != "client_secret_post" || labo.AccessTokenLifetime != 2*time.Minute || !slices.Equal(labo.Scopes, []string{"labo.read"}) {
		t.Errorf("labo: %+v", labo)
	}

	// No secret in any rendering of the configuration.
	assertNoSecrets(t, "%v", fmt.Sprintf("%v", cfg))
	assertNoSecrets(t, "%+v", fmt.Sprintf("%+v", cfg))
	assertNoSecrets(t, "%#v", fmt.Sprintf("%#v", *cfg))
	assertNoSecrets(t, "%v of ldap", fmt.Sprintf("%v %+v %#v %s %q %x %d", *l, *l, *l, l.BindPassword, l.BindPassword, l.BindPassword, l.BindPassword))
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "ldap", l, "pw", l.BindPassword, "redis", r)
	assertNoSecrets(t, "slog", logged.String())
}

func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{secretBind, secretPG, secretRedis, secretClient, secretShort, "master-key-value-do-not-print"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s contains a secret value:\n%s", what, s)
		}
	}
}

// base is a minimal valid configuration of 8 lines; cases append to it
// from line 9.
var base = `issuer: https://sso.example.fr
connectors:
  - id: bg
    type: static
    static:
      people:
        - username: urgence
          password_hash: "` + testHash + `"
`

func TestBaseIsValid(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(base), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MasterKey.Env != "GARDE_MASTER_KEY" || cfg.Storage.Durable.SQLitePath != "garde.db" || cfg.Listen.Address != "127.0.0.1:5556" {
		t.Errorf("defaults: %+v %+v %+v", cfg.MasterKey, cfg.Storage, cfg.Listen)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // substrings of the error, each with file:line:col and key path
	}{
		{"unknown key with suggestion", base + "listen:\n  adress: \":5556\"\n",
			[]string{`test.yaml:10:3: listen.adress: unknown key "adress"; did you mean "address"?`}},
		{"unknown top-level key lists keys", base + "colour: blue\n",
			[]string{`test.yaml:9:1: colour: unknown key "colour"; expected one of issuer, listen,`}},
		{"wrong type: string for a list", base + "clients:\n  - id: app\n    secret: ${APP_SECRET}\n    redirect_uris: https://app.example.fr/cb\n",
			[]string{`test.yaml:12:20: clients[0].redirect_uris: expected a list, got the string "https://app.example.fr/cb" (write [https://app.example.fr/cb] for a list of one)`}},
		{"wrong type: list for a string", base + "log:\n  level: [debug]\n",
			[]string{`test.yaml:10:10: log.level: expected a string, got a list`}},
		{"wrong type: not a number", base + "throttle:\n  account_failures: five\n",
			[]string{`test.yaml:10:21: throttle.account_failures: "five" is not a whole number`}},
		{"bad duration", base + "sessions:\n  lifetime: 10 minutes\n",
			[]string{`test.yaml:10:13: sessions.lifetime: "10 minutes" is not a duration; expected a Go duration such as "90s", "10m" or "720h"`}},
		{"duration without unit", base + "sessions:\n  lifetime: 3600\n",
			[]string{`test.yaml:10:13: sessions.lifetime: 3600 has no unit; expected a Go duration`}},
		{"days are not a unit", base + "tokens:\n  refresh_token_lifetime: 30d\n",
			[]string{`test.yaml:10:27: tokens.refresh_token_lifetime: "30d" is not a duration; expected a Go duration such as "90s", "10m" or "720h" (days are not a unit: write 720h for 30 days)`}},
		{"webauthn rp_id not a parent of the issuer", base + "webauthn:\n  rp_id: evil.example\n",
			[]string{`test.yaml:10:10: webauthn.rp_id: "evil.example" is not the issuer's host "sso.example.fr" nor a parent domain of it`}},
		{"webauthn rp_id is an IP", base + "webauthn:\n  rp_id: 10.0.0.1\n",
			[]string{`test.yaml:10:10: webauthn.rp_id: "10.0.0.1" is an IP address`}},
		{"psc delegation without tenant", base + "clients:\n  - id: psc\n    secret: ${APP_SECRET}\n    redirect_uris: [https://wallet.esw.esante.gouv.fr/cb]\n    psc_delegation: {amr_values: [sc, otp2], max_age: 8h}\n",
			[]string{`clients[0].psc_delegation.tenant_id: is required`,
				`clients[0].psc_delegation.amr_values[1]: "otp2" is not an amr value Garde emits`,
				`clients[0].psc_delegation.max_age: 8h is out of range; expected a duration above 0 and at most 4h`}},
		{"alerts webhook over plain http", base + "alerts:\n  webhook_url: http://alertes.hopital.fr/garde\n  webhook_secret: short\n",
			[]string{`test.yaml:10:16: alerts.webhook_url: "http://alertes.hopital.fr/garde" is plain http; expected https`,
				`alerts.webhook_secret: is too short; expected at least 32 characters`}},
		{"linking bad no_match", base + "linking:\n  no_match: allow\n",
			[]string{`test.yaml:10:13: linking.no_match: "allow" is not a no-match behaviour; expected one of deny, external, password`}},
		{"webauthn bad mode", base + "webauthn:\n  second_factor: always\n",
			[]string{`test.yaml:10:18: webauthn.second_factor: "always" is not a second-factor mode; expected one of off, optional, required`}},
		{"webauthn bad aaguid", base + "webauthn:\n  aaguid_deny: [not-a-uuid]\n",
			[]string{`webauthn.aaguid_deny[0]: "not-a-uuid" is not an AAGUID`}},
		{"webauthn origin with path", base + "webauthn:\n  origins: [https://sso.example.fr/login]\n",
			[]string{`webauthn.origins[0]: "https://sso.example.fr/login" is not an origin`}},
		{"webauthn grace date", base + "webauthn:\n  enrollment:\n    grace_until: next week\n",
			[]string{`test.yaml:11:18: webauthn.enrollment.grace_until: "next week" is not a date; expected RFC 3339`}},
		{"webauthn metadata without root", base + "webauthn:\n  require_metadata: true\n",
			[]string{`webauthn.require_metadata: is true but no metadata_file is set`}},
		{"missing issuer", strings.TrimPrefix(base, "issuer: https://sso.example.fr\n"),
			[]string{`test.yaml:1:1: issuer: is required; expected the https URL`}},
		{"http issuer on a public host", strings.Replace(base, "https://sso.example.fr", "http://sso.example.fr", 1),
			[]string{`test.yaml:1:9: issuer: "http://sso.example.fr" is not allowed: the issuer must use https (http only for localhost, 127.0.0.1 or [::1])`}},
		{"issuer with trailing slash", strings.Replace(base, "https://sso.example.fr", "https://sso.example.fr/", 1),
			[]string{`test.yaml:1:9: issuer: "https://sso.example.fr/" must not end with /; expected e.g. "https://sso.example.fr"`}},
		{"missing connectors", "issuer: https://sso.example.fr\n",
			[]string{`test.yaml:1:1: connectors: is required; expected at least one connector`}},
		{"duplicate client id", base + `clients:
  - id: app
    secret: ${APP_SECRET}
    redirect_uris: [https://app.example.fr/cb]
  - id: app
    secret: ${APP_SECRET}
    redirect_uris: [https://app.example.fr/cb]
`, []string{`test.yaml:13:9: clients[1].id: "app" is already the id of clients[0]; expected unique client ids`}},
		{"redirect URI with fragment", base + "clients:\n  - id: app\n    secret: ${APP_SECRET}\n    redirect_uris: [https://app.example.fr/cb#x]\n",
			[]string{`test.yaml:12:21: clients[0].redirect_uris[0]: "https://app.example.fr/cb#x" is not allowed: redirect URIs must not contain a fragment`}},
		{"redirect URI with wildcard", base + "clients:\n  - id: app\n    secret: ${APP_SECRET}\n    redirect_uris:\n      - https://*.example.fr/cb\n",
			[]string{`test.yaml:13:9: clients[0].redirect_uris[0]: "https://*.example.fr/cb" is not allowed: redirect URIs are matched exactly; wildcards are not supported`}},
		{"http redirect URI on a public host", base + "clients:\n  - id: app\n    secret: ${APP_SECRET}\n    redirect_uris: [https://app.example.fr/ok, \"http://app.example/cb\"]\n",
			[]string{`test.yaml:12:48: clients[0].redirect_uris[1]: "http://app.example/cb" is not allowed: redirect URIs must use https (http only for localhost)`}},
		{"http post-logout URI on a public host", base + "clients:\n  - id: app\n    secret: ${APP_SECRET}\n    redirect_uris: [https://app.example.fr/cb]\n    post_logout_redirect_uris: [http://app.example/]\n",
			[]string{`test.yaml:13:33: clients[0].post_logout_redirect_uris[0]: "http://app.example/" is not allowed: post-logout redirect URIs must use https`}},
		{"implicit grant", base + "clients:\n  - id: app\n    secret: ${APP_SECRET}\n    redirect_uris: [https://app.example.fr/cb]\n    grant_types: [authorization_code, implicit]\n",
			[]string{`test.yaml:13:39: clients[0].grant_types[1]: Garde never offers the implicit grant`}},
		{"password grant", base + "clients:\n  - id: app\n    secret: ${APP_SECRET}\n    grant_types: [password]\n",
			[]string{`test.yaml:12:19: clients[0].grant_types[0]: Garde never offers the password grant`}},
		{"unknown grant with suggestion", base + "clients:\n  - id: app\n    secret: ${APP_SECRET}\n    redirect_uris: [https://app.example.fr/cb]\n    grant_types: [authorization_code, refresh_tokens]\n",
			[]string{`test.yaml:13:39: clients[0].grant_types[1]: "refresh_tokens" is not a grant type; expected one of authorization_code, refresh_token, client_credentials (did you mean "refresh_token"?)`}},
		{"short secret", base + "clients:\n  - id: app\n    secret: " + secretShort + "\n    redirect_uris: [https://app.example.fr/cb]\n",
			[]string{"test.yaml:11:13: clients[0].secret: is shorter than 32 characters: client secrets must be machine-generated with high entropy; expected e.g. the output of `openssl rand -base64 32`"}},
		{"both secret and secret_sha256", base + "clients:\n  - id: app\n    secret: ${APP_SECRET}\n    secret_sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\n    redirect_uris: [https://app.example.fr/cb]\n",
			[]string{`test.yaml:12:5: clients[0].secret_sha256: secret and secret_sha256 are both set; expected exactly one of them`}},
		{"confidential client without secret", base + "clients:\n  - id: app\n    redirect_uris: [https://app.example.fr/cb]\n",
			[]string{`test.yaml:10:5: clients[0].secret: is required for client_secret_basic; expected secret or secret_sha256`}},
		{"public client with secret", base + "clients:\n  - id: spa\n    public: true\n    secret: ${APP_SECRET}\n    redirect_uris: [https://app.example.fr/cb]\n",
			[]string{`test.yaml:12:5: clients[0].secret: is not used by a public client; expected no secret`}},
		{"id token alg not among keys", base + "keys: {algorithms: [RS256]}\nclients:\n  - id: app\n    secret: ${APP_SECRET}\n    redirect_uris: [https://app.example.fr/cb]\n    id_token_signed_response_alg: ES256\n",
			[]string{`test.yaml:14:35: clients[0].id_token_signed_response_alg: "ES256" is not among keys.algorithms [RS256]`}},
		{"keys without RS256", base + "keys:\n  algorithms: [ES256]\n",
			[]string{`test.yaml:10:15: keys.algorithms: must include RS256`}},
		{"lifetime too long", base + "tokens:\n  authorization_code_lifetime: 15m\n",
			[]string{`test.yaml:10:32: tokens.authorization_code_lifetime: 15m is too long; expected at most 10m`}},
		{"account failures above AD lockout", base + "throttle:\n  account_failures: 25\n",
			[]string{`test.yaml:10:21: throttle.account_failures: 25 is out of range; expected 1 to 20`}},
		{"ldap:// without start_tls or insecure_no_tls", base + ldapConnector("ldap://dc1.example.local", ""),
			[]string{`test.yaml:12:14: connectors[1].ldap.urls[0]: "ldap://dc1.example.local" would send passwords in clear; expected ldaps://, or start_tls: true`}},
		{"user_filter without {username}", base + ldapConnector("ldaps://dc1.example.local", "      user_filter: \"(sAMAccountName=jdoe)\"\n"),
			[]string{`test.yaml:16:20: connectors[1].ldap.user_filter: "(sAMAccountName=jdoe)" does not contain {username}`}},
		{"ldap block on a static connector", strings.Replace(base, "    static:\n", "    ldap: {urls: [ldaps://dc]}\n    static:\n", 1),
			[]string{`test.yaml:5:5: connectors[0].ldap: is only for type ldap; expected no ldap block with type static`}},
		{"bad password hash", strings.Replace(base, testHash, "$2y$10$abcdefghijklmnopqrstuv", 1),
			[]string{`test.yaml:8:26: connectors[0].static.people[0].password_hash: is not an argon2id hash (it must start with $argon2id$)`}},
		{"unset variable", base + "clients:\n  - id: app\n    secret: ${CLIENT_APP_SECRET}\n    redirect_uris: [https://app.example.fr/cb]\n",
			[]string{`test.yaml:11:13: clients[0].secret: environment variable CLIENT_APP_SECRET is not set`}},
		{"malformed variable", base + "listen:\n  address: ${LISTEN\n",
			[]string{`test.yaml:10:12: listen.address: unterminated ${ in value; expected ${NAME}, or $$ for a literal $`}},
		{"keys are not expanded", base + "${APP_SECRET}: x\n",
			[]string{`test.yaml:9:1: ${APP_SECRET}: unknown key "${APP_SECRET}"`}},
		{"duplicate key", base + "issuer: https://other.example.fr\n",
			[]string{`test.yaml:9:1: issuer: duplicate key "issuer"; it is already set at line 1`}},
		{"trust everyone", base + "listen:\n  trusted_proxies: [0.0.0.0/0]\n",
			[]string{`test.yaml:10:21: listen.trusted_proxies[0]: 0.0.0.0/0 trusts every address`}},
		{"second document", base + "---\nissuer: https://x.example.fr\n",
			[]string{`test.yaml:9:1: a second YAML document (---) is not allowed`}},
		{"syntax error", base + "listen: [a\n",
			[]string{`test.yaml:9: invalid YAML: did not find expected ',' or ']'`}},
		{"not a mapping", "- a\n- b\n",
			[]string{`test.yaml:1:1: expected a mapping, got a list`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("test.yaml", []byte(tc.yaml), testEnv())
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("config returned with an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain\n  %s\ngot:\n  %s", w, strings.ReplaceAll(err.Error(), "\n", "\n  "))
				}
			}
			var list Errors
			if !errors.As(err, &list) || len(list) != len(tc.want) {
				t.Errorf("want exactly %d problems, got:\n%v", len(tc.want), err)
			}
			var one *Error
			if !errors.As(err, &one) {
				t.Errorf("errors.As(*Error) failed")
			}
			assertNoSecrets(t, "error", err.Error())
		})
	}
}

func ldapConnector(url, extra string) string {
	return `  - id: ad
    type: ldap
    ldap:
      urls: [` + url + `]
      bind_dn: "CN=garde-svc,DC=example,DC=local"
      bind_password: ${APP_SECRET}
      base_dn: "DC=example,DC=local"
` + extra
}

// TestAllProblemsTogether checks that every problem is reported in one
// pass, in file order, and that decoding goes on after a type error.
func TestAllProblemsTogether(t *testing.T) {
	yml := `issuer: http://sso.example.fr
listen:
  adress: ":5556"
sessions:
  lifetime: 10 minutes
connectors: []
`
	_, err := Parse("all.yaml", []byte(yml), testEnv())
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		`all.yaml:1:9: issuer:`,
		`all.yaml:3:3: listen.adress:`,
		`all.yaml:5:13: sessions.lifetime:`,
		`all.yaml:6:13: connectors: is required`,
	}
	if len(list) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(list[i].Error(), w) {
			t.Errorf("problem %d = %q, want prefix %q", i, list[i].Error(), w)
		}
	}
}

func TestExpansion(t *testing.T) {
	env := envMap(map[string]string{
		"GARDE_MASTER_KEY": "k",
		"HOST":             "sso.example.fr",
		"POOL":             "12",
	})
	yml := `issuer: https://${HOST}
connectors:
  - id: ad
    type: ldap
    name: "Coût: $$5 et $autre"
    ldap:
      urls: ["ldaps://dc.example.local"]
      bind_dn: "CN=x,DC=example,DC=local"
      bind_password: "pa$$word"
      base_dn: "DC=example,DC=local"
      pool_size: ${POOL}
`
	cfg, err := Parse("x.yaml", []byte(yml), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "https://sso.example.fr" {
		t.Errorf("issuer = %q", cfg.Issuer)
	}
	if got := cfg.Connectors[0].Name; got != "Coût: $5 et $autre" {
		t.Errorf("name = %q", got)
	}
	if got := cfg.Connectors[0].LDAP.BindPassword.Reveal(); got != "pa$word" {
		t.Errorf("password = %q", got)
	}
	if got := cfg.Connectors[0].LDAP.PoolSize; got != 12 {
		t.Errorf("pool size = %d", got)
	}
}

// An expanded secret used where a number is expected must not be echoed.
func TestExpandedValueNotEchoed(t *testing.T) {
	env := envMap(map[string]string{"GARDE_MASTER_KEY": "k", "BIND": secretBind})
	yml := base + ldapConnector("ldaps://dc", "      pool_size: ${BIND}\n")
	_, err := Parse("x.yaml", []byte(yml), env)
	if err == nil || !strings.Contains(err.Error(), `connectors[1].ldap.pool_size: the value of "${BIND}" is not a whole number`) {
		t.Fatalf("err = %v", err)
	}
	assertNoSecrets(t, "error", err.Error())
}

func TestMergeKeys(t *testing.T) {
	yml := `issuer: https://sso.example.fr
connectors:
  - id: ad1
    type: ldap
    ldap: &ad
      urls: [ldaps://dc1.example.local]
      bind_dn: "CN=x,DC=example,DC=local"
      bind_password: ${APP_SECRET}
      base_dn: "DC=example,DC=local"
  - id: ad2
    type: ldap
    ldap:
      <<: *ad
      urls: [ldaps://dc2.example.local]
`
	cfg, err := Parse("x.yaml", []byte(yml), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Connectors[1].LDAP
	if l.URLs[0] != "ldaps://dc2.example.local" || l.BaseDN != "DC=example,DC=local" || l.BindPassword.Reveal() != secretClient {
		t.Errorf("merged ldap: %+v", l)
	}
}

func TestWarnings(t *testing.T) {
	yml := base + "sessions:\n  lifetime: 8h\n"
	cfg, err := Parse("w.yaml", []byte(yml), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	want := "w.yaml:10:13: sessions.lifetime: 8h is longer than the 4h after which the national rules ask people to authenticate again"
	if !slices.Contains(cfg.Warnings, want) {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}

// Secrets never appear in errors, even when the configuration is wrong in
// the places that hold them.
func TestSecretsNotInErrors(t *testing.T) {
	env := hospitalEnv(t)
	yml := strings.Replace(hospitalYAML, "issuer: https://sso.chu-exemple.fr", "issuer: http://sso.chu-exemple.fr", 1)
	yml = strings.Replace(yml, "secret: ${DPI_SECRET}", "secret: "+secretShort, 1)
	yml = strings.Replace(yml, "driver: postgres\n", "driver: sqlite\n", 1) // postgres_dsn now forbidden
	yml = strings.Replace(yml, "      password: ${REDIS_PASSWORD}", "      password: ["+secretRedis+"]", 1)
	yml = strings.Replace(yml, "bind_password: ${AD_BIND_PASSWORD}", "bind_password: ${AD_BIND_PASSWORD}\n      bind_pasword: "+secretBind, 1)
	_, err := Parse("garde.yaml", []byte(yml), env)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"clients[0].secret: is shorter", "storage.durable.postgres_dsn: is only for driver postgres", "storage.ephemeral.redis.password: expected a string, got a list", `unknown key "bind_pasword"; did you mean "bind_password"?`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
	assertNoSecrets(t, "error", err.Error())
}

func TestSecretFormatting(t *testing.T) {
	s := Secret("hunter2")
	for _, got := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %d", s, s, s, s, s, s, s), s.String(), s.GoString(), s.LogValue().String()} {
		if strings.Contains(got, "hunter2") {
			t.Errorf("secret printed: %q", got)
		}
	}
	if b, _ := s.MarshalText(); string(b) != "[redacted]" {
		t.Errorf("MarshalText = %q", b)
	}
	if s.Reveal() != "hunter2" {
		t.Error("Reveal")
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "garde.yaml")
	if err := os.WriteFile(path, DemoYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("issuer: ftp://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path+":1:9: issuer:") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestFilesMustExist(t *testing.T) {
	yml := base + "listen:\n  tls: {cert_file: /nonexistent/cert.pem, key_file: /nonexistent/key.pem}\n"
	_, err := Parse("f.yaml", []byte(yml), testEnv())
	if err == nil || !strings.Contains(err.Error(), `listen.tls.cert_file: file "/nonexistent/cert.pem" does not exist`) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(DemoYAML())
	f.Add([]byte(hospitalYAML))
	f.Add([]byte(base))
	f.Add([]byte(base + "listen:\n  adress: \":5556\"\n"))
	f.Add([]byte(base + "clients:\n  - id: app\n    secret: ${X}\n    redirect_uris: https://a/cb\n    grant_types: [implicit]\n"))
	f.Add([]byte("a: &a [*a, *a]\nissuer: *a\nconnectors: [{<<: *a}]\n"))
	f.Add([]byte("ldap: &l {<<: *l}\n"))
	f.Add([]byte(""))
	f.Add([]byte("---\n---\n"))
	env := envMap(map[string]string{"X": "x", "GARDE_MASTER_KEY": "k"})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, env)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg = %v, err = %v: want exactly one", cfg != nil, err)
		}
		if err != nil {
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty Errors: %v", err)
			}
		}
	})
}

func TestSyntaxErrorLines(t *testing.T) {
	cases := map[string]string{
		"a: b\nc: [d\n":          "s.yaml:2: invalid YAML: did not find expected ',' or ']'",
		"a: b\n  c: d\n":         "s.yaml:2: invalid YAML: mapping values are not allowed in this context",
		"a:\n  - b\n  c: d\n":    "s.yaml:2: invalid YAML: did not find expected '-' indicator",
		"a: b\nc\nd: e\n":        "s.yaml:2: invalid YAML: could not find expected ':'",
		"a: {b: c\nd: e\n":       "s.yaml:",
		"a: *nothing\n":          "s.yaml: invalid YAML: unknown anchor 'nothing' referenced",
		"\t- x\n":                "s.yaml: invalid YAML: found character that cannot start any token",
		"a: b\n---\nc: d\n---\n": "s.yaml:2:1: a second YAML document",
	}
	for in, want := range cases {
		_, err := Parse("s.yaml", []byte(in), nil)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: err = %v, want prefix %q", in, err, want)
		}
	}
}

// Aliases let a small file name a large node many times; decoding is
// bounded so that such a file fails quickly.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(base)
	b.WriteString("x-uris: &r [")
	for i := range 200 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "https://app.example.fr/%d", i)
	}
	b.WriteString("]\nx-client: &c {id: app, secret: \"${APP_SECRET}\", redirect_uris: *r}\nclients: [")
	for i := range 5000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("*c")
	}
	b.WriteString("]\n")
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()), testEnv())
	if err == nil || !strings.Contains(err.Error(), "too large or uses too many aliases") {
		t.Fatalf("err = %.300v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}
