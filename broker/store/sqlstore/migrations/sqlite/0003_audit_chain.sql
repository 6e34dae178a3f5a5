-- Tamper-evident audit trail: each event carries the hash of the one before
-- it and its own (docs/audit.md, "Hash chain"), and signed checkpoints of
-- the chain head are kept in audit_checkpoints. Additive: replicas still on
-- the previous version ignore the new columns and tables (but the events
-- they write are not chained: see docs/audit.md, "Upgrading").
--
-- Events written before this migration are not chained (their prev_hash and
-- hash stay NULL; SQL alone cannot compute the hashes): the chain starts
-- after them, at audit_chain.first_id. The store always sets both columns
-- on the events it appends; NULL marks a pre-chain event only.

ALTER TABLE audit_events ADD COLUMN prev_hash BLOB CHECK (prev_hash IS NULL OR length(prev_hash) = 32);
ALTER TABLE audit_events ADD COLUMN hash BLOB CHECK (hash IS NULL OR length(hash) = 32);

-- One row: the ID of the first chained event.
CREATE TABLE audit_chain (
	id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	first_id INTEGER NOT NULL
) STRICT;

INSERT INTO audit_chain (id, first_id) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM audit_events;

-- Signed chain heads. At most one per event: replicas signing the same head
-- at once store it once.
CREATE TABLE audit_checkpoints (
	id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	event_id   INTEGER NOT NULL UNIQUE,
	hash       BLOB    NOT NULL CHECK (length(hash) = 32),
	signature  BLOB    NOT NULL,
	key_id     TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
