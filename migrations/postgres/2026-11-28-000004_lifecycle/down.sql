DROP TABLE idempotency_keys;
DROP TABLE waitlist_entries;
ALTER TABLE sessions DROP COLUMN waitlist_enabled;
ALTER TABLE events DROP COLUMN allow_clashes;
DROP INDEX bookings_holds_due;
ALTER TABLE bookings DROP COLUMN hold_expires_at;
ALTER TABLE bookings DROP CONSTRAINT bookings_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_status_check CHECK (status IN ('confirmed', 'cancelled'));
