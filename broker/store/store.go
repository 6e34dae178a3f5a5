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
// AuditLog, WebAuthnCredentials, EnrollmentCodes), not on Durable as a
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
	WebAuthnCredentials
	EnrollmentCodes
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
}

// AuditLog appends to and reads the audit trail.
type AuditLog interface {
	// AppendAuditEvents writes events in order, in one transaction.
	AppendAuditEvents(ctx context.Context, events []AuditEvent) error
	// ListAuditEvents returns matching events in ID order.
	ListAuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
}
