package policies

import (
	"fmt"
	"slices"
	"strings"

	"github.com/garde-sso/garde/internal/assurance"
)

// Step is one rule considered by a decision.
type Step struct {
	// Source is where the rule comes from: "defaults", "application",
	// "request" or "session".
	Source string
	// Rule names it as the configuration does ("min_level",
	// "allow.groups", "zones.vpn", "conditions[0]"...).
	Rule string
	// OK says the rule is satisfied (a floor that is met, a list the
	// person is in); false means it is what denies or asks for more.
	OK bool
	// Effect is what the rule does to the decision, as a code: "floor
	// high", "deny group_not_allowed", "overridden by emergency"...
	Effect string
	// FR and EN say it to a person.
	FR, EN string
}

// denial is an access rule that failed: who, zone or condition.
type denial struct{ reason, fr, en string }

type tracer struct{ steps []Step }

func (t *tracer) add(source, rule string, ok bool, effect, fr, en string) {
	t.steps = append(t.steps, Step{Source: source, Rule: rule, OK: ok, Effect: effect, FR: fr, EN: en})
}

// Decide returns the decision for in. It never fails: anything it cannot
// establish (an unparsable address, a condition that cannot be evaluated)
// is taken the strict way.
//
// Order: an identity is required; an essential level no accepted method
// reaches is refused; an emergency session is valid only where emergency
// access is; then the access rules (who, zone denials, conditions) and the
// strength rules (floor, methods) are all evaluated for the trace, and the
// outcome is Deny or EmergencyEligible if an access rule failed, else
// StepUp if a strength rule failed, else Allow.
func (e *Engine) Decide(in Input) Decision {
	t := &tracer{}
	ca := e.apps[in.App]
	var d Decision
	finish := func(o Outcome, reason string) Decision {
		d.Outcome, d.Reason, d.Trace = o, reason, t.steps
		if reason != "" && d.MessageFR == "" {
			d.MessageFR, d.MessageEN = messages(reason, d)
		}
		return d
	}
	if in.Subject == "" || in.Level == assurance.None {
		t.add("session", "identity", false, "deny not_authenticated", "personne n'est identifié", "nobody has signed in")
		return finish(Deny, "not_authenticated")
	}
	t.add("session", "identity", true, "none", "identifié : "+in.Subject+", niveau "+levelFR(in.Level), "signed in: "+in.Subject+", level "+in.Level.String())

	rules := []struct {
		source string
		r      *compiledRules
	}{{"defaults", &e.defaults}}
	if ca != nil {
		rules = append(rules, struct {
			source string
			r      *compiledRules
		}{"application", &ca.rules})
	} else {
		t.add("application", "-", true, "none", "l'application "+in.App+" n'a pas de règles propres : seules les règles par défaut s'appliquent",
			"application "+in.App+" has no rules of its own: only the defaults apply")
	}
	accepted := e.accepted(ca)
	usable := e.usable(accepted)
	reach := reachOf(usable)
	zones := e.zonesOf(in.ClientAddr)
	t.add("request", "zone", true, "none", "réseau : "+strings.Join(zones, ", "), "network zone: "+strings.Join(zones, ", "))

	// Floors: the strictest applicable one wins.
	floor := assurance.None
	raise := func(source, rule string, l assurance.Level) {
		if l == assurance.None {
			return
		}
		floor = max(floor, l)
		ok := in.Level >= l
		t.add(source, rule, ok, "floor "+l.String(), "niveau minimal "+levelFR(l), "minimum level "+l.String())
	}
	for _, rs := range rules {
		raise(rs.source, "min_level", rs.r.MinLevel)
		for _, z := range zones {
			if zr, ok := rs.r.Zones[z]; ok {
				raise(rs.source, "zones."+z+".min_level", zr.MinLevel)
			}
		}
	}
	if in.Requested != assurance.None {
		switch {
		case in.Requested <= reach:
			raise("request", "requested", in.Requested)
		case in.Essential:
			t.add("request", "requested", false, "deny essential_acr_unreachable",
				"l'application exige le niveau "+levelFR(in.Requested)+" ; les méthodes acceptées n'atteignent que "+levelFR(reach),
				"the application requires level "+in.Requested.String()+"; the accepted methods reach "+reach.String()+" at most")
			d.Level = in.Requested
			return finish(Deny, "essential_acr_unreachable")
		default:
			// A voluntary request is honoured as far as it can be.
			t.add("request", "requested", true, "floor "+reach.String(),
				"niveau demandé "+levelFR(in.Requested)+" (facultatif) ramené à "+levelFR(reach)+", le plus haut possible",
				"requested level "+in.Requested.String()+" (voluntary) capped to "+reach.String()+", the highest reachable")
			raise("request", "requested", reach)
		}
	}
	d.Level = floor

	// Emergency: which policy applies, and whether this session is one.
	var emerg *EmergencyPolicy
	if ca != nil && ca.emergency != nil && !ca.policy.Admin {
		emerg = ca.emergency
	}
	if in.Emergency && emerg == nil {
		// An emergency session was granted for one application; it must
		// never open another, nor one that does not allow emergencies.
		t.add("session", "emergency", false, "deny emergency_not_valid_here",
			"session d'accès en urgence : l'accès en urgence n'est pas prévu pour cette application",
			"emergency session: this application does not allow emergency access")
		return finish(Deny, "emergency_not_valid_here")
	}

	// Access rules: who, zone denials, conditions.
	var denials []denial
	for _, rs := range rules {
		denials = append(denials, e.who(t, rs.source, rs.r.Allow, in)...)
		for _, z := range zones {
			if zr, ok := rs.r.Zones[z]; ok && zr.Deny {
				t.add(rs.source, "zones."+z, false, "deny zone_denied", "accès refusé depuis la zone "+z, "access denied from zone "+z)
				denials = append(denials, denial{reason: "zone_denied"})
			}
		}
	}
	var act map[string]any
	for _, rs := range rules {
		for i, c := range rs.r.conds {
			if act == nil {
				act = e.cel.activation(in, zones)
			}
			rule := fmt.Sprintf("conditions[%d]", i)
			ok, err := c.eval(act)
			switch {
			case err != nil:
				if e.logger != nil {
					e.logger.Warn("policy condition could not be evaluated; access denied",
						"app", in.App, "rule", rs.source+"."+rule, "reason", c.Reason, "err", err)
				}
				t.add(rs.source, rule, false, "deny condition_error:"+c.Reason, "la condition n'a pas pu être évaluée ("+err.Error()+")", "the condition could not be evaluated ("+err.Error()+")")
				denials = append(denials, denial{reason: "condition_error:" + c.Reason})
			case !ok:
				t.add(rs.source, rule, false, "deny condition:"+c.Reason, "condition non remplie : "+c.Expr, "condition not met: "+c.Expr)
				denials = append(denials, denial{reason: "condition:" + c.Reason, fr: c.MessageFR, en: c.MessageEN})
			default:
				t.add(rs.source, rule, true, "none", "condition remplie : "+c.Expr, "condition met: "+c.Expr)
			}
		}
	}

	// Session bounds for this app at this level.
	d.Session = stricter(e.defaults.Session.Lifetime, e.defaults.Session.PerLevel[in.Level])
	if ca != nil {
		d.Session = stricter(d.Session, stricter(ca.rules.Session.Lifetime, ca.rules.Session.PerLevel[in.Level]))
	}
	if emerg != nil && (in.Emergency || len(denials) > 0) {
		// Emergency sessions are short and never renewed: the absolute
		// bound is the emergency lifetime at most.
		d.Session = stricter(d.Session, Lifetime{Absolute: emerg.Lifetime})
		d.Emergency = emerg
	}

	// Strength: methods, then level.
	methodsOK := true
	if len(accepted) < len(Methods()) {
		var bad []string
		for _, m := range in.Methods {
			if !slices.Contains(accepted, m) {
				bad = append(bad, m)
			}
		}
		methodsOK = len(in.Methods) > 0 && len(bad) == 0
		shown := strings.Join(in.Methods, ", ")
		if shown == "" {
			shown = "?"
		}
		t.add("application", "methods", methodsOK, map[bool]string{true: "none", false: "step_up method_not_accepted"}[methodsOK],
			"méthodes utilisées : "+shown+" ; acceptées : "+strings.Join(accepted, ", "),
			"methods used: "+shown+"; accepted: "+strings.Join(accepted, ", "))
	}
	levelOK := in.Level >= floor

	if len(denials) > 0 {
		first := denials[0]
		switch {
		case in.Emergency:
			t.add("session", "emergency", true, "overridden by emergency",
				"accès en urgence déclaré : les règles d'accès ci-dessus sont levées pour cette session",
				"emergency access declared: the access rules above are lifted for this session")
		case emerg != nil && in.EmergenciesToday >= emerg.PerPersonPerDay:
			t.add("application", "emergency.per_person_per_day", false, "deny emergency_limit_reached",
				fmt.Sprintf("%d accès en urgence déclarés aujourd'hui ; limite %d", in.EmergenciesToday, emerg.PerPersonPerDay),
				fmt.Sprintf("%d emergency accesses declared today; limit %d", in.EmergenciesToday, emerg.PerPersonPerDay))
			return finish(Deny, "emergency_limit_reached")
		case emerg != nil:
			t.add("application", "emergency", true, "emergency_eligible",
				"l'accès en urgence (bris de glace) est possible pour cette application",
				"emergency access (break-glass) is possible for this application")
			if !levelOK || !methodsOK {
				d.Level = max(floor, assurance.Low)
				d.Methods = reaching(usable, d.Level)
			}
			d.MessageFR, d.MessageEN = first.fr, first.en
			return finish(EmergencyEligible, first.reason)
		default:
			d.MessageFR, d.MessageEN = first.fr, first.en
			return finish(Deny, first.reason)
		}
	}
	if !methodsOK {
		d.Level = max(floor, assurance.Low)
		d.Methods = reaching(usable, d.Level)
		return finish(StepUp, "method_not_accepted")
	}
	if !levelOK {
		d.Methods = reaching(usable, floor)
		return finish(StepUp, "level_too_low")
	}
	if len(t.steps) > 0 {
		t.add("application", "outcome", true, "allow", "toutes les règles sont satisfaites", "every rule is satisfied")
	}
	return finish(Allow, "")
}

// who checks one Who; each non-empty list the person fails is a denial.
func (e *Engine) who(t *tracer, source string, w Who, in Input) []denial {
	var out []denial
	var codes, specialties, finess []string
	for _, p := range in.Professions {
		codes = append(codes, p.Code)
		specialties = append(specialties, p.Specialties...)
		for _, a := range p.Activities {
			finess = append(finess, a.FinessSite, a.FinessLegal)
		}
	}
	check := func(rule, reason string, allowed, have []string, fold bool, fr, en string) {
		if len(allowed) == 0 {
			return
		}
		ok := anyIn(have, allowed, fold)
		effect := "none"
		if !ok {
			effect = "deny " + reason
			out = append(out, denial{reason: reason})
		}
		t.add(source, rule, ok, effect, fr+" "+strings.Join(allowed, ", ")+" ; la personne : "+orNone(have, "aucun"),
			en+" "+strings.Join(allowed, ", ")+"; the person: "+orNone(have, "none"))
	}
	// AD group names are case-insensitive, as AD compares them.
	check("allow.groups", "group_not_allowed", w.Groups, in.Groups, true, "groupes autorisés :", "allowed groups:")
	check("allow.professions", "profession_not_allowed", w.Professions, codes, false, "professions autorisées :", "allowed professions:")
	check("allow.specialties", "specialty_not_allowed", w.Specialties, specialties, false, "spécialités autorisées :", "allowed specialties:")
	check("allow.national_id_types", "national_id_type_not_allowed", w.NationalIDTypes, nonEmpty(in.NationalIDType), false, "types d'identifiant national autorisés :", "allowed national id types:")
	check("allow.finess", "finess_not_allowed", w.Finess, finess, false, "établissements (FINESS) autorisés :", "allowed establishments (FINESS):")
	return out
}

func anyIn(have, allowed []string, fold bool) bool {
	for _, h := range have {
		if h == "" {
			continue
		}
		for _, a := range allowed {
			if h == a || fold && strings.EqualFold(h, a) {
				return true
			}
		}
	}
	return false
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func orNone(list []string, none string) string {
	var kept []string
	for _, s := range list {
		if s != "" {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		return none
	}
	return strings.Join(kept, ", ")
}
