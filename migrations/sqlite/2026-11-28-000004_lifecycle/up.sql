-- Holds, waitlists, clash settings and idempotency keys.

-- Bookings gain 'held' (seats kept until paid) and 'expired' (not paid in time). SQLite cannot
-- change a CHECK in place: the table is copied, rebuilt and refilled. Seats and email jobs point
-- at bookings; deferring foreign keys lets the refill satisfy them again before the commit.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE bookings_copy AS SELECT * FROM bookings;
DROP TABLE bookings;
CREATE TABLE bookings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id BIGINT NOT NULL REFERENCES events (id),
    reference TEXT NOT NULL UNIQUE,
    manage_token_hash TEXT NOT NULL UNIQUE,
    attendee_name TEXT NOT NULL,
    attendee_email TEXT NOT NULL,
    attendee_organisation TEXT,
    total_minor BIGINT NOT NULL CHECK (total_minor >= 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    payment_status TEXT NOT NULL CHECK (payment_status IN ('not_required', 'unpaid', 'paid')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    hold_expires_at TIMESTAMP
);
INSERT INTO bookings (id, event_id, reference, manage_token_hash, attendee_name, attendee_email,
                      attendee_organisation, total_minor, currency, status, payment_status,
                      created_at, updated_at)
SELECT id, event_id, reference, manage_token_hash, attendee_name, attendee_email,
       attendee_organisation, total_minor, currency, status, payment_status, created_at, updated_at
FROM bookings_copy;
DROP TABLE bookings_copy;
CREATE INDEX bookings_event ON bookings (event_id, created_at);
CREATE INDEX bookings_holds_due ON bookings (hold_expires_at) WHERE status = 'held';

-- Whether a person may book sessions that overlap in time.
ALTER TABLE events ADD COLUMN allow_clashes BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE sessions ADD COLUMN waitlist_enabled BOOLEAN NOT NULL DEFAULT TRUE;

-- People waiting for a full session. `queue_key` orders them (first in, first offered; an
-- organiser can move someone to the front). An offered entry holds one of the session's
-- `taken` seats until `offer_expires_at`.
CREATE TABLE waitlist_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    reference TEXT NOT NULL UNIQUE,
    manage_token_hash TEXT NOT NULL UNIQUE,
    attendee_name TEXT NOT NULL,
    attendee_email TEXT NOT NULL,
    -- The email lower-cased: one active entry per person and session.
    email_key TEXT NOT NULL,
    attendee_organisation TEXT,
    state TEXT NOT NULL CHECK (state IN ('waiting', 'offered', 'claimed', 'declined', 'expired', 'withdrawn')),
    queue_key BIGINT NOT NULL,
    offered_at TIMESTAMP,
    offer_expires_at TIMESTAMP,
    booking_id BIGINT REFERENCES bookings (id),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX waitlist_one_per_person ON waitlist_entries (session_id, email_key)
    WHERE state IN ('waiting', 'offered');
CREATE INDEX waitlist_queue ON waitlist_entries (session_id, state, queue_key, id);
CREATE INDEX waitlist_offers_due ON waitlist_entries (offer_expires_at) WHERE state = 'offered';

-- The first answer to a request sent with an Idempotency-Key, kept for 24 hours. Bodies never
-- hold secrets: manage tokens are derived again when an answer is repeated.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'done')),
    status INTEGER,
    body TEXT,
    -- While running: until when the request that holds the key may take; then another may.
    lease_until TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
