-- CPD hours a session counts for on a certificate of attendance, in tenths of an hour (15 = 1.5
-- hours), so no fractions are stored.
ALTER TABLE sessions ADD COLUMN cpd_tenths INTEGER NOT NULL DEFAULT 0;
