-- Garde durable store, SQLite. Times are INTEGER microseconds since the Unix
-- epoch, UTC: exact, and they sort and compare as numbers.

CREATE TABLE signing_keys (
	kid        TEXT    NOT NULL PRIMARY KEY,
	alg        TEXT    NOT NULL,
	generation INTEGER NOT NULL,
	sealed     BLOB    NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (alg, generation)
) STRICT;

CREATE TABLE refresh_tokens (
	signature  TEXT    NOT NULL PRIMARY KEY,
	request_id TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	session_id TEXT    NOT NULL,
	active     INTEGER NOT NULL,
	data       BLOB    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX refresh_tokens_request_id ON refresh_tokens (request_id);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- AUTOINCREMENT: an id is never reused, even after the newest rows are
-- deleted, so an exporter paging with AfterID never skips or repeats.
CREATE TABLE audit_events (
	id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	time        INTEGER NOT NULL,
	type        TEXT    NOT NULL,
	person      TEXT    NOT NULL,
	app         TEXT    NOT NULL,
	client_addr TEXT    NOT NULL,
	outcome     TEXT    NOT NULL,
	reason      TEXT    NOT NULL,
	session_id  TEXT    NOT NULL,
	details     TEXT    NOT NULL
) STRICT;

-- Filters come with ORDER BY id: (column, id) serves both.
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_person ON audit_events (person, id);
CREATE INDEX audit_events_app ON audit_events (app, id);
CREATE INDEX audit_events_type ON audit_events (type, id);
