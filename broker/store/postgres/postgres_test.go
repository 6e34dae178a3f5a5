package postgres

import (
	"context"
	"sync"
	"testing"

	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/broker/store/conformance"
	"github.com/garde-sso/garde/broker/store/sqlstore"
	"github.com/garde-sso/garde/internal/testutil"
)

func open(t *testing.T, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Each sub-test gets a database of its own.
func TestConformance(t *testing.T) {
	conformance.RunDurable(t, func(t *testing.T) store.Durable {
		return open(t, testutil.PostgresDSN(t))
	})
}

// Replicas starting at once take turns at the migration lock: all succeed
// and each migration is recorded once.
func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	dsn := testutil.PostgresDSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(ctx, dsn)
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
	s := open(t, dsn)
	var n, distinct int
	if err := s.DB().QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != distinct {
		t.Fatalf("schema_migrations has %d rows for %d versions", n, distinct)
	}
}

func TestOpenBadDSN(t *testing.T) {
	if s, err := Open(context.Background(), "postgres://user:secret@[::1"); err == nil {
		s.Close()
		t.Fatal("Open succeeded on a malformed DSN")
	}
}
