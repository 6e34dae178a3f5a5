// Package config loads Garde's YAML configuration file.
//
// The package keeps three concerns apart, as Authelia does: the schema (the
// structs in this file describe what can be written, nothing more), the
// decoder (decode.go turns YAML nodes into those structs, expanding ${VAR}
// references and remembering where every value came from), and the
// validator (validate.go explains what is wrong and what was expected).
// Every problem is reported with the file, line and column it comes from
// and the dotted key path, and all problems are reported together so that an
// operator fixes a file in one pass rather than one restart per mistake.
//
// Secrets are typed Secret so that they cannot leak through fmt, slog, JSON
// or YAML encoding, and the validator never quotes a secret's value.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Config is the whole configuration file.
type Config struct {
	// Issuer is the OpenID Connect issuer identifier. Relying parties compare
	// it byte for byte, so it is never normalised.
	Issuer     string      `yaml:"issuer"`
	Listen     Listen      `yaml:"listen"`
	Log        Log         `yaml:"log"`
	MasterKey  MasterKey   `yaml:"master_key"`
	Storage    Storage     `yaml:"storage"`
	Keys       Keys        `yaml:"keys"`
	Tokens     Tokens      `yaml:"tokens"`
	Sessions   Sessions    `yaml:"sessions"`
	Throttle   Throttle    `yaml:"throttle"`
	WebAuthn   WebAuthn    `yaml:"webauthn"`
	Connectors []Connector `yaml:"connectors"`
	Clients    []Client    `yaml:"clients"`
	// Linking joins a person's identities across sources (schema_linking.go).
	Linking Linking `yaml:"linking"`
	// SAML makes Garde a SAML 2.0 identity provider (schema_saml.go).
	SAML SAML `yaml:"saml"`
	// Policies are per-application access rules (schema_policies.go).
	Policies Policies `yaml:"policies"`
	// Audit configures retention and SIEM export (schema_audit.go).
	Audit Audit `yaml:"audit"`
	// Alerts are where security alerts go at once (schema_alerts.go).
	Alerts Alerts `yaml:"alerts"`
	// Admin configures the admin console (schema_admin.go).
	Admin Admin `yaml:"admin"`

	// Warnings are problems that do not stop Garde from starting (for
	// example a session lifetime longer than the national 4h rule). Each is
	// formatted like an error: "FILE:LINE:COL: KEY.PATH: message".
	Warnings []string `yaml:"-"`
}

// Listen is the HTTP listener.
type Listen struct {
	// Address is host:port. Default "127.0.0.1:5556".
	Address string `yaml:"address"`
	// TLS, when set, makes Garde terminate TLS itself.
	TLS *TLSFiles `yaml:"tls"`
	// TrustedProxies are the peers whose X-Forwarded-For and
	// X-Forwarded-Proto headers are believed. A bare IP is a one-address
	// prefix.
	TrustedProxies []netip.Prefix `yaml:"trusted_proxies"`
	// MetricsAddress is a separate listener for /metrics. Default
	// "127.0.0.1:9464" when the key is absent; an explicit "" disables it.
	MetricsAddress string `yaml:"metrics_address"`
}

// TLSFiles are PEM files for a TLS listener; both or neither.
type TLSFiles struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// MasterKey says where the key that encrypts data at rest comes from:
// exactly one of Env and File. When the master_key block is absent, Env
// defaults to GARDE_MASTER_KEY.
type MasterKey struct {
	// Env is the name of an environment variable holding the key.
	Env string `yaml:"env"`
	// File is a path to a file holding the key.
	File string `yaml:"file"`
	// GenerateIfMissing creates File on first start. Only with File; meant
	// for the demo, since losing the file loses everything it protects.
	GenerateIfMissing bool `yaml:"generate_if_missing"`
}

// Storage selects the durable and ephemeral stores.
type Storage struct {
	Durable   DurableStorage   `yaml:"durable"`
	Ephemeral EphemeralStorage `yaml:"ephemeral"`
}

// DurableStorage holds clients' consents, keys, refresh tokens and audit.
type DurableStorage struct {
	// Driver is sqlite or postgres. Default sqlite.
	Driver string `yaml:"driver"`
	// SQLitePath is the database file for sqlite. Default "garde.db".
	SQLitePath string `yaml:"sqlite_path"`
	// PostgresDSN is the connection string for postgres. Secret: it usually
	// carries a password.
	PostgresDSN Secret `yaml:"postgres_dsn"`
}

// EphemeralStorage holds short-lived state: flows, codes, sessions,
// throttling counters.
type EphemeralStorage struct {
	// Driver is memory or redis. Default memory.
	Driver string `yaml:"driver"`
	// Redis is required when Driver is redis, forbidden otherwise.
	Redis *Redis `yaml:"redis"`
}

// Redis is a Redis server, or a Sentinel group when MasterName is set.
type Redis struct {
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	Password   Secret   `yaml:"password"`
	DB         int      `yaml:"db"`
	// KeyPrefix default "garde:".
	KeyPrefix string `yaml:"key_prefix"`
	TLS       bool   `yaml:"tls"`
	// CAFile is a PEM bundle; only with TLS.
	CAFile string `yaml:"ca_file"`
}

// Keys configures token signing keys.
type Keys struct {
	// Algorithms ⊆ {RS256, ES256}; must include RS256, which OpenID Connect
	// makes every relying party support. Default [RS256, ES256].
	Algorithms []string `yaml:"algorithms"`
	// RotationPeriod default 720h.
	RotationPeriod time.Duration `yaml:"rotation_period"`
}

// Tokens are default token lifetimes.
type Tokens struct {
	AccessTokenLifetime       time.Duration `yaml:"access_token_lifetime"`       // default 10m, ≤ 1h
	IDTokenLifetime           time.Duration `yaml:"id_token_lifetime"`           // default 10m, ≤ 1h
	RefreshTokenLifetime      time.Duration `yaml:"refresh_token_lifetime"`      // default 24h, ≤ 720h
	AuthorizationCodeLifetime time.Duration `yaml:"authorization_code_lifetime"` // default 1m, ≤ 10m
}

// Sessions are single-sign-on sessions at Garde.
type Sessions struct {
	// Lifetime default 4h. Longer is allowed but warned about: the national
	// rules ask for re-authentication at least every 4 hours.
	Lifetime time.Duration `yaml:"lifetime"`
	// IdleTimeout default 30m; at most Lifetime.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Throttle limits password guessing.
type Throttle struct {
	// AccountFailures is how many failed attempts on one account within
	// Window block further attempts on it. Default 5, between 1 and 20.
	// It must stay below the directory's own lockout threshold (Active
	// Directory's is commonly 10 to 50): otherwise anyone can lock a doctor
	// out of every hospital application by guessing at Garde's login page.
	AccountFailures int `yaml:"account_failures"`
	// AddressFailures is the same per client address. Default 50.
	AddressFailures int `yaml:"address_failures"`
	// Window default 15m.
	Window time.Duration `yaml:"window"`
}

// WebAuthn configures security keys and passkeys.
type WebAuthn struct {
	// Enabled turns WebAuthn on. Default true.
	Enabled bool `yaml:"enabled"`
	// RPID is the WebAuthn relying-party id. Default: the issuer's host. It
	// must be that host or a parent domain of it, never an IP address.
	RPID string `yaml:"rp_id"`
	// RPName is shown by the browser. Default "Garde".
	RPName string `yaml:"rp_name"`
	// Origins are the exact origins ceremonies may come from. Default: the
	// issuer's origin.
	Origins []string `yaml:"origins"`
	// SecondFactor is off, optional (asked after the password when the
	// person has a key) or required (every password sign-in needs a key;
	// people without one must enroll). Default optional.
	SecondFactor string `yaml:"second_factor"`
	// UserVerification for the second factor: discouraged, preferred or
	// required. Default preferred. Passwordless always requires it.
	UserVerification string `yaml:"user_verification"`
	// Attestation is none, indirect or direct. Default none.
	Attestation string `yaml:"attestation"`
	// AAGUIDAllow, when not empty, lists the only authenticator models
	// accepted; AAGUIDDeny lists refused ones. Canonical UUIDs.
	AAGUIDAllow []string `yaml:"aaguid_allow"`
	AAGUIDDeny  []string `yaml:"aaguid_deny"`
	// AllowSynced accepts backup-eligible (synced) passkeys. Default true.
	AllowSynced bool `yaml:"allow_synced"`
	// MetadataFile is a local FIDO MDS3 blob; MetadataRootFile the PEM
	// root it is signed under (the FIDO Alliance root in production).
	MetadataFile     string `yaml:"metadata_file"`
	MetadataRootFile string `yaml:"metadata_root_file"`
	// RequireMetadata refuses authenticators absent from the blob.
	RequireMetadata bool               `yaml:"require_metadata"`
	Enrollment      WebAuthnEnrollment `yaml:"enrollment"`
}

// WebAuthnEnrollment says when a person may register a key. A stolen AD
// password alone is never enough.
type WebAuthnEnrollment struct {
	// CodeLifetime is how long an admin-issued enrollment code is valid.
	// Default 72h.
	CodeLifetime time.Duration `yaml:"code_lifetime"`
	// StrongFactorWindow: enrollment is allowed this long after a strong
	// factor (an existing key, later a CPS card or Pro Santé Connect).
	// Default 10m.
	StrongFactorWindow time.Duration `yaml:"strong_factor_window"`
	// GraceUntil, an RFC 3339 date, lets people with no key yet enroll
	// after a password sign-in until then. Empty: no grace period.
	GraceUntil string `yaml:"grace_until"`
	// Grace is GraceUntil parsed.
	Grace time.Time `yaml:"-"`
}

// Connector is an identity source.
type Connector struct {
	// ID is unique, [a-z0-9-]+; it appears in stored subjects, so changing
	// it changes people's identities.
	ID string `yaml:"id"`
	// Type is ldap or static.
	Type string `yaml:"type"`
	// Name is the display name. Default ID.
	Name string `yaml:"name"`
	// LDAP is required iff Type is ldap.
	LDAP *LDAPConnector `yaml:"ldap"`
	// Static is required iff Type is static.
	Static *StaticConnector `yaml:"static"`
	// PSC is required iff Type is psc (schema_psc.go).
	PSC *PSCConnector `yaml:"psc"`
	// CPS is required iff Type is cps (schema_cps.go).
	CPS *CPSConnector `yaml:"cps"`
}

// LDAPConnector is an LDAP directory, typically Active Directory.
type LDAPConnector struct {
	// URLs are ldaps:// or ldap:// URLs, tried in order.
	URLs []string `yaml:"urls"`
	// StartTLS upgrades ldap:// connections.
	StartTLS bool `yaml:"start_tls"`
	// InsecureNoTLS must be set to use ldap:// without StartTLS, since
	// passwords then cross the network in clear.
	InsecureNoTLS bool   `yaml:"insecure_no_tls"`
	CAFile        string `yaml:"ca_file"`
	ServerName    string `yaml:"server_name"`
	BindDN        string `yaml:"bind_dn"`
	BindPassword  Secret `yaml:"bind_password"`
	BaseDN        string `yaml:"base_dn"`
	// UserFilter must contain {username}.
	UserFilter  string `yaml:"user_filter"`
	GroupBaseDN string `yaml:"group_base_dn"`
	// NestedGroups is auto, in_chain, recursive or off. Default auto.
	NestedGroups string         `yaml:"nested_groups"`
	Attributes   LDAPAttributes `yaml:"attributes"`
	// Timeout default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize default 8.
	PoolSize int `yaml:"pool_size"`
}

// LDAPAttributes name the directory attributes Garde reads.
type LDAPAttributes struct {
	ID          string `yaml:"id"`           // default objectGUID
	Username    string `yaml:"username"`     // default sAMAccountName
	Email       string `yaml:"email"`        // default mail
	GivenName   string `yaml:"given_name"`   // default givenName
	FamilyName  string `yaml:"family_name"`  // default sn
	DisplayName string `yaml:"display_name"` // default displayName
	NationalID  string `yaml:"national_id"`  // default "" (not read)
	MemberOf    string `yaml:"member_of"`    // default memberOf
	GroupName   string `yaml:"group_name"`   // default cn
}

// StaticConnector is a list of people written in the file: the demo, or
// break-glass accounts for when the directory is down.
type StaticConnector struct {
	People []StaticPerson `yaml:"people"`
}

// StaticPerson is one account of a static connector.
type StaticPerson struct {
	Username string `yaml:"username"`
	// PasswordHash is a PHC argon2id string.
	PasswordHash string   `yaml:"password_hash"`
	GivenName    string   `yaml:"given_name"`
	FamilyName   string   `yaml:"family_name"`
	DisplayName  string   `yaml:"display_name"`
	Email        string   `yaml:"email"`
	NationalID   string   `yaml:"national_id"`
	Groups       []string `yaml:"groups"`
}

// Client is an OpenID Connect relying party.
type Client struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"` // default ID
	// Public clients (browser or native apps) cannot keep a secret: they
	// use PKCE and token_endpoint_auth_method none.
	Public bool `yaml:"public"`
	// Secret is the client secret in clear; at least 32 characters.
	Secret Secret `yaml:"secret"`
	// SecretSHA256 is the hex SHA-256 of the client secret, for files that
	// should not hold the secret itself.
	SecretSHA256 string `yaml:"secret_sha256"`
	// TokenEndpointAuthMethod is client_secret_basic, client_secret_post,
	// private_key_jwt or none. Default none if Public, else
	// client_secret_basic.
	TokenEndpointAuthMethod string   `yaml:"token_endpoint_auth_method"`
	JWKSURI                 string   `yaml:"jwks_uri"`
	JWKSFile                string   `yaml:"jwks_file"`
	RedirectURIs            []string `yaml:"redirect_uris"`
	PostLogoutRedirectURIs  []string `yaml:"post_logout_redirect_uris"`
	// GrantTypes ⊆ {authorization_code, refresh_token, client_credentials}.
	// Default [authorization_code, refresh_token].
	GrantTypes []string `yaml:"grant_types"`
	// Scopes the client may ask for. Default [openid, profile, email,
	// groups, offline_access].
	Scopes   []string `yaml:"scopes"`
	Audience []string `yaml:"audience"`
	// IDTokenSignedResponseAlg is RS256 or ES256, among Keys.Algorithms.
	// Default RS256.
	IDTokenSignedResponseAlg string `yaml:"id_token_signed_response_alg"`
	// AccessTokenLifetime overrides Tokens.AccessTokenLifetime when not 0.
	AccessTokenLifetime time.Duration `yaml:"access_token_lifetime"`
	// PSCDelegation marks the client through which Pro Santé Connect
	// delegates authentication to Garde (HospiConnect, "PSC sans couture").
	PSCDelegation *PSCDelegation `yaml:"psc_delegation"`
}

// PSCDelegation configures Garde as the identity provider PSC delegates
// to: ID tokens carry tid, oid, amr and auth_time; only phishing-resistant
// methods (security key, passkey, CPS card) satisfy the client, and people
// re-authenticate at least every MaxAge.
type PSCDelegation struct {
	// TenantID is the `tid` claim: the establishment id ANS whitelists
	// (e.g. the FINESS EJ). Required.
	TenantID string `yaml:"tenant_id"`
	// AMRValues are the amr values released to PSC; others are dropped.
	// Default [sc, pin, mfa, hwk, swk, user].
	AMRValues []string `yaml:"amr_values"`
	// MaxAge is the longest time since authentication accepted. Default
	// and maximum 4h (ANS: "La période de temps maximum pour PSC est de 4
	// heures").
	MaxAge time.Duration `yaml:"max_age"`
}

// Secret is a configuration value that must never be printed: passwords,
// client secrets, connection strings. Every way of formatting or encoding
// it yields "[redacted]"; use Reveal to get the value.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret value. Call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether a value was given.
func (s Secret) IsSet() bool { return s != "" }

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer (%#v).
func (Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that no verb (%x, %d, %q...) prints
// the value.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML).
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
