-- Organisers sign in to the dashboard with a password (argon2id hash), in sessions kept by a
-- cookie whose token is stored only as a hash. Invitations and password resets are links whose
-- token is derived from the row's id with the server's key, and stored as a hash too.
ALTER TABLE organisers ADD COLUMN password_hash TEXT;

CREATE TABLE organiser_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organiser_id BIGINT NOT NULL REFERENCES organisers (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX organiser_sessions_by_organiser ON organiser_sessions (organiser_id);

CREATE TABLE organiser_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organiser_id BIGINT NOT NULL REFERENCES organisers (id),
    kind TEXT NOT NULL CHECK (kind IN ('invite', 'reset')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX organiser_links_by_organiser ON organiser_links (organiser_id);
