package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// validator checks a decoded, defaulted Config. It explains each problem
// with what was expected; it never quotes a Secret.
type validator struct {
	*report
	cfg  *Config
	env  func(string) (string, bool)
	stat func(string) (fs.FileInfo, error)
}

func (v *validator) validate() {
	c := v.cfg
	v.issuer()
	v.listen()
	v.enum("log.level", c.Log.Level, "log level", "debug", "info", "warn", "error")
	v.enum("log.format", c.Log.Format, "log format", "text", "json")
	v.masterKey()
	v.storage()
	v.keys()
	v.tokens()
	v.sessions()
	v.throttle()
	v.webauthn()
	v.connectors()
	v.clients()
	v.linking()
	v.saml()
	v.policies()
	v.audit()
	v.alerts()
	v.admin()
}

// ---- helpers

// enum checks that value is one of allowed; what names the kind of value.
func (v *validator) enum(path, value, what string, allowed ...string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	if value == "" {
		v.errorf(path, "is required; expected one of %s", strings.Join(allowed, ", "))
		return false
	}
	msg := fmt.Sprintf("%q is not a %s; expected one of %s", value, what, strings.Join(allowed, ", "))
	if s := suggest(value, allowed); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	v.errorf(path, "%s", msg)
	return false
}

// fmtDuration prints 1h rather than 1h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// duration checks 0 < d ≤ maximum (maximum 0: no upper bound).
func (v *validator) duration(path string, d, maximum time.Duration) {
	switch {
	case d <= 0:
		v.errorf(path, "%s is not allowed; expected a positive duration", fmtDuration(d))
	case maximum > 0 && d > maximum:
		v.errorf(path, "%s is too long; expected at most %s", fmtDuration(d), fmtDuration(maximum))
	}
}

// file checks that a file named in the configuration exists and is a file.
func (v *validator) file(path, name string) {
	if v.stat == nil || name == "" {
		return
	}
	fi, err := v.stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.errorf(path, "file %q does not exist; expected an existing, readable file", name)
	case err != nil:
		v.errorf(path, "file %q cannot be read: %v", name, unwrapPathError(err))
	case fi.IsDir():
		v.errorf(path, "%q is a directory; expected a file", name)
	}
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hostPort checks a listen or dial address "host:port".
func (v *validator) hostPort(path, addr string, needHost bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(path, "%q is not host:port; expected e.g. 127.0.0.1:5556 or :443", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.errorf(path, "%q has an invalid port; expected a number from 1 to 65535", addr)
		return
	}
	if needHost && host == "" {
		v.errorf(path, "%q has no host; expected host:port", addr)
	}
}

// duplicates reports repeated values of a list.
func (v *validator) duplicates(path string, list []string, what string) {
	seen := map[string]int{}
	for i, s := range list {
		if j, dup := seen[s]; dup {
			v.errorf(index(path, i), "%q is listed twice (also %s); expected each %s once", s, index(path, j), what)
			continue
		}
		seen[s] = i
	}
}

// ---- top level

func (v *validator) issuer() {
	iss := v.cfg.Issuer
	if iss == "" {
		v.errorf("issuer", "is required; expected the https URL browsers use to reach Garde, e.g. https://sso.hopital.fr")
		return
	}
	u, err := url.Parse(iss)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		v.errorf("issuer", "%q is not an absolute URL; expected e.g. https://sso.hopital.fr", iss)
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		v.errorf("issuer", "%q is not allowed: the issuer must use https (http only for localhost, 127.0.0.1 or [::1])", iss)
	case u.Scheme != "https" && u.Scheme != "http":
		v.errorf("issuer", "%q is not allowed: the issuer must use https", iss)
	case u.User != nil:
		v.errorf("issuer", "%q must not contain user information; expected https://host[/path]", iss)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(iss, "#"):
		v.errorf("issuer", "%q must not have a query or fragment (OpenID Connect Discovery §3); expected https://host[/path]", iss)
	case strings.HasSuffix(iss, "/"):
		// Relying parties compare the iss claim byte for byte with the
		// issuer they were configured with; Garde does not normalise it,
		// so a trailing slash would break every relying party that omits
		// it (and discovery would be fetched from "//.well-known").
		v.errorf("issuer", "%q must not end with /; expected e.g. %q", iss, strings.TrimRight(iss, "/"))
	}
}

func (v *validator) listen() {
	l := &v.cfg.Listen
	v.hostPort("listen.address", l.Address, false)
	if t := l.TLS; t != nil {
		switch {
		case t.CertFile == "" && t.KeyFile == "":
			v.errorf("listen.tls", "cert_file and key_file are required when tls is given; expected both, or no tls block")
		case t.CertFile == "":
			v.errorf("listen.tls.cert_file", "is missing; expected both cert_file and key_file, or neither")
		case t.KeyFile == "":
			v.errorf("listen.tls.key_file", "is missing; expected both cert_file and key_file, or neither")
		}
		v.file("listen.tls.cert_file", t.CertFile)
		v.file("listen.tls.key_file", t.KeyFile)
	}
	for i, p := range l.TrustedProxies {
		path := index("listen.trusted_proxies", i)
		switch {
		case p.Bits() == 0:
			// Trusting every peer lets anyone forge X-Forwarded-For and
			// escape per-address throttling, or claim https.
			v.errorf(path, "%s trusts every address, so anyone could forge X-Forwarded-For; expected the reverse proxies' addresses", p)
		case p != p.Masked():
			v.errorf(path, "%s has host bits set; expected %s", p, p.Masked())
		}
	}
	if l.MetricsAddress != "" {
		v.hostPort("listen.metrics_address", l.MetricsAddress, false)
		if l.MetricsAddress == l.Address {
			v.errorf("listen.metrics_address", "%q is also listen.address; expected a separate address (or \"\" to disable metrics)", l.MetricsAddress)
		}
	}
	if strings.HasPrefix(v.cfg.Issuer, "https://") && l.TLS == nil && len(l.TrustedProxies) == 0 {
		v.warnf("listen", "the issuer is https but neither listen.tls nor listen.trusted_proxies is set: Garde serves plain http and trusts no proxy's X-Forwarded-Proto")
	}
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (v *validator) masterKey() {
	m := &v.cfg.MasterKey
	switch {
	case m.Env != "" && m.File != "":
		v.keyErrorf("master_key.file", "env and file are both set; expected exactly one of them")
	case m.Env == "" && m.File == "":
		if v.bad["master_key.env"] || v.bad["master_key.file"] {
			return
		}
		v.errorf("master_key", "neither env nor file is set; expected exactly one of them")
	case m.Env != "":
		if !envNameRE.MatchString(m.Env) {
			v.errorf("master_key.env", "%q is not an environment variable name; expected e.g. GARDE_MASTER_KEY", m.Env)
		} else if _, ok := v.lookup(m.Env); !ok {
			v.errorf("master_key.env", "environment variable %s is not set; expected it to hold the master key", m.Env)
		}
		if m.GenerateIfMissing {
			v.errorf("master_key.generate_if_missing", "is only allowed with file; expected false with env")
		}
	case !m.GenerateIfMissing:
		v.file("master_key.file", m.File)
	}
}

func (v *validator) lookup(name string) (string, bool) {
	if v.env == nil {
		return "", false
	}
	return v.env(name)
}

func (v *validator) storage() {
	d := &v.cfg.Storage.Durable
	if v.enum("storage.durable.driver", d.Driver, "durable storage driver", "sqlite", "postgres") {
		switch d.Driver {
		case "sqlite":
			if d.SQLitePath == "" {
				v.errorf("storage.durable.sqlite_path", "is required with driver sqlite; expected a file path such as garde.db")
			}
			if d.PostgresDSN.IsSet() {
				v.keyErrorf("storage.durable.postgres_dsn", "is only for driver postgres; expected no postgres_dsn with driver sqlite")
			}
		case "postgres":
			if !d.PostgresDSN.IsSet() {
				v.errorf("storage.durable.postgres_dsn", "is required with driver postgres; expected a connection string (use ${VAR} to keep the password out of the file)")
			}
			if d.SQLitePath != "" {
				v.keyErrorf("storage.durable.sqlite_path", "is only for driver sqlite; expected no sqlite_path with driver postgres")
			}
		}
	}

	e := &v.cfg.Storage.Ephemeral
	if !v.enum("storage.ephemeral.driver", e.Driver, "ephemeral storage driver", "memory", "redis") {
		return
	}
	if e.Driver == "memory" {
		if e.Redis != nil {
			v.keyErrorf("storage.ephemeral.redis", "is only for driver redis; expected no redis block with driver memory")
		}
		return
	}
	r := e.Redis
	if r == nil {
		v.errorf("storage.ephemeral.redis", "is required for driver redis; expected redis: {addrs: [host:port]}")
		return
	}
	const p = "storage.ephemeral.redis"
	if len(r.Addrs) == 0 {
		v.errorf(p+".addrs", "is required; expected at least one host:port")
	}
	allLoopback := true
	for i, a := range r.Addrs {
		v.hostPort(index(p+".addrs", i), a, true)
		if h, _, err := net.SplitHostPort(a); err != nil || !isLoopbackHost(h) {
			allLoopback = false
		}
	}
	if r.DB < 0 {
		v.errorf(p+".db", "%d is not allowed; expected a database number ≥ 0", r.DB)
	}
	if r.CAFile != "" {
		if !r.TLS {
			v.keyErrorf(p+".ca_file", "is only used with tls: true; expected tls: true or no ca_file")
		}
		v.file(p+".ca_file", r.CAFile)
	}
	if !r.TLS && !allLoopback && len(r.Addrs) > 0 {
		v.warnf(p+".tls", "redis traffic, which carries session state, is not encrypted; set tls: true unless the network is trusted")
	}
}

var signingAlgorithms = []string{"RS256", "ES256"}

func (v *validator) keys() {
	k := &v.cfg.Keys
	for i, a := range k.Algorithms {
		v.enum(index("keys.algorithms", i), a, "signing algorithm", signingAlgorithms...)
	}
	v.duplicates("keys.algorithms", k.Algorithms, "algorithm")
	if !slices.Contains(k.Algorithms, "RS256") {
		// OpenID Connect Core §15.1: RS256 is the algorithm every relying
		// party must support and the default when a client names none.
		v.errorf("keys.algorithms", "must include RS256, the default every OpenID Connect relying party supports; expected e.g. [RS256, ES256]")
	}
	switch {
	case k.RotationPeriod <= 0:
		v.duration("keys.rotation_period", k.RotationPeriod, 0)
	case k.RotationPeriod < time.Hour:
		v.errorf("keys.rotation_period", "%s is too short; expected at least 1h", fmtDuration(k.RotationPeriod))
	}
}

// Upper bounds on lifetimes. A stolen bearer token is usable until it
// expires, so short-lived tokens are the main defence against leaks; refresh
// tokens are bound to the client and revocable, hence a longer bound.
const (
	maxCodeLifetime    = 10 * time.Minute // RFC 6749 §4.1.2 recommends at most 10 minutes
	maxTokenLifetime   = time.Hour
	maxRefreshLifetime = 30 * 24 * time.Hour
	nationalReauth     = 4 * time.Hour
)

func (v *validator) tokens() {
	t := &v.cfg.Tokens
	v.duration("tokens.access_token_lifetime", t.AccessTokenLifetime, maxTokenLifetime)
	v.duration("tokens.id_token_lifetime", t.IDTokenLifetime, maxTokenLifetime)
	v.duration("tokens.refresh_token_lifetime", t.RefreshTokenLifetime, maxRefreshLifetime)
	v.duration("tokens.authorization_code_lifetime", t.AuthorizationCodeLifetime, maxCodeLifetime)
}

func (v *validator) sessions() {
	s := &v.cfg.Sessions
	v.duration("sessions.lifetime", s.Lifetime, 0)
	if s.Lifetime > nationalReauth {
		v.warnf("sessions.lifetime", "%s is longer than the 4h after which the national rules ask people to authenticate again", fmtDuration(s.Lifetime))
	}
	v.duration("sessions.idle_timeout", s.IdleTimeout, 0)
	if s.IdleTimeout > 0 && s.Lifetime > 0 && s.IdleTimeout > s.Lifetime {
		v.errorf("sessions.idle_timeout", "%s is longer than sessions.lifetime (%s); expected at most the lifetime", fmtDuration(s.IdleTimeout), fmtDuration(s.Lifetime))
	}
}

func (v *validator) throttle() {
	t := &v.cfg.Throttle
	// Garde must block guessing before the directory locks the account:
	// with Active Directory's lockout threshold below Garde's, anyone could
	// lock a clinician out of every application from the login page.
	// Typical AD thresholds are 10 to 50, hence at most 20.
	if t.AccountFailures < 1 || t.AccountFailures > 20 {
		v.errorf("throttle.account_failures", "%d is out of range; expected 1 to 20, and below the directory's own account lockout threshold", t.AccountFailures)
	}
	if t.AddressFailures < 1 {
		v.errorf("throttle.address_failures", "%d is out of range; expected at least 1", t.AddressFailures)
	}
	v.duration("throttle.window", t.Window, 24*time.Hour)
}

// ---- connectors

var connectorIDRE = regexp.MustCompile(`^[a-z0-9-]+$`)

func (v *validator) connectors() {
	cs := v.cfg.Connectors
	if len(cs) == 0 {
		v.errorf("connectors", "is required; expected at least one connector (type ldap or static)")
		return
	}
	ids := map[string]int{}
	for i := range cs {
		c := &cs[i]
		p := index("connectors", i)
		switch {
		case c.ID == "":
			v.errorf(p+".id", "is required; expected a short name made of a-z, 0-9 and -")
		case !connectorIDRE.MatchString(c.ID):
			v.errorf(p+".id", "%q is not allowed; expected only a-z, 0-9 and -", c.ID)
		default:
			if j, dup := ids[c.ID]; dup {
				v.errorf(p+".id", "%q is already the id of connectors[%d]; expected unique connector ids", c.ID, j)
			} else {
				ids[c.ID] = i
			}
		}
		if !v.enum(p+".type", c.Type, "connector type", "ldap", "static", "psc", "cps") {
			continue
		}
		if c.Type != "ldap" && c.LDAP != nil {
			v.keyErrorf(p+".ldap", "is only for type ldap; expected no ldap block with type %s", c.Type)
		}
		if c.Type != "static" && c.Static != nil {
			v.keyErrorf(p+".static", "is only for type static; expected no static block with type %s", c.Type)
		}
		if c.Type != "psc" && c.PSC != nil {
			v.keyErrorf(p+".psc", "is only for type psc; expected no psc block with type %s", c.Type)
		}
		if c.Type != "cps" && c.CPS != nil {
			v.keyErrorf(p+".cps", "is only for type cps; expected no cps block with type %s", c.Type)
		}
		switch {
		case c.Type == "ldap" && c.LDAP == nil:
			v.errorf(p+".ldap", "is required for type ldap; expected ldap: {urls: [...], bind_dn: ..., ...}")
		case c.Type == "ldap":
			v.ldap(p+".ldap", c.LDAP)
		case c.Type == "static" && c.Static == nil:
			v.errorf(p+".static", "is required for type static; expected static: {people: [...]}")
		case c.Type == "static":
			v.static(p+".static", c.Static)
		case c.Type == "psc" && c.PSC == nil:
			v.errorf(p+".psc", "is required for type psc; expected psc: {environment: production|bas, client_id: ..., ...}")
		case c.Type == "psc":
			v.psc(p+".psc", c.PSC)
		case c.Type == "cps" && c.CPS == nil:
			v.errorf(p+".cps", "is required for type cps; expected cps: {anchors_files: [...], listen_address: ... or proxy: ...}")
		case c.Type == "cps":
			v.cps(p+".cps", c.CPS)
		}
	}
}

func (v *validator) ldap(p string, l *LDAPConnector) {
	if len(l.URLs) == 0 {
		v.errorf(p+".urls", "is required; expected at least one ldaps:// URL")
	}
	clear := false
	for i, raw := range l.URLs {
		path := index(p+".urls", i)
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			v.errorf(path, "%q is not an LDAP server URL; expected ldaps://host[:port]", raw)
			continue
		}
		switch u.Scheme {
		case "ldaps":
			if l.StartTLS {
				v.errorf(path, "%q already uses TLS; start_tls is for ldap:// URLs; expected start_tls: false or an ldap:// URL", raw)
			}
		case "ldap":
			if !l.StartTLS && !l.InsecureNoTLS {
				v.errorf(path, "%q would send passwords in clear; expected ldaps://, or start_tls: true (insecure_no_tls: true only for a test directory)", raw)
			}
			if !l.StartTLS {
				clear = true
			}
		default:
			v.errorf(path, "%q has scheme %q; expected ldaps:// or ldap://", raw, u.Scheme)
		}
	}
	if l.InsecureNoTLS && l.StartTLS {
		v.keyErrorf(p+".insecure_no_tls", "contradicts start_tls: true; expected only one of them")
	}
	if clear && l.InsecureNoTLS && !v.cfg.IsLoopbackDemo() {
		v.warnf(p+".insecure_no_tls", "people's passwords cross the network in clear")
	}
	if l.CAFile != "" {
		v.file(p+".ca_file", l.CAFile)
	}
	if l.BindDN == "" {
		v.errorf(p+".bind_dn", "is required; expected the service account's DN, e.g. CN=garde-svc,OU=Service,DC=hopital,DC=local")
	} else if !strings.Contains(l.BindDN, "=") {
		v.errorf(p+".bind_dn", "%q is not a DN; expected e.g. CN=garde-svc,OU=Service,DC=hopital,DC=local", l.BindDN)
	}
	if !l.BindPassword.IsSet() {
		v.errorf(p+".bind_password", "is required; expected the service account's password (use ${VAR} to keep it out of the file)")
	}
	if l.BaseDN == "" {
		v.errorf(p+".base_dn", "is required; expected the DN under which people are searched, e.g. DC=hopital,DC=local")
	} else if !strings.Contains(l.BaseDN, "=") {
		v.errorf(p+".base_dn", "%q is not a DN; expected e.g. DC=hopital,DC=local", l.BaseDN)
	}
	if l.GroupBaseDN != "" && !strings.Contains(l.GroupBaseDN, "=") {
		v.errorf(p+".group_base_dn", "%q is not a DN; expected e.g. OU=Groups,DC=hopital,DC=local", l.GroupBaseDN)
	}
	switch {
	case !strings.Contains(l.UserFilter, "{username}"):
		v.errorf(p+".user_filter", "%q does not contain {username}; expected a filter such as (sAMAccountName={username})", l.UserFilter)
	case !balancedFilter(l.UserFilter):
		v.errorf(p+".user_filter", "%q is not a parenthesised LDAP filter; expected e.g. (&(objectClass=user)(sAMAccountName={username}))", l.UserFilter)
	}
	v.enum(p+".nested_groups", l.NestedGroups, "nested_groups mode", "auto", "in_chain", "recursive", "off")
	if l.Attributes.ID == "" {
		v.errorf(p+".attributes.id", "is required; expected a stable attribute such as objectGUID (never one that changes, like a username)")
	}
	if l.Attributes.Username == "" {
		v.errorf(p+".attributes.username", "is required; expected e.g. sAMAccountName")
	}
	v.duration(p+".timeout", l.Timeout, time.Minute)
	if l.PoolSize < 1 || l.PoolSize > 100 {
		v.errorf(p+".pool_size", "%d is out of range; expected 1 to 100", l.PoolSize)
	}
}

// balancedFilter checks the outline of an LDAP filter: one parenthesised
// expression with balanced parentheses. The connector parses it fully.
func balancedFilter(f string) bool {
	if !strings.HasPrefix(f, "(") || !strings.HasSuffix(f, ")") {
		return false
	}
	depth := 0
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 || depth == 0 && i != len(f)-1 {
				return false
			}
		}
	}
	return depth == 0
}

func (v *validator) static(p string, s *StaticConnector) {
	if len(s.People) == 0 {
		v.errorf(p+".people", "is required; expected at least one person")
	}
	names := map[string]int{}
	for i := range s.People {
		pp := index(p+".people", i)
		person := &s.People[i]
		switch {
		case person.Username == "":
			v.errorf(pp+".username", "is required")
		case strings.ContainsFunc(person.Username, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			v.errorf(pp+".username", "%q contains spaces or control characters; expected a login name", person.Username)
		default:
			if j, dup := names[person.Username]; dup {
				v.errorf(pp+".username", "%q is already the username of %s; expected unique usernames", person.Username, index(p+".people", j))
			} else {
				names[person.Username] = i
			}
		}
		if person.PasswordHash == "" {
			v.errorf(pp+".password_hash", `is required; expected a PHC argon2id string "$argon2id$v=19$m=65536,t=1,p=2$<salt>$<hash>"`)
		} else if msg := checkArgon2idPHC(person.PasswordHash); msg != "" {
			// The hash is not quoted: it is offline-crackable material.
			v.errorf(pp+".password_hash", `%s; expected a PHC argon2id string "$argon2id$v=19$m=65536,t=1,p=2$<salt>$<hash>"`, msg)
		}
		if person.Email != "" && !strings.Contains(person.Email, "@") {
			v.errorf(pp+".email", "%q is not an email address", person.Email)
		}
		for j, g := range person.Groups {
			if strings.TrimSpace(g) == "" {
				v.errorf(index(pp+".groups", j), "is empty; expected a group name")
			}
		}
	}
}

// checkArgon2idPHC checks the outline of a PHC argon2id string; the
// connector verifies the parameters.
func checkArgon2idPHC(h string) string {
	if !strings.HasPrefix(h, "$argon2id$") {
		return "is not an argon2id hash (it must start with $argon2id$)"
	}
	parts := strings.Split(h, "$")
	if len(parts) != 6 {
		return fmt.Sprintf("has %d $-separated fields instead of 6", len(parts)-1)
	}
	if !strings.HasPrefix(parts[2], "v=") || !strings.HasPrefix(parts[3], "m=") {
		return "does not have the version and parameter fields (v=19, m=...,t=...,p=...)"
	}
	for _, b := range parts[4:] {
		if _, err := base64.RawStdEncoding.DecodeString(b); err != nil || b == "" {
			return "has a salt or hash that is not unpadded standard base64"
		}
	}
	return ""
}

// ---- clients

var (
	grantTypes  = []string{"authorization_code", "refresh_token", "client_credentials"}
	authMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}
)

const minSecretLength = 32

func (v *validator) clients() {
	ids := map[string]int{}
	for i := range v.cfg.Clients {
		c := &v.cfg.Clients[i]
		p := index("clients", i)
		switch {
		case c.ID == "":
			v.errorf(p+".id", "is required; expected the client_id the application sends")
		case strings.ContainsFunc(c.ID, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			v.errorf(p+".id", "%q contains spaces or control characters; expected e.g. dossier-patient", c.ID)
		default:
			if j, dup := ids[c.ID]; dup {
				v.errorf(p+".id", "%q is already the id of clients[%d]; expected unique client ids", c.ID, j)
			} else {
				ids[c.ID] = i
			}
		}
		v.clientAuth(p, c)
		v.grants(p, c)
		v.scopes(p, c)
		for j, a := range c.Audience {
			if a == "" {
				v.errorf(index(p+".audience", j), "is empty; expected an audience identifier")
			}
		}
		v.duplicates(p+".audience", c.Audience, "audience")
		if v.enum(p+".id_token_signed_response_alg", c.IDTokenSignedResponseAlg, "signing algorithm", signingAlgorithms...) &&
			!slices.Contains(v.cfg.Keys.Algorithms, c.IDTokenSignedResponseAlg) {
			v.errorf(p+".id_token_signed_response_alg", "%q is not among keys.algorithms [%s]; expected one of them", c.IDTokenSignedResponseAlg, strings.Join(v.cfg.Keys.Algorithms, ", "))
		}
		if c.AccessTokenLifetime != 0 {
			v.duration(p+".access_token_lifetime", c.AccessTokenLifetime, maxTokenLifetime)
		}
		if c.PSCDelegation != nil {
			v.pscDelegation(p+".psc_delegation", c.PSCDelegation)
		}
	}
}

// knownAMR are the RFC 8176 values Garde can emit.
var knownAMR = []string{"pwd", "hwk", "swk", "sc", "pin", "mfa", "otp", "user", "fpt", "face"}

func (v *validator) pscDelegation(p string, d *PSCDelegation) {
	if strings.TrimSpace(d.TenantID) == "" {
		v.errorf(p+".tenant_id", "is required; expected the establishment id ANS registered for Garde (e.g. the FINESS EJ)")
	}
	if !v.set[p+".amr_values"] {
		d.AMRValues = []string{"sc", "pin", "mfa", "hwk", "swk", "user"}
	}
	for j, a := range d.AMRValues {
		if !slices.Contains(knownAMR, a) {
			v.errorf(index(p+".amr_values", j), "%q is not an amr value Garde emits; expected one of %s", a, strings.Join(knownAMR, ", "))
		}
	}
	switch {
	case !v.set[p+".max_age"]:
		d.MaxAge = 4 * time.Hour
	case d.MaxAge <= 0 || d.MaxAge > 4*time.Hour:
		v.errorf(p+".max_age", "%s is out of range; expected a duration above 0 and at most 4h (ANS requires re-authentication at least every 4 hours)", fmtDuration(d.MaxAge))
	}
}

func (v *validator) clientAuth(p string, c *Client) {
	method := c.TokenEndpointAuthMethod
	if !v.enum(p+".token_endpoint_auth_method", method, "token endpoint authentication method", authMethods...) {
		return
	}
	// A value that failed to decode (an unset ${VAR}) counts as given: its
	// error is already reported.
	hasSecret := c.Secret.IsSet() || v.bad[p+".secret"]
	hasHash := c.SecretSHA256 != "" || v.bad[p+".secret_sha256"]
	hasJWKS := c.JWKSURI != "" || c.JWKSFile != ""
	noSecrets := func(why string) {
		if hasSecret {
			v.keyErrorf(p+".secret", "is not used %s; expected no secret", why)
		}
		if hasHash {
			v.keyErrorf(p+".secret_sha256", "is not used %s; expected no secret_sha256", why)
		}
	}
	noJWKS := func(why string) {
		if c.JWKSURI != "" {
			v.keyErrorf(p+".jwks_uri", "is only used with private_key_jwt; expected no jwks_uri %s", why)
		}
		if c.JWKSFile != "" {
			v.keyErrorf(p+".jwks_file", "is only used with private_key_jwt; expected no jwks_file %s", why)
		}
	}
	switch {
	case c.Public:
		// A public client's code runs on people's devices; a secret in it
		// is not secret. PKCE (enforced by the server) protects its codes.
		if method != "none" {
			v.errorf(p+".token_endpoint_auth_method", "%q is not possible for a public client; expected none (or public: false)", method)
		}
		noSecrets("by a public client")
		noJWKS("for a public client")
		return
	case method == "none":
		v.errorf(p+".token_endpoint_auth_method", "none is only for public clients; expected client_secret_basic, client_secret_post or private_key_jwt, or public: true")
		return
	case method == "private_key_jwt":
		noSecrets("with private_key_jwt")
		switch {
		case c.JWKSURI != "" && c.JWKSFile != "":
			v.keyErrorf(p+".jwks_file", "jwks_uri and jwks_file are both set; expected exactly one of them")
		case !hasJWKS:
			v.errorf(p+".jwks_uri", "is required for private_key_jwt; expected jwks_uri or jwks_file with the client's public keys")
		case c.JWKSURI != "":
			if msg := checkURI(c.JWKSURI); msg != "" {
				v.errorf(p+".jwks_uri", "%q is not allowed: %s", c.JWKSURI, msg)
			}
		default:
			v.file(p+".jwks_file", c.JWKSFile)
		}
		return
	}
	// client_secret_basic or client_secret_post
	noJWKS("with " + method)
	switch {
	case hasSecret && hasHash:
		v.keyErrorf(p+".secret_sha256", "secret and secret_sha256 are both set; expected exactly one of them")
	case !hasSecret && !hasHash:
		v.errorf(p+".secret", "is required for %s; expected secret or secret_sha256 (or public: true for a browser or native application)", method)
	case hasHash:
		if !v.bad[p+".secret_sha256"] && len(c.SecretSHA256) != 64 || !isHex(c.SecretSHA256) {
			v.errorf(p+".secret_sha256", "is not a SHA-256 digest; expected 64 hexadecimal characters (printf %%s \"$SECRET\" | sha256sum)")
		}
	case !v.bad[p+".secret"] && len(c.Secret.Reveal()) < minSecretLength:
		// Client secrets are checked on every token request and are
		// guessable offline from a stolen hash when short: they must be
		// generated, not chosen. The local demo keeps a memorable one.
		const msg = "is shorter than 32 characters: client secrets must be machine-generated with high entropy; expected e.g. the output of `openssl rand -base64 32`"
		if v.cfg.IsLoopbackDemo() {
			v.warnf(p+".secret", msg+" (allowed only for the local demo)")
		} else {
			v.errorf(p+".secret", msg)
		}
	}
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

func (v *validator) grants(p string, c *Client) {
	gp := p + ".grant_types"
	if len(c.GrantTypes) == 0 {
		v.errorf(gp, "is empty; expected at least one of %s", strings.Join(grantTypes, ", "))
	}
	for i, g := range c.GrantTypes {
		path := index(gp, i)
		switch g {
		case "implicit":
			v.errorf(path, "Garde never offers the implicit grant: it returns tokens in the browser's URL, where they leak (OAuth 2.0 Security BCP); expected authorization_code (with PKCE)")
		case "password":
			v.errorf(path, "Garde never offers the password grant: it hands people's passwords to the application and bypasses multi-factor authentication; expected authorization_code")
		case "client_credentials":
			if c.Public {
				v.errorf(path, "client_credentials is not possible for a public client, which cannot authenticate; expected a confidential client (public: false)")
			}
		default:
			v.enum(path, g, "grant type", grantTypes...)
		}
	}
	v.duplicates(gp, c.GrantTypes, "grant type")
	code := slices.Contains(c.GrantTypes, "authorization_code")
	if slices.Contains(c.GrantTypes, "refresh_token") && !code {
		v.errorf(gp, "refresh_token needs authorization_code; expected authorization_code too (client_credentials gets no refresh tokens)")
	}
	switch {
	case code && len(c.RedirectURIs) == 0:
		v.errorf(p+".redirect_uris", "is required for authorization_code; expected at least one https URL")
	case !code && len(c.RedirectURIs) > 0:
		v.keyErrorf(p+".redirect_uris", "is only used with authorization_code; expected no redirect_uris")
	}
	v.uris(p+".redirect_uris", c.RedirectURIs, "redirect URIs")
	v.uris(p+".post_logout_redirect_uris", c.PostLogoutRedirectURIs, "post-logout redirect URIs")
}

// uris checks redirect URIs. They are matched exactly (RFC 9700 §4.1):
// wildcards and prefix matching have led to open redirectors and stolen
// codes in many servers.
func (v *validator) uris(path string, list []string, what string) {
	for i, raw := range list {
		if msg := checkURI(raw); msg != "" {
			v.errorf(index(path, i), "%q is not allowed: %s", raw, strings.Replace(msg, "URIs", what, 1))
		}
	}
	v.duplicates(path, list, "URI")
}

// checkURI returns what is wrong with a redirect or JWKS URI, or "".
func checkURI(raw string) string {
	if strings.Contains(raw, "*") {
		return "URIs are matched exactly; wildcards are not supported (list each URI)"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return "URIs must be absolute, with a scheme and a host"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "URIs must not contain a fragment (#...)"
	case u.User != nil:
		return "URIs must not contain user information"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return ""
	}
	return "URIs must use https (http only for localhost)"
}

func (v *validator) scopes(p string, c *Client) {
	sp := p + ".scopes"
	for i, s := range c.Scopes {
		if !validScope(s) {
			v.errorf(index(sp, i), "%q is not a scope; expected a word without spaces or quotes (RFC 6749 §3.3)", s)
		}
	}
	v.duplicates(sp, c.Scopes, "scope")
	if slices.Contains(c.GrantTypes, "authorization_code") && !slices.Contains(c.Scopes, "openid") {
		v.errorf(sp, "must include openid for authorization_code; expected e.g. [openid, profile, email]")
	}
	if slices.Contains(c.GrantTypes, "refresh_token") && !slices.Contains(c.Scopes, "offline_access") {
		v.warnf(sp, "refresh_token is granted but offline_access is not allowed, so no refresh token can be issued")
	}
}

func validScope(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (v *validator) webauthn() {
	w := &v.cfg.WebAuthn
	const p = "webauthn"
	v.enum(p+".second_factor", w.SecondFactor, "second-factor mode", "off", "optional", "required")
	v.enum(p+".user_verification", w.UserVerification, "user verification requirement", "discouraged", "preferred", "required")
	v.enum(p+".attestation", w.Attestation, "attestation conveyance", "none", "indirect", "direct")
	if w.Enabled && net.ParseIP(w.RPID) != nil && !v.set[p+".rp_id"] {
		// The RP ID defaults to the issuer's host; an IP address cannot be
		// one, so WebAuthn would be off.
		if w.SecondFactor == "required" {
			v.errorf(p+".second_factor", "is required but the issuer's host %q is an IP address, which browsers refuse as a WebAuthn RP ID; expected an issuer with a host name", w.RPID)
		} else {
			v.warnf(p, "WebAuthn is off: the issuer's host %q is an IP address, which browsers refuse as an RP ID; give the issuer a host name to use security keys", w.RPID)
		}
	}
	if !w.Enabled && w.SecondFactor == "required" {
		v.errorf(p+".second_factor", "is required but webauthn.enabled is false; expected webauthn enabled, or second_factor off or optional")
	}
	if iss, err := url.Parse(v.cfg.Issuer); err == nil && iss.Host != "" && v.set[p+".rp_id"] {
		host := iss.Hostname()
		switch {
		case w.RPID == "":
			v.errorf(p+".rp_id", "is empty; expected the issuer's host %q or a parent domain of it", host)
		case net.ParseIP(w.RPID) != nil:
			// Browsers refuse IP addresses as RP IDs.
			v.errorf(p+".rp_id", "%q is an IP address; expected a domain name (use localhost for a local demo)", w.RPID)
		case host != w.RPID && !strings.HasSuffix(host, "."+w.RPID):
			v.errorf(p+".rp_id", "%q is not the issuer's host %q nor a parent domain of it; expected one of those", w.RPID, host)
		}
	}
	for i, o := range w.Origins {
		if !v.set[p+".origins"] {
			break // derived from the issuer, which is checked on its own
		}
		path := fmt.Sprintf("%s.origins[%d]", p, i)
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
			v.errorf(path, "%q is not an origin; expected scheme://host[:port] with nothing after", o)
			continue
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackHost(u.Hostname())) {
			v.errorf(path, "%q is not allowed; expected https (http only for localhost)", o)
		}
	}
	for _, list := range []struct {
		name string
		ids  []string
	}{{"aaguid_allow", w.AAGUIDAllow}, {"aaguid_deny", w.AAGUIDDeny}} {
		for i, id := range list.ids {
			if !uuidRE.MatchString(id) {
				v.errorf(fmt.Sprintf("%s.%s[%d]", p, list.name, i), "%q is not an AAGUID; expected a lowercase UUID like cb69481e-8ff7-4039-93ec-0a2729a154a8", id)
			}
		}
	}
	if w.MetadataFile != "" {
		v.file(p+".metadata_file", w.MetadataFile)
		if w.MetadataRootFile == "" {
			v.errorf(p+".metadata_root_file", "is required with metadata_file; expected the PEM certificate the blob is signed under")
		} else {
			v.file(p+".metadata_root_file", w.MetadataRootFile)
		}
	} else if w.RequireMetadata {
		v.errorf(p+".require_metadata", "is true but no metadata_file is set; expected a local FIDO MDS3 blob")
	}
	e := &w.Enrollment
	v.duration(p+".enrollment.code_lifetime", e.CodeLifetime, 30*24*time.Hour)
	v.duration(p+".enrollment.strong_factor_window", e.StrongFactorWindow, time.Hour)
	if e.GraceUntil != "" {
		t, err := time.Parse(time.RFC3339, e.GraceUntil)
		if err != nil {
			v.errorf(p+".enrollment.grace_until", "%q is not a date; expected RFC 3339, e.g. 2027-03-31T23:59:59+02:00", e.GraceUntil)
		}
		e.Grace = t
	}
}
