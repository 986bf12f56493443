DROP TABLE agenda_reminders;
ALTER TABLE sessions DROP COLUMN sequence;
DROP TABLE email_jobs;
