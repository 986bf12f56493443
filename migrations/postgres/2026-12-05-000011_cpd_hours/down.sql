ALTER TABLE sessions DROP COLUMN cpd_tenths;
