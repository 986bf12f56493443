-- Payment by invoice: events that allow it, their gap-free numbering, and the invoices and
-- credit notes issued.

ALTER TABLE events ADD COLUMN invoices_allowed BOOLEAN NOT NULL DEFAULT FALSE;
-- Invoice numbers look like PMO27-0001: this prefix, then the event's own sequence. Prefixes
-- are unique, so numbers are unique across events; an event created without one gets EV<id>.
ALTER TABLE events ADD COLUMN invoice_prefix TEXT;
UPDATE events SET invoice_prefix = 'EV' || CAST(id AS TEXT);
CREATE UNIQUE INDEX events_invoice_prefix ON events (invoice_prefix);
-- The next number to issue. Taken by an update in the transaction that issues the document, so
-- a transaction that rolls back gives its number back and the sequence has no gaps.
ALTER TABLE events ADD COLUMN invoice_next INTEGER NOT NULL DEFAULT 1 CHECK (invoice_next >= 1);
ALTER TABLE events ADD COLUMN invoice_due_days INTEGER NOT NULL DEFAULT 14
    CHECK (invoice_due_days >= 0 AND invoice_due_days <= 365);

-- Invoices and credit notes share the event's sequence: a number is never issued twice.
CREATE TABLE invoices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id BIGINT NOT NULL REFERENCES events (id),
    booking_id BIGINT NOT NULL REFERENCES bookings (id),
    number TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    -- For a credit note: the invoice it credits.
    credits_invoice_id BIGINT REFERENCES invoices (id),
    company TEXT NOT NULL,
    billing_address TEXT NOT NULL,
    vat_number TEXT,
    po_number TEXT,
    -- The lines as issued (JSON): [{"description": ..., "gross_minor": ...}].
    lines TEXT NOT NULL,
    net_minor BIGINT NOT NULL,
    vat_minor BIGINT NOT NULL,
    gross_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    vat_rate_bp INTEGER NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    -- Invoices only: when payment is due (never after the event starts).
    due_at TIMESTAMP,
    state TEXT NOT NULL CHECK (state IN ('unpaid', 'paid', 'cancelled', 'issued')),
    paid_at TIMESTAMP,
    reminded_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX invoices_booking ON invoices (booking_id);
CREATE INDEX invoices_unpaid ON invoices (event_id, due_at) WHERE state = 'unpaid';
