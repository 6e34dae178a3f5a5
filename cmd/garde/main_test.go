package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/sqlite"

	"github.com/garde-sso/garde/connectors/static"
)

func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(`issuer: http://localhost:5556
master_key: {file: key, generate_if_missing: true}
connectors:
  - id: local
    type: static
    static:
      people:
        - username: a
          password_hash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$0123456789abcdef0123456789abcdef0123456789a"
clients:
  - id: app
    secret: 0123456789abcdef0123456789abcdef-long
    redirect_uris: [http://localhost:5555/cb]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("issuer: http://hopital.example\nlisten:\n  adress: \":443\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := runCmd(t, "", "check-config", good); code != 0 || !strings.Contains(out, "configuration is valid") ||
		!regexp.MustCompile(`access policies sha256 [0-9a-f]{64}\n`).MatchString(out) {
		t.Fatalf("good config: exit %d\n%s%s", code, out, errs)
	}
	code, _, errs := runCmd(t, "", "check-config", bad)
	if code != 1 {
		t.Fatalf("bad config: exit %d, want 1", code)
	}
	for _, want := range []string{"bad.yaml:1:9: issuer:", "bad.yaml:3:3: listen.adress:", `did you mean "address"`} {
		if !strings.Contains(errs, want) {
			t.Errorf("error output lacks %q:\n%s", want, errs)
		}
	}
	if code, _, errs := runCmd(t, "", "check-config", filepath.Join(dir, "missing.yaml")); code != 1 || !strings.Contains(errs, "missing.yaml") {
		t.Errorf("missing file: exit %d %q", code, errs)
	}
}

func TestHashPassword(t *testing.T) {
	code, out, errs := runCmd(t, "s3cret-pass\n", "hash-password")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	hash := strings.TrimSpace(out)
	if !strings.HasPrefix(hash, "$argon2id$v=19$") {
		t.Fatalf("hash %q", hash)
	}
	c, err := static.New("t", []static.Person{{Username: "u", PasswordHash: hash}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(t.Context(), "u", "s3cret-pass"); err != nil {
		t.Errorf("the printed hash does not verify the password: %v", err)
	}
	if code, _, _ := runCmd(t, "\n", "hash-password"); code != 1 {
		t.Errorf("empty password: exit %d, want 1", code)
	}
}

func TestCommands(t *testing.T) {
	if code, out, _ := runCmd(t, "", "version"); code != 0 || !strings.HasPrefix(out, "garde ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, errs := runCmd(t, "", "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: %d %q", code, errs)
	}
	if code, _, _ := runCmd(t, ""); code != 2 {
		t.Errorf("no command: %d", code)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("issuer: [\n"), 0o600)
	if code, _, errs := runCmd(t, "", "serve", "--config", bad); code != 1 || !strings.Contains(errs, "bad.yaml") {
		t.Errorf("serve with a broken config: %d %q", code, errs)
	}
}

func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "garde.yaml")
	if err := os.WriteFile(cfgPath, []byte(`issuer: http://localhost:5556
master_key: {file: `+filepath.Join(dir, "key")+`, generate_if_missing: true}
storage:
  durable: {driver: sqlite, sqlite_path: `+filepath.Join(dir, "garde.db")+`}
connectors:
  - id: local
    type: static
    static:
      people:
        - username: a
          password_hash: "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHRzYWx0c2FsdA$0123456789abcdef0123456789abcdef0123456789a"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "", "keys", "issue-code", "--config", cfgPath, "--person", "ad:1234", "--by", "helpdesk-1")
	if code != 0 {
		t.Fatalf("issue-code: exit %d: %s", code, errs)
	}
	if !regexp.MustCompile(`\n    [A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}\n`).MatchString(out) {
		t.Fatalf("issue-code printed no code:\n%s", out)
	}
	if code, out, _ := runCmd(t, "", "keys", "list", "--config", cfgPath, "--person", "ad:1234"); code != 0 || !strings.Contains(out, "has no security key") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, out, _ := runCmd(t, "", "keys", "revoke", "--config", cfgPath, "--person", "ad:1234"); code != 0 || !strings.Contains(out, "revoked 0") {
		t.Fatalf("revoke: %d %q", code, out)
	}
	if code, _, errs := runCmd(t, "", "keys", "issue-code", "--config", cfgPath); code != 2 || !strings.Contains(errs, "--person is required") {
		t.Fatalf("missing --person: %d %q", code, errs)
	}
	// The code and the actions are in the audit trail, with who did them.
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "garde.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events, err := db.ListAuditEvents(t.Context(), store.AuditQuery{Person: "ad:1234"})
	if err != nil || len(events) != 2 || events[0].Type != "enrollment_code.issued" || events[0].Details["by"] != "helpdesk-1" || events[1].Type != "webauthn.revoked" {
		t.Fatalf("audit = %+v, %v", events, err)
	}
	codes, err := db.ListEnrollmentCodes(t.Context(), "ad:1234")
	if err != nil || len(codes) != 1 || !codes[0].ExpiresAt.After(codes[0].CreatedAt) {
		t.Fatalf("stored codes = %+v, %v", codes, err)
	}
}
