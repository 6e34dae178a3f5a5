package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSAMLDefaults(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "sp.xml")
	if err := os.WriteFile(md, []byte("<x/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := base + "saml:\n  service_providers:\n    - entity_id: https://dpi.example.fr/saml\n      metadata_file: " + md + "\n"
	cfg, err := Parse("test.yaml", []byte(yml), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.SAML
	if !s.Enabled || s.EntityID != "https://sso.example.fr/saml/metadata" || s.ClockSkew != 2*time.Minute || s.RequestMaxAge != 5*time.Minute || s.MetadataRefresh != time.Hour {
		t.Errorf("saml defaults: %+v", s)
	}
	sp := s.ServiceProviders[0]
	if sp.Name != sp.EntityID || sp.NameID != "persistent" || sp.Sign != "both" || sp.SignatureAlgorithm != "rsa-sha256" || sp.AssertionLifetime != 5*time.Minute || sp.AllowSHA1 || sp.IdPInitiated {
		t.Errorf("service provider defaults: %+v", sp)
	}
	// No saml block: off.
	cfg, err = Parse("test.yaml", []byte(base), testEnv())
	if err != nil || cfg.SAML.Enabled {
		t.Fatalf("no saml block should leave SAML off: %v %+v", err, cfg.SAML)
	}
}

func TestSAMLErrors(t *testing.T) {
	sp := "saml:\n  service_providers:\n    - entity_id: https://dpi.example.fr/saml\n"
	cases := []struct{ name, yaml, want string }{
		{"no metadata", base + sp,
			`test.yaml:11:7: saml.service_providers[0].metadata_file: is required; expected metadata_file or metadata_url`},
		{"both metadata sources", base + sp + "      metadata_file: a.xml\n      metadata_url: https://dpi.example.fr/md\n",
			`saml.service_providers[0].metadata_url: metadata_file and metadata_url are both set`},
		{"http metadata URL", base + sp + "      metadata_url: http://dpi.example.fr/md\n",
			`test.yaml:12:21: saml.service_providers[0].metadata_url: "http://dpi.example.fr/md" is not allowed: metadata must come over https`},
		{"sha1 without allow_sha1", base + sp + "      metadata_url: https://dpi.example.fr/md\n      signature_algorithm: rsa-sha1\n",
			`test.yaml:13:28: saml.service_providers[0].signature_algorithm: rsa-sha1 is refused: SHA-1 is broken`},
		{"bad name_id", base + sp + "      metadata_url: https://dpi.example.fr/md\n      name_id: mail\n",
			`saml.service_providers[0].name_id: "mail" is not a NameID source; expected one of persistent, transient, email, ad_login, national_id (did you mean "email"?)`},
		{"bad attribute source", base + sp + "      metadata_url: https://dpi.example.fr/md\n      attributes:\n        - {name: urn:oid:2.5.4.42, source: givenname}\n",
			`saml.service_providers[0].attributes[0].source: "givenname" is not a source of attribute values`},
		{"assertion lifetime too long", base + sp + "      metadata_url: https://dpi.example.fr/md\n      assertion_lifetime: 2h\n",
			`saml.service_providers[0].assertion_lifetime: 2h is too long; expected at most 1h`},
		{"certificate without key", base + "saml:\n  certificate_file: " + os.DevNull + "\n",
			`saml.key_file: is missing; expected both certificate_file and key_file`},
		{"duplicate SP", base + sp + "      metadata_url: https://dpi.example.fr/md\n" + strings.TrimPrefix(sp, "saml:\n  service_providers:\n") + "      metadata_url: https://dpi.example.fr/md\n",
			`saml.service_providers[1].entity_id: "https://dpi.example.fr/saml" is already the entity_id of saml.service_providers[0]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(c.yaml), testEnv())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not contain\n  %s\ngot:\n  %v", c.want, err)
			}
			var one *Error
			if !errors.As(err, &one) {
				t.Error("not a config *Error")
			}
		})
	}
}
