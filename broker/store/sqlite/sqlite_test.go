package sqlite

import (
	"context"
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
