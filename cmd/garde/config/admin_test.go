package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const adminClients = `clients:
  - id: supervision
    secret: ${APP_SECRET}
    grant_types: [client_credentials]
  - id: dossier
    secret: ${APP_SECRET}
    redirect_uris: [https://dossier.example.fr/cb]
`

func TestAdminConfig(t *testing.T) {
	yml := base + adminClients + `admin:
  roles:
    admin: [garde-admins]
    helpdesk: [support-informatique]
    auditor: [dpo, rssi]
  idle_timeout: 5m
  api_clients:
    - {client: supervision, role: auditor}
`
	cfg, err := Parse("test.yaml", []byte(yml), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Admin
	if !a.Enabled() || a.MinLevel != "high" || a.IdleTimeout != 5*time.Minute || a.Lifetime != DefaultAdminLifetime ||
		!slices.Equal(a.Roles.Auditor, []string{"dpo", "rssi"}) || len(a.APIClients) != 1 || a.APIClients[0].Role != "auditor" {
		t.Fatalf("admin = %+v", a)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w, "admin") {
			t.Errorf("warning: %q", w)
		}
	}
	// Absent: the console is off, with the defaults in place.
	cfg, err = Parse("test.yaml", []byte(base), testEnv())
	if err != nil || cfg.Admin.Enabled() || cfg.Admin.IdleTimeout != DefaultAdminIdleTimeout {
		t.Fatalf("default admin = %+v, %v", cfg.Admin, err)
	}
}

func TestAdminSubstantialWarns(t *testing.T) {
	cfg, err := Parse("w.yaml", []byte(base+"admin:\n  roles: {admin: [garde-admins]}\n  min_level: substantial\n"), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	want := "w.yaml:11:14: admin.min_level: substantial lets a password and a security key open the console; expected high (a CPS card) where cards are available"
	if !slices.Contains(cfg.Warnings, want) {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}

func TestAdminErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"low level on a real issuer", "admin:\n  roles: {admin: [a]}\n  min_level: low\n",
			"test.yaml:11:14: admin.min_level: low would open the console with a password alone; expected high or substantial"},
		{"unknown level", "admin:\n  roles: {admin: [a]}\n  min_level: eleve\n",
			`test.yaml:11:14: admin.min_level: "eleve" is not a level; expected one of high, substantial, low`},
		{"unknown role", "admin:\n  roles: {superuser: [a]}\n",
			`test.yaml:10:11: admin.roles.superuser: unknown key "superuser"`},
		{"idle longer than lifetime", "admin:\n  roles: {admin: [a]}\n  idle_timeout: 2h\n  lifetime: 1h\n",
			"test.yaml:11:17: admin.idle_timeout: 2h is longer than admin.lifetime (1h); expected at most the lifetime"},
		{"zero idle", "admin:\n  roles: {admin: [a]}\n  idle_timeout: 0s\n",
			"test.yaml:11:17: admin.idle_timeout: 0s is not allowed; expected a positive duration"},
		{"duplicate group", "admin:\n  roles: {auditor: [dpo, dpo]}\n",
			`admin.roles.auditor[1]: "dpo" is listed twice (also admin.roles.auditor[0]); expected each group once`},
		{"api client unknown", adminClients + "admin:\n  roles: {admin: [a]}\n  api_clients: [{client: nope, role: admin}]\n",
			`admin.api_clients[0].client: "nope" is not a configured client; expected the id of an entry of clients`},
		{"api client without client_credentials", adminClients + "admin:\n  roles: {admin: [a]}\n  api_clients: [{client: dossier, role: admin}]\n",
			`admin.api_clients[0].client: client "dossier" does not have the client_credentials grant`},
		{"api client bad role", adminClients + "admin:\n  roles: {admin: [a]}\n  api_clients: [{client: supervision, role: root}]\n",
			`admin.api_clients[0].role: "root" is not a role; expected one of admin, helpdesk, auditor`},
		{"api clients without roles", adminClients + "admin:\n  api_clients: [{client: supervision, role: admin}]\n",
			"admin.api_clients: needs admin.roles"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(base+c.yaml), testEnv())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestAdminLowOnLoopback(t *testing.T) {
	yml := strings.Replace(base, "https://sso.example.fr", "https://localhost:8443", 1) + "admin:\n  roles: {admin: [a]}\n  min_level: low\n"
	cfg, err := Parse("test.yaml", []byte(yml), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(cfg.Warnings, func(w string) bool { return strings.Contains(w, "admin.min_level: low opens the console") }) {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}
