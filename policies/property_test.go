package policies

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// A small vocabulary, so that random people and random rules often meet.
var (
	genGroups      = []string{"medecins", "infirmiers", "urgences", "admin"}
	genProfessions = []string{"10", "21", "60"}
	genSpecialties = []string{"SM26", "SM54"}
	genIDTypes     = []string{"rpps", "adeli", "structure"}
	genFiness      = []string{"750000001", "690000001"}
	genAddrs       = []string{addrLAN, addrBloc, addrVPN, addrOutside, "garbage", ""}
	genZones       = []string{"lan", "vpn", "bloc", ZoneOutside}
	genConditions  = []string{`true`, `false`, `request.zone == "lan"`, `"urgences" in person.groups`, `session.level_rank >= 2`, `request.hour < 12`, `person.groups[3] == "x"`}
)

func pick[T any](r *rand.Rand, list []T) T { return list[r.IntN(len(list))] }

func subset(r *rand.Rand, list []string) []string {
	var out []string
	for _, s := range list {
		if r.IntN(3) == 0 {
			out = append(out, s)
		}
	}
	return out
}

func genRules(r *rand.Rand) Rules {
	var rs Rules
	if r.IntN(2) == 0 {
		rs.MinLevel = assurance.Level(r.IntN(4))
	}
	if r.IntN(3) == 0 {
		rs.Methods = subset(r, Methods())
	}
	if r.IntN(3) == 0 {
		rs.Allow.Groups = subset(r, genGroups)
	}
	if r.IntN(4) == 0 {
		rs.Allow.Professions = subset(r, genProfessions)
	}
	if r.IntN(6) == 0 {
		rs.Allow.Specialties = subset(r, genSpecialties)
	}
	if r.IntN(6) == 0 {
		rs.Allow.NationalIDTypes = subset(r, genIDTypes)
	}
	if r.IntN(6) == 0 {
		rs.Allow.Finess = subset(r, genFiness)
	}
	if r.IntN(2) == 0 {
		rs.Zones = map[string]ZoneRule{}
		for _, z := range subset(r, genZones) {
			rs.Zones[z] = ZoneRule{Deny: r.IntN(4) == 0, MinLevel: assurance.Level(r.IntN(4))}
		}
	}
	if r.IntN(3) == 0 {
		rs.Session.Absolute = time.Duration(1+r.IntN(8)) * time.Hour
	}
	if r.IntN(5) == 0 {
		rs.Conditions = []Condition{{Expr: pick(r, genConditions), Reason: "gen"}}
	}
	return rs
}

func genConfig(r *rand.Rand) Config {
	c := Config{Zones: []Zone{lan, vpn, bloc}, Defaults: genRules(r), Apps: map[string]AppPolicy{}}
	if r.IntN(5) > 0 {
		a := AppPolicy{Rules: genRules(r)}
		if r.IntN(2) == 0 {
			a.Emergency = &EmergencyPolicy{Allowed: true, PerPersonPerDay: 1 + r.IntN(3)}
		}
		c.Apps["dpi"] = a
	}
	return c
}

func genInput(r *rand.Rand) Input {
	in := Input{
		App:            "dpi",
		Subject:        pick(r, []string{"ad:1", "ad:1", "ad:1", ""}),
		Groups:         subset(r, genGroups),
		NationalIDType: pick(r, append([]string{""}, genIDTypes...)),
		Level:          assurance.Level(r.IntN(4)),
		Methods:        subset(r, Methods()),
		ClientAddr:     pick(r, genAddrs),
		Now:            noon.Add(time.Duration(r.IntN(24)) * time.Hour),
		Emergency:      r.IntN(6) == 0,
	}
	if r.IntN(2) == 0 {
		in.Professions = []connectors.Profession{{Code: pick(r, genProfessions), Specialties: subset(r, genSpecialties),
			Activities: []connectors.Activity{{FinessSite: pick(r, genFiness)}}}}
	}
	if r.IntN(2) == 0 {
		in.Requested, in.Essential = assurance.Level(r.IntN(4)), r.IntN(2) == 0
	}
	in.EmergenciesToday = r.IntN(4)
	in.AuthTime = in.Now.Add(-time.Duration(r.IntN(3600)) * time.Second)
	return in
}

// tighten adds one rule to rs (or makes one stricter) and says which.
func tighten(r *rand.Rand, rs *Rules) string {
	narrow := func(list *[]string, vocab []string) {
		if len(*list) > 1 {
			*list = slices.Delete(slices.Clone(*list), 0, 1)
		} else if len(*list) == 0 {
			*list = []string{pick(r, vocab)}
		}
	}
	switch r.IntN(10) {
	case 0:
		rs.MinLevel = min(rs.MinLevel+1, assurance.High)
		return "raise min_level"
	case 1:
		if len(rs.Methods) == 0 {
			rs.Methods = slices.Clone(Methods())
		}
		i := r.IntN(len(rs.Methods))
		rs.Methods = slices.Delete(slices.Clone(rs.Methods), i, i+1)
		return "narrow methods"
	case 2:
		narrow(&rs.Allow.Groups, genGroups)
		return "narrow groups"
	case 3:
		narrow(&rs.Allow.Professions, genProfessions)
		return "narrow professions"
	case 4:
		narrow(&rs.Allow.Finess, genFiness)
		return "narrow finess"
	case 5:
		narrow(&rs.Allow.NationalIDTypes, genIDTypes)
		return "narrow national id types"
	case 6, 7:
		z := pick(r, genZones)
		zones := map[string]ZoneRule{}
		for k, v := range rs.Zones {
			zones[k] = v
		}
		zr := zones[z]
		if r.IntN(2) == 0 {
			zr.Deny = true
		} else {
			zr.MinLevel = min(zr.MinLevel+1, assurance.High)
		}
		zones[z] = zr
		rs.Zones = zones
		return "zone rule on " + z
	case 8:
		rs.Conditions = append(slices.Clone(rs.Conditions), Condition{Expr: pick(r, genConditions), Reason: "added"})
		return "add condition"
	default:
		if rs.Session.Absolute == 0 {
			rs.Session.Absolute = 12 * time.Hour
		}
		rs.Session.Absolute /= 2
		return "shorten session"
	}
}

// floors recomputes, independently of Decide, every floor that applies.
func floors(c Config, in Input) []assurance.Level {
	e := &Engine{zones: c.Zones}
	zones := e.zonesOf(in.ClientAddr)
	sets := []Rules{c.Defaults}
	accepted := Methods()
	if len(c.Defaults.Methods) > 0 {
		accepted = intersect(accepted, c.Defaults.Methods)
	}
	if a, ok := c.Apps[in.App]; ok {
		sets = append(sets, a.Rules)
		if len(a.Methods) > 0 {
			accepted = intersect(accepted, a.Methods)
		}
	}
	var out []assurance.Level
	for _, rs := range sets {
		out = append(out, rs.MinLevel)
		for _, z := range zones {
			out = append(out, rs.Zones[z].MinLevel)
		}
	}
	if in.Requested <= reachOf(accepted) {
		out = append(out, in.Requested)
	}
	return out
}

// TestStrictestWins: over generated configurations and sign-ins, adding any
// rule never turns a refusal into an Allow, an Allow always meets every
// floor that applies, and session bounds only shrink.
func TestStrictestWins(t *testing.T) {
	r := rand.New(rand.NewPCG(2026, 11))
	const cases = 1500
	checked, allowed, tightenedAway := 0, 0, 0
	for i := range cases {
		c := genConfig(r)
		base, err := Compile(c)
		if err != nil {
			continue // an unreachable floor or no method left: not a policy
		}
		c2 := genConfig(r) // fresh maps, then overwrite with a tightened copy of c
		c2.Defaults = c.Defaults
		c2.Apps = map[string]AppPolicy{}
		for k, v := range c.Apps {
			c2.Apps[k] = v
		}
		var what string
		if a, ok := c2.Apps["dpi"]; ok && r.IntN(2) == 0 {
			what = "app: " + tighten(r, &a.Rules)
			c2.Apps["dpi"] = a
		} else {
			what = "defaults: " + tighten(r, &c2.Defaults)
		}
		strict, err := Compile(c2)
		if err != nil {
			continue
		}
		for range 8 {
			in := genInput(r)
			d, d2 := base.Decide(in), strict.Decide(in)
			checked++
			if d2.Outcome == Allow {
				allowed++
				if d.Outcome != Allow {
					t.Fatalf("case %d: adding a rule (%s) turned %s %s into allow\nbefore:\n%s\nafter:\n%s", i, what, d.Outcome, d.Reason, d.Explain("en"), d2.Explain("en"))
				}
				for _, f := range floors(c2, in) {
					if in.Level < f {
						t.Fatalf("case %d: allow at %s below a floor %s\n%s", i, in.Level, f, d2.Explain("en"))
					}
				}
				if d.Session.Absolute != 0 && (d2.Session.Absolute == 0 || d2.Session.Absolute > d.Session.Absolute) {
					t.Fatalf("case %d: adding a rule (%s) lengthened the session from %s to %s", i, what, d.Session.Absolute, d2.Session.Absolute)
				}
			} else if d.Outcome == Allow {
				tightenedAway++
			}
			if d.Outcome == Allow {
				for _, f := range floors(c, in) {
					if in.Level < f {
						t.Fatalf("case %d: allow at %s below a floor %s\n%s", i, in.Level, f, d.Explain("en"))
					}
				}
			}
		}
	}
	// The generator must exercise both sides, or the property is vacuous.
	if checked < 2000 || allowed < 100 || tightenedAway < 50 {
		t.Fatalf("weak generator: %d decisions, %d allowed, %d turned away by a new rule", checked, allowed, tightenedAway)
	}
	t.Logf("%d decisions, %d allowed under the stricter rules, %d turned away by a new rule", checked, allowed, tightenedAway)
}

// FuzzDecide: what a client controls (its address, the level and methods
// reported, group names) never makes Decide panic, and an Allow always
// meets the floors.
func FuzzDecide(f *testing.F) {
	f.Add("10.1.2.3", 2, "password,key", "medecins", 3, false)
	f.Add("::ffff:172.16.0.1", 3, "card", "", 0, true)
	f.Add("fe80::1%eth0", 1, "", "ADMIN", 1, false)
	f.Add("", -4, "sms", "\x00", 9, true)
	c := Config{
		Zones:    []Zone{lan, vpn, bloc},
		Defaults: Rules{Zones: map[string]ZoneRule{ZoneOutside: {MinLevel: assurance.Substantial}}},
		Apps: map[string]AppPolicy{"dpi": {
			Rules: Rules{MinLevel: assurance.Low, Allow: Who{Groups: []string{"medecins"}},
				Zones:      map[string]ZoneRule{"vpn": {MinLevel: assurance.High}, "bloc": {Deny: true}},
				Conditions: []Condition{{Expr: `person.groups.all(g, g.size() < 64)`, Reason: "short"}}},
			Emergency: &EmergencyPolicy{Allowed: true},
		}},
	}
	e, err := Compile(c)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, addr string, level int, methods, group string, requested int, essential bool) {
		in := doctor()
		in.ClientAddr, in.Level, in.Groups = addr, assurance.Level(level), []string{group}
		in.Requested, in.Essential = assurance.Level(requested), essential
		in.Methods = nil
		for m := range splitComma(methods) {
			in.Methods = append(in.Methods, m)
		}
		d := e.Decide(in)
		if d.Outcome == Allow {
			for _, fl := range floors(c, in) {
				if in.Level < fl {
					t.Fatalf("allow at %d below %s", level, fl)
				}
			}
		}
		_ = d.Explain("fr")
	})
}

func splitComma(s string) func(func(string) bool) {
	return func(yield func(string) bool) {
		start := 0
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == ',' {
				if !yield(s[start:i]) {
					return
				}
				start = i + 1
			}
		}
	}
}

// FuzzCheckCondition: no expression an administrator writes makes the
// compiler or the evaluation panic.
func FuzzCheckCondition(f *testing.F) {
	for _, s := range append(slices.Clone(genConditions), `person.grups`, `request.now > timestamp("x")`, `[1,2,3].map(x, x*x).size() > 2`, `"a".matches("(")`, strings10k()) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		e, err := Compile(Config{Apps: map[string]AppPolicy{"dpi": {Rules: Rules{Conditions: []Condition{{Expr: expr, Reason: "fuzz"}}}}}})
		if err != nil {
			if CheckCondition(expr) == nil {
				t.Fatalf("Compile refused %q but CheckCondition accepts it: %v", expr, err)
			}
			return
		}
		d := e.Decide(doctor())
		if d.Outcome == Deny && d.Reason != "condition:fuzz" && d.Reason != "condition_error:fuzz" {
			t.Fatalf("%q: unexpected reason %s", expr, d.Reason)
		}
	})
}

func strings10k() string { return fmt.Sprintf("%q == \"\"", make([]byte, 5000)) }
