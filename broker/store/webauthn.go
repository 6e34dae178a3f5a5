package store

import (
	"context"
	"time"
)

// WebAuthnCredential is one security key or passkey registered to a person.
type WebAuthnCredential struct {
	// ID is the credential id the authenticator chose (unique).
	ID []byte
	// Subject is the person (the `sub` Garde issues).
	Subject string
	// Name is the person's label for it ("Clé bleue").
	Name string
	// AAGUID identifies the authenticator model (16 bytes, may be zero).
	AAGUID []byte
	// SignCount is the last signature counter seen.
	SignCount uint32
	// BackupEligible is set for synced passkeys.
	BackupEligible bool
	// Discoverable is set when it was created as a resident key
	// (usable for passwordless sign-in).
	Discoverable bool
	// Flagged is set when a sign-count regression suggested a clone: a
	// flagged credential signs nobody in until an admin removes it.
	Flagged bool
	// Data is the library's credential record (public key, flags,
	// transports, attestation), opaque to the store.
	Data       []byte
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// WebAuthnCredentials stores people's authenticators.
type WebAuthnCredentials interface {
	// CreateWebAuthnCredential adds a credential; ErrConflict if the ID
	// exists (for anyone).
	CreateWebAuthnCredential(ctx context.Context, c WebAuthnCredential) error
	// GetWebAuthnCredential returns a credential by ID, or ErrNotFound.
	GetWebAuthnCredential(ctx context.Context, id []byte) (WebAuthnCredential, error)
	// ListWebAuthnCredentials returns a person's credentials, oldest first.
	ListWebAuthnCredentials(ctx context.Context, subject string) ([]WebAuthnCredential, error)
	// UpdateWebAuthnCredentialUse records a successful use: the new sign
	// count, the time, and the updated library record. ErrNotFound if
	// absent.
	UpdateWebAuthnCredentialUse(ctx context.Context, id []byte, signCount uint32, usedAt time.Time, data []byte) error
	// RenameWebAuthnCredential renames a credential of subject; ErrNotFound
	// if subject has no such credential.
	RenameWebAuthnCredential(ctx context.Context, subject string, id []byte, name string) error
	// FlagWebAuthnCredential marks a credential as possibly cloned.
	FlagWebAuthnCredential(ctx context.Context, id []byte) error
	// DeleteWebAuthnCredential removes a credential of subject; ErrNotFound
	// if subject has no such credential.
	DeleteWebAuthnCredential(ctx context.Context, subject string, id []byte) error
	// DeleteWebAuthnCredentialsOf removes all of a person's credentials and
	// returns how many (admin revocation).
	DeleteWebAuthnCredentialsOf(ctx context.Context, subject string) (int64, error)
}

// EnrollmentCode is a one-time code an admin issues to let a person
// register an authenticator. Only its SHA-256 is stored.
type EnrollmentCode struct {
	Hash      []byte
	Subject   string
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until used
}

// EnrollmentCodes stores enrollment codes.
type EnrollmentCodes interface {
	// CreateEnrollmentCode stores a new code; ErrConflict if the hash
	// exists.
	CreateEnrollmentCode(ctx context.Context, c EnrollmentCode) error
	// UseEnrollmentCode atomically marks the code used if it belongs to
	// subject, is unused and has not expired at now; otherwise ErrNotFound
	// (whatever the reason: a person learns nothing from a wrong code). Of
	// concurrent uses exactly one succeeds.
	UseEnrollmentCode(ctx context.Context, hash []byte, subject string, now time.Time) error
	// ListEnrollmentCodes returns a person's codes, newest first.
	ListEnrollmentCodes(ctx context.Context, subject string) ([]EnrollmentCode, error)
}
