-- WebAuthn credentials (security keys, passkeys) and the one-time enrollment
-- codes an admin issues to register one. Additive: replicas still on the
-- previous version ignore these tables.

CREATE TABLE webauthn_credentials (
	-- The credential id the authenticator chose.
	id              bytea       NOT NULL PRIMARY KEY,
	subject         text        NOT NULL,
	name            text        NOT NULL,
	aaguid          bytea       NOT NULL,
	-- A uint32 signature counter.
	sign_count      bigint      NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
	backup_eligible boolean     NOT NULL,
	discoverable    boolean     NOT NULL,
	flagged         boolean     NOT NULL,
	-- The WebAuthn library's credential record, opaque to the store.
	data            bytea       NOT NULL,
	created_at      timestamptz NOT NULL,
	-- NULL until the credential is first used.
	last_used_at    timestamptz
);

-- A person's credentials, oldest first.
CREATE INDEX webauthn_credentials_subject ON webauthn_credentials (subject, created_at);

CREATE TABLE enrollment_codes (
	-- SHA-256 of the code; the code itself is never stored.
	hash       bytea       NOT NULL PRIMARY KEY,
	subject    text        NOT NULL,
	created_by text        NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	-- NULL until used.
	used_at    timestamptz
);

-- A person's codes, newest first.
CREATE INDEX enrollment_codes_subject ON enrollment_codes (subject, created_at);
