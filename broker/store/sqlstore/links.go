package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/garde-sso/garde/broker/store"
)

const linkColumns = `source, source_subject, person, method, created_at, created_by`

// linkQueries holds the identity link statements, rebound for the dialect.
type linkQueries struct {
	create, get, list, del string
}

func newLinkQueries(r func(string) string) linkQueries {
	return linkQueries{
		create: r(`INSERT INTO identity_links (` + linkColumns + `) VALUES (?, ?, ?, ?, ?, ?)`),
		get:    r(`SELECT ` + linkColumns + ` FROM identity_links WHERE source = ? AND source_subject = ?`),
		list:   r(`SELECT ` + linkColumns + ` FROM identity_links WHERE person = ? ORDER BY created_at, source, source_subject`),
		del:    r(`DELETE FROM identity_links WHERE source = ? AND source_subject = ?`),
	}
}

func scanLink(r rowScanner) (store.IdentityLink, error) {
	var l store.IdentityLink
	err := r.Scan(&l.Source, &l.SourceSubject, &l.Person, &l.Method, dbTime{&l.CreatedAt}, &l.CreatedBy)
	return l, err
}

// CreateIdentityLink implements store.IdentityLinks: (source,
// source_subject) is the primary key, so of two replicas linking the same
// card at once, one gets store.ErrConflict.
func (s *Store) CreateIdentityLink(ctx context.Context, l store.IdentityLink) error {
	_, err := s.db.ExecContext(ctx, s.q.links.create,
		l.Source, l.SourceSubject, l.Person, l.Method, s.d.timeArg(l.CreatedAt), l.CreatedBy)
	if err != nil {
		return s.conflict("create identity link", err)
	}
	return nil
}

// GetIdentityLink implements store.IdentityLinks.
func (s *Store) GetIdentityLink(ctx context.Context, source, sourceSubject string) (store.IdentityLink, error) {
	l, err := scanLink(s.db.QueryRowContext(ctx, s.q.links.get, source, sourceSubject))
	if errors.Is(err, sql.ErrNoRows) {
		return store.IdentityLink{}, store.ErrNotFound
	}
	if err != nil {
		return store.IdentityLink{}, fmt.Errorf("sqlstore: get identity link: %w", err)
	}
	return l, nil
}

// ListIdentityLinks implements store.IdentityLinks.
func (s *Store) ListIdentityLinks(ctx context.Context, person string) ([]store.IdentityLink, error) {
	return queryAll(ctx, s, "list identity links", s.q.links.list, scanLink, person)
}

// DeleteIdentityLink implements store.IdentityLinks.
func (s *Store) DeleteIdentityLink(ctx context.Context, source, sourceSubject string) error {
	return s.execOne(ctx, "delete identity link", s.q.links.del, source, sourceSubject)
}
