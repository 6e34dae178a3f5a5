package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const policyConfig = `issuer: http://localhost:5556
master_key: {file: key, generate_if_missing: true}
connectors:
  - id: local
    type: static
    static:
      people:
        - username: jdupont
          password_hash: "$argon2id$v=19$m=65536,t=1,p=2$Y1qkfVwiPZcvzXENyvsBAw$7EjRWBXtLIXi7kxZM4rS+tITsPFKNYgQr2zgAO1quFY"
          national_id: "810000000009"
          groups: [medecins, urgences]
        - username: pmartin
          password_hash: "$argon2id$v=19$m=65536,t=1,p=2$Y1qkfVwiPZcvzXENyvsBAw$7EjRWBXtLIXi7kxZM4rS+tITsPFKNYgQr2zgAO1quFY"
          groups: [infirmiers]
clients:
  - id: dpi
    secret: 0123456789abcdef0123456789abcdef-long
    redirect_uris: [http://localhost:5555/cb]
policies:
  zones:
    - {name: lan, networks: [10.0.0.0/8]}
    - {name: vpn, networks: [172.16.0.0/12]}
  defaults:
    session: {lifetime: 4h, idle: 30m}
  applications:
    - id: dpi
      min_level: substantial
      allow: {groups: [medecins]}
      zones:
        - {zone: outside, deny: true}
        - {zone: vpn, min_level: high}
      conditions:
        - {cel: 'request.hour >= 7 && request.hour < 21', reason: day_only, message_fr: "Ouvert de 7 h à 21 h.", message_en: "Open 7am to 9pm."}
      emergency: {allowed: true}
`

func TestPolicyTest(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "garde.yaml")
	if err := os.WriteFile(cfg, []byte(policyConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	day := "--at=2026-11-25T10:00:00+01:00"
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"allowed from the LAN", []string{"--person", "jdupont", "--zone", "lan", "--level", "substantial", day},
			0, []string{"Personne : jdupont (local, jdupont)", "Décision : autorisé", "✓ application.allow.groups", "Session : durée maximale 4h0m0s, inactivité 30m0s"}},
		{"group from the directory refused, emergency possible", []string{"--person", "pmartin", "--zone", "lan", "--level", "substantial", day, "--lang", "en"},
			0, []string{"Decision: denied, emergency access possible (group_not_allowed)", "allowed groups: medecins; the person: infirmiers", "Emergency access: lifetime 30m0s"}},
		{"--group adds a group", []string{"--person", "pmartin", "--group", "medecins", "--zone", "lan", "--level", "substantial", day, "--expect", "allow"},
			0, []string{"Décision : autorisé"}},
		{"VPN needs high", []string{"--person", "jdupont", "--zone", "vpn", "--acr", "substantial", day, "--lang", "en"},
			0, []string{"Decision: stronger authentication required (level_too_low)", "Level to reach: high — methods: card, psc", "✗ application.zones.vpn.min_level"}},
		{"outside denied, by address", []string{"--subject", "ad:42", "--group", "medecins", "--addr", "203.0.113.7", "--methods", "card", day, "--lang", "en"},
			0, []string{"Decision: denied, emergency access possible (zone_denied)", "network zone: outside"}},
		{"night: condition", []string{"--person", "jdupont", "--zone", "lan", "--level", "high", "--at", "2026-11-25T23:30:00+01:00"},
			0, []string{"(condition:day_only)", "Ouvert de 7 h à 21 h.", "✗ application.conditions[0]"}},
		{"expect mismatch", []string{"--person", "jdupont", "--zone", "lan", "--level", "low", day, "--expect", "allow"},
			1, []string{"(level_too_low)"}},
		{"unknown person", []string{"--person", "nobody", "--zone", "lan"}, 1, nil},
		{"unknown zone", []string{"--person", "jdupont", "--zone", "wifi"}, 2, nil},
		{"bad level", []string{"--level", "max"}, 2, nil},
		{"bad method", []string{"--methods", "sms"}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"policy", "test", "--config", cfg, "--app", "dpi"}, tt.args...)
			code, out, errs := runCmd(t, "", args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}

	if code, _, errs := runCmd(t, "", "policy", "test"); code != 2 || !strings.Contains(errs, "--app is required") {
		t.Errorf("no --app: exit %d %q", code, errs)
	}
	if code, _, _ := runCmd(t, "", "policy"); code != 2 {
		t.Errorf("no subcommand: exit %d", code)
	}
	// The demo configuration (no --config) has no rules: allowed.
	if code, out, errs := runCmd(t, "", "policy", "test", "--app", "demo-app", "--person", "dr.martin", "--lang", "en"); code != 0 || !strings.Contains(out, "Decision: allowed") {
		t.Errorf("demo: exit %d\n%s%s", code, out, errs)
	}
}
