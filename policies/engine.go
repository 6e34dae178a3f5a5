package policies

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/garde-sso/garde/internal/assurance"
)

// Engine holds compiled policies. It is immutable and safe for concurrent
// use. The zero Engine has no rules: every authenticated person may enter.
type Engine struct {
	zones    []Zone
	defaults compiledRules
	apps     map[string]*compiledApp
	cel      *celEnv
	logger   *slog.Logger
	// available are the methods this deployment offers (nil: all).
	available []string
}

type compiledRules struct {
	Rules
	conds []compiledCondition
}

type compiledApp struct {
	policy AppPolicy
	rules  compiledRules
	// accepted is the intersection of the defaults' and the app's methods.
	accepted []string
	// emergency is the effective emergency policy (nil: none).
	emergency *EmergencyPolicy
}

// Option configures Compile.
type Option func(*Engine)

// WithLogger logs conditions that fail to evaluate (they deny).
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.logger = l } }

// WithAvailableMethods says which methods this deployment offers (no card
// connector: no "card"; WebAuthn off: no "key" nor "passkey"). A level only
// unavailable methods reach is not asked for: a voluntary request is
// capped to what can be reached here, an essential one is refused, and a
// step-up only names methods a person can use.
func WithAvailableMethods(methods []string) Option {
	return func(e *Engine) { e.available = slices.Clone(methods) }
}

// usable are the accepted methods this deployment offers.
func (e *Engine) usable(accepted []string) []string {
	if e.available == nil {
		return accepted
	}
	return intersect(accepted, e.available)
}

// RuleError is a problem in one rule, located so that the configuration
// can name the file and line: App is "" for the defaults, Path is relative
// to the rule set ("conditions[0].cel", "zones.vpn.min_level", ...).
type RuleError struct {
	App  string
	Path string
	Err  error
}

func (e *RuleError) Error() string {
	where := "defaults"
	if e.App != "" {
		where = fmt.Sprintf("application %q", e.App)
	}
	return fmt.Sprintf("policies: %s: %s: %v", where, e.Path, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// reasonCode is what a condition's reason may look like: it ends up in
// audit events and metrics labels.
var reasonCode = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Compile checks and compiles c. CEL conditions are type-checked and must
// return a bool. Every problem is returned (errors.Join of *RuleError).
func Compile(c Config, opts ...Option) (*Engine, error) {
	e := &Engine{apps: map[string]*compiledApp{}}
	for _, o := range opts {
		o(e)
	}
	var errs []error
	fail := func(app, path, format string, args ...any) {
		errs = append(errs, &RuleError{App: app, Path: path, Err: fmt.Errorf(format, args...)})
	}
	known := map[string]bool{ZoneOutside: true}
	for i, z := range c.Zones {
		path := fmt.Sprintf("zones[%d]", i)
		switch {
		case z.Name == "":
			fail("", path, "a zone needs a name")
		case z.Name == ZoneOutside:
			fail("", path, "%q is the implicit zone of addresses in no zone; it cannot be defined", ZoneOutside)
		case known[z.Name]:
			fail("", path, "zone %q is defined twice", z.Name)
		}
		if len(z.Prefixes) == 0 {
			fail("", path, "zone %q has no networks", z.Name)
		}
		for _, p := range z.Prefixes {
			if !p.IsValid() {
				fail("", path, "zone %q has an invalid network", z.Name)
			}
		}
		known[z.Name] = true
		e.zones = append(e.zones, Zone{Name: z.Name, Prefixes: slices.Clone(z.Prefixes)})
	}

	needCEL := len(c.Defaults.Conditions) > 0
	for _, a := range c.Apps {
		needCEL = needCEL || len(a.Conditions) > 0
	}
	if needCEL {
		env, err := newCELEnv()
		if err != nil {
			return nil, fmt.Errorf("policies: CEL environment: %w", err)
		}
		e.cel = env
	}

	all := Methods()
	defAccepted := all
	if len(c.Defaults.Methods) > 0 {
		defAccepted = intersect(all, c.Defaults.Methods)
	}
	e.defaults = e.compileRules("", c.Defaults, known, defAccepted, fail)

	for _, id := range slices.Sorted(maps.Keys(c.Apps)) {
		a := c.Apps[id]
		if id == "" {
			fail("", "applications", "an application needs an id")
			continue
		}
		accepted := defAccepted
		if len(a.Methods) > 0 {
			accepted = intersect(defAccepted, a.Methods)
			if len(accepted) == 0 && !slices.ContainsFunc(a.Methods, func(m string) bool { return MaxLevel(m) == assurance.None }) {
				fail(id, "methods", "none of %s is accepted by the defaults (%s): nobody could sign in", strings.Join(a.Methods, ", "), strings.Join(defAccepted, ", "))
			}
		}
		ca := &compiledApp{policy: a, accepted: accepted}
		ca.rules = e.compileRules(id, a.Rules, known, accepted, fail)
		if em := a.Emergency; em != nil && em.Allowed {
			if a.Admin {
				// An emergency is a clinician reaching a patient's
				// record; nothing justifies it on an administration
				// console, where it would be a way around every rule.
				fail(id, "emergency", "emergency access is never allowed on an administration application")
			}
			p := *em
			if p.Lifetime == 0 {
				p.Lifetime = DefaultEmergencyLifetime
			}
			if p.PerPersonPerDay == 0 {
				p.PerPersonPerDay = DefaultEmergencyPerDay
			}
			if len(p.Reasons) == 0 {
				p.Reasons = []string{ReasonBrisDeGlace, ReasonCentre15}
			}
			p.Reasons = slices.Clone(p.Reasons)
			if p.Lifetime < 0 {
				fail(id, "emergency.lifetime", "must be positive")
			}
			if p.PerPersonPerDay < 0 {
				fail(id, "emergency.per_person_per_day", "must be positive")
			}
			for i, r := range p.Reasons {
				if r != ReasonBrisDeGlace && r != ReasonCentre15 {
					fail(id, fmt.Sprintf("emergency.reasons[%d]", i), "%q is not an emergency access mode of TRE_R248; expected %s or %s", r, ReasonBrisDeGlace, ReasonCentre15)
				}
			}
			ca.emergency = &p
		}
		e.apps[id] = ca
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

func (e *Engine) compileRules(app string, r Rules, zones map[string]bool, accepted []string, fail func(app, path, format string, args ...any)) compiledRules {
	reach := reachOf(accepted)
	level := func(path string, l assurance.Level) {
		switch {
		case l < assurance.None || l > assurance.High:
			fail(app, path, "level %d is not a level; expected low, substantial or high", int(l))
		case l > reach && len(accepted) > 0:
			// A floor no accepted method reaches locks everyone out:
			// better said when the configuration loads.
			fail(app, path, "%s cannot be reached with the accepted methods (%s reach %s at most)", l, strings.Join(accepted, ", "), reach)
		}
	}
	level("min_level", r.MinLevel)
	if r.Methods != nil && len(r.Methods) == 0 {
		// Empty means "all" only when the list is absent: a list emptied
		// by removing its last method must not open every method.
		fail(app, "methods", "an empty list accepts no method; expected at least one method, or no methods key to accept them all")
	}
	for i, m := range r.Methods {
		if MaxLevel(m) == assurance.None {
			fail(app, fmt.Sprintf("methods[%d]", i), "%q is not a sign-in method; expected one of %s", m, strings.Join(Methods(), ", "))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Zones)) {
		if !zones[name] {
			fail(app, "zones."+name, "%q is not a configured zone; expected %s or one of policies.zones", name, ZoneOutside)
		}
		level("zones."+name+".min_level", r.Zones[name].MinLevel)
	}
	lt := func(path string, l Lifetime) {
		if l.Absolute < 0 || l.Idle < 0 {
			fail(app, path, "durations must be positive")
		}
	}
	lt("session", r.Session.Lifetime)
	for l, v := range r.Session.PerLevel {
		if l < assurance.Low || l > assurance.High {
			fail(app, "session.per_level", "level %d is not a level; expected low, substantial or high", int(l))
		}
		lt("session.per_level."+l.String(), v)
	}
	out := compiledRules{Rules: r}
	for i, c := range r.Conditions {
		path := fmt.Sprintf("conditions[%d]", i)
		if !reasonCode.MatchString(c.Reason) {
			fail(app, path+".reason", "%q is not a reason code; expected lower-case letters, digits and _ (e.g. night_only)", c.Reason)
		}
		prg, err := e.cel.compile(c.Expr)
		if err != nil {
			fail(app, path+".cel", "%v", err)
			continue
		}
		out.conds = append(out.conds, compiledCondition{Condition: c, prg: prg})
	}
	return out
}

// CheckCondition compiles a CEL condition alone, as Compile would: the
// configuration validator uses it to report each expression's problem at
// its own line.
func CheckCondition(expr string) error {
	env, err := newCELEnv()
	if err != nil {
		return err
	}
	_, err = env.compile(expr)
	return err
}

func intersect(a, b []string) []string {
	var out []string
	for _, m := range a {
		if slices.Contains(b, m) {
			out = append(out, m)
		}
	}
	return out
}

// reachOf is the highest level any of methods reaches.
func reachOf(methods []string) assurance.Level {
	r := assurance.None
	for _, m := range methods {
		r = max(r, MaxLevel(m))
	}
	return r
}

// reaching lists the methods that reach level.
func reaching(methods []string, level assurance.Level) []string {
	var out []string
	for _, m := range methods {
		if MaxLevel(m) >= level {
			out = append(out, m)
		}
	}
	return out
}

// zonesOf lists the zones an address is in; ZoneOutside when none, or when
// the address cannot be parsed (it proves nothing about where the person
// is, so the most exposed zone's rules apply).
func (e *Engine) zonesOf(addr string) []string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return []string{ZoneOutside}
	}
	a = a.Unmap().WithZone("")
	var out []string
	for _, z := range e.zones {
		for _, p := range z.Prefixes {
			if p.Contains(a) {
				out = append(out, z.Name)
				break
			}
		}
	}
	if len(out) == 0 {
		return []string{ZoneOutside}
	}
	return out
}

// Effective is an application's effective policy: what Decide applies to
// it, the defaults and its own rules combined, strictest first.
type Effective struct {
	App string
	// Own says whether the application has rules of its own.
	Own      bool
	MinLevel assurance.Level
	Methods  []string
	// Allow lists every Who that applies (defaults, then the
	// application's); the person must satisfy each.
	Allow []Who
	// Zones merges zone rules: denied if either denies, the higher floor.
	Zones map[string]ZoneRule
	// Session is the strictest of both rule sets, per level too.
	Session    Lifetimes
	Conditions []Condition
	Admin      bool
	Emergency  *EmergencyPolicy
}

// Effective returns app's effective policy (for the admin console).
func (e *Engine) Effective(app string) Effective {
	ca := e.apps[app]
	out := Effective{App: app, Zones: map[string]ZoneRule{}, MinLevel: e.defaults.MinLevel, Methods: e.accepted(ca)}
	sets := []Rules{e.defaults.Rules}
	if ca != nil {
		out.Own, out.Admin, out.Emergency = true, ca.policy.Admin, ca.emergency
		sets = append(sets, ca.rules.Rules)
	}
	out.Session.PerLevel = map[assurance.Level]Lifetime{}
	for _, r := range sets {
		out.MinLevel = max(out.MinLevel, r.MinLevel)
		if !r.Allow.empty() {
			out.Allow = append(out.Allow, r.Allow)
		}
		for name, zr := range r.Zones {
			cur := out.Zones[name]
			out.Zones[name] = ZoneRule{Deny: cur.Deny || zr.Deny, MinLevel: max(cur.MinLevel, zr.MinLevel)}
		}
		out.Session.Lifetime = stricter(out.Session.Lifetime, r.Session.Lifetime)
		for l, v := range r.Session.PerLevel {
			out.Session.PerLevel[l] = stricter(out.Session.PerLevel[l], v)
		}
		out.Conditions = append(out.Conditions, r.Conditions...)
	}
	return out
}

func (e *Engine) accepted(ca *compiledApp) []string {
	if ca != nil {
		return slices.Clone(ca.accepted)
	}
	if len(e.defaults.Methods) > 0 {
		return intersect(Methods(), e.defaults.Methods)
	}
	return Methods()
}

// stricter combines two bounds: the shorter of each, zero meaning none.
func stricter(a, b Lifetime) Lifetime {
	return Lifetime{Absolute: minBound(a.Absolute, b.Absolute), Idle: minBound(a.Idle, b.Idle)}
}

func minBound(a, b time.Duration) time.Duration {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
