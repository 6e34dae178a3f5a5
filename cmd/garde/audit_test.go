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

	if code, _, errs := runCmd(t, "", "audit"); code != 2 || !strings.Contains(errs, "garde audit verify [--config FILE]") {
		t.Fatalf("no subcommand: %d %q", code, errs)
	}
}

// auditFixture writes a configuration with a SQLite store and a master key
// file, and returns its path, the database path and the master key.
func auditFixture(t *testing.T) (cfgPath, dbPath string, master []byte) {
	t.Helper()
	dir := t.TempDir()
	keyPath, dbPath := filepath.Join(dir, "key"), filepath.Join(dir, "garde.db")
	cfgPath = filepath.Join(dir, "garde.yaml")
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
	master, err := keys.LoadMasterKey("", keyPath)
	if err != nil {
		t.Fatal(err)
	}
	return cfgPath, dbPath, master
}

func TestAuditQueryCommand(t *testing.T) {
	cfgPath, dbPath, _ := auditFixture(t)
	s, err := sqlite.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 3, 14, 8, 0, 0, 0, time.UTC)
	if err := s.AppendAuditEvents(t.Context(), []store.AuditEvent{
		{Time: day, Type: audit.SignInFailure, App: "dpi", ClientAddr: "10.1.2.3", Outcome: audit.Failure, Reason: "invalid_credentials"},
		{Time: day.Add(time.Hour), Type: audit.SignInSuccess, Person: "ad:1", App: "=cmd|' /C calc'!A0", ClientAddr: "10.2.0.1", Outcome: audit.Success},
		{Time: day.Add(25 * time.Hour), Type: audit.TokenIssued, Person: "ad:1", App: "dpi", ClientAddr: "192.0.2.1", Outcome: audit.Success},
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	q := func(args ...string) (int, string, string) {
		return runCmd(t, "", append([]string{"audit", "query", "--config", cfgPath}, args...)...)
	}
	code, out, errs := q()
	if code != 0 || strings.Count(out, "\n") != 4 || !strings.Contains(out, "signin.failure") {
		t.Fatalf("query: %d\n%s%s", code, out, errs)
	}
	code, out, _ = q("--format", "csv", "--addr", "10.0.0.0/8")
	if code != 0 || !strings.HasPrefix(out, "id,time,type,person,app,client_addr,outcome,reason,session_id,details,hash\n") ||
		strings.Count(out, "\n") != 3 || !strings.Contains(out, ",'=cmd|' /C calc'!A0,") {
		t.Fatalf("csv by CIDR: %d\n%s", code, out)
	}
	code, out, _ = q("--format", "jsonl", "--person", "ad:1", "--since", "2026-03-15")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"type":"token.issued"`) {
		t.Fatalf("jsonl by person since: %d\n%s", code, out)
	}
	code, out, _ = q("--format", "json", "--type", "signin.failure,signin.success", "--outcome", "failure", "--until", "2026-03-14T09:30:00+01:00")
	if code != 0 || strings.Count(out, `"id"`) != 1 || !strings.Contains(out, `"reason":"invalid_credentials"`) {
		t.Fatalf("json by types, outcome, until: %d\n%s", code, out)
	}
	code, out, _ = q("--format", "jsonl", "--limit", "1", "--after", "1")
	if code != 0 || !strings.Contains(out, `"id":2`) || strings.Count(out, "\n") != 1 {
		t.Fatalf("page: %d\n%s", code, out)
	}
	for _, bad := range [][]string{{"--format", "xml"}, {"--since", "yesterday"}, {"--addr", "10.0.0.0/40"}, {"--outcome", "maybe"}, {"--limit", "-1"}, {"extra"}} {
		if code, _, errs := q(bad...); code != 2 || errs == "" {
			t.Errorf("query %v: exit %d, %q", bad, code, errs)
		}
	}
}

func TestAuditPurgeCommand(t *testing.T) {
	cfgPath, dbPath, master := auditFixture(t)
	s, err := sqlite.Open(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Date(2024, 1, 10, 8, 0, 0, 0, time.UTC)
	for i := range 10 {
		if err := s.AppendAuditEvents(t.Context(), []store.AuditEvent{{Time: old.Add(time.Duration(i) * 24 * time.Hour), Type: audit.SignInSuccess, Outcome: audit.Success}}); err != nil {
			t.Fatal(err)
		}
	}
	events, _ := s.ListAuditEvents(t.Context(), store.AuditQuery{})
	key := audit.DeriveCheckpointKey(master)
	for _, i := range []int{3, 9} {
		if err := s.AddAuditCheckpoint(t.Context(), audit.SignCheckpoint(key, events[i].ID, events[i].Hash, old)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	if code, _, errs := runCmd(t, "", "audit", "purge", "--config", cfgPath, "--before", "2024-01-16"); code != 1 || !strings.Contains(errs, "--yes") {
		t.Fatalf("purge without --yes: %d %q", code, errs)
	}
	code, out, errs := runCmd(t, "", "audit", "purge", "--config", cfgPath, "--before", "2024-01-16", "--yes")
	if code != 0 || !strings.Contains(out, "purged 4 events (1 to 4)") {
		t.Fatalf("purge: %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCmd(t, "", "audit", "verify", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "audit chain intact: 7 events, 2 checkpoints") || !strings.Contains(out, "events up to 4 were purged") {
		t.Fatalf("verify after purge: %d\n%s%s", code, out, errs)
	}
	// The anchor's checkpoint deleted behind Garde's back.
	db, err := sql.Open("sqlite", sqlite.DSN(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM audit_checkpoints WHERE event_id = 4`); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCmd(t, "", "audit", "verify", "--config", cfgPath)
	if code != 1 || !strings.Contains(out, "no valid checkpoint signs that event") {
		t.Fatalf("verify without the anchor checkpoint: %d\n%s", code, out)
	}
	// A broken trail is not purged.
	if code, _, errs := runCmd(t, "", "audit", "purge", "--config", cfgPath, "--before", "2024-02-01", "--yes"); code != 1 || !strings.Contains(errs, "nothing was purged") {
		t.Fatalf("purge of a broken trail: %d %q", code, errs)
	}
	for _, bad := range [][]string{{}, {"--before", "soon"}, {"--before", "2999-01-01"}} {
		if code, _, _ := runCmd(t, "", append([]string{"audit", "purge", "--config", cfgPath}, bad...)...); code != 2 {
			t.Errorf("purge %v: exit %d", bad, code)
		}
	}
}
