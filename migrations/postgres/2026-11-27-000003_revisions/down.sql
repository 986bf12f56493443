ALTER TABLE sessions DROP COLUMN revision;
ALTER TABLE events DROP COLUMN revision;
