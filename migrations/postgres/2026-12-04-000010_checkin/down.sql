ALTER TABLE seats DROP COLUMN checked_in_by;
ALTER TABLE seats DROP COLUMN checked_in_at;
