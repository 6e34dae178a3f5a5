package config

import (
	"net/netip"
	"time"
)

// Policies are per-application access rules (docs/policies.md). Lists
// with names rather than mappings keep every key in the schema.
type Policies struct {
	// Zones are named network zones; an address in none is "outside".
	Zones []PolicyZone `yaml:"zones"`
	// Defaults apply to every application.
	Defaults PolicyRules `yaml:"defaults"`
	// Applications are per-application rules, by OIDC client id or SAML
	// entity id. They can only tighten the defaults.
	Applications []PolicyApplication `yaml:"applications"`
}

// PolicyZone is a named set of networks.
type PolicyZone struct {
	Name     string         `yaml:"name"`
	Networks []netip.Prefix `yaml:"networks"`
}

// PolicyRules is one rule set.
type PolicyRules struct {
	// MinLevel is low, substantial or high.
	MinLevel string `yaml:"min_level"`
	// Methods ⊆ {card, psc, password, passkey, key}; absent: all.
	Methods []string    `yaml:"methods"`
	Allow   PolicyAllow `yaml:"allow"`
	// Zones are rules by zone name ("outside" included).
	Zones      []PolicyZoneRule  `yaml:"zones"`
	Session    PolicySession     `yaml:"session"`
	Conditions []PolicyCondition `yaml:"conditions"`
}

// PolicyApplication is an application's rules: a PolicyRules with an id
// and what only applications have.
type PolicyApplication struct {
	// ID is the OIDC client id or SAML entity id.
	ID         string            `yaml:"id"`
	MinLevel   string            `yaml:"min_level"`
	Methods    []string          `yaml:"methods"`
	Allow      PolicyAllow       `yaml:"allow"`
	Zones      []PolicyZoneRule  `yaml:"zones"`
	Session    PolicySession     `yaml:"session"`
	Conditions []PolicyCondition `yaml:"conditions"`
	// Admin marks an administration application: no emergency access.
	Admin     bool             `yaml:"admin"`
	Emergency *PolicyEmergency `yaml:"emergency"`
}

// Rules returns the application's rule set.
func (a *PolicyApplication) Rules() PolicyRules {
	return PolicyRules{MinLevel: a.MinLevel, Methods: a.Methods, Allow: a.Allow, Zones: a.Zones, Session: a.Session, Conditions: a.Conditions}
}

// PolicyAllow says who may enter: non-empty lists all apply, one value of
// each suffices.
type PolicyAllow struct {
	Groups          []string `yaml:"groups"`
	Professions     []string `yaml:"professions"`
	Specialties     []string `yaml:"specialties"`
	NationalIDTypes []string `yaml:"national_id_types"`
	Finess          []string `yaml:"finess"`
}

// PolicyZoneRule is what a zone imposes.
type PolicyZoneRule struct {
	Zone     string `yaml:"zone"`
	Deny     bool   `yaml:"deny"`
	MinLevel string `yaml:"min_level"`
}

// PolicySession bounds sessions, with stricter bounds per level.
type PolicySession struct {
	Lifetime time.Duration        `yaml:"lifetime"`
	Idle     time.Duration        `yaml:"idle"`
	PerLevel []PolicyLevelSession `yaml:"per_level"`
}

// PolicyLevelSession bounds sessions at one level.
type PolicyLevelSession struct {
	Level    string        `yaml:"level"`
	Lifetime time.Duration `yaml:"lifetime"`
	Idle     time.Duration `yaml:"idle"`
}

// PolicyCondition is a CEL condition that must hold.
type PolicyCondition struct {
	CEL       string `yaml:"cel"`
	Reason    string `yaml:"reason"`
	MessageFR string `yaml:"message_fr"`
	MessageEN string `yaml:"message_en"`
}

// PolicyEmergency is emergency access (bris de glace) for an application.
type PolicyEmergency struct {
	Allowed bool `yaml:"allowed"`
	// Lifetime default 30m, at most 4h.
	Lifetime time.Duration `yaml:"lifetime"`
	// PerPersonPerDay default 3.
	PerPersonPerDay int `yaml:"per_person_per_day"`
	// Reasons ⊆ {bris_de_glace, centre_15}; default both.
	Reasons []string `yaml:"reasons"`
}
