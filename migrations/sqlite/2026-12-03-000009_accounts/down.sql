DROP TABLE organiser_links;
DROP TABLE organiser_sessions;
ALTER TABLE organisers DROP COLUMN password_hash;
