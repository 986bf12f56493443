DROP TABLE refunds;
DROP TABLE stripe_events;
DROP TABLE payments;
ALTER TABLE events DROP COLUMN refund_policy;
ALTER TABLE events DROP COLUMN vat_rate_bp;
-- The wider payment_status CHECK and the payment columns stay: SQLite would need the table
-- rebuilt again, and the columns are harmless to the code before this migration.
UPDATE bookings SET payment_status = 'paid' WHERE payment_status IN ('refunded', 'invoiced');
