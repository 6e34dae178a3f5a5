package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// webauthnQueries holds the WebAuthn credential and enrollment code
// statements, rebound for the dialect at New.
type webauthnQueries struct {
	createCred, getCred, listCreds, useCred    string
	renameCred, flagCred, deleteCred, deleteOf string
	createCode, useCode, listCodes             string
}

const credColumns = `id, subject, name, aaguid, sign_count, backup_eligible, discoverable, flagged, data, created_at, last_used_at`

const codeColumns = `hash, subject, created_by, created_at, expires_at, used_at`

func newWebAuthnQueries(r func(string) string) webauthnQueries {
	return webauthnQueries{
		createCred: r(`INSERT INTO webauthn_credentials (` + credColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		getCred:    r(`SELECT ` + credColumns + ` FROM webauthn_credentials WHERE id = ?`),
		// created_at then id: credentials created in the same microsecond
		// still come in a stable order.
		listCreds:  r(`SELECT ` + credColumns + ` FROM webauthn_credentials WHERE subject = ? ORDER BY created_at, id`),
		useCred:    r(`UPDATE webauthn_credentials SET sign_count = ?, last_used_at = ?, data = ? WHERE id = ?`),
		renameCred: r(`UPDATE webauthn_credentials SET name = ? WHERE id = ? AND subject = ?`),
		flagCred:   r(`UPDATE webauthn_credentials SET flagged = TRUE WHERE id = ?`),
		deleteCred: r(`DELETE FROM webauthn_credentials WHERE id = ? AND subject = ?`),
		deleteOf:   r(`DELETE FROM webauthn_credentials WHERE subject = ?`),

		createCode: r(`INSERT INTO enrollment_codes (` + codeColumns + `) VALUES (?, ?, ?, ?, ?, ?)`),
		useCode:    r(`UPDATE enrollment_codes SET used_at = ? WHERE hash = ? AND subject = ? AND used_at IS NULL AND expires_at > ?`),
		listCodes:  r(`SELECT ` + codeColumns + ` FROM enrollment_codes WHERE subject = ? ORDER BY created_at DESC, hash`),
	}
}

// nullTimeArg is timeArg for a nullable column: the zero time is NULL.
func (d *Dialect) nullTimeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.timeArg(t)
}

// exec runs a statement and returns how many rows it affected.
func (s *Store) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return n, nil
}

// execOne runs a statement meant to change one row: store.ErrNotFound if it
// changed none. Both databases count the rows a WHERE matched, even when
// the new values equal the old ones.
func (s *Store) execOne(ctx context.Context, op, query string, args ...any) error {
	n, err := s.exec(ctx, op, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanCredential(r rowScanner) (store.WebAuthnCredential, error) {
	var c store.WebAuthnCredential
	var count int64
	err := r.Scan(&c.ID, &c.Subject, &c.Name, &c.AAGUID, &count, &c.BackupEligible,
		&c.Discoverable, &c.Flagged, &c.Data, dbTime{&c.CreatedAt}, dbTime{&c.LastUsedAt})
	if err != nil {
		return store.WebAuthnCredential{}, err
	}
	if count < 0 || count > 1<<32-1 {
		return store.WebAuthnCredential{}, fmt.Errorf("sign count %d out of range", count)
	}
	c.SignCount = uint32(count)
	return c, nil
}

// CreateWebAuthnCredential implements store.WebAuthnCredentials. The
// credential id is the primary key: a second credential with the same id
// gets store.ErrConflict, whoever it belongs to. A zero LastUsedAt is stored
// as NULL (never used) and reads back zero.
func (s *Store) CreateWebAuthnCredential(ctx context.Context, c store.WebAuthnCredential) error {
	_, err := s.db.ExecContext(ctx, s.q.wa.createCred,
		nonNil(c.ID), c.Subject, c.Name, nonNil(c.AAGUID), int64(c.SignCount),
		c.BackupEligible, c.Discoverable, c.Flagged, nonNil(c.Data),
		s.d.timeArg(c.CreatedAt), s.d.nullTimeArg(c.LastUsedAt))
	if err != nil {
		return s.conflict("create webauthn credential", err)
	}
	return nil
}

// GetWebAuthnCredential implements store.WebAuthnCredentials.
func (s *Store) GetWebAuthnCredential(ctx context.Context, id []byte) (store.WebAuthnCredential, error) {
	c, err := scanCredential(s.db.QueryRowContext(ctx, s.q.wa.getCred, nonNil(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.WebAuthnCredential{}, store.ErrNotFound
	}
	if err != nil {
		return store.WebAuthnCredential{}, fmt.Errorf("sqlstore: get webauthn credential: %w", err)
	}
	return c, nil
}

// ListWebAuthnCredentials implements store.WebAuthnCredentials: oldest
// first, ties broken by id.
func (s *Store) ListWebAuthnCredentials(ctx context.Context, subject string) ([]store.WebAuthnCredential, error) {
	return queryAll(ctx, s, "list webauthn credentials", s.q.wa.listCreds, scanCredential, subject)
}

// UpdateWebAuthnCredentialUse implements store.WebAuthnCredentials. It
// leaves Flagged alone: detecting a counter regression is the caller's job.
func (s *Store) UpdateWebAuthnCredentialUse(ctx context.Context, id []byte, signCount uint32, usedAt time.Time, data []byte) error {
	return s.execOne(ctx, "update webauthn credential use", s.q.wa.useCred,
		int64(signCount), s.d.nullTimeArg(usedAt), nonNil(data), nonNil(id))
}

// RenameWebAuthnCredential implements store.WebAuthnCredentials. The
// subject is part of the WHERE clause: a person cannot rename another
// person's credential, and cannot tell it exists (store.ErrNotFound).
func (s *Store) RenameWebAuthnCredential(ctx context.Context, subject string, id []byte, name string) error {
	return s.execOne(ctx, "rename webauthn credential", s.q.wa.renameCred, name, nonNil(id), subject)
}

// FlagWebAuthnCredential implements store.WebAuthnCredentials. Flagging is
// idempotent; a missing credential is store.ErrNotFound, as for
// UpdateWebAuthnCredentialUse.
func (s *Store) FlagWebAuthnCredential(ctx context.Context, id []byte) error {
	return s.execOne(ctx, "flag webauthn credential", s.q.wa.flagCred, nonNil(id))
}

// DeleteWebAuthnCredential implements store.WebAuthnCredentials, scoped to
// subject like RenameWebAuthnCredential.
func (s *Store) DeleteWebAuthnCredential(ctx context.Context, subject string, id []byte) error {
	return s.execOne(ctx, "delete webauthn credential", s.q.wa.deleteCred, nonNil(id), subject)
}

// DeleteWebAuthnCredentialsOf implements store.WebAuthnCredentials.
func (s *Store) DeleteWebAuthnCredentialsOf(ctx context.Context, subject string) (int64, error) {
	return s.exec(ctx, "delete webauthn credentials of subject", s.q.wa.deleteOf, subject)
}

// CreateEnrollmentCode implements store.EnrollmentCodes. A zero UsedAt is
// stored as NULL (unused).
func (s *Store) CreateEnrollmentCode(ctx context.Context, c store.EnrollmentCode) error {
	_, err := s.db.ExecContext(ctx, s.q.wa.createCode,
		nonNil(c.Hash), c.Subject, c.CreatedBy, s.d.timeArg(c.CreatedAt),
		s.d.timeArg(c.ExpiresAt), s.d.nullTimeArg(c.UsedAt))
	if err != nil {
		return s.conflict("create enrollment code", err)
	}
	return nil
}

// UseEnrollmentCode implements store.EnrollmentCodes with one conditional
// UPDATE: the database lets exactly one of concurrent uses change the row
// (PostgreSQL re-checks the WHERE clause of a waiting update once the first
// commits; SQLite has a single writer). Whether the code is missing, another
// person's, used or expired (expires_at <= now), nothing changes and the
// answer is the same store.ErrNotFound.
func (s *Store) UseEnrollmentCode(ctx context.Context, hash []byte, subject string, now time.Time) error {
	return s.execOne(ctx, "use enrollment code", s.q.wa.useCode,
		s.d.timeArg(now), nonNil(hash), subject, s.d.timeArg(now))
}

// ListEnrollmentCodes implements store.EnrollmentCodes: newest first, ties
// broken by hash.
func (s *Store) ListEnrollmentCodes(ctx context.Context, subject string) ([]store.EnrollmentCode, error) {
	return queryAll(ctx, s, "list enrollment codes", s.q.wa.listCodes, func(r rowScanner) (store.EnrollmentCode, error) {
		var c store.EnrollmentCode
		err := r.Scan(&c.Hash, &c.Subject, &c.CreatedBy, dbTime{&c.CreatedAt}, dbTime{&c.ExpiresAt}, dbTime{&c.UsedAt})
		return c, err
	}, subject)
}
