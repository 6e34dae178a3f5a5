package config

import "time"

// Admin configures the admin console and its JSON API (docs/admin.md). The
// console is served when at least one role names a group.
type Admin struct {
	// Roles map the console's roles to directory groups: a person in any
	// group of a role holds it (roles add up).
	Roles AdminRoles `yaml:"roles"`
	// MinLevel is the assurance level a console sign-in must reach: high
	// (a CPS card), the default; substantial (a security key) for
	// hospitals without cards, warned about; low only on a loopback issuer
	// (tests and demos).
	MinLevel string `yaml:"min_level"`
	// IdleTimeout ends a console session unused this long. Default 10m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Lifetime ends a console session this long after sign-in, however
	// busy. Default 1h.
	Lifetime time.Duration `yaml:"lifetime"`
	// APIClients are automation clients (client_credentials) allowed to
	// call the JSON API with their access tokens, each with one role.
	APIClients []AdminAPIClient `yaml:"api_clients"`
}

// AdminRoles lists the groups of each role.
type AdminRoles struct {
	// Admin may do everything.
	Admin []string `yaml:"admin"`
	// Helpdesk manages people: sessions, authenticators, enrollment codes,
	// identity links.
	Helpdesk []string `yaml:"helpdesk"`
	// Auditor reads the audit trail and the emergency-access queue.
	Auditor []string `yaml:"auditor"`
}

// AdminAPIClient is an automation client of the JSON API.
type AdminAPIClient struct {
	// Client is the id of a configured client with the client_credentials
	// grant.
	Client string `yaml:"client"`
	// Role is admin, helpdesk or auditor.
	Role string `yaml:"role"`
}

// Enabled reports whether the console is served.
func (a *Admin) Enabled() bool {
	return len(a.Roles.Admin)+len(a.Roles.Helpdesk)+len(a.Roles.Auditor) > 0
}

// Default values of the admin section.
const (
	DefaultAdminMinLevel    = "high"
	DefaultAdminIdleTimeout = 10 * time.Minute
	DefaultAdminLifetime    = time.Hour
)

func adminDefaults(c *Config, r *report) {
	a := &c.Admin
	if !r.set["admin.min_level"] {
		a.MinLevel = DefaultAdminMinLevel
	}
	if !r.set["admin.idle_timeout"] {
		a.IdleTimeout = DefaultAdminIdleTimeout
	}
	if !r.set["admin.lifetime"] {
		a.Lifetime = DefaultAdminLifetime
	}
}
