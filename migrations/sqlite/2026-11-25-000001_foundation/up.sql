-- Programme, organisers, bookings and seats. Times are UTC; money is integer minor units.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    venue TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    currency TEXT NOT NULL,
    registration_opens_at TIMESTAMP,
    registration_closes_at TIMESTAMP,
    status TEXT NOT NULL CHECK (status IN ('draft', 'published')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id BIGINT NOT NULL REFERENCES events (id),
    title TEXT NOT NULL,
    abstract_text TEXT NOT NULL,
    speakers TEXT NOT NULL,
    track TEXT,
    room TEXT,
    starts_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL,
    capacity INTEGER NOT NULL CHECK (capacity >= 0),
    taken INTEGER NOT NULL DEFAULT 0,
    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
    status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'cancelled')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (taken >= 0 AND taken <= capacity),
    CHECK (ends_at > starts_at)
);
CREATE INDEX sessions_event ON sessions (event_id, starts_at);

CREATE TABLE organisers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'checkin')),
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organiser_id BIGINT NOT NULL REFERENCES organisers (id),
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);

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
    status TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
    payment_status TEXT NOT NULL CHECK (payment_status IN ('not_required', 'unpaid', 'paid')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX bookings_event ON bookings (event_id, created_at);

CREATE TABLE seats (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id BIGINT NOT NULL REFERENCES bookings (id),
    session_id BIGINT NOT NULL REFERENCES sessions (id),
    attendee_email TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('held', 'confirmed', 'cancelled', 'expired')),
    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
    created_at TIMESTAMP NOT NULL,
    cancelled_at TIMESTAMP
);
CREATE INDEX seats_booking ON seats (booking_id);
-- One person (email, lower-cased by the application) holds at most one active seat per session.
-- The same partial index serves the per-session queries over active seats (attendee lists, the
-- recount of `masterclass check`), so seats need no other index on session_id.
CREATE UNIQUE INDEX seats_one_active_per_person ON seats (session_id, attendee_email)
    WHERE state IN ('held', 'confirmed');
