-- Links between an identity from Pro Santé Connect or a CPS card and the
-- person Garde knows (an AD account, or an external professional).
-- Additive: replicas still on the previous version ignore this table.

CREATE TABLE identity_links (
	source         text        NOT NULL,
	source_subject text        NOT NULL,
	person         text        NOT NULL,
	method         text        NOT NULL,
	created_at     timestamptz NOT NULL,
	created_by     text        NOT NULL,
	PRIMARY KEY (source, source_subject)
);

-- A person's links, oldest first.
CREATE INDEX identity_links_person ON identity_links (person, created_at);
