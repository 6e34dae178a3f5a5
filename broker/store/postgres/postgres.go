// Package postgres opens Garde's durable store on PostgreSQL, for several
// replicas. It uses pgx through database/sql.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/garde-sso/garde/broker/store/sqlstore"
)

// migrationLockID and auditLockID are pg_advisory_lock keys. Advisory locks
// are per database, so several Garde databases on one server do not
// contend.
const (
	migrationLockID int64 = 0x6761726465_01 // "garde", 1
	auditLockID     int64 = 0x6761726465_02 // "garde", 2
)

// Dialect is PostgreSQL's sqlstore dialect.
var Dialect = sqlstore.Dialect{
	Name:               "postgres",
	DollarPlaceholders: true,
	IsUniqueViolation:  IsUniqueViolation,
	LockMigrations:     lockMigrations,
	// A transaction-level lock, released at commit or rollback.
	AuditLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", auditLockID),
	// is_called true: the next nextval returns the argument plus one.
	AuditSequenceSync: "SELECT setval(pg_get_serial_sequence('audit_events', 'id'), $1, true)",
}

// IsUniqueViolation reports whether err is unique_violation (SQLSTATE
// 23505), which covers primary keys too.
func IsUniqueViolation(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23505"
}

// lockMigrations holds a session-level advisory lock on conn until unlock:
// replicas starting together migrate one after the other. If the process
// dies, the server drops the session and the lock with it.
func lockMigrations(ctx context.Context, conn *sql.Conn) (func() error, error) {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockID); err != nil {
		return nil, err
	}
	return func() error {
		// Unlock even if ctx was cancelled meanwhile, with a bound.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", migrationLockID)
		return err
	}, nil
}

// Open connects to the database dsn names (a postgres:// URL or key=value
// list, as pgx accepts), migrates it and returns the store.
func Open(ctx context.Context, dsn string) (*sqlstore.Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx masks the password in its parse errors (best effort).
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}
