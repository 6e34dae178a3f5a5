-- Links between an identity from Pro Santé Connect or a CPS card and the
-- person Garde knows (an AD account, or an external professional).
-- Additive: replicas still on the previous version ignore this table.

CREATE TABLE identity_links (
	source         TEXT    NOT NULL,
	source_subject TEXT    NOT NULL,
	person         TEXT    NOT NULL,
	method         TEXT    NOT NULL,
	created_at     INTEGER NOT NULL,
	created_by     TEXT    NOT NULL,
	PRIMARY KEY (source, source_subject)
) STRICT;

-- A person's links, oldest first.
CREATE INDEX identity_links_person ON identity_links (person, created_at);
