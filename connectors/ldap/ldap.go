// Package ldap is the password connector for Active Directory (and other
// LDAP directories): it finds the person with a service account, proves the
// password with a bind as the person, maps AD account states to the
// connectors errors, and resolves group membership including nested groups.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// Defaults, chosen for Active Directory.
const (
	DefaultUserFilter           = "(&(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))"
	DefaultIDAttribute          = "objectGUID"
	DefaultUsernameAttribute    = "sAMAccountName"
	DefaultEmailAttribute       = "mail"
	DefaultGivenNameAttribute   = "givenName"
	DefaultFamilyNameAttribute  = "sn"
	DefaultDisplayNameAttribute = "displayName"
	DefaultMemberOfAttribute    = "memberOf"
	DefaultGroupMemberAttribute = "member"
	DefaultGroupNameAttribute   = "cn"
	DefaultTimeout              = 5 * time.Second
	DefaultPoolSize             = 8
	DefaultConnectorID          = "ldap"
)

// Nested group modes (Config.NestedGroups).
const (
	// NestedAuto tries AD's LDAP_MATCHING_RULE_IN_CHAIN once and, if the
	// directory does not support it, expands memberOf recursively.
	NestedAuto = "auto"
	// NestedInChain uses LDAP_MATCHING_RULE_IN_CHAIN only (AD).
	NestedInChain = "in_chain"
	// NestedRecursive follows the memberOf of each group.
	NestedRecursive = "recursive"
	// NestedOff returns the direct groups only.
	NestedOff = "off"
)

// Limits on input. AD passwords are at most 256 characters and
// sAMAccountName/UPN far shorter; anything longer is refused before it
// reaches the directory.
const (
	maxUsernameLen = 256
	maxPasswordLen = 1024
)

// Config configures the connector. Zero values take the AD defaults above.
type Config struct {
	// ConnectorID is the configured id, copied into Identity.Connector.
	ConnectorID string

	// URLs are ldaps:// or ldap:// addresses, tried in order: the first
	// that answers is used (failover between domain controllers).
	URLs []string
	// StartTLS upgrades ldap:// connections with StartTLS.
	StartTLS bool
	// InsecureNoTLS allows ldap:// without StartTLS. Passwords then cross
	// the network in clear: for tests and local sockets only.
	InsecureNoTLS bool
	// RootCAs verifies the directory's certificate (nil: system roots).
	RootCAs *x509.CertPool
	// ServerName overrides the name checked in the certificate (default:
	// the host of each URL).
	ServerName string

	// BindDN and BindPassword are the service account used to search.
	BindDN       string
	BindPassword string
	// BaseDN is where users are searched (subtree).
	BaseDN string
	// UserFilter finds the person; {username} is replaced by the escaped
	// input.
	UserFilter string

	// Attribute names.
	IDAttribute          string // objectGUID; Subject (else the entry DN)
	UsernameAttribute    string // sAMAccountName
	EmailAttribute       string // mail
	GivenNameAttribute   string // givenName
	FamilyNameAttribute  string // sn
	DisplayNameAttribute string // displayName
	// NationalIDAttribute holds the idNat_PS (e.g. employeeNumber); empty
	// means the directory has none.
	NationalIDAttribute string
	MemberOfAttribute   string // memberOf

	// GroupBaseDN limits the groups reported to those under it (default:
	// all groups).
	GroupBaseDN string
	// NestedGroups is auto (default), in_chain, recursive or off.
	NestedGroups string
	// GroupNameAttribute names a group in Identity.Groups (default cn).
	GroupNameAttribute string
	// GroupMemberAttribute is the group attribute listing members, used
	// by the in-chain search (default member).
	GroupMemberAttribute string

	// Timeout bounds each dial and each operation (default 5 s).
	Timeout time.Duration
	// PoolSize bounds the connections used at once for searches, and
	// separately for password binds (default 8).
	PoolSize int

	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Connector authenticates people against an LDAP directory.
type Connector struct {
	cfg    Config
	logger *slog.Logger
	// search holds connections bound as the service account; they only
	// ever search. bind holds connections used for the people's binds;
	// they are never used to search, so a person's bind can never lend
	// the person's rights (or the service account's) to anything else.
	search *pool
	bind   *pool

	// inChain caches whether the directory supports the in-chain rule
	// (auto mode): 0 unknown, 1 yes, 2 no.
	inChain atomic.Int32
	// svcBackoff holds, as Unix nanoseconds, the end of the pause after
	// the directory refused the service account's password: retrying at
	// each sign-in would lock the service account out.
	svcBackoff atomic.Int64

	groupBase *goldap.DN
	baseDN    *goldap.DN
}

var (
	_ connectors.PasswordConnector = (*Connector)(nil)
	_ connectors.LookupConnector   = (*Connector)(nil)
)

// serviceBackoff is how long Garde stops binding as the service account
// after the directory refused its password.
const serviceBackoff = 30 * time.Second

// Open validates cfg, applies defaults and returns a connector. It does not
// contact the directory (use Ping), so that Garde starts while AD is down.
func Open(cfg Config, logger *slog.Logger) (*Connector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.setDefaults()
	urls, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("ldap connector %q: %w", cfg.ConnectorID, err)
	}
	c := &Connector{cfg: cfg, logger: logger.With("connector", cfg.ConnectorID)}
	if cfg.GroupBaseDN != "" {
		c.groupBase, _ = goldap.ParseDN(cfg.GroupBaseDN) // validated
	}
	c.baseDN, _ = goldap.ParseDN(cfg.BaseDN) // validated
	for _, u := range urls {
		if u.Scheme == "ldap" && !cfg.StartTLS {
			c.logger.Warn("ldap: plain LDAP without TLS: passwords cross the network in clear", "url", u.Redacted())
		}
	}
	d := &dialer{
		urls:     urls,
		startTLS: cfg.StartTLS,
		timeout:  cfg.Timeout,
		tls: func(host string) *tls.Config {
			name := cfg.ServerName
			if name == "" {
				name = host
			}
			return &tls.Config{RootCAs: cfg.RootCAs, ServerName: name, MinVersion: tls.VersionTLS12}
		},
	}
	c.search = newPool("search", cfg.PoolSize, func(ctx context.Context) (*conn, error) {
		conn, err := d.dial(ctx)
		if err != nil {
			return nil, err
		}
		if err := c.serviceBind(ctx, conn); err != nil {
			conn.close()
			return nil, err
		}
		return conn, nil
	})
	c.bind = newPool("bind", cfg.PoolSize, d.dial)
	return c, nil
}

func (cfg *Config) setDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.ConnectorID, DefaultConnectorID)
	def(&cfg.UserFilter, DefaultUserFilter)
	def(&cfg.IDAttribute, DefaultIDAttribute)
	def(&cfg.UsernameAttribute, DefaultUsernameAttribute)
	def(&cfg.EmailAttribute, DefaultEmailAttribute)
	def(&cfg.GivenNameAttribute, DefaultGivenNameAttribute)
	def(&cfg.FamilyNameAttribute, DefaultFamilyNameAttribute)
	def(&cfg.DisplayNameAttribute, DefaultDisplayNameAttribute)
	def(&cfg.MemberOfAttribute, DefaultMemberOfAttribute)
	def(&cfg.GroupNameAttribute, DefaultGroupNameAttribute)
	def(&cfg.GroupMemberAttribute, DefaultGroupMemberAttribute)
	def(&cfg.NestedGroups, NestedAuto)
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

func (cfg *Config) validate() ([]*url.URL, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("urls: at least one ldaps:// or ldap:// URL is required")
	}
	var urls []*url.URL
	for i, s := range cfg.URLs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("urls[%d]: %w", i, err)
		}
		if u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.User != nil {
			return nil, fmt.Errorf("urls[%d] %q: expected ldaps://host[:port] or ldap://host[:port]", i, s)
		}
		switch u.Scheme {
		case "ldaps":
			if cfg.StartTLS {
				return nil, fmt.Errorf("urls[%d] %q: start_tls applies to ldap:// URLs, not ldaps://", i, s)
			}
		case "ldap":
			// Refuse to send passwords in clear unless told to.
			if !cfg.StartTLS && !cfg.InsecureNoTLS {
				return nil, fmt.Errorf("urls[%d] %q: plain ldap:// needs start_tls (or insecure_no_tls for tests)", i, s)
			}
		default:
			return nil, fmt.Errorf("urls[%d] %q: scheme must be ldaps or ldap", i, s)
		}
		urls = append(urls, u)
	}
	if cfg.BindDN == "" || cfg.BindPassword == "" {
		return nil, errors.New("bind_dn and bind_password: a service account is required")
	}
	if cfg.BaseDN == "" {
		return nil, errors.New("base_dn: required")
	}
	if _, err := goldap.ParseDN(cfg.BaseDN); err != nil {
		return nil, fmt.Errorf("base_dn %q: %w", cfg.BaseDN, err)
	}
	if cfg.GroupBaseDN != "" {
		if _, err := goldap.ParseDN(cfg.GroupBaseDN); err != nil {
			return nil, fmt.Errorf("group_base_dn %q: %w", cfg.GroupBaseDN, err)
		}
	}
	if !strings.Contains(cfg.UserFilter, "{username}") {
		return nil, fmt.Errorf("user_filter %q: must contain {username}", cfg.UserFilter)
	}
	if _, err := goldap.CompileFilter(userFilter(cfg.UserFilter, "probe")); err != nil {
		return nil, fmt.Errorf("user_filter %q: %w", cfg.UserFilter, err)
	}
	switch cfg.NestedGroups {
	case NestedAuto, NestedInChain, NestedRecursive, NestedOff:
	default:
		return nil, fmt.Errorf("nested_groups %q: expected auto, in_chain, recursive or off", cfg.NestedGroups)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("timeout %v: must be positive", cfg.Timeout)
	}
	if cfg.PoolSize < 0 {
		return nil, fmt.Errorf("pool_size %d: must be positive", cfg.PoolSize)
	}
	return urls, nil
}

// userFilter substitutes the escaped username: escaping (RFC 4515) is what
// keeps "*", ")(" or NUL in a username from changing the filter.
func userFilter(filter, username string) string {
	return strings.ReplaceAll(filter, "{username}", goldap.EscapeFilter(username))
}

// Close closes the pooled connections. Logins after Close fail with
// ErrUnavailable.
func (c *Connector) Close() {
	c.search.close()
	c.bind.close()
}

// Ping checks that the directory answers and accepts the service account,
// for readiness probes.
func (c *Connector) Ping(ctx context.Context) error {
	err := c.search.with(ctx, func(conn *conn) error { return c.serviceBind(ctx, conn) })
	if err != nil {
		return c.unavailable("ping", err)
	}
	return nil
}

// serviceBind binds conn as the service account. After the directory
// refused the password it stops trying for a while.
func (c *Connector) serviceBind(ctx context.Context, conn *conn) error {
	if until := c.svcBackoff.Load(); until != 0 && time.Now().UnixNano() < until {
		return errors.New("service account bind refused recently; not retrying yet")
	}
	err := conn.do(ctx, c.cfg.Timeout, func(l *goldap.Conn) error {
		return l.Bind(c.cfg.BindDN, c.cfg.BindPassword)
	})
	if err == nil {
		c.svcBackoff.Store(0)
		return nil
	}
	if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
		c.svcBackoff.Store(time.Now().Add(serviceBackoff).UnixNano())
		conn.broken = true
		return fmt.Errorf("service account bind (%s) refused: %w", c.cfg.BindDN, err)
	}
	return fmt.Errorf("service account bind: %w", err)
}

// unavailable logs the detail and returns ErrUnavailable.
func (c *Connector) unavailable(op string, err error) error {
	c.logger.Warn("ldap: directory unavailable", "op", op, "err", err)
	return fmt.Errorf("ldap %s: %w: %v", op, connectors.ErrUnavailable, err)
}

func invalid() error {
	return fmt.Errorf("ldap: %w", connectors.ErrInvalidCredentials)
}

// Login implements connectors.PasswordConnector.
func (c *Connector) Login(ctx context.Context, username, password string) (connectors.Identity, error) {
	// An LDAP simple bind with a DN and an empty password is an
	// "unauthenticated bind" that many servers, AD included, answer with
	// success: it must never reach the directory.
	if password == "" || username == "" || len(username) > maxUsernameLen || len(password) > maxPasswordLen ||
		!utf8.ValidString(username) {
		return connectors.Identity{}, invalid()
	}

	entry, err := c.findUser(ctx, username)
	if errors.Is(err, errNoUser) {
		// Spend the bind a known user would cost, so that response time
		// does not tell an unknown account from a wrong password.
		c.dummyBind(ctx, password)
		c.logger.Debug("ldap: sign-in refused", "reason", err.Error(), "username", username)
		return connectors.Identity{}, invalid()
	}
	if err != nil {
		return connectors.Identity{}, c.unavailable("search", err)
	}

	if err := c.userBind(ctx, entry.DN, password); err != nil {
		return connectors.Identity{}, err
	}

	// The password is proven: the account state may now be told.
	now := c.cfg.Now()
	if err := accountState(stateOf(entry), now, true); err != nil {
		c.logger.Info("ldap: sign-in refused by account state", "dn", entry.DN, "err", err)
		return connectors.Identity{}, fmt.Errorf("ldap: %w", err)
	}

	id, err := c.identity(ctx, entry)
	if err != nil {
		return connectors.Identity{}, err
	}
	if id.Username == "" {
		id.Username = username
	}
	id.AMR = []string{assurance.AMRPassword}
	id.Assurance = assurance.Low
	id.AuthTime = now
	return id, nil
}

// identity reads the person's identity from their entry and resolves
// their groups; it says nothing of how they authenticated.
func (c *Connector) identity(ctx context.Context, entry *goldap.Entry) (connectors.Identity, error) {
	groups, err := c.groups(ctx, entry)
	if err != nil {
		// Groups drive authorisation: fail closed rather than sign the
		// person in with none.
		return connectors.Identity{}, c.unavailable("groups", err)
	}
	id := connectors.Identity{
		Connector:   c.cfg.ConnectorID,
		Subject:     c.subject(entry),
		Username:    entry.GetEqualFoldAttributeValue(c.cfg.UsernameAttribute),
		GivenName:   entry.GetEqualFoldAttributeValue(c.cfg.GivenNameAttribute),
		FamilyName:  entry.GetEqualFoldAttributeValue(c.cfg.FamilyNameAttribute),
		DisplayName: entry.GetEqualFoldAttributeValue(c.cfg.DisplayNameAttribute),
		Email:       entry.GetEqualFoldAttributeValue(c.cfg.EmailAttribute),
		Groups:      groups,
	}
	if c.cfg.NationalIDAttribute != "" {
		id.NationalID = strings.TrimSpace(entry.GetEqualFoldAttributeValue(c.cfg.NationalIDAttribute))
		id.NationalIDType = connectors.NationalIDTypeOf(id.NationalID)
	}
	return id, nil
}

var errNoUser = errors.New("no unique entry matches")

// findUser searches the person with the service account. Zero or several
// matches are errNoUser.
func (c *Connector) findUser(ctx context.Context, username string) (*goldap.Entry, error) {
	return c.searchUser(ctx, c.cfg.BaseDN, goldap.ScopeWholeSubtree, userFilter(c.cfg.UserFilter, username))
}

// userAttributes are the attributes read from a person's entry.
func (c *Connector) userAttributes() []string {
	attrs := []string{
		c.cfg.IDAttribute, c.cfg.UsernameAttribute, c.cfg.EmailAttribute,
		c.cfg.GivenNameAttribute, c.cfg.FamilyNameAttribute, c.cfg.DisplayNameAttribute,
		c.cfg.MemberOfAttribute,
	}
	attrs = append(attrs, stateAttributes...)
	if c.cfg.NationalIDAttribute != "" {
		attrs = append(attrs, c.cfg.NationalIDAttribute)
	}
	return attrs
}

// searchUser searches one person's entry with the service account. Zero
// or several matches are errNoUser.
func (c *Connector) searchUser(ctx context.Context, base string, scope int, filter string) (*goldap.Entry, error) {
	req := goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases,
		2, int(c.cfg.Timeout/time.Second), false, filter, c.userAttributes(), nil)
	var res *goldap.SearchResult
	err := c.search.with(ctx, func(conn *conn) error {
		return conn.do(ctx, c.cfg.Timeout, func(l *goldap.Conn) error {
			r, err := l.Search(req)
			res = r
			return err
		})
	})
	// Two entries with a size limit of 2 can come back as
	// sizeLimitExceeded with both entries: still ambiguous, not an outage.
	if goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		return nil, fmt.Errorf("%w (more than one)", errNoUser)
	}
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, fmt.Errorf("%w (%d entries)", errNoUser, len(res.Entries))
	}
	return res.Entries[0], nil
}

// userBind proves the password with a bind as the person, on a connection
// of the bind pool (never a search connection).
func (c *Connector) userBind(ctx context.Context, dn, password string) error {
	err := c.bind.with(ctx, func(conn *conn) error {
		return conn.do(ctx, c.cfg.Timeout, func(l *goldap.Conn) error { return l.Bind(dn, password) })
	})
	if err == nil {
		return nil
	}
	var le *goldap.Error
	if !errors.As(err, &le) || isConnError(err) {
		return c.unavailable("bind", err)
	}
	switch le.ResultCode {
	case goldap.LDAPResultInvalidCredentials:
		msg := ""
		if le.Err != nil {
			msg = le.Err.Error()
		}
		if code, ok := parseADError(msg); ok {
			mapped := adBindError(code)
			if !errors.Is(mapped, connectors.ErrInvalidCredentials) {
				c.logger.Info("ldap: sign-in refused by account state", "dn", dn, "ad_code", fmt.Sprintf("%x", code), "err", mapped)
			} else {
				c.logger.Debug("ldap: sign-in refused", "dn", dn, "ad_code", fmt.Sprintf("%x", code))
			}
			return fmt.Errorf("ldap: %w", mapped)
		}
		c.logger.Debug("ldap: sign-in refused", "dn", dn, "reason", "invalid credentials")
		return invalid()
	case goldap.LDAPResultTimeLimitExceeded, goldap.LDAPResultAdminLimitExceeded, goldap.LDAPResultOther:
		return c.unavailable("bind", err)
	}
	// Anything else (unwillingToPerform, insufficientAccessRights, ...)
	// is a refusal of this person: count it as a failed password.
	c.logger.Warn("ldap: unexpected bind result, treated as invalid credentials", "dn", dn, "err", err)
	return invalid()
}

// dummyBind binds to a DN that names no entry: it costs the directory the same
// round trip as a real bind and always fails.
func (c *Connector) dummyBind(ctx context.Context, password string) {
	dn := "cn=garde-no-such-account," + c.cfg.BaseDN
	_ = c.bind.with(ctx, func(conn *conn) error {
		return conn.do(ctx, c.cfg.Timeout, func(l *goldap.Conn) error { return l.Bind(dn, password) })
	})
}

// subject is the objectGUID in canonical form when there is one, else the
// entry DN (less stable: it changes when the entry is moved or renamed).
func (c *Connector) subject(e *goldap.Entry) string {
	raw := e.GetEqualFoldRawAttributeValue(c.cfg.IDAttribute)
	if len(raw) == 0 {
		return e.DN
	}
	if strings.EqualFold(c.cfg.IDAttribute, "objectGUID") {
		if s, ok := formatGUID(raw); ok {
			return s
		}
		c.logger.Warn("ldap: unreadable objectGUID, using the DN as subject", "dn", e.DN)
		return e.DN
	}
	if utf8.Valid(raw) {
		return string(raw)
	}
	return fmt.Sprintf("%x", raw)
}

// sortedUnique sorts names and removes duplicates.
func sortedUnique(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	out := names[:1]
	for _, n := range names[1:] {
		if n != out[len(out)-1] {
			out = append(out, n)
		}
	}
	return out
}
