package config

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/garde-sso/garde/policies"
)

var (
	zoneName   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	reasonName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	levelNames = []string{"low", "substantial", "high"}
	idTypes    = []string{"rpps", "adeli", "structure", "other"}
)

// maxEmergencyLifetime: emergency access is for the emergency, not for the
// shift.
const maxEmergencyLifetime = 4 * time.Hour

func (v *validator) policies() {
	p := &v.cfg.Policies
	before := v.policyErrors()
	zones := []string{policies.ZoneOutside}
	for i, z := range p.Zones {
		path := index("policies.zones", i)
		switch {
		case z.Name == "":
			v.errorf(path+".name", "is required; expected a zone name such as lan or vpn")
		case z.Name == policies.ZoneOutside:
			v.errorf(path+".name", "%q is the implicit zone of addresses in no zone; expected another name", z.Name)
		case !zoneName.MatchString(z.Name):
			v.errorf(path+".name", "%q is not a zone name; expected lower-case letters, digits, - and _", z.Name)
		case slices.Contains(zones, z.Name):
			v.errorf(path+".name", "%q is already a zone; expected unique zone names", z.Name)
		default:
			zones = append(zones, z.Name)
		}
		if len(z.Networks) == 0 {
			v.keyErrorf(path+".networks", "is required; expected a list of networks such as [10.0.0.0/8]")
		}
		for j, n := range z.Networks {
			if n != n.Masked() {
				v.errorf(index(path+".networks", j), "%s has host bits set; expected %s", n, n.Masked())
			}
		}
	}
	v.policyRules("policies.defaults", p.Defaults, zones)

	clients := map[string]bool{AdminClientID: true}
	for _, c := range v.cfg.Clients {
		clients[c.ID] = true
	}
	for _, sp := range v.cfg.SAML.ServiceProviders {
		clients[sp.EntityID] = true
	}
	ids := map[string]int{}
	for i := range p.Applications {
		a := &p.Applications[i]
		path := index("policies.applications", i)
		switch j, dup := ids[a.ID]; {
		case a.ID == "":
			v.keyErrorf(path+".id", "is required; expected the client id (or SAML entity id) of the application")
		case dup:
			v.errorf(path+".id", "%q already has rules at policies.applications[%d]; expected one entry per application", a.ID, j)
		default:
			ids[a.ID] = i
			if !clients[a.ID] {
				// A typo here would leave the application under the
				// defaults only: refuse it.
				v.errorf(path+".id", "%q names no configured client nor SAML service provider; expected a clients[].id or a saml.service_providers[].entity_id", a.ID)
			}
		}
		v.policyRules(path, a.Rules(), zones)
		if e := a.Emergency; e != nil {
			ep := path + ".emergency"
			if a.Admin && e.Allowed {
				v.errorf(ep+".allowed", "emergency access is never allowed on an administration application (admin: true)")
			}
			if e.Lifetime != 0 {
				v.duration(ep+".lifetime", e.Lifetime, maxEmergencyLifetime)
			}
			if e.PerPersonPerDay < 0 || e.PerPersonPerDay > 50 {
				v.errorf(ep+".per_person_per_day", "%d is out of range; expected a number from 1 to 50 (default %d)", e.PerPersonPerDay, policies.DefaultEmergencyPerDay)
			}
			for j, r := range e.Reasons {
				v.enum(index(ep+".reasons", j), r, "TRE_R248 emergency access mode", policies.ReasonBrisDeGlace, policies.ReasonCentre15)
			}
			v.duplicates(ep+".reasons", e.Reasons, "reason")
		}
	}

	// The engine checks what needs the whole picture (a floor no accepted
	// method reaches, no method left); only worth asking when each piece
	// is valid, so that one mistake is not reported twice.
	if v.policyErrors() > before {
		return
	}
	_, err := policies.Compile(v.cfg.PolicyConfig())
	for _, e := range unjoin(err) {
		var re *policies.RuleError
		if !errors.As(e, &re) {
			v.errorf("policies", "%v", e)
			continue
		}
		base := "policies.defaults"
		if re.App != "" {
			base = index("policies.applications", ids[re.App])
		}
		v.errorf(v.rulePath(base, re.Path), "%v", re.Err)
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// rulePath turns the engine's "zones.vpn.min_level" into the file's
// "zones[1].min_level".
func (v *validator) rulePath(base, rel string) string {
	if name, rest, ok := strings.Cut(strings.TrimPrefix(rel, "zones."), "."); ok && strings.HasPrefix(rel, "zones.") {
		var zr []PolicyZoneRule
		if base == "policies.defaults" {
			zr = v.cfg.Policies.Defaults.Zones
		} else {
			for i := range v.cfg.Policies.Applications {
				if index("policies.applications", i) == base {
					zr = v.cfg.Policies.Applications[i].Zones
				}
			}
		}
		for i, z := range zr {
			if z.Zone == name {
				return join(index(base+".zones", i), rest)
			}
		}
	}
	return join(base, rel)
}

func (v *validator) policyErrors() int {
	n := 0
	for _, e := range v.errs {
		if strings.HasPrefix(e.Path, "policies") {
			n++
		}
	}
	return n
}

func (v *validator) policyLevel(path, s string) {
	if s != "" {
		v.enum(path, s, "level", levelNames...)
	}
}

func (v *validator) policyRules(path string, r PolicyRules, zones []string) {
	v.policyLevel(path+".min_level", r.MinLevel)
	for i, m := range r.Methods {
		v.enum(index(path+".methods", i), m, "sign-in method", policies.Methods()...)
	}
	v.duplicates(path+".methods", r.Methods, "method")
	if r.Methods != nil && len(r.Methods) == 0 {
		v.errorf(path+".methods", "an empty list accepts no method; expected at least one of %s, or no methods key to accept them all", strings.Join(policies.Methods(), ", "))
	}
	for i, t := range r.Allow.NationalIDTypes {
		v.enum(index(path+".allow.national_id_types", i), t, "national id type", idTypes...)
	}
	for i, f := range r.Allow.Finess {
		if len(f) != 9 || strings.Trim(f, "0123456789AB") != "" {
			v.errorf(index(path+".allow.finess", i), "%q is not a FINESS number; expected 9 characters such as 750000001 (2A/2B for Corsica)", f)
		}
	}
	seen := map[string]int{}
	for i, z := range r.Zones {
		zp := index(path+".zones", i)
		if v.enum(zp+".zone", z.Zone, "zone", zones...) {
			if j, dup := seen[z.Zone]; dup {
				v.errorf(zp+".zone", "%q already has a rule at %s; expected one rule per zone", z.Zone, index(path+".zones", j))
			}
			seen[z.Zone] = i
		}
		v.policyLevel(zp+".min_level", z.MinLevel)
		if !z.Deny && z.MinLevel == "" {
			v.errorf(zp, "does nothing; expected deny: true or a min_level")
		}
	}
	s := r.Session
	if s.Lifetime != 0 {
		v.duration(path+".session.lifetime", s.Lifetime, 0)
	}
	if s.Idle != 0 {
		v.duration(path+".session.idle", s.Idle, 0)
	}
	levels := map[string]bool{}
	for i, pl := range s.PerLevel {
		lp := index(path+".session.per_level", i)
		if v.enum(lp+".level", pl.Level, "level", levelNames...) {
			if levels[pl.Level] {
				v.errorf(lp+".level", "%q is listed twice; expected one entry per level", pl.Level)
			}
			levels[pl.Level] = true
		}
		if pl.Lifetime != 0 {
			v.duration(lp+".lifetime", pl.Lifetime, 0)
		}
		if pl.Idle != 0 {
			v.duration(lp+".idle", pl.Idle, 0)
		}
	}
	for i, c := range r.Conditions {
		cp := index(path+".conditions", i)
		if c.CEL == "" {
			v.keyErrorf(cp+".cel", "is required; expected a CEL expression that returns true or false (docs/policies.md)")
		} else if err := policies.CheckCondition(c.CEL); err != nil {
			v.errorf(cp+".cel", "%v", err)
		}
		switch {
		case c.Reason == "":
			v.keyErrorf(cp+".reason", "is required; expected a short code for audit, such as night_only")
		case !reasonName.MatchString(c.Reason):
			v.errorf(cp+".reason", "%q is not a reason code; expected lower-case letters, digits and _, such as night_only", c.Reason)
		}
		if (c.MessageFR == "") != (c.MessageEN == "") {
			v.warnf(cp, "has a message in one language only; people using the other see a generic refusal")
		}
	}
}
