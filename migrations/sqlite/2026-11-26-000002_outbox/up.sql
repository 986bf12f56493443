-- The outbox: every email owed is a row, written in the transaction of the change that owes it.
CREATE TABLE email_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    template TEXT NOT NULL,
    recipient TEXT NOT NULL,
    -- What the template is rendered with, as JSON. Never secrets: links with tokens are made
    -- when the message is rendered.
    data TEXT NOT NULL,
    -- Stable across retries, so a message sent twice after a crash is recognisable downstream.
    -- A random UUID: unique without an index to maintain on every booking.
    message_id TEXT NOT NULL,
    booking_id BIGINT REFERENCES bookings (id),
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    -- Set while a worker holds the job; a worker that dies lets it lapse and another takes over.
    lease_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX email_jobs_due ON email_jobs (state, next_attempt_at);

-- Calendar files carry SEQUENCE, which goes up whenever a session's time or room changes.
ALTER TABLE sessions ADD COLUMN sequence INTEGER NOT NULL DEFAULT 0;

-- One agenda reminder per person (normalised email) and event, however many workers run.
CREATE TABLE agenda_reminders (
    event_id BIGINT NOT NULL REFERENCES events (id),
    attendee_email TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (event_id, attendee_email)
);
