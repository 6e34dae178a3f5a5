package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/garde-sso/garde/broker/store"
)

const checkpointColumns = `event_id, hash, signature, key_id, created_at`

// verifyPage is how many events VerifyAuditChain reads per query: a
// bounded read, so that verifying a long trail neither holds a long read
// transaction nor, on SQLite's single connection, keeps writers waiting.
const verifyPage = 1000

// scanHead reads the newest event's (id, hash); no event gives 0, nil.
func scanHead(row *sql.Row) (int64, []byte, error) {
	var id int64
	var hash []byte
	err := row.Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	return id, hash, err
}

// AuditChainHead implements store.AuditChain.
func (s *Store) AuditChainHead(ctx context.Context) (int64, []byte, error) {
	id, hash, err := scanHead(s.db.QueryRowContext(ctx, s.q.auditHead))
	if err != nil {
		return 0, nil, fmt.Errorf("sqlstore: audit chain head: %w", err)
	}
	if len(hash) != store.AuditHashSize {
		return 0, nil, nil
	}
	return id, hash, nil
}

// VerifyAuditChain implements store.AuditChain. For each event in ID order
// it checks, and reports the first failure of:
//   - its ID follows the previous one (else ChainMissing: events between
//     them were deleted);
//   - it has a hash and a previous hash;
//   - its previous hash is the previous event's hash (else ChainReordered
//     when that value is the hash of another stored event, i.e. rows were
//     moved; ChainAltered otherwise);
//   - its hash is SHA-256(previous hash || canonical encoding) (else
//     ChainAltered).
func (s *Store) VerifyAuditChain(ctx context.Context, fromID int64) (store.ChainReport, error) {
	var rep store.ChainReport
	if err := s.db.QueryRowContext(ctx, s.q.auditChainStart).Scan(&rep.Start, &rep.Anchor, &rep.AnchorHash); err != nil {
		return rep, fmt.Errorf("sqlstore: verify audit chain: chain start: %w", err)
	}
	prev := store.AuditGenesis
	if rep.Anchor > 0 {
		// Old events were purged: the chain goes on from the anchor.
		if len(rep.AnchorHash) != store.AuditHashSize {
			return bad(rep, rep.Anchor+1, store.ChainAltered), nil
		}
		rep.Start = max(rep.Start, rep.Anchor+1)
		prev = rep.AnchorHash
	}
	next := max(fromID, rep.Start)
	if next > rep.Start {
		// Anchor on the stored hash of the event before fromID.
		var h []byte
		err := s.db.QueryRowContext(ctx, s.q.auditHash, next-1).Scan(&h)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return bad(rep, next, store.ChainMissing), nil
		case err != nil:
			return rep, fmt.Errorf("sqlstore: verify audit chain: %w", err)
		case len(h) != store.AuditHashSize:
			return bad(rep, next-1, store.ChainAltered), nil
		}
		prev = h
	}
	for {
		page, err := s.chainPage(ctx, next)
		if err != nil {
			return rep, fmt.Errorf("sqlstore: verify audit chain: %w", err)
		}
		for _, e := range page {
			if e.ID != next {
				return bad(rep, e.ID, store.ChainMissing), nil
			}
			if len(e.PrevHash) != store.AuditHashSize || len(e.Hash) != store.AuditHashSize {
				return bad(rep, e.ID, store.ChainAltered), nil
			}
			if !bytes.Equal(e.PrevHash, prev) {
				// Is the predecessor this row names stored elsewhere?
				var other int64
				err := s.db.QueryRowContext(ctx, s.q.auditFindHash, e.PrevHash).Scan(&other)
				switch {
				case err == nil:
					return bad(rep, e.ID, store.ChainReordered), nil
				case errors.Is(err, sql.ErrNoRows):
					return bad(rep, e.ID, store.ChainAltered), nil
				default:
					return rep, fmt.Errorf("sqlstore: verify audit chain: %w", err)
				}
			}
			if !bytes.Equal(store.AuditEventHash(e.PrevHash, e), e.Hash) {
				return bad(rep, e.ID, store.ChainAltered), nil
			}
			prev = e.Hash
			rep.Checked++
			rep.LastID, rep.LastHash = e.ID, e.Hash
			next++
		}
		if len(page) < verifyPage {
			return rep, nil
		}
	}
}

func bad(rep store.ChainReport, id int64, problem string) store.ChainReport {
	rep.FirstBad, rep.Problem = id, problem
	return rep
}

func (s *Store) chainPage(ctx context.Context, from int64) ([]store.AuditEvent, error) {
	return queryAll(ctx, s, "read audit chain", s.q.auditChainPage, scanAuditEvent, from, verifyPage)
}

// AddAuditCheckpoint implements store.AuditChain.
func (s *Store) AddAuditCheckpoint(ctx context.Context, c store.AuditCheckpoint) error {
	_, err := s.db.ExecContext(ctx, s.q.insertCheckpoint,
		c.EventID, nonNil(c.Hash), nonNil(c.Signature), c.KeyID, s.d.timeArg(c.CreatedAt))
	if err != nil {
		return s.conflict("add audit checkpoint", err)
	}
	return nil
}

// LatestAuditCheckpoint implements store.AuditChain.
func (s *Store) LatestAuditCheckpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	cs, err := s.queryCheckpoints(ctx, s.q.latestCheckpoint)
	if err != nil {
		return store.AuditCheckpoint{}, fmt.Errorf("sqlstore: latest audit checkpoint: %w", err)
	}
	if len(cs) == 0 {
		return store.AuditCheckpoint{}, store.ErrNotFound
	}
	return cs[0], nil
}

// ListAuditCheckpoints implements store.AuditChain.
func (s *Store) ListAuditCheckpoints(ctx context.Context, afterID int64, limit int) ([]store.AuditCheckpoint, error) {
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	cs, err := s.queryCheckpoints(ctx, s.q.listCheckpoints, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list audit checkpoints: %w", err)
	}
	return cs, nil
}

func (s *Store) queryCheckpoints(ctx context.Context, q string, args ...any) ([]store.AuditCheckpoint, error) {
	return queryAll(ctx, s, "read audit checkpoints", q, func(r rowScanner) (store.AuditCheckpoint, error) {
		var c store.AuditCheckpoint
		err := r.Scan(&c.ID, &c.EventID, &c.Hash, &c.Signature, &c.KeyID, dbTime{&c.CreatedAt})
		return c, err
	}, args...)
}
