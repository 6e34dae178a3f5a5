package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/garde-sso/garde/broker/store"
)

// CheckpointKeyLabel is the HKDF label (info) that derives the checkpoint
// signing key from the master key.
const CheckpointKeyLabel = "garde audit checkpoint"

// checkpointDomain starts every signed checkpoint message, so that the
// signature cannot be taken for one over anything else.
const checkpointDomain = "garde audit checkpoint v1\x00"

// DeriveCheckpointKey derives the Ed25519 key that signs audit checkpoints
// from the master key: the seed is HKDF-SHA256(master, no salt,
// CheckpointKeyLabel), 32 bytes. Every replica derives the same key.
func DeriveCheckpointKey(master []byte) ed25519.PrivateKey {
	seed, err := hkdf.Key(sha256.New, master, nil, CheckpointKeyLabel, ed25519.SeedSize)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce; 32 is fine
	}
	return ed25519.NewKeyFromSeed(seed)
}

// CheckpointKeyID names a checkpoint public key: the hex of the first 8
// bytes of SHA-256 of the 32-byte public key.
func CheckpointKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// CheckpointMessage is what a checkpoint's signature covers:
//
//	"garde audit checkpoint v1" 0x00
//	uint64 big-endian  EventID
//	32 bytes           Hash
//	int64 big-endian   CreatedAt as Unix microseconds
func CheckpointMessage(c store.AuditCheckpoint) []byte {
	b := make([]byte, 0, len(checkpointDomain)+8+len(c.Hash)+8)
	b = append(b, checkpointDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.EventID))
	b = append(b, c.Hash...)
	return binary.BigEndian.AppendUint64(b, uint64(c.CreatedAt.UnixMicro()))
}

// SignCheckpoint returns a checkpoint of the chain head (eventID, hash),
// signed with key at now (kept to the microsecond, as the store keeps it).
func SignCheckpoint(key ed25519.PrivateKey, eventID int64, hash []byte, now time.Time) store.AuditCheckpoint {
	c := store.AuditCheckpoint{
		EventID:   eventID,
		Hash:      bytes.Clone(hash),
		KeyID:     CheckpointKeyID(key.Public().(ed25519.PublicKey)),
		CreatedAt: now.UTC().Truncate(time.Microsecond),
	}
	c.Signature = ed25519.Sign(key, CheckpointMessage(c))
	return c
}

// CheckpointReport is the result of VerifyCheckpoints.
type CheckpointReport struct {
	// Checked is how many checkpoints were verified good before the first
	// bad one (all of them when FirstBad is 0).
	Checked int64
	// FirstBad is the ID of the first bad checkpoint, 0 if none; EventID
	// is the event it signs.
	FirstBad int64
	EventID  int64
	// Problem is one of the Checkpoint* constants, "" when all are good.
	Problem string
	// Latest is the last good checkpoint (zero when none).
	Latest store.AuditCheckpoint
	// Anchor is the event the chain starts after since old events were
	// purged (0 when none were). A good anchor is signed by a stored
	// checkpoint (kept by the purge) and recorded by an audit.purged event.
	Anchor int64
}

// CheckpointReport problems.
const (
	// CheckpointUnknownKey: the checkpoint names another key (a different
	// master key signed it).
	CheckpointUnknownKey = "unknown_key"
	// CheckpointBadSignature: the signature does not verify: the
	// checkpoint was forged or altered.
	CheckpointBadSignature = "bad_signature"
	// CheckpointEventMissing: the signed event is no longer stored.
	CheckpointEventMissing = "event_missing"
	// CheckpointHashMismatch: the signed event's stored hash differs from
	// the signed one: the chain up to it was rewritten.
	CheckpointHashMismatch = "hash_mismatch"
	// CheckpointAnchorUnsigned: the chain starts from a purge anchor that
	// no good checkpoint signs: the anchor's checkpoint was deleted, or
	// events were deleted and the anchor set by hand (a faked purge).
	// FirstBad is 0 and EventID is the anchor.
	CheckpointAnchorUnsigned = "anchor_unsigned"
	// CheckpointPurgeUnrecorded: the anchor is signed, but no audit.purged
	// event records a purge through it: events were deleted up to a
	// checkpoint behind Garde's back. FirstBad is 0 and EventID is the
	// anchor.
	CheckpointPurgeUnrecorded = "purge_unrecorded"
)

// ChainStore is what checkpoints are made from and checked against.
type ChainStore interface {
	store.AuditLog
	store.AuditChain
}

// VerifyCheckpoints checks every stored checkpoint, in ID order: that it
// names pub's key, that its signature verifies with pub, and that the event
// it signs is stored with the signed hash. It reports the first bad one. An
// error is returned only when the store cannot be read.
//
// Together with an intact chain (store.AuditChain.VerifyAuditChain), a
// good checkpoint proves that every event up to the one it signs is as it
// was when signed.
func VerifyCheckpoints(ctx context.Context, s ChainStore, pub ed25519.PublicKey) (CheckpointReport, error) {
	var rep CheckpointReport
	keyID := CheckpointKeyID(pub)
	var anchorHash []byte
	if r, ok := s.(store.AuditRetention); ok {
		var err error
		if rep.Anchor, anchorHash, err = r.AuditChainAnchor(ctx); err != nil {
			return rep, err
		}
	}
	anchorSigned := false
	var after int64
	for {
		page, err := s.ListAuditCheckpoints(ctx, after, 500)
		if err != nil {
			return rep, err
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			after = c.ID
			problem, err := checkCheckpoint(ctx, s, pub, keyID, c)
			if problem == CheckpointEventMissing && rep.Anchor > 0 && c.EventID == rep.Anchor {
				// The anchor's event was purged: its checkpoint is
				// checked against the hash the chain now starts from.
				problem = ""
				if !bytes.Equal(c.Hash, anchorHash) {
					problem = CheckpointHashMismatch
				}
				anchorSigned = problem == ""
			}
			if err != nil {
				return rep, err
			}
			if problem != "" {
				rep.FirstBad, rep.EventID, rep.Problem = c.ID, c.EventID, problem
				return rep, nil
			}
			rep.Checked++
			rep.Latest = c
		}
	}
	if rep.Anchor == 0 {
		return rep, nil
	}
	if !anchorSigned {
		rep.EventID, rep.Problem = rep.Anchor, CheckpointAnchorUnsigned
		return rep, nil
	}
	recorded, err := purgeRecorded(ctx, s, rep.Anchor)
	if err != nil {
		return rep, err
	}
	if !recorded {
		rep.EventID, rep.Problem = rep.Anchor, CheckpointPurgeUnrecorded
	}
	return rep, nil
}

// purgeRecorded looks for the audit.purged event of the purge through
// anchor: it is chained after the anchor, so the chain vouches for it.
func purgeRecorded(ctx context.Context, s store.AuditLog, anchor int64) (bool, error) {
	want := strconv.FormatInt(anchor, 10)
	after := anchor
	for {
		page, err := s.ListAuditEvents(ctx, store.AuditQuery{Type: Purged, AfterID: after, Limit: 500})
		if err != nil {
			return false, err
		}
		for _, e := range page {
			if e.Details["through"] == want {
				return true, nil
			}
			after = e.ID
		}
		if len(page) < 500 {
			return false, nil
		}
	}
}

func checkCheckpoint(ctx context.Context, s ChainStore, pub ed25519.PublicKey, keyID string, c store.AuditCheckpoint) (string, error) {
	if c.KeyID != keyID {
		return CheckpointUnknownKey, nil
	}
	if !ed25519.Verify(pub, CheckpointMessage(c), c.Signature) {
		return CheckpointBadSignature, nil
	}
	events, err := s.ListAuditEvents(ctx, store.AuditQuery{AfterID: c.EventID - 1, Limit: 1})
	if err != nil {
		return "", err
	}
	if len(events) == 0 || events[0].ID != c.EventID {
		return CheckpointEventMissing, nil
	}
	if !bytes.Equal(events[0].Hash, c.Hash) {
		return CheckpointHashMismatch, nil
	}
	return "", nil
}

// CheckpointerOptions configures a Checkpointer. Zero values take the
// defaults.
type CheckpointerOptions struct {
	// Every signs the head once this many events were appended since the
	// latest checkpoint (default 1000).
	Every int64
	// Interval signs the head once this long passed since the latest
	// checkpoint, if events were appended since (default 5 minutes).
	Interval time.Duration
	// Poll is how often Run looks at the chain head (default 1 second).
	Poll   time.Duration
	Clock  func() time.Time
	Logger *slog.Logger
}

// Checkpointer signs the audit chain head with the checkpoint key, every
// Every events or every Interval, whichever comes first. The latest
// checkpoint is read from the store each time, so several replicas running
// one each share the schedule; if two sign the same head, the store keeps
// one.
type Checkpointer struct {
	s      store.AuditChain
	key    ed25519.PrivateKey
	o      CheckpointerOptions
	kick   chan struct{}
	mu     sync.Mutex // one checkpoint at a time
	closed chan struct{}
}

// NewCheckpointer returns a Checkpointer signing with key (see
// DeriveCheckpointKey). Start it with Run.
func NewCheckpointer(s store.AuditChain, key ed25519.PrivateKey, o CheckpointerOptions) *Checkpointer {
	if o.Every <= 0 {
		o.Every = 1000
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Checkpointer{s: s, key: key, o: o, kick: make(chan struct{}, 1), closed: make(chan struct{})}
}

// PublicKey returns the key that verifies the checkpoints.
func (c *Checkpointer) PublicKey() ed25519.PublicKey {
	return c.key.Public().(ed25519.PublicKey)
}

// Kick makes Run look at the head now instead of at its next poll (e.g.
// after a batch of events was written). It never blocks.
func (c *Checkpointer) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run checks whether a checkpoint is due every Poll (and on Kick) until ctx
// ends; then it signs the head one last time, so that a clean shutdown
// leaves no event unsigned. Errors are logged and retried at the next poll.
func (c *Checkpointer) Run(ctx context.Context) {
	t := time.NewTicker(c.o.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, _, err := c.Checkpoint(fctx); err != nil {
				c.o.Logger.Error("audit: final checkpoint failed", "err", err)
			}
			return
		case <-t.C:
		case <-c.kick:
		}
		if _, err := c.MaybeCheckpoint(ctx); err != nil && ctx.Err() == nil {
			c.o.Logger.Error("audit: checkpoint failed", "err", err)
		}
	}
}

// MaybeCheckpoint signs the head if a checkpoint is due: at least Every
// events, or events older than Interval, since the latest checkpoint. It
// reports whether it stored one.
func (c *Checkpointer) MaybeCheckpoint(ctx context.Context) (bool, error) {
	return c.checkpoint(ctx, false)
}

// Checkpoint signs the current head now, unless it is already signed (or
// there is no chained event). It reports whether it stored a checkpoint.
func (c *Checkpointer) Checkpoint(ctx context.Context) (store.AuditCheckpoint, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signHead(ctx, true)
}

func (c *Checkpointer) checkpoint(ctx context.Context, force bool) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok, err := c.signHead(ctx, force)
	return ok, err
}

func (c *Checkpointer) signHead(ctx context.Context, force bool) (store.AuditCheckpoint, bool, error) {
	id, hash, err := c.s.AuditChainHead(ctx)
	if err != nil || id == 0 {
		return store.AuditCheckpoint{}, false, err
	}
	latest, err := c.s.LatestAuditCheckpoint(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.AuditCheckpoint{}, false, err
	}
	pending := id - latest.EventID
	if pending <= 0 {
		return store.AuditCheckpoint{}, false, nil
	}
	now := c.o.Clock()
	if !force && pending < c.o.Every && now.Sub(latest.CreatedAt) < c.o.Interval {
		return store.AuditCheckpoint{}, false, nil
	}
	cp := SignCheckpoint(c.key, id, hash, now)
	if err := c.s.AddAuditCheckpoint(ctx, cp); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.AuditCheckpoint{}, false, nil // another replica signed this head
		}
		return store.AuditCheckpoint{}, false, fmt.Errorf("audit: store checkpoint: %w", err)
	}
	return cp, true, nil
}
