package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAuditConfig(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := base + `audit:
  retention: 8760h
  export:
    - name: fichier
      type: jsonl
      jsonl: {path: /var/log/garde/audit.jsonl, max_size_mb: 100, daily: true, max_files: 30}
    - name: siem
      type: syslog
      syslog:
        address: siem.chu.fr:6514
        ca_file: ` + ca + `
        facility: local4
        sd_id: garde@32473
`
	cfg, err := Parse("test.yaml", []byte(yml), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Audit
	if a.Retention != 8760*time.Hour || len(a.Export) != 2 || a.Export[0].JSONL.MaxFiles != 30 || !a.Export[0].JSONL.Daily ||
		a.Export[1].Syslog.Address != "siem.chu.fr:6514" || a.Export[1].Syslog.Facility != "local4" {
		t.Fatalf("audit = %+v", a)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w, "audit") {
			t.Errorf("warning: %q", w)
		}
	}
	// The default: keep forever, export nowhere.
	cfg, err = Parse("test.yaml", []byte(base), testEnv())
	if err != nil || cfg.Audit.Retention != 0 || len(cfg.Audit.Export) != 0 {
		t.Fatalf("default audit = %+v, %v", cfg.Audit, err)
	}
}

func TestAuditRetentionWarning(t *testing.T) {
	cfg, err := Parse("w.yaml", []byte(base+"audit:\n  retention: 720h\n"), testEnv())
	if err != nil {
		t.Fatal(err)
	}
	want := "w.yaml:10:14: audit.retention: 720h is shorter than 180 days (4320h); traceability of access to health data is usually kept a year or more"
	if !slices.Contains(cfg.Warnings, want) {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}

func TestAuditErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"negative retention", "audit:\n  retention: -1h\n",
			[]string{`test.yaml:10:14: audit.retention: -1h is not allowed; expected 0 (keep forever) or a positive duration`}},
		{"retention under a day", "audit:\n  retention: 1h\n",
			[]string{`test.yaml:10:14: audit.retention: 1h is shorter than a day`}},
		{"unknown type", "audit:\n  export:\n    - name: s\n      type: kafka\n",
			[]string{`test.yaml:12:13: audit.export[0].type: "kafka" is not a sink type; expected one of jsonl, syslog`}},
		{"missing name and block", "audit:\n  export:\n    - type: jsonl\n",
			[]string{`test.yaml:11:7: audit.export[0].name: is required`, `audit.export[0].jsonl: is required for type jsonl`}},
		{"bad name, duplicate", "audit:\n  export:\n    - {name: a b, type: jsonl, jsonl: {path: /x}}\n    - {name: s, type: jsonl, jsonl: {path: /x}}\n    - {name: s, type: jsonl, jsonl: {path: /y}}\n",
			[]string{`audit.export[0].name: "a b" is not a valid name`, `test.yaml:13:14: audit.export[2].name: "s" is also audit.export[1]`}},
		{"wrong block", "audit:\n  export:\n    - name: s\n      type: jsonl\n      jsonl: {path: /x}\n      syslog: {address: h:1}\n",
			[]string{`test.yaml:14:7: audit.export[0].syslog: is only for type syslog`}},
		{"jsonl numbers", "audit:\n  export:\n    - name: s\n      type: jsonl\n      jsonl: {path: /x/, max_size_mb: -1, max_files: -2}\n",
			[]string{`audit.export[0].jsonl.path: "/x/" is a directory`, `audit.export[0].jsonl.max_size_mb: -1 is not allowed`, `audit.export[0].jsonl.max_files: -2 is not allowed`}},
		{"syslog problems", "audit:\n  export:\n    - name: s\n      type: syslog\n      syslog:\n        address: siem.chu.fr\n        ca_file: /nonexistent/ca.pem\n        cert_file: /nonexistent/c.pem\n        facility: kern\n        sd_id: garde\n        hostname: a b\n",
			[]string{`test.yaml:14:18: audit.export[0].syslog.address: "siem.chu.fr" is not host:port`,
				`audit.export[0].syslog.ca_file: file "/nonexistent/ca.pem" does not exist`,
				`audit.export[0].syslog.key_file: is missing; expected both cert_file and key_file, or neither`,
				`audit.export[0].syslog.facility: "kern" is not a syslog facility; expected one of auth, authpriv`,
				`audit.export[0].syslog.sd_id: "garde" is not an RFC 5424 SD-ID`,
				`audit.export[0].syslog.hostname: "a b" is not a syslog HOSTNAME`}},
		{"syslog without address", "audit:\n  export:\n    - {name: s, type: syslog, syslog: {facility: auth}}\n",
			[]string{`audit.export[0].syslog.address: is required`}},
		{"unknown key", "audit:\n  export:\n    - {name: s, type: jsonl, jsonl: {path: /x, max_size: 3}}\n",
			[]string{`audit.export[0].jsonl.max_size: unknown key "max_size"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(base+c.yaml), testEnv())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}
