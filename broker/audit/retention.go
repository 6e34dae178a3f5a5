package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// Purged is the event type that records a purge of old events.
const Purged = "audit.purged"

// ErrChainBroken is returned by PurgeAuditEvents when the trail does not
// verify: purging then would destroy the evidence.
var ErrChainBroken = errors.New("audit: the trail does not verify")

// PurgeStore is what a purge reads and changes.
type PurgeStore interface {
	ChainStore
	store.AuditRetention
}

// PurgeResult says what PurgeAuditEvents did. A zero Through means that
// nothing was purged (no signed checkpoint of an event older than the
// cutoff).
type PurgeResult struct {
	// Deleted is how many events were deleted; From and Through the first
	// and last of their IDs.
	Deleted       int64
	From, Through int64
	// Anchor is the checkpoint the remaining chain now starts from: it
	// signs event Through.
	Anchor store.AuditCheckpoint
}

// Purger deletes audit events older than a cutoff, keeping the rest
// verifiable.
type Purger struct {
	s      PurgeStore
	pub    ed25519.PublicKey
	now    func() time.Time
	logger *slog.Logger
}

// NewPurger returns a Purger over s; pub verifies the checkpoints (the
// public half of DeriveCheckpointKey). clock defaults to time.Now.
func NewPurger(s PurgeStore, pub ed25519.PublicKey, clock func() time.Time, logger *slog.Logger) *Purger {
	if clock == nil {
		clock = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Purger{s: s, pub: pub, now: clock, logger: logger}
}

// PurgeAuditEvents deletes the events older than before, but only up to and
// including the newest event that (a) is older than before and (b) is
// signed by a good checkpoint: the first event kept then links to a hash
// that a signature vouches for, so the remaining trail still verifies
// (VerifyAuditChain starts from that anchor, VerifyCheckpoints checks the
// anchor's signature). Events after the last such checkpoint are kept even
// when older than before: retention is a floor, never a promise to delete.
//
// Before deleting anything it verifies the whole chain and every
// checkpoint, and refuses with ErrChainBroken if they do not verify: a
// purge must not erase the traces of tampering. The purge is recorded, in
// the same transaction, as an audit.purged event.
func (p *Purger) PurgeAuditEvents(ctx context.Context, before time.Time) (PurgeResult, error) {
	chain, err := p.s.VerifyAuditChain(ctx, 0)
	if err != nil {
		return PurgeResult{}, fmt.Errorf("audit: purge: %w", err)
	}
	if chain.Problem != "" {
		return PurgeResult{}, fmt.Errorf("%w: event %d %s; not purging", ErrChainBroken, chain.FirstBad, chain.Problem)
	}
	cps, err := VerifyCheckpoints(ctx, p.s, p.pub)
	if err != nil {
		return PurgeResult{}, fmt.Errorf("audit: purge: %w", err)
	}
	if cps.Problem != "" {
		return PurgeResult{}, fmt.Errorf("%w: checkpoint %d %s; not purging", ErrChainBroken, cps.FirstBad, cps.Problem)
	}
	anchor, ok, err := p.anchorBefore(ctx, chain.Anchor, before)
	if err != nil || !ok {
		return PurgeResult{}, err
	}
	first, err := p.s.ListAuditEvents(ctx, store.AuditQuery{Limit: 1})
	if err != nil {
		return PurgeResult{}, fmt.Errorf("audit: purge: %w", err)
	}
	if len(first) == 0 {
		return PurgeResult{}, nil
	}
	res := PurgeResult{From: first[0].ID, Through: anchor.EventID, Anchor: anchor}
	record := store.AuditEvent{
		Time:    p.now().UTC(),
		Type:    Purged,
		Outcome: Success,
		Details: map[string]string{
			"from":        strconv.FormatInt(res.From, 10),
			"through":     strconv.FormatInt(res.Through, 10),
			"anchor_hash": hex.EncodeToString(anchor.Hash),
			"checkpoint":  strconv.FormatInt(anchor.ID, 10),
			"before":      before.UTC().Format(time.RFC3339),
		},
	}
	if res.Deleted, err = p.s.PurgeAuditEvents(ctx, anchor, record); err != nil {
		return PurgeResult{}, fmt.Errorf("audit: purge: %w", err)
	}
	p.logger.Info("audit: purged old events", "from", res.From, "through", res.Through, "deleted", res.Deleted, "before", before.UTC())
	return res, nil
}

// anchorBefore returns the newest good checkpoint (they are all good:
// verified just before) past the current anchor whose event is older than
// before.
func (p *Purger) anchorBefore(ctx context.Context, current int64, before time.Time) (store.AuditCheckpoint, bool, error) {
	var best store.AuditCheckpoint
	found := false
	var after int64
	for {
		page, err := p.s.ListAuditCheckpoints(ctx, after, 500)
		if err != nil {
			return best, false, fmt.Errorf("audit: purge: %w", err)
		}
		if len(page) == 0 {
			return best, found, nil
		}
		for _, c := range page {
			after = c.ID
			if c.EventID <= current {
				continue
			}
			ev, err := p.s.ListAuditEvents(ctx, store.AuditQuery{AfterID: c.EventID - 1, Limit: 1})
			if err != nil {
				return best, false, fmt.Errorf("audit: purge: %w", err)
			}
			if len(ev) == 0 || ev[0].ID != c.EventID || !bytes.Equal(ev[0].Hash, c.Hash) {
				continue // cannot happen after a good VerifyCheckpoints
			}
			if !ev[0].Time.Before(before) {
				// Checkpoints sign ever later events: none further on
				// can be older.
				return best, found, nil
			}
			if !found || c.EventID > best.EventID {
				best, found = c, true
			}
		}
	}
}
