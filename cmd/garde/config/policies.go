package config

import (
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/policies"
)

// PolicyConfig returns the policies as the policies package takes them, for
// policies.Compile. The configuration has been validated: every level and
// name is known.
func (c *Config) PolicyConfig() policies.Config {
	p := &c.Policies
	out := policies.Config{Defaults: policyRules(p.Defaults), Apps: map[string]policies.AppPolicy{}}
	for _, z := range p.Zones {
		out.Zones = append(out.Zones, policies.Zone{Name: z.Name, Prefixes: z.Networks})
	}
	for i := range p.Applications {
		a := &p.Applications[i]
		ap := policies.AppPolicy{Rules: policyRules(a.Rules()), Admin: a.Admin}
		if e := a.Emergency; e != nil {
			ap.Emergency = &policies.EmergencyPolicy{Allowed: e.Allowed, Lifetime: e.Lifetime, PerPersonPerDay: e.PerPersonPerDay, Reasons: e.Reasons}
		}
		out.Apps[a.ID] = ap
	}
	// The admin console is an administration application whatever the
	// configuration says of it: never emergency access, and at least the
	// console's own level, which the flow then steps up to.
	if c.Admin.Enabled() {
		ap := out.Apps[AdminClientID]
		ap.Admin, ap.Emergency = true, nil
		ap.MinLevel = max(ap.MinLevel, policyLevel(c.Admin.MinLevel))
		out.Apps[AdminClientID] = ap
	}
	return out
}

func policyLevel(s string) assurance.Level {
	l, _ := assurance.ParseACR(s)
	return l
}

func policyRules(r PolicyRules) policies.Rules {
	out := policies.Rules{
		MinLevel: policyLevel(r.MinLevel),
		Methods:  r.Methods,
		Allow: policies.Who{Groups: r.Allow.Groups, Professions: r.Allow.Professions, Specialties: r.Allow.Specialties,
			NationalIDTypes: r.Allow.NationalIDTypes, Finess: r.Allow.Finess},
		Session: policies.Lifetimes{Lifetime: policies.Lifetime{Absolute: r.Session.Lifetime, Idle: r.Session.Idle}},
	}
	if len(r.Zones) > 0 {
		out.Zones = map[string]policies.ZoneRule{}
		for _, z := range r.Zones {
			out.Zones[z.Zone] = policies.ZoneRule{Deny: z.Deny, MinLevel: policyLevel(z.MinLevel)}
		}
	}
	if len(r.Session.PerLevel) > 0 {
		out.Session.PerLevel = map[assurance.Level]policies.Lifetime{}
		for _, pl := range r.Session.PerLevel {
			out.Session.PerLevel[policyLevel(pl.Level)] = policies.Lifetime{Absolute: pl.Lifetime, Idle: pl.Idle}
		}
	}
	for _, c := range r.Conditions {
		out.Conditions = append(out.Conditions, policies.Condition{Expr: c.CEL, Reason: c.Reason, MessageFR: c.MessageFR, MessageEN: c.MessageEN})
	}
	return out
}
