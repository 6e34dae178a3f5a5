// Package sqlite opens Garde's durable store on a SQLite file, for a single
// replica. It uses modernc.org/sqlite (pure Go, no cgo).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/garde-sso/garde/broker/store/sqlstore"
)

// BusyTimeoutMillis is how long a statement waits for another process's
// write lock before failing with SQLITE_BUSY.
const BusyTimeoutMillis = 5000

// Dialect is SQLite's sqlstore dialect.
var Dialect = sqlstore.Dialect{
	Name:              "sqlite",
	TimeAsMicros:      true,
	IsUniqueViolation: IsUniqueViolation,
}

// IsUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure.
func IsUniqueViolation(err error) bool {
	var e *sqlite3.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3lib.SQLITE_CONSTRAINT_UNIQUE, sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// DSN returns the driver's data source name for the file at path:
//   - WAL journal: readers do not block the writer, nor it them;
//   - synchronous=NORMAL: safe with WAL (a power cut may lose the last
//     transactions, never corrupt the file), and much faster than FULL;
//   - busy_timeout: wait for another process's lock instead of failing;
//   - foreign_keys on;
//   - _txlock=immediate: every transaction takes the write lock at BEGIN.
//     A deferred transaction that reads, then writes, can fail with
//     SQLITE_BUSY at the write without busy_timeout helping; and it makes
//     the migration transaction exclude replicas migrating at the same
//     time.
func DSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeoutMillis))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database file at path, migrates it
// and returns the store. Close the store to close the file.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		// The path becomes a file: URI whose query carries the pragmas.
		return nil, fmt.Errorf("sqlite: path %q must not contain '?' or '#'", path)
	}
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// One connection: SQLite has one writer at a time anyway, and queueing
	// in database/sql is cheaper and fairer than spinning on SQLITE_BUSY.
	// The durable store is off the hot path (keys are cached, refresh and
	// audit writes are short).
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	return s, nil
}
