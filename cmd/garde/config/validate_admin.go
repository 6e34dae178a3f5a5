package config

import (
	"net/url"
	"slices"
)

// AdminClientID is the admin console's own client id (broker/admin.ClientID).
const AdminClientID = "garde-admin"

// AdminRoleNames are the console's roles.
var AdminRoleNames = []string{"admin", "helpdesk", "auditor"}

func (v *validator) admin() {
	a := &v.cfg.Admin
	if v.enum("admin.min_level", a.MinLevel, "level", "high", "substantial", "low") {
		switch a.MinLevel {
		case "substantial":
			v.warnf("admin.min_level", "substantial lets a password and a security key open the console; expected high (a CPS card) where cards are available")
		case "low":
			u, err := url.Parse(v.cfg.Issuer)
			if err != nil || !isLoopbackHost(u.Hostname()) {
				v.errorf("admin.min_level", "low would open the console with a password alone; expected high or substantial (low is accepted only on a loopback issuer, for tests and demos)")
			} else {
				v.warnf("admin.min_level", "low opens the console with a password alone (accepted here only because the issuer is on loopback)")
			}
		}
	}
	v.duration("admin.idle_timeout", a.IdleTimeout, 0)
	v.duration("admin.lifetime", a.Lifetime, 0)
	if a.IdleTimeout > 0 && a.Lifetime > 0 && a.IdleTimeout > a.Lifetime {
		v.errorf("admin.idle_timeout", "%s is longer than admin.lifetime (%s); expected at most the lifetime", fmtDuration(a.IdleTimeout), fmtDuration(a.Lifetime))
	}
	for _, r := range []struct {
		name   string
		groups []string
	}{{"admin", a.Roles.Admin}, {"helpdesk", a.Roles.Helpdesk}, {"auditor", a.Roles.Auditor}} {
		for i, g := range r.groups {
			if g == "" {
				v.errorf(index("admin.roles."+r.name, i), "is empty; expected a directory group name")
			}
		}
		v.duplicates("admin.roles."+r.name, r.groups, "group")
	}
	for i, c := range v.cfg.Clients {
		if c.ID == AdminClientID {
			v.errorf(index("clients", i)+".id", "%q is reserved for the admin console; expected another id", c.ID)
		}
	}
	seen := map[string]bool{}
	for i, c := range a.APIClients {
		p := index("admin.api_clients", i)
		v.enum(p+".role", c.Role, "role", AdminRoleNames...)
		if c.Client == "" {
			v.keyErrorf(p+".client", "is required; expected the id of a client with the client_credentials grant")
			continue
		}
		if seen[c.Client] {
			v.errorf(p+".client", "%q is listed twice; expected each client once, with one role", c.Client)
		}
		seen[c.Client] = true
		j := slices.IndexFunc(v.cfg.Clients, func(cl Client) bool { return cl.ID == c.Client })
		switch {
		case j < 0:
			v.errorf(p+".client", "%q is not a configured client; expected the id of an entry of clients", c.Client)
		case v.cfg.Clients[j].Public:
			v.errorf(p+".client", "%q is a public client; expected a confidential client (it authenticates for its token)", c.Client)
		case !slices.Contains(v.cfg.Clients[j].GrantTypes, "client_credentials"):
			v.errorf(p+".client", "client %q does not have the client_credentials grant; expected it in its grant_types", c.Client)
		}
	}
	if len(a.APIClients) > 0 && !a.Enabled() {
		v.keyErrorf("admin.api_clients", "needs admin.roles: the console and its API are off without any role group")
	}
}
