package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// auditQueries are the statements of audit retention and export cursors.
type auditQueries struct {
	checkpointAt, eventHash, setAnchor           string
	deleteEvents, deleteCheckpoints              string
	cursor, advanceCursor, acquireLease, release string
}

func newAuditQueries(r func(string) string) auditQueries {
	return auditQueries{
		checkpointAt:      r(`SELECT hash FROM audit_checkpoints WHERE event_id = ?`),
		eventHash:         r(`SELECT hash FROM audit_events WHERE id = ?`),
		setAnchor:         r(`UPDATE audit_chain SET anchor_id = ?, anchor_hash = ?`),
		deleteEvents:      r(`DELETE FROM audit_events WHERE id <= ?`),
		deleteCheckpoints: r(`DELETE FROM audit_checkpoints WHERE event_id < ?`),

		cursor: r(`SELECT last_id FROM audit_export_cursors WHERE sink = ?`),
		// Upserts, in the syntax SQLite (3.24+) and PostgreSQL share. The
		// conditional DO UPDATE is what makes the lease exclusive: the
		// database evaluates it on the row as committed, under its row
		// lock, so of concurrent acquirers at most one changes the row.
		advanceCursor: r(`INSERT INTO audit_export_cursors (sink, last_id, holder, lease_until) VALUES (?, ?, '', ?)
			ON CONFLICT (sink) DO UPDATE SET last_id = excluded.last_id
			WHERE audit_export_cursors.last_id < excluded.last_id`),
		acquireLease: r(`INSERT INTO audit_export_cursors (sink, last_id, holder, lease_until) VALUES (?, 0, ?, ?)
			ON CONFLICT (sink) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
			WHERE audit_export_cursors.holder = excluded.holder OR audit_export_cursors.holder = ''
				OR audit_export_cursors.lease_until < ?`),
		release: r(`UPDATE audit_export_cursors SET holder = '', lease_until = ? WHERE sink = ? AND holder = ?`),
	}
}

// anchorTx reads the purge anchor in tx (0, nil when none).
func (s *Store) anchorTx(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, []byte, error) {
	var id int64
	var hash []byte
	if err := q.QueryRowContext(ctx, s.q.auditAnchor).Scan(&id, &hash); err != nil {
		return 0, nil, fmt.Errorf("chain anchor: %w", err)
	}
	return id, hash, nil
}

// AuditChainAnchor implements store.AuditRetention.
func (s *Store) AuditChainAnchor(ctx context.Context) (int64, []byte, error) {
	id, hash, err := s.anchorTx(ctx, s.db)
	if err != nil {
		return 0, nil, fmt.Errorf("sqlstore: %w", err)
	}
	return id, hash, nil
}

// PurgeAuditEvents implements store.AuditRetention. Under the append lock,
// so that no event is appended between the checks and the delete, and the
// purge record is chained after everything that was stored.
func (s *Store) PurgeAuditEvents(ctx context.Context, anchor store.AuditCheckpoint, record store.AuditEvent) (n int64, err error) {
	const op = "sqlstore: purge audit events"
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := s.lockAudit(ctx, tx); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	var signed, stored []byte
	err = tx.QueryRowContext(ctx, s.q.ac.checkpointAt, anchor.EventID).Scan(&signed)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !bytes.Equal(signed, anchor.Hash)) {
		return 0, fmt.Errorf("%s: %w: no stored checkpoint of event %d with that hash", op, store.ErrConflict, anchor.EventID)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	err = tx.QueryRowContext(ctx, s.q.ac.eventHash, anchor.EventID).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !bytes.Equal(stored, anchor.Hash)) {
		return 0, fmt.Errorf("%s: %w: event %d is not stored with the checkpoint's hash", op, store.ErrConflict, anchor.EventID)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	if current, _, err := s.anchorTx(ctx, tx); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	} else if current >= anchor.EventID {
		return 0, fmt.Errorf("%s: %w: already purged through event %d", op, store.ErrConflict, current)
	}
	res, err := tx.ExecContext(ctx, s.q.ac.deleteEvents, anchor.EventID)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	if n, err = res.RowsAffected(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := tx.ExecContext(ctx, s.q.ac.deleteCheckpoints, anchor.EventID); err != nil {
		return 0, fmt.Errorf("%s: checkpoints: %w", op, err)
	}
	if _, err := tx.ExecContext(ctx, s.q.ac.setAnchor, anchor.EventID, anchor.Hash); err != nil {
		return 0, fmt.Errorf("%s: anchor: %w", op, err)
	}
	if err := s.appendAuditTx(ctx, tx, []store.AuditEvent{record}); err != nil {
		return 0, fmt.Errorf("%s: record: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("%s: commit: %w", op, err)
	}
	return n, nil
}

// AuditExportCursor implements store.AuditExportCursors.
func (s *Store) AuditExportCursor(ctx context.Context, sink string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, s.q.ac.cursor, sink).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlstore: audit export cursor: %w", err)
	}
	return id, nil
}

// AdvanceAuditExportCursor implements store.AuditExportCursors.
func (s *Store) AdvanceAuditExportCursor(ctx context.Context, sink string, id int64) error {
	if _, err := s.db.ExecContext(ctx, s.q.ac.advanceCursor, sink, id, s.d.timeArg(time.Unix(0, 0))); err != nil {
		return fmt.Errorf("sqlstore: advance audit export cursor: %w", err)
	}
	return nil
}

// AcquireAuditExportLease implements store.AuditExportCursors.
func (s *Store) AcquireAuditExportLease(ctx context.Context, sink, holder string, now time.Time, ttl time.Duration) (bool, error) {
	if holder == "" {
		return false, errors.New("sqlstore: acquire audit export lease: empty holder")
	}
	res, err := s.db.ExecContext(ctx, s.q.ac.acquireLease, sink, holder, s.d.timeArg(now.Add(ttl)), s.d.timeArg(now))
	if err != nil {
		if s.d.IsUniqueViolation(err) {
			return false, nil // another replica inserted the row first
		}
		return false, fmt.Errorf("sqlstore: acquire audit export lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: acquire audit export lease: %w", err)
	}
	return n == 1, nil
}

// ReleaseAuditExportLease implements store.AuditExportCursors.
func (s *Store) ReleaseAuditExportLease(ctx context.Context, sink, holder string) error {
	if _, err := s.db.ExecContext(ctx, s.q.ac.release, s.d.timeArg(time.Unix(0, 0)), sink, holder); err != nil {
		return fmt.Errorf("sqlstore: release audit export lease: %w", err)
	}
	return nil
}
