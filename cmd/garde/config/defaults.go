package config

import (
	"fmt"
	"net/url"
	"time"
)

// Default values, applied to keys absent from the file (an explicit value,
// even 0 or "", is kept and validated).
const (
	DefaultListenAddress             = "127.0.0.1:5556"
	DefaultMetricsAddress            = "127.0.0.1:9464"
	DefaultMasterKeyEnv              = "GARDE_MASTER_KEY"
	DefaultSQLitePath                = "garde.db"
	DefaultRedisKeyPrefix            = "garde:"
	DefaultKeyRotationPeriod         = 720 * time.Hour
	DefaultAccessTokenLifetime       = 10 * time.Minute
	DefaultIDTokenLifetime           = 10 * time.Minute
	DefaultRefreshTokenLifetime      = 24 * time.Hour
	DefaultAuthorizationCodeLifetime = time.Minute
	DefaultSessionLifetime           = 4 * time.Hour
	DefaultSessionIdleTimeout        = 30 * time.Minute
	DefaultAccountFailures           = 5
	DefaultAddressFailures           = 50
	DefaultThrottleWindow            = 15 * time.Minute
	DefaultLDAPUserFilter            = "(&(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))"
	DefaultLDAPTimeout               = 5 * time.Second
	DefaultLDAPPoolSize              = 8
	DefaultEnrollmentCodeLifetime    = 72 * time.Hour
	DefaultStrongFactorWindow        = 10 * time.Minute
)

// DefaultSigningAlgorithms, DefaultGrantTypes and DefaultScopes return fresh
// slices so that callers cannot alter the defaults.
func DefaultSigningAlgorithms() []string { return []string{"RS256", "ES256"} }
func DefaultGrantTypes() []string        { return []string{"authorization_code", "refresh_token"} }
func DefaultScopes() []string {
	return []string{"openid", "profile", "email", "groups", "offline_access"}
}

func applyDefaults(c *Config, r *report) {
	unset := func(path string) bool { return !r.set[path] }
	str := func(p *string, path, def string) {
		if unset(path) {
			*p = def
		}
	}
	dur := func(p *time.Duration, path string, def time.Duration) {
		if unset(path) {
			*p = def
		}
	}
	num := func(p *int, path string, def int) {
		if unset(path) {
			*p = def
		}
	}

	str(&c.Listen.Address, "listen.address", DefaultListenAddress)
	str(&c.Linking.NoMatch, "linking.no_match", "deny")
	if _, written := r.pos["listen.metrics_address"]; !written {
		// Only an absent key gets the default: metrics_address: "" (or
		// empty) is how an operator disables the metrics listener.
		c.Listen.MetricsAddress = DefaultMetricsAddress
	}
	adminDefaults(c, r)
	str(&c.Log.Level, "log.level", "info")
	str(&c.Log.Format, "log.format", "text")
	if unset("master_key") {
		c.MasterKey.Env = DefaultMasterKeyEnv
	}

	str(&c.Storage.Durable.Driver, "storage.durable.driver", "sqlite")
	if c.Storage.Durable.Driver == "sqlite" {
		str(&c.Storage.Durable.SQLitePath, "storage.durable.sqlite_path", DefaultSQLitePath)
	}
	str(&c.Storage.Ephemeral.Driver, "storage.ephemeral.driver", "memory")
	if c.Storage.Ephemeral.Redis != nil {
		str(&c.Storage.Ephemeral.Redis.KeyPrefix, "storage.ephemeral.redis.key_prefix", DefaultRedisKeyPrefix)
	}

	if unset("keys.algorithms") {
		c.Keys.Algorithms = DefaultSigningAlgorithms()
	}
	dur(&c.Keys.RotationPeriod, "keys.rotation_period", DefaultKeyRotationPeriod)
	dur(&c.Tokens.AccessTokenLifetime, "tokens.access_token_lifetime", DefaultAccessTokenLifetime)
	dur(&c.Tokens.IDTokenLifetime, "tokens.id_token_lifetime", DefaultIDTokenLifetime)
	dur(&c.Tokens.RefreshTokenLifetime, "tokens.refresh_token_lifetime", DefaultRefreshTokenLifetime)
	dur(&c.Tokens.AuthorizationCodeLifetime, "tokens.authorization_code_lifetime", DefaultAuthorizationCodeLifetime)
	dur(&c.Sessions.Lifetime, "sessions.lifetime", DefaultSessionLifetime)
	dur(&c.Sessions.IdleTimeout, "sessions.idle_timeout", DefaultSessionIdleTimeout)
	num(&c.Throttle.AccountFailures, "throttle.account_failures", DefaultAccountFailures)
	num(&c.Throttle.AddressFailures, "throttle.address_failures", DefaultAddressFailures)
	dur(&c.Throttle.Window, "throttle.window", DefaultThrottleWindow)

	bl := func(p *bool, path string, def bool) {
		if unset(path) {
			*p = def
		}
	}
	w := &c.WebAuthn
	bl(&w.Enabled, "webauthn.enabled", true)
	str(&w.RPName, "webauthn.rp_name", "Garde")
	str(&w.SecondFactor, "webauthn.second_factor", "optional")
	str(&w.UserVerification, "webauthn.user_verification", "preferred")
	str(&w.Attestation, "webauthn.attestation", "none")
	bl(&w.AllowSynced, "webauthn.allow_synced", true)
	dur(&w.Enrollment.CodeLifetime, "webauthn.enrollment.code_lifetime", DefaultEnrollmentCodeLifetime)
	dur(&w.Enrollment.StrongFactorWindow, "webauthn.enrollment.strong_factor_window", DefaultStrongFactorWindow)
	if iss, err := url.Parse(c.Issuer); err == nil && iss.Host != "" {
		str(&w.RPID, "webauthn.rp_id", iss.Hostname())
		if unset("webauthn.origins") {
			w.Origins = []string{iss.Scheme + "://" + iss.Host}
		}
	}

	for i := range c.Connectors {
		cn := &c.Connectors[i]
		p := fmt.Sprintf("connectors[%d]", i)
		str(&cn.Name, p+".name", cn.ID)
		if l := cn.LDAP; l != nil {
			p := p + ".ldap"
			str(&l.UserFilter, p+".user_filter", DefaultLDAPUserFilter)
			str(&l.NestedGroups, p+".nested_groups", "auto")
			dur(&l.Timeout, p+".timeout", DefaultLDAPTimeout)
			num(&l.PoolSize, p+".pool_size", DefaultLDAPPoolSize)
			a, ap := &l.Attributes, p+".attributes"
			str(&a.ID, ap+".id", "objectGUID")
			str(&a.Username, ap+".username", "sAMAccountName")
			str(&a.Email, ap+".email", "mail")
			str(&a.GivenName, ap+".given_name", "givenName")
			str(&a.FamilyName, ap+".family_name", "sn")
			str(&a.DisplayName, ap+".display_name", "displayName")
			str(&a.MemberOf, ap+".member_of", "memberOf")
			str(&a.GroupName, ap+".group_name", "cn")
		}
	}

	for i := range c.Clients {
		cl := &c.Clients[i]
		p := fmt.Sprintf("clients[%d]", i)
		str(&cl.Name, p+".name", cl.ID)
		method := "client_secret_basic"
		if cl.Public {
			method = "none"
		}
		str(&cl.TokenEndpointAuthMethod, p+".token_endpoint_auth_method", method)
		if unset(p + ".grant_types") {
			cl.GrantTypes = DefaultGrantTypes()
		}
		if unset(p + ".scopes") {
			cl.Scopes = DefaultScopes()
		}
		str(&cl.IDTokenSignedResponseAlg, p+".id_token_signed_response_alg", "RS256")
	}
}
