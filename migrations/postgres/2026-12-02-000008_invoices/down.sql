DROP TABLE invoices;
ALTER TABLE events DROP COLUMN invoice_due_days;
ALTER TABLE events DROP COLUMN invoice_next;
DROP INDEX events_invoice_prefix;
ALTER TABLE events DROP COLUMN invoice_prefix;
ALTER TABLE events DROP COLUMN invoices_allowed;
