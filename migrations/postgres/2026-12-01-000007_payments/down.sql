DROP TABLE refunds;
DROP TABLE stripe_events;
DROP TABLE payments;
ALTER TABLE events DROP COLUMN refund_policy;
ALTER TABLE events DROP COLUMN vat_rate_bp;
ALTER TABLE bookings DROP COLUMN refund_policy;
ALTER TABLE bookings DROP COLUMN refunded_minor;
ALTER TABLE bookings DROP COLUMN paid_minor;
UPDATE bookings SET payment_status = 'paid' WHERE payment_status IN ('refunded', 'invoiced');
ALTER TABLE bookings DROP CONSTRAINT bookings_payment_status_check;
ALTER TABLE bookings ADD CONSTRAINT bookings_payment_status_check
    CHECK (payment_status IN ('not_required', 'unpaid', 'paid'));
