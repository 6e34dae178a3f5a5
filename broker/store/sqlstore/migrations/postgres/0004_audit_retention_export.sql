-- Audit retention, query and SIEM export (docs/audit.md). Additive:
-- replicas on the previous version ignore the new columns and table.

-- The purge anchor: after old events are purged, the chain starts at
-- anchor_id + 1, whose prev_hash is anchor_hash (the last purged event's
-- hash, which a kept signed checkpoint vouches for). 0 and NULL: nothing
-- was ever purged.
ALTER TABLE audit_chain ADD COLUMN anchor_id bigint NOT NULL DEFAULT 0;
ALTER TABLE audit_chain ADD COLUMN anchor_hash bytea CHECK (anchor_hash IS NULL OR octet_length(anchor_hash) = 32);

-- One row per SIEM sink: the last exported event, and the replica that
-- holds the export lease until lease_until.
CREATE TABLE audit_export_cursors (
	sink        text        NOT NULL PRIMARY KEY,
	last_id     bigint      NOT NULL DEFAULT 0,
	holder      text        NOT NULL DEFAULT '',
	lease_until timestamptz NOT NULL
);

-- Query filters come with ORDER BY id.
CREATE INDEX audit_events_client_addr ON audit_events (client_addr, id);
CREATE INDEX audit_events_outcome ON audit_events (outcome, id);
