-- Tamper-evident audit trail: each event carries the hash of the one before
-- it and its own (docs/audit.md, "Hash chain"), and signed checkpoints of
-- the chain head are kept in audit_checkpoints. Additive: replicas still on
-- the previous version ignore the new columns and tables (but the events
-- they write are not chained: see docs/audit.md, "Upgrading").
--
-- Events written before this migration are not chained (their prev_hash and
-- hash stay NULL; the migration does not compute the hashes in SQL): the
-- chain starts after them, at audit_chain.first_id. The store always sets
-- both columns on the events it appends; NULL marks a pre-chain event only.

ALTER TABLE audit_events ADD COLUMN prev_hash bytea CHECK (prev_hash IS NULL OR octet_length(prev_hash) = 32);
ALTER TABLE audit_events ADD COLUMN hash bytea CHECK (hash IS NULL OR octet_length(hash) = 32);

-- One row: the ID of the first chained event.
CREATE TABLE audit_chain (
	id       integer NOT NULL PRIMARY KEY CHECK (id = 1),
	first_id bigint  NOT NULL
);

INSERT INTO audit_chain (id, first_id) SELECT 1, COALESCE(MAX(id), 0) + 1 FROM audit_events;

-- Signed chain heads. At most one per event: replicas signing the same head
-- at once store it once.
CREATE TABLE audit_checkpoints (
	id         bigserial   NOT NULL PRIMARY KEY,
	event_id   bigint      NOT NULL UNIQUE,
	hash       bytea       NOT NULL CHECK (octet_length(hash) = 32),
	signature  bytea       NOT NULL,
	key_id     text        NOT NULL,
	created_at timestamptz NOT NULL
);
