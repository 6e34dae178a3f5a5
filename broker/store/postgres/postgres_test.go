package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

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

// Replicas (stores with pools of their own) appending at once make one
// linear chain; and the bigserial sequence follows the IDs the store
// chooses, so a writer of a previous version (INSERT without id) does not
// collide with them.
func TestAuditChainReplicas(t *testing.T) {
	ctx := context.Background()
	dsn := testutil.PostgresDSN(t)
	replicas := []*sqlstore.Store{open(t, dsn), open(t, dsn), open(t, dsn)}
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := replicas[i%len(replicas)]
			for range 5 {
				errs <- s.AppendAuditEvents(ctx, []store.AuditEvent{
					{Time: time.Now(), Type: "token.issued", Person: "a", Outcome: "success"},
					{Time: time.Now(), Type: "token.issued", Person: "b", Outcome: "success"},
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
	rep, err := replicas[1].VerifyAuditChain(ctx, 0)
	if err != nil || rep.Checked != 300 || rep.FirstBad != 0 || rep.Start != 1 || rep.LastID != 300 {
		t.Fatalf("VerifyAuditChain = %+v, %v", rep, err)
	}
	var id int64
	if err := replicas[0].DB().QueryRowContext(ctx, `INSERT INTO audit_events (time, type, person, app, client_addr, outcome, reason, session_id, details)
		VALUES (now(), 'old', '', '', '', 'success', '', '', '{}') RETURNING id`).Scan(&id); err != nil {
		t.Fatalf("insert through the sequence: %v", err)
	}
	if id != 301 {
		t.Fatalf("the sequence gave %d, want 301", id)
	}
	// That unchained event is reported, and the next append links past it.
	if rep, err := replicas[0].VerifyAuditChain(ctx, 0); err != nil || rep.FirstBad != 301 || rep.Problem != store.ChainAltered {
		t.Fatalf("VerifyAuditChain with an unchained event = %+v, %v", rep, err)
	}
}
