package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const secretPSC = "psc-client-secret-do-not-print"

func pscEnv() func(string) (string, bool) {
	return envMap(map[string]string{
		"GARDE_MASTER_KEY": "master-key-value-do-not-print",
		"PSC_SECRET":       secretPSC,
	})
}

// pscConnector appends a psc connector to base: its first key is on line
// 9, "psc:" on line 11, and lines of body from line 12.
func pscConnector(body string) string {
	return base + "  - id: psc\n    type: psc\n    psc:\n" + body
}

func TestPSCValid(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "org.pem"), filepath.Join(dir, "org.key")
	for _, f := range []string{cert, key} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yml := pscConnector(`      environment: production
      client_id: garde-chu-exemple
      auth_method: tls_client_auth
      client_certificate_file: ` + cert + `
      client_key_file: ` + key + `
      assurance:
        - {auth_mode: CARD, level: high, amr: [sc, pin, hwk, mfa]}
        - {acr: eidas2, level: substantial, amr: [swk, mfa]}
        - {level: low}
      back_channel_logout: true
`)
	cfg, err := Parse("test.yaml", []byte(yml), pscEnv())
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Connectors[1].PSC
	if p.Environment != "production" || p.AuthMethod != "tls_client_auth" || p.ClientCertificateFile != cert || !p.BackChannelLogout ||
		len(p.Assurance) != 3 || p.Assurance[0].AuthMode != "CARD" || !slices.Equal(p.Assurance[0].AMR, []string{"sc", "pin", "hwk", "mfa"}) || p.Assurance[1].ACR != "eidas2" {
		t.Errorf("psc = %+v", p)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w, ".psc") {
			t.Errorf("warning: %s", w)
		}
	}

	// BAS with a secret, the secret never printed.
	yml = pscConnector("      environment: bas\n      client_id: garde-bas\n      client_secret: ${PSC_SECRET}\n      scopes: [openid, scope_all]\n")
	cfg, err = Parse("test.yaml", []byte(yml), pscEnv())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Connectors[1].PSC.ClientSecret.Reveal() != secretPSC {
		t.Error("secret not read")
	}
	for _, s := range []string{strings.Join(cfg.Warnings, "\n"), fmtAll(cfg.Connectors[1].PSC)} {
		if strings.Contains(s, secretPSC) {
			t.Errorf("secret printed: %s", s)
		}
	}
}

func TestPSCErrors(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []string
	}{
		{"missing environment and client id", "      client_secret: ${PSC_SECRET}\n",
			[]string{`test.yaml:12:7: connectors[1].psc.environment: is required; expected one of production, bas, custom`,
				`test.yaml:12:7: connectors[1].psc.client_id: is required; expected the client id ANS registered for Garde`}},
		{"unknown environment", "      environment: prod\n      client_id: x\n      client_secret: ${PSC_SECRET}\n",
			[]string{`test.yaml:12:20: connectors[1].psc.environment: "prod" is not a PSC environment; expected one of production, bas, custom (did you mean "production"?)`}},
		{"custom without issuer", "      environment: custom\n      client_id: x\n      client_secret: ${PSC_SECRET}\n",
			[]string{`connectors[1].psc.issuer: is required for environment custom`}},
		{"preset with another issuer", "      environment: bas\n      issuer: https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet\n      client_id: x\n      client_secret: ${PSC_SECRET}\n",
			[]string{`test.yaml:13:15: connectors[1].psc.issuer: "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet" is not the bas issuer "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet"; expected no issuer (the environment sets it), or environment: custom`}},
		{"http issuer", "      environment: custom\n      issuer: http://psc.local/auth/realms/esante-wallet\n      client_id: x\n      client_secret: ${PSC_SECRET}\n",
			[]string{`test.yaml:13:15: connectors[1].psc.issuer: "http://psc.local/auth/realms/esante-wallet" must use https`}},
		{"discovery URL with trailing slash", "      environment: bas\n      discovery_url: https://psc.local/x/\n      client_id: x\n      client_secret: ${PSC_SECRET}\n",
			[]string{`test.yaml:13:22: connectors[1].psc.discovery_url: "https://psc.local/x/" must not end with /`}},
		{"secret missing", "      environment: bas\n      client_id: x\n",
			[]string{`connectors[1].psc.client_secret: is required for client_secret_basic; expected the secret ANS issued`}},
		{"unknown auth method", "      environment: bas\n      client_id: x\n      client_secret: ${PSC_SECRET}\n      auth_method: private_key_jwt\n",
			[]string{`test.yaml:15:20: connectors[1].psc.auth_method: "private_key_jwt" is not a PSC client authentication method; expected one of client_secret_basic, client_secret_post, tls_client_auth`}},
		{"mTLS without certificate, with a secret", "      environment: bas\n      client_id: x\n      client_secret: ${PSC_SECRET}\n      auth_method: tls_client_auth\n",
			[]string{`test.yaml:14:7: connectors[1].psc.client_secret: is not used with tls_client_auth: the certificate is the credential; expected no client_secret`,
				`connectors[1].psc.client_certificate_file: is required for tls_client_auth; expected the hospital's IGC-Santé organisation certificate (PEM)`,
				`connectors[1].psc.client_key_file: is required for tls_client_auth`}},
		{"certificate without key", "      environment: bas\n      client_id: x\n      client_secret: ${PSC_SECRET}\n      client_certificate_file: /nonexistent/org.pem\n",
			[]string{`connectors[1].psc.client_key_file: is missing; expected both client_certificate_file and client_key_file, or neither`,
				`test.yaml:15:32: connectors[1].psc.client_certificate_file: file "/nonexistent/org.pem" does not exist`}},
		{"missing decryption key file", "      environment: bas\n      client_id: x\n      client_secret: ${PSC_SECRET}\n      userinfo_decryption_key_file: /nonexistent/enc.key\n",
			[]string{`test.yaml:15:37: connectors[1].psc.userinfo_decryption_key_file: file "/nonexistent/enc.key" does not exist`}},
		{"bad scope", "      environment: bas\n      client_id: x\n      client_secret: ${PSC_SECRET}\n      scopes: [openid, \"scope all\"]\n",
			[]string{`test.yaml:15:24: connectors[1].psc.scopes[1]: "scope all" is not a scope`}},
		{"assurance level and amr", "      environment: bas\n      client_id: x\n      client_secret: ${PSC_SECRET}\n      assurance:\n        - auth_mode: CARD\n          level: eidas3\n          amr: [sc, pin, hwk, mfa, smartcard]\n        - {auth_mode: MOBILE, amr: [swk, swk]}\n",
			[]string{`test.yaml:17:18: connectors[1].psc.assurance[0].level: "eidas3" is not a level; expected one of low, substantial, high`,
				`test.yaml:18:36: connectors[1].psc.assurance[0].amr[4]: "smartcard" is not an RFC 8176 amr value`,
				`connectors[1].psc.assurance[1].level: is required; expected one of low, substantial, high`,
				`connectors[1].psc.assurance[1].amr[1]: "swk" is listed twice (also connectors[1].psc.assurance[1].amr[0]); expected each amr value once`}},
		{"unknown key", "      environment: bas\n      client_id: x\n      client_secret: ${PSC_SECRET}\n      clientid: y\n",
			[]string{`test.yaml:15:7: connectors[1].psc.clientid: unknown key "clientid"; did you mean "client_id"?`}},
		{"psc block on an ldap connector", strings.Replace(base, "    static:\n", "    psc: {environment: bas}\n    static:\n", 1), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			yml := pscConnector(tc.body)
			want := tc.want
			if tc.want == nil {
				yml, want = tc.body, []string{`test.yaml:5:5: connectors[0].psc: is only for type psc; expected no psc block with type static`}
			}
			cfg, err := Parse("test.yaml", []byte(yml), pscEnv())
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain\n  %s\ngot:\n  %s", w, strings.ReplaceAll(err.Error(), "\n", "\n  "))
				}
			}
			var list Errors
			if !errors.As(err, &list) || len(list) != len(want) {
				t.Errorf("want exactly %d problems, got:\n%v", len(want), err)
			}
			if strings.Contains(err.Error(), secretPSC) {
				t.Errorf("secret in error: %v", err)
			}
		})
	}
}

func TestPSCWarnings(t *testing.T) {
	yml := pscConnector("      environment: production\n      client_id: x\n      client_secret: ${PSC_SECRET}\n      scopes: [openid]\n      assurance:\n        - {level: low}\n        - {auth_mode: CARD, level: high}\n")
	cfg, err := Parse("test.yaml", []byte(yml), pscEnv())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"connectors[1].psc.auth_method: ANS asks production clients to authenticate with their IGC-Santé certificate (tls_client_auth)",
		"test.yaml:15:15: connectors[1].psc.scopes: does not include scope_all",
		"connectors[1].psc.assurance[1]: is never used: connectors[1].psc.assurance[0] matches every sign-in first",
	} {
		if !slices.ContainsFunc(cfg.Warnings, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("no warning %q in %q", w, cfg.Warnings)
		}
	}
}

func fmtAll(p *PSCConnector) string { return fmt.Sprintf("%v %+v %#v", *p, *p, *p) }

func TestPSCDecoupled(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"absent", "", nil},
		{"disabled", "      decoupled: {enabled: false, channels: [CARD]}\n", nil},
		{"enabled, both by default", "      decoupled: {enabled: true}\n", []string{"CARD", "MOBILE"}},
		{"enabled, the app only", "      decoupled:\n        enabled: true\n        channels: [MOBILE]\n", []string{"MOBILE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yml := pscConnector("      environment: bas\n      client_id: x\n      client_secret: ${PSC_SECRET}\n" + tc.body)
			cfg, err := Parse("test.yaml", []byte(yml), pscEnv())
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Connectors[1].PSC.DecoupledChannels(); !slices.Equal(got, tc.want) {
				t.Errorf("channels %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPSCDecoupledErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"unknown channel", "      decoupled:\n        enabled: true\n        channels: [CARD, SMS]\n",
			[]string{`test.yaml:17:26: connectors[1].psc.decoupled.channels[1]: "SMS" is not a PSC decoupled sign-in channel; expected one of CARD, MOBILE`}},
		{"lower case", "      decoupled:\n        enabled: true\n        channels: [mobile]\n",
			[]string{`connectors[1].psc.decoupled.channels[0]: "mobile" is not a PSC decoupled sign-in channel; expected one of CARD, MOBILE (did you mean "MOBILE"?)`}},
		{"twice", "      decoupled:\n        enabled: true\n        channels: [CARD, CARD]\n",
			[]string{`connectors[1].psc.decoupled.channels[1]: "CARD" is listed twice (also connectors[1].psc.decoupled.channels[0]); expected each channel once`}},
		{"unknown key", "      decoupled:\n        enable: true\n",
			[]string{`test.yaml:16:9: connectors[1].psc.decoupled.enable: unknown key "enable"; did you mean "enabled"?`}},
		{"not a boolean", "      decoupled:\n        enabled: oui\n",
			[]string{`connectors[1].psc.decoupled.enabled`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yml := pscConnector("      environment: bas\n      client_id: x\n      client_secret: ${PSC_SECRET}\n" + tc.body)
			_, err := Parse("test.yaml", []byte(yml), pscEnv())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain\n  %s\ngot:\n  %s", w, strings.ReplaceAll(err.Error(), "\n", "\n  "))
				}
			}
			var list Errors
			if !errors.As(err, &list) || len(list) != len(tc.want) {
				t.Errorf("want exactly %d problems, got:\n%v", len(tc.want), err)
			}
		})
	}
}
