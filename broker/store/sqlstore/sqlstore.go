// Package sqlstore is Garde's durable store over database/sql: the SQL and
// the schema migrations shared by packages sqlite and postgres, which supply
// the driver and a Dialect.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/garde-sso/garde/broker/store"
)

var _ store.Durable = (*Store)(nil)

// DefaultAuditLimit is how many audit events a query returns when its Limit
// is zero.
const DefaultAuditLimit = 100

// Store is a store.Durable on a SQL database.
type Store struct {
	db *sql.DB
	d  Dialect
	q  queries
}

// queries holds the statements rebound for the dialect once, at New.
type queries struct {
	insertKey, listKeys, deleteKey                          string
	createToken, getToken, deactivateToken, tokenExists     string
	deleteToken, revokeFamily, revokeSession, deleteExpired string
	insertAudit, auditHead, auditHash, auditChainStart      string
	auditChainPage, auditFindHash                           string
	auditAnchor                                             string
	ac                                                      auditQueries
	insertCheckpoint, latestCheckpoint, listCheckpoints     string
	wa                                                      webauthnQueries
	links                                                   linkQueries
}

const tokenColumns = `signature, request_id, client_id, subject, session_id, active, data, created_at, expires_at`

const auditColumns = `id, time, type, person, app, client_addr, outcome, reason, session_id, details`

// New migrates db to the current schema and returns a store on it. The store
// owns db: Close closes it.
func New(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	if d.IsUniqueViolation == nil {
		return nil, errors.New("sqlstore: dialect has no IsUniqueViolation")
	}
	if err := Migrate(ctx, db, &d); err != nil {
		return nil, err
	}
	s := &Store{db: db, d: d}
	r := d.rebind
	s.q = queries{
		insertKey: r(`INSERT INTO signing_keys (kid, alg, generation, sealed, created_at) VALUES (?, ?, ?, ?, ?)`),
		listKeys:  r(`SELECT kid, alg, generation, sealed, created_at FROM signing_keys ORDER BY alg, generation`),
		deleteKey: r(`DELETE FROM signing_keys WHERE kid = ?`),

		createToken:     r(`INSERT INTO refresh_tokens (` + tokenColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		getToken:        r(`SELECT ` + tokenColumns + ` FROM refresh_tokens WHERE signature = ?`),
		deactivateToken: r(`UPDATE refresh_tokens SET active = FALSE WHERE signature = ? AND active = TRUE`),
		tokenExists:     r(`SELECT 1 FROM refresh_tokens WHERE signature = ?`),
		deleteToken:     r(`DELETE FROM refresh_tokens WHERE signature = ?`),
		revokeFamily:    r(`DELETE FROM refresh_tokens WHERE request_id = ?`),
		revokeSession:   r(`DELETE FROM refresh_tokens WHERE session_id = ?`),
		deleteExpired:   r(`DELETE FROM refresh_tokens WHERE expires_at < ?`),

		insertAudit:     r(`INSERT INTO audit_events (` + auditColumns + `, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		auditHead:       r(`SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1`),
		auditHash:       r(`SELECT hash FROM audit_events WHERE id = ?`),
		auditChainStart: r(`SELECT first_id, anchor_id, anchor_hash FROM audit_chain`),
		auditAnchor:     r(`SELECT anchor_id, anchor_hash FROM audit_chain`),
		auditChainPage:  r(`SELECT ` + auditColumns + `, prev_hash, hash FROM audit_events WHERE id >= ? ORDER BY id LIMIT ?`),
		auditFindHash:   r(`SELECT id FROM audit_events WHERE hash = ? ORDER BY id LIMIT 1`),

		insertCheckpoint: r(`INSERT INTO audit_checkpoints (` + checkpointColumns + `) VALUES (?, ?, ?, ?, ?)`),
		latestCheckpoint: r(`SELECT id, ` + checkpointColumns + ` FROM audit_checkpoints ORDER BY id DESC LIMIT 1`),
		listCheckpoints:  r(`SELECT id, ` + checkpointColumns + ` FROM audit_checkpoints WHERE id > ? ORDER BY id LIMIT ?`),

		wa:    newWebAuthnQueries(r),
		links: newLinkQueries(r),
		ac:    newAuditQueries(r),
	}
	return s, nil
}

// DB returns the underlying database, for health checks and metrics.
func (s *Store) DB() *sql.DB { return s.db }

// Ping implements store.Durable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	return nil
}

// Close implements store.Durable.
func (s *Store) Close() error { return s.db.Close() }

// conflict maps a unique violation to store.ErrConflict, keeping the
// driver's error in the chain for the log.
func (s *Store) conflict(op string, err error) error {
	if s.d.IsUniqueViolation(err) {
		return fmt.Errorf("sqlstore: %s: %w (%v)", op, store.ErrConflict, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// nonNil turns nil into an empty slice: the columns are NOT NULL, and an
// absent value is an empty one.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// InsertSigningKey implements store.SigningKeys. Of replicas rotating at
// once, the unique (alg, generation) lets exactly one insert; the others get
// store.ErrConflict and reload the keys.
func (s *Store) InsertSigningKey(ctx context.Context, k store.SigningKey) error {
	_, err := s.db.ExecContext(ctx, s.q.insertKey,
		k.KID, k.Alg, k.Generation, nonNil(k.Sealed), s.d.timeArg(k.CreatedAt))
	if err != nil {
		return s.conflict("insert signing key", err)
	}
	return nil
}

// ListSigningKeys implements store.SigningKeys.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return queryAll(ctx, s, "list signing keys", s.q.listKeys, func(r rowScanner) (store.SigningKey, error) {
		var k store.SigningKey
		err := r.Scan(&k.KID, &k.Alg, &k.Generation, &k.Sealed, dbTime{&k.CreatedAt})
		return k, err
	})
}

// DeleteSigningKey implements store.SigningKeys.
func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	if _, err := s.db.ExecContext(ctx, s.q.deleteKey, kid); err != nil {
		return fmt.Errorf("sqlstore: delete signing key: %w", err)
	}
	return nil
}

// CreateRefreshToken implements store.RefreshTokens. The token is stored
// active whatever t.Active says: the interface creates active tokens only.
func (s *Store) CreateRefreshToken(ctx context.Context, t store.RefreshToken) error {
	_, err := s.db.ExecContext(ctx, s.q.createToken,
		t.Signature, t.RequestID, t.ClientID, t.Subject, t.SessionID, true,
		nonNil(t.Data), s.d.timeArg(t.CreatedAt), s.d.timeArg(t.ExpiresAt))
	if err != nil {
		return s.conflict("create refresh token", err)
	}
	return nil
}

// GetRefreshToken implements store.RefreshTokens.
func (s *Store) GetRefreshToken(ctx context.Context, signature string) (store.RefreshToken, error) {
	var t store.RefreshToken
	err := s.db.QueryRowContext(ctx, s.q.getToken, signature).Scan(
		&t.Signature, &t.RequestID, &t.ClientID, &t.Subject, &t.SessionID, &t.Active,
		&t.Data, dbTime{&t.CreatedAt}, dbTime{&t.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return store.RefreshToken{}, store.ErrNotFound
	}
	if err != nil {
		return store.RefreshToken{}, fmt.Errorf("sqlstore: get refresh token: %w", err)
	}
	return t, nil
}

// DeactivateRefreshToken implements store.RefreshTokens. One conditional
// UPDATE decides the race: the database lets exactly one of concurrent
// rotations change the row, and only that one sees a row affected.
func (s *Store) DeactivateRefreshToken(ctx context.Context, signature string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q.deactivateToken, signature)
	if err != nil {
		return false, fmt.Errorf("sqlstore: deactivate refresh token: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: deactivate refresh token: %w", err)
	}
	if n > 0 {
		return true, nil
	}
	// No row changed: either the token is already inactive or there is none.
	var one int
	err = s.db.QueryRowContext(ctx, s.q.tokenExists, signature).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, store.ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("sqlstore: deactivate refresh token: %w", err)
	}
	return false, nil
}

func (s *Store) deleteTokens(ctx context.Context, op, query string, arg any) (int64, error) {
	res, err := s.db.ExecContext(ctx, query, arg)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return n, nil
}

// DeleteRefreshToken implements store.RefreshTokens.
func (s *Store) DeleteRefreshToken(ctx context.Context, signature string) error {
	_, err := s.deleteTokens(ctx, "delete refresh token", s.q.deleteToken, signature)
	return err
}

// RevokeRefreshTokenFamily implements store.RefreshTokens.
func (s *Store) RevokeRefreshTokenFamily(ctx context.Context, requestID string) (int64, error) {
	return s.deleteTokens(ctx, "revoke refresh token family", s.q.revokeFamily, requestID)
}

// RevokeRefreshTokensOfSession implements store.RefreshTokens.
func (s *Store) RevokeRefreshTokensOfSession(ctx context.Context, sessionID string) (int64, error) {
	return s.deleteTokens(ctx, "revoke refresh tokens of session", s.q.revokeSession, sessionID)
}

// DeleteExpiredRefreshTokens implements store.RefreshTokens: it deletes the
// tokens whose ExpiresAt is strictly before t.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, t time.Time) (int64, error) {
	return s.deleteTokens(ctx, "delete expired refresh tokens", s.q.deleteExpired, s.d.timeArg(t))
}

// AppendAuditEvents implements store.AuditLog. The events are inserted in
// order in one transaction, with consecutive IDs, each hash-chained to the
// one before it (store.AuditEventHash).
//
// Why the dialect's AuditLock: with several writers, IDs are handed out at
// insert time but become visible at commit, possibly out of order; an
// exporter paging with AfterID past a visible ID would then miss a smaller
// one committed a moment later. Serialising appends makes commit order ID
// order. It is also what makes the hash chain linear: under the lock
// (SQLite: the write lock every transaction takes at BEGIN IMMEDIATE), the
// last event read at the start is still the last one when we insert, so
// concurrent appends from goroutines or replicas never fork the chain.
// Appends are short, so the lock costs little.
//
// Why the store chooses IDs (last ID + 1) instead of letting the database:
// an ID is part of what is hashed, so it must be known before the insert;
// and verification treats a gap in IDs as a deleted event, so IDs must have
// none. A PostgreSQL sequence hands out values outside transactions: a
// rolled-back append (a timeout, a lost connection) would burn them and
// leave a gap. Under the lock, last ID + 1 is exact and a rollback takes
// nothing with it. Cost: one SELECT per batch (by primary key, newest row),
// then one SHA-256 per event.
func (s *Store) AppendAuditEvents(ctx context.Context, events []store.AuditEvent) (err error) {
	if len(events) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: append audit events: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err := s.lockAudit(ctx, tx); err != nil {
		return fmt.Errorf("sqlstore: append audit events: %w", err)
	}
	if err := s.appendAuditTx(ctx, tx, events); err != nil {
		return fmt.Errorf("sqlstore: append audit events: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: append audit events: commit: %w", err)
	}
	return nil
}

// lockAudit takes the dialect's audit append lock in tx (see
// AppendAuditEvents).
func (s *Store) lockAudit(ctx context.Context, tx *sql.Tx) error {
	if s.d.AuditLock == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.d.AuditLock); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}

// appendAuditTx chains and inserts events in tx, which holds the audit
// lock.
func (s *Store) appendAuditTx(ctx context.Context, tx *sql.Tx, events []store.AuditEvent) error {
	lastID, prev, err := scanHead(tx.QueryRowContext(ctx, s.q.auditHead))
	if err != nil {
		return fmt.Errorf("chain head: %w", err)
	}
	// After a purge that left no event, or none past the anchor, the
	// chain continues from the anchor: the next event links to the last
	// purged one and takes the ID after it.
	anchorID, anchorHash, err := s.anchorTx(ctx, tx)
	if err != nil {
		return err
	}
	if anchorID > 0 && lastID <= anchorID {
		lastID, prev = anchorID, anchorHash
	}
	if len(prev) != store.AuditHashSize {
		// No event yet, or the last one predates the chain: start it.
		prev = store.AuditGenesis
	}
	stmt, err := tx.PrepareContext(ctx, s.q.insertAudit)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i, e := range events {
		details, hashed, err := encodeDetails(e.Details)
		if err != nil {
			return fmt.Errorf("details: %w", err)
		}
		e.ID = lastID + 1 + int64(i)
		e.Details = hashed
		h := store.AuditEventHash(prev, e)
		if _, err := stmt.ExecContext(ctx, e.ID, s.d.timeArg(e.Time), e.Type, e.Person, e.App,
			e.ClientAddr, e.Outcome, e.Reason, e.SessionID, details, prev, h); err != nil {
			return err
		}
		prev = h
	}
	if s.d.AuditSequenceSync != "" {
		if _, err := tx.ExecContext(ctx, s.d.AuditSequenceSync, lastID+int64(len(events))); err != nil {
			return fmt.Errorf("sequence: %w", err)
		}
	}
	return nil
}

// encodeDetails returns details as stored (a JSON object) and as hashed:
// the map that reading the JSON back yields, so that verification, which
// only has the stored text, computes the same hash. They differ only for
// strings that are not valid UTF-8, which JSON encoding replaces.
func encodeDetails(d map[string]string) (string, map[string]string, error) {
	if len(d) == 0 {
		return "{}", nil, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", nil, err
	}
	for k, v := range d {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			var back map[string]string
			if err := json.Unmarshal(b, &back); err != nil {
				return "", nil, err
			}
			return string(b), back, nil
		}
	}
	return string(b), d, nil
}

// ListAuditEvents implements store.AuditLog. Since is inclusive and Until
// exclusive, so consecutive windows neither overlap nor leave gaps. A Limit
// of zero (or less) means DefaultAuditLimit.
func (s *Store) ListAuditEvents(ctx context.Context, q store.AuditQuery) ([]store.AuditEvent, error) {
	var where []string
	var args []any
	add := func(cond string, arg ...any) {
		where = append(where, cond)
		args = append(args, arg...)
	}
	if q.Person != "" {
		add("person = ?", q.Person)
	}
	if q.App != "" {
		add("app = ?", q.App)
	}
	if q.Type != "" {
		add("type = ?", q.Type)
	}
	if len(q.Types) > 0 {
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(q.Types)), ", ")
		types := make([]any, len(q.Types))
		for i, t := range q.Types {
			types[i] = t
		}
		add("type IN ("+marks+")", types...)
	}
	if q.Outcome != "" {
		add("outcome = ?", q.Outcome)
	}
	if !q.Since.IsZero() {
		add("time >= ?", s.d.timeArg(q.Since))
	}
	if !q.Until.IsZero() {
		add("time < ?", s.d.timeArg(q.Until))
	}
	var addr store.AuditAddrFilter
	if q.ClientAddr != "" {
		var err error
		if addr, err = store.ParseAuditAddrFilter(q.ClientAddr); err != nil {
			return nil, fmt.Errorf("sqlstore: list audit events: %w", err)
		}
		switch {
		case !addr.IsPrefix():
			add("client_addr = ?", addr.Exact)
		case addr.Like != "":
			add("client_addr LIKE ?", addr.Like)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	query := `SELECT ` + auditColumns + `, prev_hash, hash FROM audit_events WHERE id > ?`
	if len(where) > 0 {
		query += ` AND ` + strings.Join(where, ` AND `)
	}
	query = s.d.rebind(query + ` ORDER BY id LIMIT ?`)
	if !addr.IsPrefix() {
		return queryAll(ctx, s, "list audit events", query, scanAuditEvent, append([]any{q.AfterID}, append(args, limit)...)...)
	}
	// A CIDR prefix cannot be matched on the text column in SQL that both
	// databases share: read pages (narrowed by the textual pre-filter when
	// there is one) and match the addresses here, until the page is full
	// or the events run out.
	page := max(limit, 500)
	after := q.AfterID
	var out []store.AuditEvent
	for {
		got, err := queryAll(ctx, s, "list audit events", query, scanAuditEvent, append([]any{after}, append(args, page)...)...)
		if err != nil {
			return nil, err
		}
		for _, e := range got {
			if addr.Match(e.ClientAddr) {
				out = append(out, e)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if len(got) < page {
			return out, nil
		}
		after = got[len(got)-1].ID
	}
}

// scanAuditEvent reads auditColumns, prev_hash, hash.
func scanAuditEvent(rows rowScanner) (store.AuditEvent, error) {
	var e store.AuditEvent
	var details string
	if err := rows.Scan(&e.ID, dbTime{&e.Time}, &e.Type, &e.Person, &e.App, &e.ClientAddr,
		&e.Outcome, &e.Reason, &e.SessionID, &details, &e.PrevHash, &e.Hash); err != nil {
		return e, err
	}
	if details != "" && details != "{}" {
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return e, fmt.Errorf("event %d details: %w", e.ID, err)
		}
	}
	return e, nil
}
