package main

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/keys"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/sqlite"
)

func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	keyPath, dbPath := filepath.Join(dir, "key"), filepath.Join(dir, "garde.db")
	cfgPath := filepath.Join(dir, "garde.yaml")
	if err := os.WriteFile(cfgPath, []byte(`issuer: http://localhost:5556
master_key: {file: `+keyPath+`}
storage:
  durable: {driver: sqlite, sqlite_path: `+dbPath+`}
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
	if err := keys.GenerateMasterKeyFile(keyPath); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCmd(t, "", "audit", "verify", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "audit chain intact: 0 events, 0 checkpoints") {
		t.Fatalf("empty trail: exit %d\n%s%s", code, out, errs)
	}
	master, err := keys.LoadMasterKey("", keyPath)
	if err != nil {
		t.Fatal(err)
	}

	// Five events and a checkpoint of the fourth, as the server writes them.
	s, err := sqlite.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 5 {
		if err := s.AppendAuditEvents(t.Context(), []store.AuditEvent{{Time: now, Type: audit.SignInFailure,
			Outcome: audit.Failure, Reason: "invalid_credentials", Details: map[string]string{"n": string(rune('a' + i))}}}); err != nil {
			t.Fatal(err)
		}
	}
	events, err := s.ListAuditEvents(t.Context(), store.AuditQuery{Limit: 4})
	if err != nil || len(events) != 4 {
		t.Fatal(events, err)
	}
	if err := s.AddAuditCheckpoint(t.Context(), audit.SignCheckpoint(audit.DeriveCheckpointKey(master), events[3].ID, events[3].Hash, now)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	code, out, errs = runCmd(t, "", "audit", "verify", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "audit chain intact: 5 events, 1 checkpoints") || !strings.Contains(out, "last 1 events are not covered") {
		t.Fatalf("intact trail: exit %d\n%s%s", code, out, errs)
	}

	// Someone edits event 3 behind Garde's back.
	db, err := sql.Open("sqlite", sqlite.DSN(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit_events SET reason = 'account_locked' WHERE id = 3`); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd(t, "", "audit", "verify", "--config", cfgPath)
	if code != 1 || !strings.Contains(out, "event 3 altered") {
		t.Fatalf("after an UPDATE of event 3: exit %d\n%s%s", code, out, errs)
	}
	if _, err := db.Exec(`UPDATE audit_events SET reason = 'invalid_credentials' WHERE id = 3`); err != nil {
		t.Fatal(err)
	}

	// A forged checkpoint.
	var sig []byte
	if err := db.QueryRow(`SELECT signature FROM audit_checkpoints`).Scan(&sig); err != nil {
		t.Fatal(err)
	}
	sig = bytes.Clone(sig)
	sig[5] ^= 0x40
	if _, err := db.Exec(`UPDATE audit_checkpoints SET signature = ?`, sig); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCmd(t, "", "audit", "verify", "--config", cfgPath)
	if code != 1 || !strings.Contains(out, "audit checkpoint 1 BROKEN: bad_signature (it signs event 4") {
		t.Fatalf("with a forged checkpoint: exit %d\n%s%s", code, out, errs)
	}

	// The master key from the environment, as the server reads it; unset,
	// the chain is still checked, the checkpoints cannot be.
	envCfg := filepath.Join(dir, "env.yaml")
	b, _ := os.ReadFile(cfgPath)
	_ = os.WriteFile(envCfg, bytes.Replace(b, []byte("{file: "+keyPath+"}"), []byte("{env: GARDE_TEST_AUDIT_MASTER_KEY}"), 1), 0o600)
	t.Setenv("GARDE_TEST_AUDIT_MASTER_KEY", "")
	code, out, errs = runCmd(t, "", "audit", "verify", "--config", envCfg)
	if code != 1 || !strings.Contains(out, "audit chain intact: 5 events; checkpoints NOT verified") || !strings.Contains(errs, "GARDE_TEST_AUDIT_MASTER_KEY is not set") {
		t.Fatalf("master key variable unset: exit %d\n%s%s", code, out, errs)
	}

	if code, _, errs := runCmd(t, "", "audit"); code != 2 || !strings.Contains(errs, "usage: garde audit verify") {
		t.Fatalf("no subcommand: %d %q", code, errs)
	}
}
