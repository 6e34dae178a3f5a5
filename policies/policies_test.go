package policies

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

var (
	lan = Zone{Name: "lan", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	vpn = Zone{Name: "vpn", Prefixes: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}}
	// bloc is inside lan: an address there is in both zones.
	bloc = Zone{Name: "bloc", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}
)

const (
	addrLAN     = "10.1.2.3"
	addrBloc    = "10.9.0.7"
	addrVPN     = "172.16.5.5"
	addrOutside = "203.0.113.9"
)

// A Wednesday, 10:00 in Paris.
var noon = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// doctor is a hospital doctor signed in with a password and a key.
func doctor() Input {
	return Input{
		App:            "dpi",
		Subject:        "ad:1",
		Groups:         []string{"Medecins", "urgences"},
		NationalIDType: "rpps",
		Professions: []connectors.Profession{{
			Code: "10", Specialties: []string{"SM26"},
			Activities: []connectors.Activity{{FinessSite: "750000001", FinessLegal: "750000000"}},
		}},
		Level:      assurance.Substantial,
		AMR:        []string{"pwd", "hwk"},
		Methods:    []string{MethodPassword, MethodKey},
		AuthTime:   noon.Add(-10 * time.Minute),
		ClientAddr: addrLAN,
		Now:        noon,
	}
}

func compile(t *testing.T, c Config) *Engine {
	t.Helper()
	e, err := Compile(c)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

func app(r Rules) Config {
	return Config{Zones: []Zone{lan, vpn, bloc}, Apps: map[string]AppPolicy{"dpi": {Rules: r}}}
}

func emergencyApp(r Rules) Config {
	c := app(r)
	c.Apps["dpi"] = AppPolicy{Rules: r, Emergency: &EmergencyPolicy{Allowed: true}}
	return c
}

// TestDecide covers every rule type, alone and combined.
func TestDecide(t *testing.T) {
	with := func(f func(*Input)) Input {
		in := doctor()
		f(&in)
		return in
	}
	tests := []struct {
		name    string
		cfg     Config
		in      Input
		outcome Outcome
		reason  string
		level   assurance.Level
		methods []string
	}{
		{"no rules", Config{}, doctor(), Allow, "", assurance.None, nil},
		{"nobody signed in", Config{}, with(func(in *Input) { in.Subject = "" }), Deny, "not_authenticated", 0, nil},
		{"no level", Config{}, with(func(in *Input) { in.Level = assurance.None }), Deny, "not_authenticated", 0, nil},

		// Floors.
		{"app floor met", app(Rules{MinLevel: assurance.Substantial}), doctor(), Allow, "", assurance.Substantial, nil},
		{"app floor not met", app(Rules{MinLevel: assurance.High}), doctor(), StepUp, "level_too_low", assurance.High, []string{MethodCard, MethodPSC}},
		{"default floor over app floor", Config{Defaults: Rules{MinLevel: assurance.High}, Apps: map[string]AppPolicy{"dpi": {Rules: Rules{MinLevel: assurance.Low}}}},
			doctor(), StepUp, "level_too_low", assurance.High, []string{MethodCard, MethodPSC}},
		{"default floor for an app without rules", Config{Defaults: Rules{MinLevel: assurance.High}}, doctor(), StepUp, "level_too_low", assurance.High, []string{MethodCard, MethodPSC}},
		{"requested level", Config{}, with(func(in *Input) { in.Requested = assurance.High }), StepUp, "level_too_low", assurance.High, []string{MethodCard, MethodPSC}},
		{"requested below floor", app(Rules{MinLevel: assurance.Substantial}), with(func(in *Input) { in.Requested = assurance.Low }), Allow, "", assurance.Substantial, nil},
		{"essential level unreachable", app(Rules{Methods: []string{MethodPassword, MethodKey}}), with(func(in *Input) { in.Requested, in.Essential = assurance.High, true }),
			Deny, "essential_acr_unreachable", assurance.High, nil},
		{"voluntary level unreachable is capped", app(Rules{Methods: []string{MethodPassword, MethodKey}}), with(func(in *Input) { in.Requested = assurance.High }),
			Allow, "", assurance.Substantial, nil},
		{"step-up lists only accepted methods", app(Rules{MinLevel: assurance.High, Methods: []string{MethodCard, MethodPassword, MethodKey}}), doctor(),
			StepUp, "level_too_low", assurance.High, []string{MethodCard}},

		// Methods.
		{"method accepted", app(Rules{Methods: []string{MethodPassword, MethodKey}}), doctor(), Allow, "", 0, nil},
		{"method not accepted", app(Rules{Methods: []string{MethodCard, MethodPSC}}), doctor(), StepUp, "method_not_accepted", assurance.Low, []string{MethodCard, MethodPSC}},
		{"second factor not accepted", app(Rules{Methods: []string{MethodPassword}}), doctor(), StepUp, "method_not_accepted", assurance.Low, []string{MethodPassword}},
		{"methods unknown to a restricted app", app(Rules{Methods: []string{MethodCard}}), with(func(in *Input) { in.Methods = nil }), StepUp, "method_not_accepted", assurance.Low, []string{MethodCard}},
		{"defaults narrow methods", Config{Defaults: Rules{Methods: []string{MethodCard}}}, doctor(), StepUp, "method_not_accepted", assurance.Low, []string{MethodCard}},

		// Who.
		{"group allowed (case-insensitive)", app(Rules{Allow: Who{Groups: []string{"medecins", "internes"}}}), doctor(), Allow, "", 0, nil},
		{"group not allowed", app(Rules{Allow: Who{Groups: []string{"pharmaciens"}}}), doctor(), Deny, "group_not_allowed", 0, nil},
		{"profession allowed", app(Rules{Allow: Who{Professions: []string{"21", "10"}}}), doctor(), Allow, "", 0, nil},
		{"profession not allowed", app(Rules{Allow: Who{Professions: []string{"60"}}}), doctor(), Deny, "profession_not_allowed", 0, nil},
		{"no profession known", app(Rules{Allow: Who{Professions: []string{"10"}}}), with(func(in *Input) { in.Professions = nil }), Deny, "profession_not_allowed", 0, nil},
		{"specialty allowed", app(Rules{Allow: Who{Specialties: []string{"SM26"}}}), doctor(), Allow, "", 0, nil},
		{"specialty not allowed", app(Rules{Allow: Who{Specialties: []string{"SM54"}}}), doctor(), Deny, "specialty_not_allowed", 0, nil},
		{"national id type allowed", app(Rules{Allow: Who{NationalIDTypes: []string{"rpps"}}}), doctor(), Allow, "", 0, nil},
		{"national id type not allowed", app(Rules{Allow: Who{NationalIDTypes: []string{"rpps"}}}), with(func(in *Input) { in.NationalIDType = "adeli" }), Deny, "national_id_type_not_allowed", 0, nil},
		{"finess site allowed", app(Rules{Allow: Who{Finess: []string{"750000001"}}}), doctor(), Allow, "", 0, nil},
		{"finess legal allowed", app(Rules{Allow: Who{Finess: []string{"750000000"}}}), doctor(), Allow, "", 0, nil},
		{"finess not allowed", app(Rules{Allow: Who{Finess: []string{"690000000"}}}), doctor(), Deny, "finess_not_allowed", 0, nil},
		{"kinds are ANDed", app(Rules{Allow: Who{Groups: []string{"medecins"}, Professions: []string{"60"}}}), doctor(), Deny, "profession_not_allowed", 0, nil},
		{"defaults and app both apply", Config{Defaults: Rules{Allow: Who{Groups: []string{"personnel"}}}, Apps: map[string]AppPolicy{"dpi": {Rules: Rules{Allow: Who{Groups: []string{"medecins"}}}}}},
			doctor(), Deny, "group_not_allowed", 0, nil},

		// Zones.
		{"zone floor", app(Rules{Zones: map[string]ZoneRule{"vpn": {MinLevel: assurance.High}}}), with(func(in *Input) { in.ClientAddr = addrVPN }),
			StepUp, "level_too_low", assurance.High, []string{MethodCard, MethodPSC}},
		{"zone floor elsewhere", app(Rules{Zones: map[string]ZoneRule{"vpn": {MinLevel: assurance.High}}}), doctor(), Allow, "", 0, nil},
		{"outside denied", app(Rules{Zones: map[string]ZoneRule{ZoneOutside: {Deny: true}}}), with(func(in *Input) { in.ClientAddr = addrOutside }), Deny, "zone_denied", 0, nil},
		{"unparsable address is outside", app(Rules{Zones: map[string]ZoneRule{ZoneOutside: {Deny: true}}}), with(func(in *Input) { in.ClientAddr = "not-an-ip" }), Deny, "zone_denied", 0, nil},
		{"IPv4-mapped IPv6 is in its zone", app(Rules{Zones: map[string]ZoneRule{ZoneOutside: {Deny: true}}}), with(func(in *Input) { in.ClientAddr = "::ffff:10.1.2.3" }), Allow, "", 0, nil},
		{"nested zone: both apply", app(Rules{Zones: map[string]ZoneRule{"lan": {MinLevel: assurance.Substantial}, "bloc": {Deny: true}}}), with(func(in *Input) { in.ClientAddr = addrBloc }), Deny, "zone_denied", assurance.Substantial, nil},
		{"default zone deny", Config{Zones: []Zone{lan}, Defaults: Rules{Zones: map[string]ZoneRule{ZoneOutside: {Deny: true}}}}, with(func(in *Input) { in.ClientAddr = addrOutside }), Deny, "zone_denied", 0, nil},

		// Conditions.
		{"condition true", app(Rules{Conditions: []Condition{{Expr: `"urgences" in person.groups && request.zone == "lan"`, Reason: "urgences"}}}), doctor(), Allow, "", 0, nil},
		{"condition false", app(Rules{Conditions: []Condition{{Expr: `request.hour >= 20 || request.hour < 8`, Reason: "night_only"}}}), doctor(), Deny, "condition:night_only", 0, nil},
		{"condition on the session", app(Rules{Conditions: []Condition{{Expr: `session.auth_age_seconds < 300`, Reason: "recent_auth"}}}), doctor(), Deny, "condition:recent_auth", 0, nil},
		{"condition on professions", app(Rules{Conditions: []Condition{{Expr: `person.professions.exists(p, p.code == "10" && "750000001" in p.finess)`, Reason: "here"}}}), doctor(), Allow, "", 0, nil},
		{"condition error denies", app(Rules{Conditions: []Condition{{Expr: `person.groups[5] == "x"`, Reason: "bad_index"}}}), doctor(), Deny, "condition_error:bad_index", 0, nil},
		{"default condition applies to every app", Config{Defaults: Rules{Conditions: []Condition{{Expr: `app != "dpi"`, Reason: "not_dpi"}}}}, doctor(), Deny, "condition:not_dpi", 0, nil},

		// Access rules are decided before strength: no step-up for someone who may not enter.
		{"denied before step-up", app(Rules{MinLevel: assurance.High, Allow: Who{Groups: []string{"pharmaciens"}}}), doctor(), Deny, "group_not_allowed", assurance.High, nil},

		// Emergency.
		{"emergency eligible (group)", emergencyApp(Rules{Allow: Who{Groups: []string{"pharmaciens"}}}), doctor(), EmergencyEligible, "group_not_allowed", 0, nil},
		{"emergency eligible (zone)", emergencyApp(Rules{Zones: map[string]ZoneRule{"lan": {Deny: true}}}), doctor(), EmergencyEligible, "zone_denied", 0, nil},
		{"emergency eligible (condition)", emergencyApp(Rules{Conditions: []Condition{{Expr: `false`, Reason: "never"}}}), doctor(), EmergencyEligible, "condition:never", 0, nil},
		{"emergency eligible after a step-up", emergencyApp(Rules{MinLevel: assurance.High, Allow: Who{Groups: []string{"pharmaciens"}}}), doctor(),
			EmergencyEligible, "group_not_allowed", assurance.High, []string{MethodCard, MethodPSC}},
		{"no emergency for lack of identity", emergencyApp(Rules{Allow: Who{Groups: []string{"pharmaciens"}}}), with(func(in *Input) { in.Subject = "" }), Deny, "not_authenticated", 0, nil},
		{"no emergency for lack of level", emergencyApp(Rules{MinLevel: assurance.High}), doctor(), StepUp, "level_too_low", assurance.High, []string{MethodCard, MethodPSC}},
		{"no emergency on an essential level", emergencyApp(Rules{Methods: []string{MethodPassword}, Allow: Who{Groups: []string{"x"}}}), with(func(in *Input) {
			in.Requested, in.Essential, in.Methods = assurance.High, true, []string{MethodPassword}
		}),
			Deny, "essential_acr_unreachable", assurance.High, nil},
		{"emergency limit reached", emergencyApp(Rules{Allow: Who{Groups: []string{"pharmaciens"}}}), with(func(in *Input) { in.EmergenciesToday = 3 }), Deny, "emergency_limit_reached", 0, nil},
		{"emergency session lifts access rules", emergencyApp(Rules{Allow: Who{Groups: []string{"pharmaciens"}}}), with(func(in *Input) { in.Emergency = true }), Allow, "", 0, nil},
		{"emergency session still needs the level", emergencyApp(Rules{MinLevel: assurance.High, Allow: Who{Groups: []string{"pharmaciens"}}}), with(func(in *Input) { in.Emergency = true }),
			StepUp, "level_too_low", assurance.High, []string{MethodCard, MethodPSC}},
		{"emergency session elsewhere", app(Rules{}), with(func(in *Input) { in.Emergency = true }), Deny, "emergency_not_valid_here", 0, nil},
		{"emergency session on an app without rules", Config{}, with(func(in *Input) { in.Emergency = true }), Deny, "emergency_not_valid_here", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := compile(t, tt.cfg).Decide(tt.in)
			if d.Outcome != tt.outcome || d.Reason != tt.reason {
				t.Fatalf("Decide = %s %q, want %s %q\n%s", d.Outcome, d.Reason, tt.outcome, tt.reason, d.Explain("en"))
			}
			if d.Level != tt.level {
				t.Errorf("Level = %s, want %s", d.Level, tt.level)
			}
			if !slices.Equal(d.Methods, tt.methods) {
				t.Errorf("Methods = %v, want %v", d.Methods, tt.methods)
			}
			if d.Outcome != Allow && (d.MessageFR == "" || d.MessageEN == "" || d.MessageFR == d.MessageEN) {
				t.Errorf("messages fr %q en %q", d.MessageFR, d.MessageEN)
			}
			if len(d.Trace) == 0 {
				t.Error("no trace")
			}
			if d.Outcome == EmergencyEligible && (d.Emergency == nil || d.Emergency.Lifetime != DefaultEmergencyLifetime || d.Session.Absolute != DefaultEmergencyLifetime) {
				t.Errorf("emergency policy %+v, session %+v", d.Emergency, d.Session)
			}
		})
	}
}

func TestConditionMessages(t *testing.T) {
	e := compile(t, app(Rules{Conditions: []Condition{{Expr: `false`, Reason: "closed", MessageFR: "Fermé la nuit.", MessageEN: "Closed at night."}}}))
	d := e.Decide(doctor())
	if d.Message("fr") != "Fermé la nuit." || d.Message("en") != "Closed at night." {
		t.Errorf("messages: %q %q", d.MessageFR, d.MessageEN)
	}
}

// CEL sees the documented input.
func TestConditionInput(t *testing.T) {
	in := doctor()
	in.ClientAddr = addrBloc
	in.Requested = assurance.Substantial
	in.AMR = []string{"pwd", "hwk"}
	for _, expr := range []string{
		`app == "dpi"`,
		`person.subject == "ad:1" && person.national_id_type == "rpps" && person.structure == ""`,
		`person.groups == ["Medecins", "urgences"]`,
		`person.professions[0].code == "10" && person.professions[0].specialties == ["SM26"] && person.professions[0].finess == ["750000001", "750000000"]`,
		`session.level == "substantial" && session.level_rank == 2 && session.amr == ["pwd", "hwk"] && session.methods == ["password", "key"]`,
		`session.auth_age_seconds == 600 && !session.emergency`,
		`request.zone == "lan" && request.zones == ["lan", "bloc"] && request.client_addr == "10.9.0.7"`,
		`request.requested_level == "substantial" && !request.essential`,
		`request.now == timestamp("2026-11-25T09:00:00Z") && request.weekday == 3 && request.hour == 10`,
		`request.now.getHours("Europe/Paris") == 10`,
		`person.subject.startsWith("ad:")`,
	} {
		e := compile(t, app(Rules{Conditions: []Condition{{Expr: expr, Reason: "r"}}}))
		if d := e.Decide(in); d.Outcome != Allow {
			t.Errorf("%s: %s %s\n%s", expr, d.Outcome, d.Reason, d.Explain("en"))
		}
	}
}

// Summer time: the hour is Paris's wall clock.
func TestConditionHourSummer(t *testing.T) {
	in := doctor()
	in.Now = time.Date(2026, 7, 1, 22, 30, 0, 0, time.UTC) // 00:30 on Thursday in Paris
	e := compile(t, app(Rules{Conditions: []Condition{{Expr: `request.hour == 0 && request.weekday == 4`, Reason: "r"}}}))
	if d := e.Decide(in); d.Outcome != Allow {
		t.Errorf("%s", d.Explain("en"))
	}
}

func TestCostLimit(t *testing.T) {
	// Quadratic over a long list: compiles, but evaluation stops at the
	// cost limit and the condition denies.
	e := compile(t, app(Rules{Conditions: []Condition{{Expr: `person.groups.all(a, person.groups.all(b, person.groups.all(c, a + b + c != "")))`, Reason: "costly"}}}))
	in := doctor()
	for i := range 200 {
		in.Groups = append(in.Groups, strings.Repeat("g", i%7+1))
	}
	d := e.Decide(in)
	if d.Outcome != Deny || d.Reason != "condition_error:costly" {
		t.Fatalf("%s %s", d.Outcome, d.Reason)
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		app  string
		path string
		want string
	}{
		{"CEL syntax", app(Rules{Conditions: []Condition{{Expr: `person.groups.exists(g, `, Reason: "r"}}}), "dpi", "conditions[0].cel", "Syntax error"},
		{"CEL unknown field", app(Rules{Conditions: []Condition{{Expr: `true`, Reason: "r"}, {Expr: `person.grups == []`, Reason: "r"}}}), "dpi", "conditions[1].cel", "undefined field 'grups'"},
		{"CEL unknown variable", Config{Defaults: Rules{Conditions: []Condition{{Expr: `user.name == "x"`, Reason: "r"}}}}, "", "conditions[0].cel", "undeclared reference to 'user'"},
		{"CEL not bool", app(Rules{Conditions: []Condition{{Expr: `request.hour`, Reason: "r"}}}), "dpi", "conditions[0].cel", "returns int; expected bool"},
		{"CEL type error", app(Rules{Conditions: []Condition{{Expr: `request.hour == "10"`, Reason: "r"}}}), "dpi", "conditions[0].cel", "no matching overload"},
		{"CEL empty", app(Rules{Conditions: []Condition{{Expr: ` `, Reason: "r"}}}), "dpi", "conditions[0].cel", "empty"},
		{"reason", app(Rules{Conditions: []Condition{{Expr: `true`, Reason: "Night Only"}}}), "dpi", "conditions[0].reason", "not a reason code"},
		{"unknown method", app(Rules{Methods: []string{"sms"}}), "dpi", "methods[0]", `"sms" is not a sign-in method`},
		{"methods emptied", app(Rules{Methods: []string{}}), "dpi", "methods", "accepts no method"},
		{"no method left", Config{Defaults: Rules{Methods: []string{MethodCard}}, Apps: map[string]AppPolicy{"dpi": {Rules: Rules{Methods: []string{MethodPassword}}}}}, "dpi", "methods", "nobody could sign in"},
		{"unreachable floor", app(Rules{MinLevel: assurance.High, Methods: []string{MethodPassword, MethodKey}}), "dpi", "min_level", "high cannot be reached"},
		{"unreachable zone floor", app(Rules{Methods: []string{MethodPassword}, Zones: map[string]ZoneRule{"vpn": {MinLevel: assurance.Substantial}}}), "dpi", "zones.vpn.min_level", "cannot be reached"},
		{"unknown zone", app(Rules{Zones: map[string]ZoneRule{"wifi": {Deny: true}}}), "dpi", "zones.wifi", "not a configured zone"},
		{"bad level", app(Rules{MinLevel: 7}), "dpi", "min_level", "not a level"},
		{"emergency on admin", Config{Apps: map[string]AppPolicy{"admin": {Admin: true, Emergency: &EmergencyPolicy{Allowed: true}}}}, "admin", "emergency", "never allowed on an administration application"},
		{"emergency reason", Config{Apps: map[string]AppPolicy{"dpi": {Emergency: &EmergencyPolicy{Allowed: true, Reasons: []string{"normal"}}}}}, "dpi", "emergency.reasons[0]", "not an emergency access mode"},
		{"zone outside defined", Config{Zones: []Zone{{Name: ZoneOutside, Prefixes: lan.Prefixes}}}, "", "zones[0]", "implicit zone"},
		{"zone twice", Config{Zones: []Zone{lan, lan}}, "", "zones[1]", "defined twice"},
		{"zone empty", Config{Zones: []Zone{{Name: "x"}}}, "", "zones[0]", "no networks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.cfg)
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("Compile: %v, want a RuleError", err)
			}
			if re.App != tt.app || re.Path != tt.path || !strings.Contains(re.Err.Error(), tt.want) {
				t.Errorf("got app %q path %q: %v; want app %q path %q containing %q", re.App, re.Path, re.Err, tt.app, tt.path, tt.want)
			}
			if err := CheckCondition(`person.grups == []`); err == nil {
				t.Error("CheckCondition accepted an unknown field")
			}
		})
	}
}

func TestEmergencyDefaultsAndLifetimes(t *testing.T) {
	c := app(Rules{Session: Lifetimes{Lifetime: Lifetime{Absolute: 8 * time.Hour, Idle: 20 * time.Minute},
		PerLevel: map[assurance.Level]Lifetime{assurance.Substantial: {Absolute: 2 * time.Hour}}}})
	c.Defaults.Session = Lifetimes{Lifetime: Lifetime{Absolute: 4 * time.Hour, Idle: 30 * time.Minute}}
	e := compile(t, c)
	d := e.Decide(doctor())
	if d.Outcome != Allow || d.Session != (Lifetime{Absolute: 2 * time.Hour, Idle: 20 * time.Minute}) {
		t.Errorf("session bounds %+v (%s)", d.Session, d.Outcome)
	}
	in := doctor()
	in.Level = assurance.High
	if d := e.Decide(in); d.Session != (Lifetime{Absolute: 4 * time.Hour, Idle: 20 * time.Minute}) {
		t.Errorf("session bounds at high %+v", d.Session)
	}

	c.Apps["dpi"] = AppPolicy{Rules: Rules{Allow: Who{Groups: []string{"x"}}}, Emergency: &EmergencyPolicy{Allowed: true, Lifetime: 10 * time.Minute, PerPersonPerDay: 1, Reasons: []string{ReasonCentre15}}}
	e = compile(t, c)
	in = doctor()
	in.Emergency = true
	d = e.Decide(in)
	if d.Outcome != Allow || d.Session.Absolute != 10*time.Minute || d.Emergency == nil || !slices.Equal(d.Emergency.Reasons, []string{ReasonCentre15}) {
		t.Errorf("emergency session: %s %+v %+v", d.Outcome, d.Session, d.Emergency)
	}
	in.Emergency, in.EmergenciesToday = false, 1
	if d := e.Decide(in); d.Reason != "emergency_limit_reached" {
		t.Errorf("limit 1: %s %s", d.Outcome, d.Reason)
	}
}

func TestEffective(t *testing.T) {
	c := Config{
		Zones: []Zone{lan, vpn},
		Defaults: Rules{MinLevel: assurance.Low, Methods: []string{MethodCard, MethodPassword, MethodKey}, Allow: Who{Groups: []string{"personnel"}},
			Zones: map[string]ZoneRule{"vpn": {MinLevel: assurance.Substantial}}, Session: Lifetimes{Lifetime: Lifetime{Absolute: 4 * time.Hour}}},
		Apps: map[string]AppPolicy{"dpi": {Rules: Rules{MinLevel: assurance.Substantial, Methods: []string{MethodCard, MethodKey, MethodPSC},
			Allow: Who{Professions: []string{"10"}}, Zones: map[string]ZoneRule{"vpn": {Deny: true}}, Session: Lifetimes{Lifetime: Lifetime{Absolute: 8 * time.Hour, Idle: time.Hour}}}}},
	}
	e := compile(t, c)
	got := e.Effective("dpi")
	if !got.Own || got.MinLevel != assurance.Substantial || !slices.Equal(got.Methods, []string{MethodCard, MethodKey}) || len(got.Allow) != 2 ||
		got.Zones["vpn"] != (ZoneRule{Deny: true, MinLevel: assurance.Substantial}) || got.Session.Lifetime != (Lifetime{Absolute: 4 * time.Hour, Idle: time.Hour}) {
		t.Errorf("Effective(dpi) = %+v", got)
	}
	if other := e.Effective("other"); other.Own || other.MinLevel != assurance.Low || len(other.Methods) != 3 {
		t.Errorf("Effective(other) = %+v", other)
	}
}

func TestExplain(t *testing.T) {
	e := compile(t, emergencyApp(Rules{MinLevel: assurance.Substantial, Allow: Who{Groups: []string{"pharmaciens"}}, Zones: map[string]ZoneRule{"lan": {MinLevel: assurance.Low}}}))
	d := e.Decide(doctor())
	fr, en := d.Explain("fr"), d.Explain("en")
	for _, want := range []string{"Décision : refusé, accès en urgence possible (group_not_allowed)", "✗ application.allow.groups", "groupes autorisés : pharmaciens", "✓ application.min_level", "Accès en urgence : durée 30m0s"} {
		if !strings.Contains(fr, want) {
			t.Errorf("fr lacks %q:\n%s", want, fr)
		}
	}
	for _, want := range []string{"Decision: denied, emergency access possible (group_not_allowed)", "allowed groups: pharmaciens; the person: Medecins, urgences", "→ deny group_not_allowed"} {
		if !strings.Contains(en, want) {
			t.Errorf("en lacks %q:\n%s", want, en)
		}
	}
}

// The seam kept for broker/flow until it holds an Engine.
func TestDecideSeam(t *testing.T) {
	if d := Decide(Input{App: "patients", Level: assurance.Low}); d.Outcome != Deny || d.Reason != "not_authenticated" {
		t.Errorf("no subject: %+v, want deny not_authenticated", d)
	}
	if d := Decide(Input{App: "patients", Subject: "ad:1", Level: assurance.Low}); d.Outcome != Allow {
		t.Errorf("authenticated: %+v, want allow", d)
	}
}
