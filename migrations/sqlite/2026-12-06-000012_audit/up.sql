-- The audit trail: one row per organiser action (NULL organiser for the command line or the
-- system), with the subject's state before and after as JSON text where it is cheap to have.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TIMESTAMP NOT NULL,
    organiser_id BIGINT REFERENCES organisers (id),
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (at, id);
CREATE INDEX audit_log_by_organiser ON audit_log (organiser_id);
