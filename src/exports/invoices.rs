//! The invoices and credit notes of an event for accounting, in order of issue (which is the
//! order of their numbers). A credit note's amounts are negative, so each money column adds up
//! to what is invoiced net of credits.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::csv::{Amount, Cell, Record};
use super::{local_minute, ExportError};
use crate::db::schema::{bookings, invoices};
use crate::db::{self, DbConn};
use crate::events::{self, Event};

/// One invoice or credit note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRecord {
    pub number: String,
    /// `invoice` or `credit_note`.
    pub kind: String,
    /// For a credit note: the number of the invoice it credits.
    pub credits: Option<String>,
    pub issued_at: String,
    /// For an invoice: when it is to be paid by.
    pub due_at: Option<String>,
    /// An invoice is `unpaid`, `paid` or `cancelled` (credited in full); a credit note `issued`.
    pub state: String,
    pub company: String,
    pub vat_number: Option<String>,
    pub po_number: Option<String>,
    pub net: Amount,
    pub vat: Amount,
    pub gross: Amount,
    pub currency: String,
    pub booking_reference: String,
}

impl Record for InvoiceRecord {
    const HEADER: &'static [&'static str] = &[
        "number",
        "kind",
        "credits",
        "issued_at",
        "due_at",
        "state",
        "company",
        "vat_number",
        "po_number",
        "net",
        "vat",
        "gross",
        "currency",
        "booking_reference",
    ];

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::from(&self.number),
            Cell::from(&self.kind),
            Cell::from(&self.credits),
            Cell::from(&self.issued_at),
            Cell::from(&self.due_at),
            Cell::from(&self.state),
            Cell::from(&self.company),
            Cell::from(&self.vat_number),
            Cell::from(&self.po_number),
            Cell::from(&self.net),
            Cell::from(&self.vat),
            Cell::from(&self.gross),
            Cell::from(&self.currency),
            Cell::from(&self.booking_reference),
        ]
    }
}

/// An event's invoices and credit notes.
#[derive(Debug, Clone)]
pub struct EventInvoices {
    pub event: Event,
    pub rows: Vec<InvoiceRecord>,
}

type Row = (
    (i64, String, String, Option<i64>),
    (NaiveDateTime, Option<NaiveDateTime>, String),
    (String, Option<String>, Option<String>),
    (i64, i64, i64, String),
    String,
);

/// The invoices and credit notes of the event `slug`, in order of issue.
pub fn event_invoices(conn: &mut DbConn, slug: &str) -> Result<EventInvoices, ExportError> {
    db::read_snapshot(conn, |conn| {
        let event = events::find(conn, slug)?;
        let rows: Vec<Row> = invoices::table
            .inner_join(bookings::table)
            .filter(invoices::event_id.eq(event.id))
            .order(invoices::id.asc())
            .select((
                (
                    invoices::id,
                    invoices::number,
                    invoices::kind,
                    invoices::credits_invoice_id,
                ),
                (invoices::issued_at, invoices::due_at, invoices::state),
                (invoices::company, invoices::vat_number, invoices::po_number),
                (
                    invoices::net_minor,
                    invoices::vat_minor,
                    invoices::gross_minor,
                    invoices::currency,
                ),
                bookings::reference,
            ))
            .load(conn)?;
        let numbers: HashMap<i64, String> = rows
            .iter()
            .map(|((id, number, _, _), ..)| (*id, number.clone()))
            .collect();
        let rows = rows
            .into_iter()
            .map(|row| record(row, &numbers, &event))
            .collect();
        Ok(EventInvoices { event, rows })
    })
}

fn record(row: Row, numbers: &HashMap<i64, String>, event: &Event) -> InvoiceRecord {
    let (
        (_, number, kind, credits),
        (issued_at, due_at, state),
        (company, vat_number, po_number),
        (net, vat, gross, currency),
        booking_reference,
    ) = row;
    let credit_note = kind == "credit_note";
    let money = |minor: i64| {
        let signed = if credit_note {
            minor.saturating_neg()
        } else {
            minor
        };
        Amount::new(signed, &currency)
    };
    InvoiceRecord {
        number,
        kind,
        credits: credits.and_then(|id| numbers.get(&id).cloned()),
        issued_at: local_minute(issued_at.and_utc(), event.time_zone),
        due_at: due_at.map(|t| local_minute(t.and_utc(), event.time_zone)),
        state,
        company,
        vat_number,
        po_number,
        net: money(net),
        vat: money(vat),
        gross: money(gross),
        currency,
        booking_reference,
    }
}
