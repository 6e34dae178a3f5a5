package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/policies"
)

// policiesBase is base with one client, so that application rules can name
// it; policies blocks are appended from line 13.
var policiesBase = base + `clients:
  - id: dpi
    secret: ${APP_SECRET}
    redirect_uris: [https://dpi.example.fr/cb]
`

const policiesYAML = `policies:
  zones:
    - {name: lan, networks: [10.0.0.0/8]}
    - {name: vpn, networks: [172.16.0.0/12]}
  defaults:
    min_level: low
    methods: [card, psc, password, passkey, key]
    zones:
      - {zone: outside, min_level: substantial}
    session:
      lifetime: 4h
      idle: 30m
      per_level:
        - {level: low, lifetime: 2h}
  applications:
    - id: dpi
      min_level: substantial
      allow: {groups: [medecins], professions: ["10"], national_id_types: [rpps], finess: ["750000001"]}
      zones:
        - {zone: outside, deny: true}
        - {zone: vpn, min_level: high}
      conditions:
        - cel: 'request.hour >= 7 && request.hour < 21'
          reason: day_only
          message_fr: "Accessible de 7 h à 21 h."
          message_en: "Open from 7am to 9pm."
      emergency: {allowed: true, lifetime: 20m, per_person_per_day: 2, reasons: [bris_de_glace]}
`

func TestPolicies(t *testing.T) {
	cfg, err := Parse("garde.yaml", []byte(policiesBase+policiesYAML), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if w := policyWarnings(cfg); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	pc := cfg.PolicyConfig()
	if len(pc.Zones) != 2 || pc.Zones[1].Name != "vpn" || pc.Zones[1].Prefixes[0] != netip.MustParsePrefix("172.16.0.0/12") {
		t.Errorf("zones: %+v", pc.Zones)
	}
	if pc.Defaults.MinLevel != assurance.Low || pc.Defaults.Zones[policies.ZoneOutside].MinLevel != assurance.Substantial ||
		pc.Defaults.Session.Absolute != 4*time.Hour || pc.Defaults.Session.PerLevel[assurance.Low].Absolute != 2*time.Hour {
		t.Errorf("defaults: %+v", pc.Defaults)
	}
	dpi := pc.Apps["dpi"]
	if dpi.MinLevel != assurance.Substantial || !dpi.Zones[policies.ZoneOutside].Deny || dpi.Zones["vpn"].MinLevel != assurance.High ||
		dpi.Allow.Groups[0] != "medecins" || dpi.Conditions[0].Reason != "day_only" || dpi.Emergency == nil || dpi.Emergency.Lifetime != 20*time.Minute {
		t.Errorf("dpi: %+v", dpi)
	}
	e, err := policies.Compile(pc)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.Effective("dpi"); got.MinLevel != assurance.Substantial || got.Emergency.PerPersonPerDay != 2 {
		t.Errorf("effective: %+v", got)
	}
}

func TestPolicyErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"CEL syntax error", `policies:
  applications:
    - id: dpi
      conditions:
        - {cel: 'person.groups.exists(g, ', reason: x}
`, []string{`test.yaml:17:17: policies.applications[0].conditions[0].cel: CEL: Syntax error`}},
		{"CEL unknown field", `policies:
  defaults:
    conditions:
      - cel: person.grups.size() > 0
        reason: x
`, []string{`test.yaml:16:14: policies.defaults.conditions[0].cel: CEL: undefined field 'grups'`}},
		{"CEL not a bool", `policies:
  defaults:
    conditions: [{cel: request.hour, reason: x}]
`, []string{`test.yaml:15:24: policies.defaults.conditions[0].cel: CEL: the expression returns int; expected bool`}},
		{"condition without cel or reason", `policies:
  defaults:
    conditions: [{message_fr: a, message_en: b}]
`, []string{`policies.defaults.conditions[0].cel: is required`, `policies.defaults.conditions[0].reason: is required`}},
		{"bad reason code", `policies:
  defaults:
    conditions: [{cel: "true", reason: Night Only}]
`, []string{`policies.defaults.conditions[0].reason: "Night Only" is not a reason code`}},
		{"unknown level", `policies:
  defaults:
    min_level: strong
`, []string{`test.yaml:15:16: policies.defaults.min_level: "strong" is not a level; expected one of low, substantial, high`}},
		{"unknown method", `policies:
  applications:
    - id: dpi
      methods: [card, sms]
`, []string{`test.yaml:16:23: policies.applications[0].methods[1]: "sms" is not a sign-in method`}},
		{"empty methods", `policies:
  defaults:
    methods: []
`, []string{`policies.defaults.methods: an empty list accepts no method`}},
		{"unknown zone", `policies:
  zones: [{name: lan, networks: [10.0.0.0/8]}]
  applications:
    - id: dpi
      zones: [{zone: wifi, deny: true}]
`, []string{`policies.applications[0].zones[0].zone: "wifi" is not a zone; expected one of outside, lan`}},
		{"zone errors", `policies:
  zones:
    - {name: outside, networks: [10.0.0.0/8]}
    - {name: lan}
    - {name: lan, networks: [10.1.2.3/8]}
`, []string{`policies.zones[0].name: "outside" is the implicit zone`, `policies.zones[1].networks: is required`,
			`policies.zones[2].name: "lan" is already a zone`, `policies.zones[2].networks[0]: 10.1.2.3/8 has host bits set; expected 10.0.0.0/8`}},
		{"zone rule that does nothing", `policies:
  defaults:
    zones: [{zone: outside}]
`, []string{`policies.defaults.zones[0]: does nothing`}},
		{"emergency on an admin app", `policies:
  applications:
    - id: dpi
      admin: true
      emergency: {allowed: true, reasons: [normal], lifetime: 12h}
`, []string{`policies.applications[0].emergency.allowed: emergency access is never allowed on an administration application`,
			`policies.applications[0].emergency.reasons[0]: "normal" is not a TRE_R248 emergency access mode`,
			`policies.applications[0].emergency.lifetime: 12h is too long; expected at most 4h`}},
		{"floor no method reaches", `policies:
  applications:
    - id: dpi
      min_level: high
      methods: [password, key]
`, []string{`test.yaml:16:18: policies.applications[0].min_level: high cannot be reached with the accepted methods (key, password reach substantial at most)`}},
		{"zone floor no method reaches", `policies:
  zones: [{name: vpn, networks: [172.16.0.0/12]}]
  defaults:
    methods: [password]
    zones:
      - {zone: outside, deny: true}
      - {zone: vpn, min_level: high}
`, []string{`policies.defaults.zones[1].min_level: high cannot be reached`}},
		{"no method left", `policies:
  defaults:
    methods: [card]
  applications:
    - id: dpi
      methods: [password]
`, []string{`policies.applications[0].methods: none of password is accepted by the defaults (card)`}},
		{"duplicate application", `policies:
  applications:
    - id: dpi
    - id: dpi
`, []string{`test.yaml:16:11: policies.applications[1].id: "dpi" already has rules at policies.applications[0]`}},
		{"bad finess and id type", `policies:
  defaults:
    allow: {finess: ["75000"], national_id_types: [ssn]}
`, []string{`policies.defaults.allow.finess[0]: "75000" is not a FINESS number`, `policies.defaults.allow.national_id_types[0]: "ssn" is not a national id type`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(policiesBase+tc.yaml), testEnv())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestPolicyWarnings(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(policiesBase+`policies:
  applications:
    - id: dpi
      conditions: [{cel: "true", reason: x, message_fr: seulement}]
`), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`policies.applications[0].conditions[0]: has a message in one language only`}
	got := policyWarnings(cfg)
	if len(got) != len(want) {
		t.Fatalf("warnings: %q", got)
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("warning %d = %q, want %q", i, got[i], w)
		}
	}
}

// policyWarnings leaves out base's own warning (https without TLS).
func policyWarnings(cfg *Config) []string {
	var out []string
	for _, w := range cfg.Warnings {
		if strings.Contains(w, ": policies.") {
			out = append(out, w)
		}
	}
	return out
}

// An application id that names no client nor SAML service provider is a
// typo that would leave the application under the defaults only.
func TestPolicyUnknownApplication(t *testing.T) {
	_, err := Parse("test.yaml", []byte(policiesBase+`policies:
  applications:
    - id: labo
      min_level: high
`), testEnv())
	if err == nil || !strings.Contains(err.Error(), `test.yaml:15:11: policies.applications[0].id: "labo" names no configured client nor SAML service provider`) {
		t.Fatalf("unknown application: %v", err)
	}
}
