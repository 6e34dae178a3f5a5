package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dialect is what differs between the SQL databases Garde supports. Packages
// sqlite and postgres fill it in; the SQL text itself is shared.
type Dialect struct {
	// Name selects the embedded migrations, migrations/<Name>/NNNN_*.sql.
	// It is "sqlite" or "postgres".
	Name string
	// DollarPlaceholders makes queries use $1, $2... instead of ?.
	DollarPlaceholders bool
	// TimeAsMicros stores times as integer microseconds since the Unix
	// epoch (SQLite, which has no time type) instead of passing time.Time
	// to the driver (PostgreSQL timestamptz).
	TimeAsMicros bool
	// IsUniqueViolation reports whether err is a unique or primary-key
	// constraint violation; the store maps it to store.ErrConflict.
	IsUniqueViolation func(error) bool
	// LockMigrations takes a lock held across processes until unlock is
	// called, on conn, so that replicas starting together migrate one after
	// the other (PostgreSQL: pg_advisory_lock). Nil when the migration
	// transaction itself excludes other writers (SQLite: the driver begins
	// transactions with BEGIN IMMEDIATE).
	LockMigrations func(ctx context.Context, conn *sql.Conn) (unlock func() error, err error)
	// AuditLock, when not empty, is executed first in every audit append
	// transaction to serialise appends, so that they commit in ID order
	// (see AppendAuditEvents). SQLite needs none: it has a single writer.
	AuditLock string
	// AuditSequenceSync, when not empty, is executed at the end of every
	// audit append with the last ID appended as its one argument. The store
	// chooses audit event IDs itself (see AppendAuditEvents); PostgreSQL
	// uses it to move the bigserial sequence past them, so that a writer
	// still relying on the sequence (a replica of a previous version during
	// a rolling upgrade) does not collide with them. SQLite needs none:
	// AUTOINCREMENT follows explicit IDs.
	AuditSequenceSync string
}

// rebind rewrites ? placeholders as $n for dialects that number them. The
// store's queries never contain a literal question mark.
func (d *Dialect) rebind(q string) string {
	if !d.DollarPlaceholders || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// timeArg is how a time is passed to the database: UTC, truncated to the
// microsecond that both databases keep, so a value reads back equal.
func (d *Dialect) timeArg(t time.Time) any {
	if d.TimeAsMicros {
		return t.UnixMicro()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// dbTime scans a time stored either way and yields it in UTC.
type dbTime struct{ t *time.Time }

func (s dbTime) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*s.t = time.UnixMicro(v).UTC()
	case time.Time:
		*s.t = v.UTC()
	case nil:
		*s.t = time.Time{}
	default:
		return &scanError{src}
	}
	return nil
}

type scanError struct{ src any }

func (e *scanError) Error() string {
	return fmt.Sprintf("sqlstore: cannot scan a time from %T", e.src)
}
