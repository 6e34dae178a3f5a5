// Package policies decides, without any I/O, whether a person may enter an
// application with the authentication they have: allow, deny with a reason
// a person can read, step up to a stronger level, or deny in a way that an
// emergency declaration ("bris de glace") can override. Every decision
// carries a trace of the rules it considered, so that `garde policy test`
// and the admin console can explain it.
//
// Rules come from a default rule set and from each application's own; the
// strictest applicable rule always wins: an application can raise the
// floor or narrow who may enter, never lower or widen what the defaults
// set. See docs/policies.md.
package policies

import (
	"net/netip"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// Sign-in methods, as the flow reports them in Input.Methods and as the
// configuration names them.
const (
	// MethodCard is a CPS card (or staff card) with its PIN.
	MethodCard = "card"
	// MethodPSC is Pro Santé Connect.
	MethodPSC = "psc"
	// MethodPassword is the AD (or static directory) password.
	MethodPassword = "password"
	// MethodPasskey is a passwordless WebAuthn credential.
	MethodPasskey = "passkey"
	// MethodKey is a security key used as a second factor after a
	// password.
	MethodKey = "key"
)

// Methods lists every method, strongest first.
func Methods() []string {
	return []string{MethodCard, MethodPSC, MethodPasskey, MethodKey, MethodPassword}
}

// MaxLevel is the highest level a method can reach on its own (with the
// password before it, for MethodKey). Pro Santé Connect reaches high only
// when the person used their card there (authMode CARD) and substantial
// with the e-CPS app: the table says what is possible, the flow reports
// what was reached in Input.Level.
//
//	card      high
//	psc       high (card) / substantial (e-CPS)
//	passkey   substantial
//	key       substantial (password + key)
//	password  low
func MaxLevel(method string) assurance.Level {
	switch method {
	case MethodCard, MethodPSC:
		return assurance.High
	case MethodPasskey, MethodKey:
		return assurance.Substantial
	case MethodPassword:
		return assurance.Low
	}
	return assurance.None
}

// Emergency reason codes, from the national list TRE_R248_ModeAcces
// ("normal" is not an emergency).
const (
	ReasonBrisDeGlace = "bris_de_glace"
	ReasonCentre15    = "centre_15"
)

// Defaults of an EmergencyPolicy.
const (
	DefaultEmergencyLifetime = 30 * time.Minute
	DefaultEmergencyPerDay   = 3
)

// Config is the whole policy configuration.
type Config struct {
	// Zones are named network zones. An address may be in several; an
	// address in none is in the implicit zone "outside".
	Zones []Zone
	// Defaults apply to every application.
	Defaults Rules
	// Apps are per-application rules, by OIDC client id or SAML entity id.
	Apps map[string]AppPolicy
}

// ZoneOutside is the implicit zone of addresses in no configured zone (and
// of a client address that cannot be parsed).
const ZoneOutside = "outside"

// Zone is a named set of networks.
type Zone struct {
	Name     string
	Prefixes []netip.Prefix
}

// Rules is one rule set: the defaults, or an application's own.
type Rules struct {
	// MinLevel is the floor (None: no floor from this rule set).
	MinLevel assurance.Level
	// Methods are the accepted sign-in methods; nil means all of them (a
	// non-nil empty list is a configuration error). The application's
	// list can only narrow the defaults' list.
	Methods []string
	// Allow says who may enter.
	Allow Who
	// Zones are rules by zone name (ZoneOutside included).
	Zones map[string]ZoneRule
	// Session bounds the session's lifetimes for the application.
	Session Lifetimes
	// Conditions are further CEL conditions; each must hold.
	Conditions []Condition
}

// Who says who may enter. An empty list puts no constraint; the non-empty
// lists all apply (AND across kinds), and a person satisfies one list by
// having any of its values (OR within a kind). When both the defaults and
// the application say who may enter, the person must satisfy both.
type Who struct {
	// Groups are AD group names.
	Groups []string
	// Professions are profession codes (TRE_G15: "10" médecin...), from
	// Pro Santé Connect or the card.
	Professions []string
	// Specialties are codeSavoirFaire values ("SM26"...), of any of the
	// person's professions.
	Specialties []string
	// NationalIDTypes are "rpps", "adeli", "structure" or "other".
	NationalIDTypes []string
	// Finess are FINESS numbers of a place of practice (site or legal
	// entity) of any of the person's professions.
	Finess []string
}

func (w Who) empty() bool {
	return len(w.Groups) == 0 && len(w.Professions) == 0 && len(w.Specialties) == 0 &&
		len(w.NationalIDTypes) == 0 && len(w.Finess) == 0
}

// ZoneRule is what a zone imposes.
type ZoneRule struct {
	// Deny refuses sign-ins from the zone.
	Deny bool
	// MinLevel raises the floor for sign-ins from the zone.
	MinLevel assurance.Level
}

// Lifetime bounds a session: Absolute since sign-in, Idle since last use.
// Zero means no bound from this rule.
type Lifetime struct {
	Absolute, Idle time.Duration
}

// Lifetimes are a rule set's session bounds, with stricter ones per level.
type Lifetimes struct {
	Lifetime
	PerLevel map[assurance.Level]Lifetime
}

// Condition is a CEL expression over the documented input (app, person,
// session, request; docs/policies.md) that must evaluate to true.
type Condition struct {
	Expr string
	// Reason is the stable audit code; a failed condition denies with
	// reason "condition:" + Reason.
	Reason string
	// MessageFR and MessageEN are shown to the person when it fails.
	MessageFR, MessageEN string
}

// AppPolicy is one application's rules.
type AppPolicy struct {
	Rules
	// Admin marks an administration application: never open to emergency
	// access.
	Admin bool
	// Emergency, when Allowed, lets a denied clinician declare an
	// emergency.
	Emergency *EmergencyPolicy
}

// EmergencyPolicy is how emergency access works for an application.
type EmergencyPolicy struct {
	Allowed bool
	// Lifetime of the emergency session; it cannot be renewed. Default
	// 30m.
	Lifetime time.Duration
	// PerPersonPerDay bounds declarations per person per day. Default 3.
	PerPersonPerDay int
	// Reasons accepted, from TRE_R248. Default bris_de_glace, centre_15.
	Reasons []string
}

// Input is everything a decision may look at. The fields are grouped as
// the CEL input is: the person, the session, the request.
type Input struct {
	// App is the client id or SAML entity id.
	App string

	// The person. Subject is empty when nobody has signed in.
	Subject        string
	Groups         []string
	Professions    []connectors.Profession
	NationalIDType string
	Structure      string

	// The session: its level, RFC 8176 AMR values, the methods used
	// (Method* constants), when the factors were proven, and whether it
	// is an emergency session (granted by a declaration for this App).
	Level     assurance.Level
	AMR       []string
	Methods   []string
	AuthTime  time.Time
	Emergency bool

	// The request: the level the application asked for (None if none),
	// whether it is essential (OIDC claims request "essential": true),
	// the client's address as text (clientaddr), and the time.
	Requested  assurance.Level
	Essential  bool
	ClientAddr string
	Now        time.Time
	// EmergenciesToday is how many emergencies this person declared
	// today, counted by the caller (the engine does no I/O).
	EmergenciesToday int
}

// Outcome is the kind of decision.
type Outcome int

const (
	// Allow lets the person in.
	Allow Outcome = iota
	// Deny refuses, with Reason.
	Deny
	// StepUp asks for more authentication: reach Level with one of
	// Methods.
	StepUp
	// EmergencyEligible is a denial that an emergency declaration can
	// override (Decision.Emergency says how).
	EmergencyEligible
)

func (o Outcome) String() string {
	switch o {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case StepUp:
		return "step_up"
	case EmergencyEligible:
		return "emergency_eligible"
	}
	return "unknown"
}

// Decision is the answer to an Input.
type Decision struct {
	Outcome Outcome
	// Level is the floor that applies. StepUp: the level to reach.
	// EmergencyEligible: when above Input.Level, the person must step up
	// to it before declaring the emergency.
	Level assurance.Level
	// Methods are the accepted methods that reach Level (StepUp, and
	// EmergencyEligible with a step-up first).
	Methods []string
	// Reason is a stable code for audit (see docs/policies.md); "" for
	// Allow.
	Reason string
	// MessageFR and MessageEN explain a refusal or step-up to the person.
	MessageFR, MessageEN string
	// Session is the effective session bound for this application at the
	// session's level: the strictest of the defaults, the application,
	// their per-level bounds and, for emergency access, the emergency
	// lifetime (never renewable). Zero fields: no bound from policy.
	Session Lifetime
	// Emergency is the application's emergency policy (EmergencyEligible,
	// and Allow of an emergency session).
	Emergency *EmergencyPolicy
	// Trace is every rule considered, in order, and its effect.
	Trace []Step
}

// Message returns the person's message in lang ("en", else French).
func (d Decision) Message(lang string) string {
	if lang == "en" {
		return d.MessageEN
	}
	return d.MessageFR
}

// Decide is the seam broker/flow calls until it holds an Engine: the
// decision of an engine with no rules (every authenticated person may
// enter).
//
// Deprecated: compile the configured policies once with Compile and call
// Engine.Decide.
func Decide(in Input) Decision {
	return (&Engine{}).Decide(in)
}
