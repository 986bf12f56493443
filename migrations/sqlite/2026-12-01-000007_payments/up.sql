-- Card payments through Stripe, Stripe's webhook events, refunds, VAT and refund policies.

-- A booking can be paid by invoice, and refunded in full; what was paid and what went back are kept in minor units.
-- SQLite cannot change a CHECK in place: the table is copied, rebuilt and refilled, with foreign
-- keys deferred until the commit.
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
    payment_status TEXT NOT NULL CHECK (payment_status IN ('not_required', 'unpaid', 'paid', 'invoiced', 'refunded')),
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    hold_expires_at TIMESTAMP,
    paid_minor BIGINT NOT NULL DEFAULT 0 CHECK (paid_minor >= 0),
    refunded_minor BIGINT NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    -- The event's refund policy as it stood when the booking was paid (JSON): what was promised.
    refund_policy TEXT
);
INSERT INTO bookings (id, event_id, reference, manage_token_hash, attendee_name, attendee_email,
                      attendee_organisation, total_minor, currency, status, payment_status,
                      created_at, updated_at, hold_expires_at)
SELECT id, event_id, reference, manage_token_hash, attendee_name, attendee_email,
       attendee_organisation, total_minor, currency, status, payment_status, created_at,
       updated_at, hold_expires_at
FROM bookings_copy;
DROP TABLE bookings_copy;
CREATE INDEX bookings_event ON bookings (event_id, created_at);
CREATE INDEX bookings_holds_due ON bookings (hold_expires_at) WHERE status = 'held';

-- Prices include VAT at this rate, in basis points (2000 = 20 %).
ALTER TABLE events ADD COLUMN vat_rate_bp INTEGER NOT NULL DEFAULT 0
    CHECK (vat_rate_bp >= 0 AND vat_rate_bp <= 10000);
-- The refund policy (JSON): [{"days_before": 14, "percent": 100}, ...].
ALTER TABLE events ADD COLUMN refund_policy TEXT NOT NULL DEFAULT '[]';

-- One attempt to pay a booking by card. `intent_id` is Stripe's PaymentIntent, set once Stripe
-- has answered; a booking has at most one open payment, which every retry reuses.
CREATE TABLE payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id BIGINT NOT NULL REFERENCES bookings (id),
    provider TEXT NOT NULL CHECK (provider IN ('stripe')),
    intent_id TEXT UNIQUE,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'succeeded', 'cancelled')),
    refunded_minor BIGINT NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    succeeded_at TIMESTAMP,
    -- The reconciler asks Stripe about the intent until Stripe's answer is final (succeeded or
    -- cancelled): next at `next_check_at`, further apart after each of its `checks`.
    next_check_at TIMESTAMP,
    checks INTEGER NOT NULL DEFAULT 0,
    -- When Stripe last answered about it.
    checked_at TIMESTAMP,
    final_at TIMESTAMP
);
CREATE UNIQUE INDEX payments_one_open ON payments (booking_id) WHERE state = 'open';
CREATE INDEX payments_booking ON payments (booking_id);
CREATE INDEX payments_to_check ON payments (next_check_at) WHERE final_at IS NULL;

-- Every Stripe event acted on, so a repeated delivery has no second effect.
CREATE TABLE stripe_events (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);

-- Money owed back, written in the transaction that decides it and sent to Stripe after the
-- commit (again by the reconciler until Stripe has taken it).
CREATE TABLE refunds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    booking_id BIGINT NOT NULL REFERENCES bookings (id),
    payment_id BIGINT NOT NULL REFERENCES payments (id),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    reason TEXT NOT NULL,
    -- An organiser's words to the attendee, for a refund they made.
    note TEXT,
    state TEXT NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
    provider_refund_id TEXT UNIQUE,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX refunds_due ON refunds (state, next_attempt_at);
CREATE INDEX refunds_payment ON refunds (payment_id);
