-- Audit retention, query and SIEM export (docs/audit.md). Additive:
-- replicas on the previous version ignore the new columns and table.

-- The purge anchor: after old events are purged, the chain starts at
-- anchor_id + 1, whose prev_hash is anchor_hash (the last purged event's
-- hash, which a kept signed checkpoint vouches for). 0 and NULL: nothing
-- was ever purged.
ALTER TABLE audit_chain ADD COLUMN anchor_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_chain ADD COLUMN anchor_hash BLOB CHECK (anchor_hash IS NULL OR length(anchor_hash) = 32);

-- One row per SIEM sink: the last exported event, and the replica that
-- holds the export lease until lease_until (microseconds since 1970).
CREATE TABLE audit_export_cursors (
	sink        TEXT    NOT NULL PRIMARY KEY,
	last_id     INTEGER NOT NULL DEFAULT 0,
	holder      TEXT    NOT NULL DEFAULT '',
	lease_until INTEGER NOT NULL
) STRICT;

-- Query filters come with ORDER BY id.
CREATE INDEX audit_events_client_addr ON audit_events (client_addr, id);
CREATE INDEX audit_events_outcome ON audit_events (outcome, id);
