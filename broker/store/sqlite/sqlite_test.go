package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/conformance"
	"github.com/garde-sso/garde/broker/store/sqlstore"
)

func open(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	conformance.RunDurable(t, func(t *testing.T) store.Durable {
		return open(t, filepath.Join(t.TempDir(), "garde.db"))
	})
}

func TestPragmas(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "garde.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "1", // NORMAL
		"foreign_keys": "1",
		"busy_timeout": "5000",
	} {
		var got string
		if err := s.DB().QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

// Reopening an existing file keeps its rows and applies no migration twice;
// replicas (processes) opening one file at once take turns.
func TestReopenAndConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "garde.db")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(ctx, path)
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
	s := open(t, path)
	k := store.SigningKey{KID: "k", Alg: "ES256", Generation: 1, Sealed: []byte("x"), CreatedAt: time.Now()}
	if err := s.InsertSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := open(t, path)
	keys, err := s2.ListSigningKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("after reopen: %v, %v", keys, err)
	}
	var n, distinct int
	if err := s2.DB().QueryRow("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != distinct {
		t.Fatalf("schema_migrations has %d rows for %d versions", n, distinct)
	}
}

// Two stores on one file (two processes, as far as SQLite is concerned)
// appending at once make one linear chain: each transaction takes the
// write lock at BEGIN IMMEDIATE, before reading the chain head.
func TestAuditChainTwoWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "garde.db")
	writers := []*sqlstore.Store{open(t, path), open(t, path)}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				errs <- writers[i%2].AppendAuditEvents(ctx, []store.AuditEvent{
					{Time: time.Now(), Type: "token.issued", Outcome: "success"},
					{Time: time.Now(), Type: "token.refreshed", Outcome: "success"},
				})
			}
		}()
	}
	go func() { wg.Wait(); close(errs) }()
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := writers[0].VerifyAuditChain(ctx, 0)
	if err != nil || rep.Checked != 200 || rep.FirstBad != 0 || rep.LastID != 200 {
		t.Fatalf("VerifyAuditChain = %+v, %v", rep, err)
	}
}

// Events written before migration 0003 stay outside the chain, which
// starts after them.
func TestAuditChainStartsAfterOldEvents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "garde.db")
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"0001_init.sql", "0002_webauthn.sql"} {
		b, err := os.ReadFile(filepath.Join("..", "sqlstore", "migrations", "sqlite", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	for _, q := range []string{
		`CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)`,
		`INSERT INTO schema_migrations VALUES (1, 'then'), (2, 'then')`,
		`INSERT INTO audit_events (time, type, person, app, client_addr, outcome, reason, session_id, details)
			VALUES (1, 'old', '', '', '', 'success', '', '', '{}'), (2, 'old', '', '', '', 'success', '', '', '{}')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := open(t, path)
	if id, h, err := s.AuditChainHead(ctx); err != nil || id != 0 || h != nil {
		t.Fatalf("AuditChainHead with only old events = %d, %x, %v", id, h, err)
	}
	if err := s.AppendAuditEvents(ctx, []store.AuditEvent{{Time: time.Now(), Type: "new", Outcome: "success"}, {Time: time.Now(), Type: "new", Outcome: "success"}}); err != nil {
		t.Fatal(err)
	}
	events, err := s.ListAuditEvents(ctx, store.AuditQuery{})
	if err != nil || len(events) != 4 {
		t.Fatalf("events = %+v, %v", events, err)
	}
	if events[0].Hash != nil || events[1].PrevHash != nil || !bytes.Equal(events[2].PrevHash, store.AuditGenesis) || events[2].ID != 3 {
		t.Fatalf("old events chained, or the chain does not start at genesis: %+v", events)
	}
	rep, err := s.VerifyAuditChain(ctx, 0)
	if err != nil || rep.Start != 3 || rep.Checked != 2 || rep.FirstBad != 0 || rep.LastID != 4 {
		t.Fatalf("VerifyAuditChain = %+v, %v", rep, err)
	}
}
