// Package store declares Garde's two stores and the records they hold.
//
// The ephemeral store holds short-lived state with a TTL (sign-in flows, SSO
// sessions, authorization codes, PKCE, replay caches, rate-limit counters):
// in memory for one replica, Redis for several. The durable store holds what
// must survive a restart (signing keys, refresh-token families, the audit
// trail, WebAuthn credentials and enrollment codes): SQLite for one replica,
// PostgreSQL for several.
//
// Callers depend on the narrow interfaces (SigningKeys, RefreshTokens,
// AuditLog, AuditChain, WebAuthnCredentials, EnrollmentCodes), not on
// Durable as a
// whole. Every implementation passes the
// conformance suites in store/conformance.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a key or record does not exist (or expired).
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when a create would overwrite an existing record.
var ErrConflict = errors.New("store: conflict")

// Ephemeral is a key/value store whose values expire.
//
// Keys are opaque strings; callers put related keys under one Redis Cluster
// hash tag ("{...}") when an operation must touch them together. A ttl must
// be positive.
type Ephemeral interface {
	// Set stores value under key, replacing any previous value.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// SetNX stores value only if key does not exist; it reports whether it
	// did. Replay caches use it: the first writer wins.
	SetNX(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Get returns the value or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Take atomically returns and deletes the value, or ErrNotFound. Of
	// concurrent callers exactly one gets the value: one-time values
	// (flow completions) are consumed with it.
	Take(ctx context.Context, key string) ([]byte, error)
	// CompareAndSwap replaces the value with next only if it currently
	// equals prev, keeping the remaining TTL. It reports whether it swapped
	// (false when the key is missing or holds another value). Of concurrent
	// callers with the same prev exactly one swaps: codes are marked used
	// with it, so a used code is still readable (for reuse detection).
	CompareAndSwap(ctx context.Context, key string, prev, next []byte) (bool, error)
	// Delete removes keys; missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// Incr adds one to the counter under key and returns the new value. A
	// counter that did not exist starts at 1 and expires after window; later
	// increments do not extend it (fixed window). Get on a counter key
	// returns its value as decimal text (as Redis does).
	Incr(ctx context.Context, key string, window time.Duration) (int64, error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// Durable is everything the durable store holds. Depend on the narrow
// interfaces instead where you can.
type Durable interface {
	SigningKeys
	RefreshTokens
	AuditLog
	AuditChain
	AuditRetention
	AuditExportCursors
	WebAuthnCredentials
	EnrollmentCodes
	IdentityLinks
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// SigningKey is one token-signing key. The private part is sealed (encrypted
// under the master key) by package keys; the store never sees it in clear.
type SigningKey struct {
	KID string
	// Alg is the JWS algorithm (RS256, ES256).
	Alg string
	// Generation orders the keys of one Alg: 1, 2, 3... (Alg, Generation)
	// is unique, which is how concurrent replicas agree on one rotation.
	Generation int64
	// Sealed is the encrypted private key.
	Sealed    []byte
	CreatedAt time.Time
}

// SigningKeys stores token-signing keys.
type SigningKeys interface {
	// InsertSigningKey adds a key; ErrConflict if (Alg, Generation) or KID
	// already exists (another replica rotated first).
	InsertSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every key, ordered by Alg then Generation.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// DeleteSigningKey removes a key; a missing key is not an error.
	DeleteSigningKey(ctx context.Context, kid string) error
}

// RefreshToken is one refresh token of a grant. All tokens of one grant share
// RequestID: that is the family that reuse detection revokes.
type RefreshToken struct {
	// Signature identifies the token (the token itself is never stored).
	Signature string
	RequestID string
	ClientID  string
	Subject   string
	// SessionID is the SSO session (sid) the grant was made in, so that
	// logging out can revoke the grants of the session.
	SessionID string
	// Active is false once the token has been rotated.
	Active bool
	// Data is the serialized request, opaque to the store.
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// RefreshTokens stores refresh-token families.
type RefreshTokens interface {
	// CreateRefreshToken stores a new active token; ErrConflict if the
	// signature exists.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// GetRefreshToken returns the token, active or not, or ErrNotFound.
	GetRefreshToken(ctx context.Context, signature string) (RefreshToken, error)
	// DeactivateRefreshToken atomically marks an active token inactive. It
	// reports false (and no error) if the token was already inactive: of
	// two concurrent rotations exactly one gets true. ErrNotFound if absent.
	DeactivateRefreshToken(ctx context.Context, signature string) (bool, error)
	// DeleteRefreshToken removes one token; missing is not an error.
	DeleteRefreshToken(ctx context.Context, signature string) error
	// RevokeRefreshTokenFamily deletes every token of the grant and returns
	// how many it deleted.
	RevokeRefreshTokenFamily(ctx context.Context, requestID string) (int64, error)
	// RevokeRefreshTokensOfSession deletes every token issued in an SSO
	// session (logout) and returns how many.
	RevokeRefreshTokensOfSession(ctx context.Context, sessionID string) (int64, error)
	// DeleteExpiredRefreshTokens removes tokens that expired before t.
	DeleteExpiredRefreshTokens(ctx context.Context, t time.Time) (int64, error)
}

// AuditEvent is one entry of the audit trail. The field set is part of
// Garde's documented, stable schema (docs/audit.md): add fields, never
// rename or repurpose them.
type AuditEvent struct {
	// ID is assigned by the store, increasing in insertion order.
	ID   int64
	Time time.Time
	// Type is a stable dotted name, e.g. "signin.success", "token.issued".
	Type string
	// Person is the subject the event is about ("" when unknown, e.g. a
	// failed sign-in for an unknown account: never the typed username of a
	// failure, which could be a password typed in the wrong field).
	Person string
	// App is the client id or SAML entity id.
	App        string
	ClientAddr string
	// Outcome is "success" or "failure".
	Outcome string
	// Reason is a stable reason code for failures ("invalid_credentials").
	Reason    string
	SessionID string
	// Details holds event-specific fields (string to string, documented per
	// type).
	Details map[string]string
	// PrevHash and Hash link the event into the tamper-evident chain
	// (AuditEventHash; docs/audit.md): Hash = SHA-256(PrevHash || the
	// event's canonical encoding). The store sets both on append and
	// returns them on read; values given to AppendAuditEvents are ignored.
	// Both are nil for events written before the chain existed.
	PrevHash []byte
	Hash     []byte
}

// AuditQuery selects audit events; zero fields do not filter.
type AuditQuery struct {
	Person  string
	App     string
	Type    string
	Outcome string
	Since   time.Time
	Until   time.Time
	// AfterID pages: only events with ID > AfterID.
	AfterID int64
	// Limit caps the result (0 means 100).
	Limit int
	// Types selects events of any of these types (in addition to Type,
	// when both are set: an event must match both).
	Types []string
	// ClientAddr selects by client address: an exact address
	// ("10.1.2.3", "2001:db8::1"), or a CIDR prefix ("10.1.0.0/16"), which
	// matches every stored address inside it (events whose ClientAddr is
	// not an IP address never match a prefix). ParseAuditAddrFilter
	// checks it.
	ClientAddr string
}

// AuditLog appends to and reads the audit trail.
type AuditLog interface {
	// AppendAuditEvents writes events in order, in one transaction.
	AppendAuditEvents(ctx context.Context, events []AuditEvent) error
	// ListAuditEvents returns matching events in ID order.
	ListAuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
}

// ChainReport is the result of VerifyAuditChain.
type ChainReport struct {
	// Start is the first event of the chain: events with a smaller ID were
	// written before the chain existed (schema migration 0003) and are not
	// covered by it.
	Start int64
	// Checked is how many events were verified intact, in ID order, before
	// the first problem (all of them when FirstBad is 0).
	Checked int64
	// FirstBad is the ID of the first event that fails verification, 0 if
	// none does.
	FirstBad int64
	// Problem says what is wrong with FirstBad: ChainAltered,
	// ChainMissing or ChainReordered; "" when the chain is intact.
	Problem string
	// LastID and LastHash are the last intact event (0 and nil when none
	// was checked): the head of the verified chain.
	LastID   int64
	LastHash []byte
	// Anchor and AnchorHash are set when old events were purged
	// (AuditRetention): the chain then starts at Anchor+1, whose PrevHash
	// must be AnchorHash, the hash of the last purged event. The store
	// only links to it; package audit checks that a signed checkpoint
	// vouches for it.
	Anchor     int64
	AnchorHash []byte
}

// ChainReport problems.
const (
	// ChainAltered: the event's content, ID, or hash do not match its
	// stored hash, or its link to the previous event was rewritten.
	ChainAltered = "altered"
	// ChainMissing: one or more events before this one were deleted (the
	// IDs are not consecutive).
	ChainMissing = "missing"
	// ChainReordered: the event links to a predecessor stored at another
	// position of the chain: rows were moved.
	ChainReordered = "reordered"
)

// AuditCheckpoint is a signature over a chain head (package audit signs
// them): whoever holds the public key can check that the chain up to
// EventID is the one that was signed.
type AuditCheckpoint struct {
	// ID is assigned by the store, increasing.
	ID int64
	// EventID and Hash are the chain head that was signed: an event's ID
	// and Hash.
	EventID int64
	Hash    []byte
	// Signature is over the checkpoint (audit.CheckpointMessage).
	Signature []byte
	// KeyID names the public key that verifies Signature.
	KeyID     string
	CreatedAt time.Time
}

// AuditChain is the tamper-evident side of the audit trail: every appended
// event is hash-chained to the previous one by AppendAuditEvents, and
// signed checkpoints of the chain head are stored alongside.
type AuditChain interface {
	// AuditChainHead returns the ID and Hash of the last event (0 and nil
	// when there is none, or when the last event predates the chain).
	AuditChainHead(ctx context.Context) (id int64, hash []byte, err error)
	// VerifyAuditChain walks the events with ID >= fromID (from the start
	// of the chain when fromID is at or before it) in ID order, recomputes
	// each hash, checks the links and that IDs are consecutive, and
	// reports the first bad event. When fromID is past the start, the
	// stored hash of event fromID-1 is trusted as the anchor. An error is
	// returned only when the store cannot be read: a broken chain is a
	// report, not an error.
	VerifyAuditChain(ctx context.Context, fromID int64) (ChainReport, error)
	// AddAuditCheckpoint stores a checkpoint (its ID is assigned).
	// ErrConflict if one already exists for that EventID (another replica
	// signed the same head).
	AddAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// LatestAuditCheckpoint returns the checkpoint with the largest ID, or
	// ErrNotFound.
	LatestAuditCheckpoint(ctx context.Context) (AuditCheckpoint, error)
	// ListAuditCheckpoints returns checkpoints with ID > afterID in ID
	// order, at most limit (0 means 100).
	ListAuditCheckpoints(ctx context.Context, afterID int64, limit int) ([]AuditCheckpoint, error)
}

// IdentityLink joins an identity from one source (a Pro Santé Connect or
// CPS card sign-in) to the person Garde knows, so that the `sub` an
// application sees is the same whichever source the person used.
type IdentityLink struct {
	// Source is the connector id of the linked identity ("psc", "cps").
	Source string
	// SourceSubject is that connector's subject (the national id).
	SourceSubject string
	// Person is the canonical subject the link resolves to: an AD
	// account ("ad:<objectGUID>") or an external professional
	// ("nat:<idNat>").
	Person string
	// Method says how the link was made: "national_id" (the directory
	// holds the same national id), "password" (the person proved the AD
	// password once), "external" (no local account; allowed by
	// configuration), "admin".
	Method    string
	CreatedAt time.Time
	// CreatedBy is the admin who made an "admin" link, else "".
	CreatedBy string
}

// IdentityLinks stores identity links.
type IdentityLinks interface {
	// CreateIdentityLink adds a link; ErrConflict if (Source,
	// SourceSubject) is already linked (to anyone).
	CreateIdentityLink(ctx context.Context, l IdentityLink) error
	// GetIdentityLink returns the link of a source identity, or
	// ErrNotFound.
	GetIdentityLink(ctx context.Context, source, sourceSubject string) (IdentityLink, error)
	// ListIdentityLinks returns the links to person, oldest first.
	ListIdentityLinks(ctx context.Context, person string) ([]IdentityLink, error)
	// DeleteIdentityLink removes a link; ErrNotFound if there was none.
	DeleteIdentityLink(ctx context.Context, source, sourceSubject string) error
}

// AuditRetention deletes the oldest part of the audit trail without making
// the rest unverifiable: the cut is made at an event a signed checkpoint
// vouches for (an anchor), and the chain then verifies from it.
type AuditRetention interface {
	// PurgeAuditEvents, in one transaction under the append lock: deletes
	// every event with ID <= anchor.EventID and the checkpoints of events
	// before it (anchor's own is kept), records anchor.EventID and
	// anchor.Hash as the chain's anchor, and appends record to the chain
	// (the purge is itself audited). It refuses, with ErrConflict and
	// nothing changed, when anchor is not a stored checkpoint or its event
	// is not stored with its hash, or when a later anchor is already set.
	// It returns how many events it deleted.
	PurgeAuditEvents(ctx context.Context, anchor AuditCheckpoint, record AuditEvent) (int64, error)
	// AuditChainAnchor returns the anchor of the last purge: 0 and nil when
	// nothing was ever purged.
	AuditChainAnchor(ctx context.Context) (id int64, hash []byte, err error)
}

// AuditExportCursors records, per SIEM sink, the last exported event and
// which replica exports (a lease), so that one replica at a time exports
// to a sink and a restart resumes where export stopped.
type AuditExportCursors interface {
	// AuditExportCursor returns the ID of the last event exported to sink
	// (0 when none).
	AuditExportCursor(ctx context.Context, sink string) (int64, error)
	// AdvanceAuditExportCursor moves sink's cursor to id, never backwards.
	AdvanceAuditExportCursor(ctx context.Context, sink string, id int64) error
	// AcquireAuditExportLease makes holder the exporter of sink until
	// now+ttl if the lease is free, expired (before now) or already
	// holder's (a renewal). It reports whether holder holds it. Of
	// concurrent callers at most one gets true.
	AcquireAuditExportLease(ctx context.Context, sink, holder string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseAuditExportLease gives up holder's lease on sink, if it holds
	// it, so that another replica takes over at once.
	ReleaseAuditExportLease(ctx context.Context, sink, holder string) error
}
