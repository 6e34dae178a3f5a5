-- Garde durable store, PostgreSQL. timestamptz keeps microseconds.

CREATE TABLE signing_keys (
	kid        text        NOT NULL PRIMARY KEY,
	alg        text        NOT NULL,
	generation bigint      NOT NULL,
	sealed     bytea       NOT NULL,
	created_at timestamptz NOT NULL,
	UNIQUE (alg, generation)
);

CREATE TABLE refresh_tokens (
	signature  text        NOT NULL PRIMARY KEY,
	request_id text        NOT NULL,
	client_id  text        NOT NULL,
	subject    text        NOT NULL,
	session_id text        NOT NULL,
	active     boolean     NOT NULL,
	data       bytea       NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);

CREATE INDEX refresh_tokens_request_id ON refresh_tokens (request_id);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE audit_events (
	id          bigserial   NOT NULL PRIMARY KEY,
	time        timestamptz NOT NULL,
	type        text        NOT NULL,
	person      text        NOT NULL,
	app         text        NOT NULL,
	client_addr text        NOT NULL,
	outcome     text        NOT NULL,
	reason      text        NOT NULL,
	session_id  text        NOT NULL,
	-- A JSON object of strings, kept as text: the store never looks inside.
	details     text        NOT NULL
);

-- Filters come with ORDER BY id: (column, id) serves both.
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_person ON audit_events (person, id);
CREATE INDEX audit_events_app ON audit_events (app, id);
CREATE INDEX audit_events_type ON audit_events (type, id);
