-- WebAuthn credentials (security keys, passkeys) and the one-time enrollment
-- codes an admin issues to register one. Additive: replicas still on the
-- previous version ignore these tables. Times are INTEGER microseconds since
-- the Unix epoch, UTC, as in 0001; booleans are INTEGER 0 or 1.

CREATE TABLE webauthn_credentials (
	-- The credential id the authenticator chose.
	id              BLOB    NOT NULL PRIMARY KEY,
	subject         TEXT    NOT NULL,
	name            TEXT    NOT NULL,
	aaguid          BLOB    NOT NULL,
	-- A uint32 signature counter.
	sign_count      INTEGER NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
	backup_eligible INTEGER NOT NULL,
	discoverable    INTEGER NOT NULL,
	flagged         INTEGER NOT NULL,
	-- The WebAuthn library's credential record, opaque to the store.
	data            BLOB    NOT NULL,
	created_at      INTEGER NOT NULL,
	-- NULL until the credential is first used.
	last_used_at    INTEGER
) STRICT;

-- A person's credentials, oldest first.
CREATE INDEX webauthn_credentials_subject ON webauthn_credentials (subject, created_at);

CREATE TABLE enrollment_codes (
	-- SHA-256 of the code; the code itself is never stored.
	hash       BLOB    NOT NULL PRIMARY KEY,
	subject    TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	-- NULL until used.
	used_at    INTEGER
) STRICT;

-- A person's codes, newest first.
CREATE INDEX enrollment_codes_subject ON enrollment_codes (subject, created_at);
