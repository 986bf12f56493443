-- Check-in at the door: when the holder of a confirmed seat arrived, and which organiser let
-- them in. Set only by a conditional update (while still NULL), so two scanners reading the same
-- code at once record one check-in. Check-in codes themselves are derived from the seat with the
-- server's key and never stored.
ALTER TABLE seats ADD COLUMN checked_in_at TIMESTAMP;
ALTER TABLE seats ADD COLUMN checked_in_by BIGINT REFERENCES organisers (id);
