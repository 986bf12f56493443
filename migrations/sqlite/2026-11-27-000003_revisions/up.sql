-- Every change an organiser makes to an event or a session raises its revision. A booking may
-- work from a programme read earlier: its seat update checks both revisions, so data that has
-- changed since is noticed and read again, never booked on.
ALTER TABLE events ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
