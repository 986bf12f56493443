//! Payment by invoice: a held booking (or a new one) is confirmed at once with an invoice to pay
//! by a due date. Invoice numbers are gap-free per event (`PMO27-0001`, `PMO27-0002`, …): the
//! number is taken from the event's counter in the transaction that confirms the booking, so a
//! transaction that fails gives its number back.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::policy::vat_split;
use crate::bookings::{self, Booking, BookingError, BookingStatus, PaymentStatus, SeatState};
use crate::db::schema::{bookings as bookings_table, events, invoices, seats};
use crate::db::{self, DbConn, DbError};
use crate::events::Event;
use crate::mail::{self, compose, Template};
use crate::validation::{optional_text, required_text, Fields, ValidationError};

/// Who pays, as the invoice names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buyer {
    pub company: String,
    pub billing_address: String,
    pub vat_number: Option<String>,
    pub po_number: Option<String>,
}

impl Buyer {
    pub fn parse(
        company: &str,
        billing_address: &str,
        vat_number: Option<&str>,
        po_number: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let mut f = Fields::new();
        let company = f.check("invoice.company", required_text(company, 200));
        let address = f.check("invoice.billing_address", multiline(billing_address, 500));
        let vat = f
            .check("invoice.vat_number", optional_text(vat_number, 40))
            .flatten();
        let po = f
            .check("invoice.po_number", optional_text(po_number, 30))
            .flatten();
        for (field, value) in [
            ("invoice.company", company.as_deref()),
            ("invoice.billing_address", address.as_deref()),
            ("invoice.vat_number", vat.as_deref()),
            ("invoice.po_number", po.as_deref()),
        ] {
            if let Some(bad) = value.and_then(|v| v.chars().find(|c| !super::pdf::printable(*c))) {
                f.add(
                    field,
                    format!("contains {bad:?}, which an invoice cannot print (Latin letters only)"),
                );
            }
        }
        f.finish()?;
        match (company, address) {
            (Some(company), Some(billing_address)) => Ok(Self {
                company,
                billing_address,
                vat_number: vat,
                po_number: po,
            }),
            _ => Err(ValidationError::single("invoice", "is not valid")),
        }
    }
}

/// An address: 1 to `max` characters over up to 8 lines, no control characters but line breaks.
fn multiline(raw: &str, max: usize) -> Result<String, String> {
    let lines: Vec<&str> = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let joined = lines.join("\n");
    if joined.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if joined.chars().count() > max || lines.len() > 8 {
        return Err(format!(
            "must be at most {max} characters on at most 8 lines"
        ));
    }
    if joined.chars().any(|c| c.is_control() && c != '\n') {
        return Err("must not contain control characters".to_owned());
    }
    Ok(joined)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceState {
    /// Issued, not paid yet.
    Unpaid,
    Paid,
    /// Credited in full (a credit note carries its own number).
    Cancelled,
    /// A credit note, once issued.
    Issued,
}

impl InvoiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unpaid => "unpaid",
            Self::Paid => "paid",
            Self::Cancelled => "cancelled",
            Self::Issued => "issued",
        }
    }

    fn from_db(raw: &str) -> Self {
        match raw {
            "paid" => Self::Paid,
            "cancelled" => Self::Cancelled,
            "issued" => Self::Issued,
            _ => Self::Unpaid,
        }
    }
}

/// One line of an invoice: a seat, with its VAT-inclusive price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub description: String,
    pub gross_minor: i64,
}

/// An invoice (or credit note) as issued.
#[derive(Debug, Clone)]
pub struct Invoice {
    pub id: i64,
    pub event_id: i64,
    pub booking_id: i64,
    pub number: String,
    pub credit_note: bool,
    pub buyer: Buyer,
    pub lines: Vec<Line>,
    pub net_minor: i64,
    pub vat_minor: i64,
    pub gross_minor: i64,
    pub currency: String,
    pub vat_rate_bp: i32,
    pub issued_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub state: InvoiceState,
    pub paid_at: Option<DateTime<Utc>>,
}

impl Invoice {
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == InvoiceState::Unpaid && self.due_at.is_some_and(|due| due < now)
    }
}

type InvoiceRow = (
    (i64, i64, i64, String, String),
    (String, String, Option<String>, Option<String>, String),
    (i64, i64, i64, String, i32),
    (
        NaiveDateTime,
        Option<NaiveDateTime>,
        String,
        Option<NaiveDateTime>,
    ),
);

macro_rules! invoice_columns {
    () => {
        (
            (
                invoices::id,
                invoices::event_id,
                invoices::booking_id,
                invoices::number,
                invoices::kind,
            ),
            (
                invoices::company,
                invoices::billing_address,
                invoices::vat_number,
                invoices::po_number,
                invoices::lines,
            ),
            (
                invoices::net_minor,
                invoices::vat_minor,
                invoices::gross_minor,
                invoices::currency,
                invoices::vat_rate_bp,
            ),
            (
                invoices::issued_at,
                invoices::due_at,
                invoices::state,
                invoices::paid_at,
            ),
        )
    };
}

fn from_row(row: InvoiceRow) -> Invoice {
    let (
        (id, event_id, booking_id, number, kind),
        (company, address, vat, po, lines),
        money,
        times,
    ) = row;
    let (net_minor, vat_minor, gross_minor, currency, vat_rate_bp) = money;
    let (issued_at, due_at, state, paid_at) = times;
    Invoice {
        id,
        event_id,
        booking_id,
        number,
        credit_note: kind == "credit_note",
        buyer: Buyer {
            company,
            billing_address: address,
            vat_number: vat,
            po_number: po,
        },
        lines: serde_json::from_str(&lines).unwrap_or_default(),
        net_minor,
        vat_minor,
        gross_minor,
        currency,
        vat_rate_bp,
        issued_at: issued_at.and_utc(),
        due_at: due_at.map(|t| t.and_utc()),
        state: InvoiceState::from_db(&state),
        paid_at: paid_at.map(|t| t.and_utc()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    #[error("this event does not take payment by invoice")]
    NotOffered,
    #[error("no invoice {0}")]
    NotFound(String),
    #[error("invoice {number} is {state}, not unpaid")]
    NotUnpaid { number: String, state: &'static str },
    #[error("the hold on booking {reference} ran out at {until}; its places have been released")]
    HoldExpired {
        reference: String,
        until: DateTime<Utc>,
    },
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for InvoiceError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

pub fn by_number(conn: &mut DbConn, number: &str) -> Result<Invoice, InvoiceError> {
    invoices::table
        .filter(invoices::number.eq(number))
        .select(invoice_columns!())
        .first::<InvoiceRow>(conn)
        .optional()?
        .map(from_row)
        .ok_or_else(|| InvoiceError::NotFound(number.to_owned()))
}

/// A booking's invoices and credit notes, oldest first.
pub fn for_booking(conn: &mut DbConn, booking_id: i64) -> Result<Vec<Invoice>, DbError> {
    Ok(invoices::table
        .filter(invoices::booking_id.eq(booking_id))
        .order(invoices::id.asc())
        .select(invoice_columns!())
        .load::<InvoiceRow>(conn)?
        .into_iter()
        .map(from_row)
        .collect())
}

/// Which invoices a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    Unpaid,
    /// Unpaid past their due date.
    Overdue,
    Paid,
    All,
}

/// An event's invoices (not credit notes) matching `filter`, by number.
pub fn for_event(
    conn: &mut DbConn,
    event_id: i64,
    filter: Filter,
    now: DateTime<Utc>,
) -> Result<Vec<Invoice>, DbError> {
    let mut query = invoices::table
        .filter(invoices::event_id.eq(event_id))
        .filter(invoices::kind.eq("invoice"))
        .order(invoices::id.asc())
        .select(invoice_columns!())
        .into_boxed();
    query = match filter {
        Filter::Unpaid => query.filter(invoices::state.eq("unpaid")),
        Filter::Overdue => query
            .filter(invoices::state.eq("unpaid"))
            .filter(invoices::due_at.lt(db::stored(now))),
        Filter::Paid => query.filter(invoices::state.eq("paid")),
        Filter::All => query,
    };
    Ok(query
        .load::<InvoiceRow>(conn)?
        .into_iter()
        .map(from_row)
        .collect())
}

/// The next number of `event`'s sequence, taken in the caller's transaction.
fn next_number(conn: &mut DbConn, event: &Event) -> Result<String, DbError> {
    let next: i32 = diesel::update(events::table.find(event.id))
        .set(events::invoice_next.eq(events::invoice_next + 1))
        .returning(events::invoice_next)
        .get_result(conn)?;
    let prefix: Option<String> = events::table
        .find(event.id)
        .select(events::invoice_prefix)
        .first(conn)?;
    let prefix = prefix.unwrap_or_else(|| format!("EV{}", event.id));
    Ok(format!("{prefix}-{:04}", next - 1))
}

/// Pays the held booking behind `manage_token` by invoice to `buyer` (see [`confirm_by_invoice`]),
/// unless its hold has run out.
pub fn pay_held_by_invoice(
    conn: &mut DbConn,
    manage_token: &str,
    buyer: &Buyer,
    now: DateTime<Utc>,
) -> Result<Invoice, InvoiceError> {
    let (_, booking) = bookings::find_by_token(conn, manage_token)?;
    if let Err(super::PaymentError::HoldExpired { reference, until }) =
        super::payable(&booking, now)
    {
        return Err(InvoiceError::HoldExpired { reference, until });
    }
    db::write_transaction(conn, |conn| {
        confirm_by_invoice(conn, booking.id, buyer, now)
    })
    .map(|(_, invoice)| invoice)
}

/// Confirms held booking `booking_id` with an invoice to `buyer`, in the caller's transaction:
/// the held seats become confirmed, the booking `invoiced` (and the refund policy in force
/// copied onto it), the invoice issued with the next number, and the confirmation emailed with
/// the invoice attached. Open card payments are given up.
pub fn confirm_by_invoice(
    conn: &mut DbConn,
    booking_id: i64,
    buyer: &Buyer,
    now: DateTime<Utc>,
) -> Result<(Booking, Invoice), InvoiceError> {
    bookings::lock_sessions_of(conn, booking_id)?;
    let booking = bookings::load(conn, booking_id)?;
    let event = crate::events::by_id(conn, booking.event_id)?;
    if !event.invoices_allowed {
        return Err(InvoiceError::NotOffered);
    }
    let stamp = db::stored(now);
    let changed = diesel::update(bookings_table::table.find(booking_id))
        .filter(bookings_table::status.eq(BookingStatus::Held.as_str()))
        .filter(bookings_table::total_minor.gt(0))
        .set((
            bookings_table::status.eq(BookingStatus::Confirmed.as_str()),
            bookings_table::payment_status.eq(PaymentStatus::Invoiced.as_str()),
            bookings_table::refund_policy.eq(Some(event.refund_policy.to_stored())),
            bookings_table::hold_expires_at.eq(None::<NaiveDateTime>),
            bookings_table::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Err(BookingError::NotHeld {
            reference: booking.reference,
            status: booking.status,
        }
        .into());
    }
    diesel::update(seats::table)
        .filter(seats::booking_id.eq(booking_id))
        .filter(seats::state.eq(SeatState::Held.as_str()))
        .set(seats::state.eq(SeatState::Confirmed.as_str()))
        .execute(conn)?;
    let open = super::open_payments(conn, booking_id)?;
    super::give_up(conn, &open, now)?;
    let booking = bookings::load(conn, booking_id)?;
    let invoice = issue(conn, &event, &booking, buyer, now)?;
    let mut data = booking.mail(&event, SeatState::Confirmed);
    data.invoice = Some(mail_of(&invoice, &event));
    mail::enqueue(
        conn,
        Template::BookingConfirmed,
        &booking.attendee_email,
        Some(booking.id),
        &data,
    )?;
    tracing::info!(reference = %booking.reference, invoice = %invoice.number, "confirmed by invoice");
    Ok((booking, invoice))
}

/// Issues the invoice of `booking`'s confirmed seats.
fn issue(
    conn: &mut DbConn,
    event: &Event,
    booking: &Booking,
    buyer: &Buyer,
    now: DateTime<Utc>,
) -> Result<Invoice, DbError> {
    let number = next_number(conn, event)?;
    let lines: Vec<Line> = booking
        .seats
        .iter()
        .filter(|s| s.state == SeatState::Confirmed && s.price_minor > 0)
        .map(|s| {
            let when = compose::day_and_time(s.starts_at, s.ends_at, event.time_zone);
            Line {
                description: format!("{} ({}, {})", s.title, when.0, when.1),
                gross_minor: s.price_minor,
            }
        })
        .collect();
    let gross: i64 = lines.iter().map(|l| l.gross_minor).sum();
    let (net, vat) = vat_split(gross, event.vat_rate_bp);
    // Due in the event's days, but never after the event starts: for this booking, its first
    // session (and never before now, when that has begun).
    let starts = booking
        .seats
        .iter()
        .filter(|s| s.state == SeatState::Confirmed)
        .map(|s| s.starts_at)
        .min();
    let mut due = now + Duration::days(i64::from(event.invoice_due_days));
    if let Some(starts) = starts {
        due = due.min(starts).max(now);
    }
    insert(
        conn,
        &Draft {
            event_id: event.id,
            booking_id: booking.id,
            number: &number,
            credits: None,
            buyer,
            lines: &lines,
            net,
            vat,
            currency: &booking.currency,
            vat_rate_bp: event.vat_rate_bp,
            due_at: Some(due),
        },
        now,
    )
}

/// Credits `booking_id`'s invoice for places just cancelled in the caller's transaction: each
/// place's price, or the share the booking's refund policy gives (`share`), as a credit note with
/// the event's next number, emailed as a PDF. An invoice credited in full is cancelled. Does
/// nothing for a booking without an invoice. Returns the credit note, if one was issued.
pub fn credit_cancelled_places(
    conn: &mut DbConn,
    booking_id: i64,
    places: &[(DateTime<Utc>, i64, String)],
    share: super::refunds::Share,
    now: DateTime<Utc>,
) -> Result<Option<Invoice>, DbError> {
    let Some(invoice) = for_booking(conn, booking_id)?
        .into_iter()
        .find(|i| !i.credit_note && i.state != InvoiceState::Cancelled)
    else {
        return Ok(None);
    };
    let booking = bookings::load(conn, booking_id)?;
    let policy = booking.refund_policy.clone().unwrap_or_default();
    let lines: Vec<Line> = places
        .iter()
        .map(|(starts_at, price, title)| {
            let percent = match share {
                super::refunds::Share::Full => 100,
                super::refunds::Share::Policy => policy.percent_at(*starts_at, now),
            };
            Line {
                description: if percent == 100 {
                    format!("Cancelled: {title}")
                } else {
                    format!("Cancelled: {title} ({percent} % under the refund policy)")
                },
                gross_minor: super::policy::share(*price, percent),
            }
        })
        .filter(|l| l.gross_minor > 0)
        .collect();
    let (already, already_vat) = credited(conn, invoice.id)?;
    let left = invoice.gross_minor - already;
    let wanted: i64 = lines.iter().map(|l| l.gross_minor).sum();
    let gross = wanted.min(left);
    if gross <= 0 {
        return Ok(None);
    }
    let event = crate::events::by_id(conn, booking.event_id)?;
    // The credit note that takes the rest takes the rest of the VAT too, so the notes add up to
    // the invoice to the penny.
    let rest_of_vat = (gross == left).then(|| invoice.vat_minor - already_vat);
    let note = issue_credit_note(conn, &event, &invoice, lines, gross, rest_of_vat, now)?;
    if already + gross >= invoice.gross_minor && invoice.state == InvoiceState::Unpaid {
        diesel::update(invoices::table.find(invoice.id))
            .filter(invoices::state.eq(InvoiceState::Unpaid.as_str()))
            .set(invoices::state.eq(InvoiceState::Cancelled.as_str()))
            .execute(conn)?;
        // Nothing left to pay.
        diesel::update(bookings_table::table.find(booking_id))
            .filter(bookings_table::payment_status.eq(PaymentStatus::Invoiced.as_str()))
            .set(bookings_table::payment_status.eq(PaymentStatus::NotRequired.as_str()))
            .execute(conn)?;
    }
    let outstanding = if invoice.state == InvoiceState::Unpaid {
        (invoice.gross_minor - already - gross).max(0)
    } else {
        0
    };
    let mut data = booking.mail(&event, SeatState::Cancelled);
    let mut announced = mail_of(&note, &event);
    announced.credits_number = Some(invoice.number.clone());
    announced.outstanding = Some(compose::money(outstanding, &invoice.currency));
    announced.already_paid = invoice.state == InvoiceState::Paid;
    data.invoice = Some(announced);
    mail::enqueue(
        conn,
        Template::CreditNote,
        &booking.attendee_email,
        Some(booking.id),
        &data,
    )?;
    tracing::info!(reference = %booking.reference, invoice = %invoice.number, credit_note = %note.number, "credit note issued");
    Ok(Some(note))
}

/// What a credit note for cancelled places of booking `booking_id` can still take: what is
/// left of its invoice after the credit notes already issued; `None` when it has no invoice to
/// credit. [`credit_cancelled_places`] credits at most this.
pub fn credit_room(conn: &mut DbConn, booking_id: i64) -> Result<Option<i64>, DbError> {
    let Some(invoice) = for_booking(conn, booking_id)?
        .into_iter()
        .find(|i| !i.credit_note && i.state != InvoiceState::Cancelled)
    else {
        return Ok(None);
    };
    let (already, _) = credited(conn, invoice.id)?;
    Ok(Some((invoice.gross_minor - already).max(0)))
}

/// Issues a credit note for `gross` of `invoice`, with the event's next number.
fn issue_credit_note(
    conn: &mut DbConn,
    event: &Event,
    invoice: &Invoice,
    mut lines: Vec<Line>,
    gross: i64,
    vat: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Invoice, DbError> {
    // Never more than is left of the invoice: the last line takes the cut.
    let mut over: i64 = lines.iter().map(|l| l.gross_minor).sum::<i64>() - gross;
    for line in lines.iter_mut().rev() {
        if over <= 0 {
            break;
        }
        let cut = over.min(line.gross_minor);
        line.gross_minor -= cut;
        over -= cut;
    }
    lines.retain(|l| l.gross_minor > 0);
    let number = next_number(conn, event)?;
    let (net, vat) = match vat {
        Some(vat) => (gross - vat, vat),
        None => vat_split(gross, invoice.vat_rate_bp),
    };
    insert(
        conn,
        &Draft {
            event_id: invoice.event_id,
            booking_id: invoice.booking_id,
            number: &number,
            credits: Some(invoice.id),
            buyer: &invoice.buyer,
            lines: &lines,
            net,
            vat,
            currency: &invoice.currency,
            vat_rate_bp: invoice.vat_rate_bp,
            due_at: None,
        },
        now,
    )
}

/// An invoice (or, with `credits`, a credit note) about to be issued.
struct Draft<'a> {
    event_id: i64,
    booking_id: i64,
    number: &'a str,
    /// The invoice a credit note credits.
    credits: Option<i64>,
    buyer: &'a Buyer,
    lines: &'a [Line],
    net: i64,
    vat: i64,
    currency: &'a str,
    vat_rate_bp: i32,
    due_at: Option<DateTime<Utc>>,
}

/// Writes `draft` as issued at `now`; an invoice is unpaid, a credit note issued.
fn insert(conn: &mut DbConn, draft: &Draft<'_>, now: DateTime<Utc>) -> Result<Invoice, DbError> {
    let stamp = db::stored(now);
    let (kind, state) = match draft.credits {
        Some(_) => ("credit_note", InvoiceState::Issued),
        None => ("invoice", InvoiceState::Unpaid),
    };
    let id: i64 = diesel::insert_into(invoices::table)
        .values((
            invoices::event_id.eq(draft.event_id),
            invoices::booking_id.eq(draft.booking_id),
            invoices::number.eq(draft.number),
            invoices::kind.eq(kind),
            invoices::credits_invoice_id.eq(draft.credits),
            invoices::company.eq(&draft.buyer.company),
            invoices::billing_address.eq(&draft.buyer.billing_address),
            invoices::vat_number.eq(&draft.buyer.vat_number),
            invoices::po_number.eq(&draft.buyer.po_number),
            invoices::lines.eq(serde_json::to_string(draft.lines).unwrap_or_else(|_| "[]".into())),
            invoices::net_minor.eq(draft.net),
            invoices::vat_minor.eq(draft.vat),
            invoices::gross_minor.eq(draft.net + draft.vat),
            invoices::currency.eq(draft.currency),
            invoices::vat_rate_bp.eq(draft.vat_rate_bp),
            invoices::issued_at.eq(stamp),
            invoices::due_at.eq(draft.due_at.map(db::stored)),
            invoices::state.eq(state.as_str()),
            invoices::created_at.eq(stamp),
        ))
        .returning(invoices::id)
        .get_result(conn)?;
    by_id(conn, id)
}

fn by_id(conn: &mut DbConn, id: i64) -> Result<Invoice, DbError> {
    let row = invoices::table
        .find(id)
        .select(invoice_columns!())
        .first::<InvoiceRow>(conn)?;
    Ok(from_row(row))
}

/// How often an overdue invoice is chased.
const REMIND_EVERY_DAYS: i64 = 7;
/// How many reminders one sweep writes at most; the next sweep writes the rest.
const REMIND_BATCH: i64 = 100;

/// Emails a reminder for each invoice unpaid past its due date, once a week while it stays so;
/// any number of sweepers may run (each reminder is claimed by a conditional update). Returns how
/// many were written.
pub fn remind_overdue(conn: &mut DbConn, now: DateTime<Utc>) -> Result<usize, DbError> {
    let stamp = db::stored(now);
    let again = db::stored(now - Duration::days(REMIND_EVERY_DAYS));
    let due: Vec<i64> = invoices::table
        .filter(invoices::kind.eq("invoice"))
        .filter(invoices::state.eq(InvoiceState::Unpaid.as_str()))
        .filter(invoices::due_at.lt(stamp))
        .filter(
            invoices::reminded_at
                .is_null()
                .or(invoices::reminded_at.le(again)),
        )
        .order(invoices::due_at.asc())
        .limit(REMIND_BATCH)
        .select(invoices::id)
        .load(conn)?;
    let mut written = 0;
    for id in due {
        let sent = db::write_transaction(conn, |conn| -> Result<bool, DbError> {
            let claimed = diesel::update(invoices::table.find(id))
                .filter(invoices::state.eq(InvoiceState::Unpaid.as_str()))
                .filter(
                    invoices::reminded_at
                        .is_null()
                        .or(invoices::reminded_at.le(again)),
                )
                .set(invoices::reminded_at.eq(Some(stamp)))
                .execute(conn)?;
            if claimed == 0 {
                return Ok(false);
            }
            let invoice = by_id(conn, id)?;
            let booking = bookings::load(conn, invoice.booking_id)?;
            let event = crate::events::by_id(conn, invoice.event_id)?;
            let mut data = booking.mail(&event, SeatState::Confirmed);
            let mut announced = mail_of(&invoice, &event);
            announced.outstanding = Some(compose::money(
                outstanding(conn, &invoice)?,
                &invoice.currency,
            ));
            data.invoice = Some(announced);
            mail::enqueue(
                conn,
                Template::InvoiceReminder,
                &booking.attendee_email,
                Some(booking.id),
                &data,
            )?;
            Ok(true)
        });
        match sent {
            Ok(true) => written += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(invoice = id, error = %e, "reminder not written; will try again")
            }
        }
    }
    Ok(written)
}

/// What credit notes have taken off invoice `invoice_id`: (gross, VAT).
fn credited(conn: &mut DbConn, invoice_id: i64) -> Result<(i64, i64), DbError> {
    let notes: Vec<(i64, i64)> = invoices::table
        .filter(invoices::credits_invoice_id.eq(invoice_id))
        .select((invoices::gross_minor, invoices::vat_minor))
        .load(conn)?;
    Ok(notes
        .into_iter()
        .fold((0, 0), |(g, v), (gross, vat)| (g + gross, v + vat)))
}

/// What is still to pay of an unpaid invoice, after its credit notes.
pub fn outstanding(conn: &mut DbConn, invoice: &Invoice) -> Result<i64, DbError> {
    Ok((invoice.gross_minor - credited(conn, invoice.id)?.0).max(0))
}

/// Marks an invoice paid (an organiser has seen the money arrive): its booking is paid what
/// was left to pay after credit notes. Takes the booking's session rows and then its row first,
/// as cancelling its places (which credits the invoice) does.
pub fn mark_paid(
    conn: &mut DbConn,
    number: &str,
    now: DateTime<Utc>,
) -> Result<Invoice, InvoiceError> {
    db::write_transaction(conn, |conn| {
        let found = by_number(conn, number)?;
        bookings::lock_sessions_of(conn, found.booking_id)?;
        super::refunds::lock_booking(conn, found.booking_id)?;
        let invoice = by_number(conn, number)?;
        let received = outstanding(conn, &invoice)?;
        let stamp = db::stored(now);
        let changed = diesel::update(invoices::table.find(invoice.id))
            .filter(invoices::state.eq(InvoiceState::Unpaid.as_str()))
            .filter(invoices::kind.eq("invoice"))
            .set((
                invoices::state.eq(InvoiceState::Paid.as_str()),
                invoices::paid_at.eq(Some(stamp)),
            ))
            .execute(conn)?;
        if changed == 0 {
            return Err(InvoiceError::NotUnpaid {
                number: invoice.number,
                state: if invoice.credit_note {
                    "a credit note"
                } else {
                    invoice.state.as_str()
                },
            });
        }
        diesel::update(bookings_table::table.find(invoice.booking_id))
            .set((
                bookings_table::paid_minor.eq(bookings_table::paid_minor + received),
                bookings_table::updated_at.eq(stamp),
            ))
            .execute(conn)?;
        diesel::update(bookings_table::table.find(invoice.booking_id))
            .filter(bookings_table::payment_status.eq(PaymentStatus::Invoiced.as_str()))
            .set(bookings_table::payment_status.eq(PaymentStatus::Paid.as_str()))
            .execute(conn)?;
        by_number(conn, number)
    })
}

/// What emails say of an invoice.
pub fn mail_of(invoice: &Invoice, event: &Event) -> crate::mail::data::InvoiceMail {
    crate::mail::data::InvoiceMail {
        number: invoice.number.clone(),
        gross: compose::money(invoice.gross_minor, &invoice.currency),
        net: compose::money(invoice.net_minor, &invoice.currency),
        vat: compose::money(invoice.vat_minor, &invoice.currency),
        due: invoice
            .due_at
            .map(|t| compose::day(t, event.time_zone))
            .unwrap_or_default(),
        po_number: invoice.buyer.po_number.clone(),
        credit_note: invoice.credit_note,
        credits_number: None,
        outstanding: None,
        already_paid: false,
    }
}

/// The invoice as a PDF.
pub fn pdf(invoice: &Invoice, event: &Event, reference: &str) -> Vec<u8> {
    let money = |minor: i64| compose::money(minor, &invoice.currency);
    let mut bill_to = vec![invoice.buyer.company.clone()];
    bill_to.extend(invoice.buyer.billing_address.lines().map(str::to_owned));
    if let Some(vat) = &invoice.buyer.vat_number {
        bill_to.push(format!("VAT number: {vat}"));
    }
    let mut facts = vec![
        (
            "Date".to_owned(),
            compose::day(invoice.issued_at, event.time_zone),
        ),
        ("Booking".to_owned(), reference.to_owned()),
    ];
    if let Some(due) = invoice.due_at {
        facts.push(("Due by".to_owned(), compose::day(due, event.time_zone)));
    }
    if let Some(po) = &invoice.buyer.po_number {
        facts.push(("PO number".to_owned(), po.clone()));
    }
    let rate = if invoice.vat_rate_bp > 0 {
        format!("VAT at {}", compose::percent(invoice.vat_rate_bp))
    } else {
        "VAT".to_owned()
    };
    let notes = if invoice.state == InvoiceState::Cancelled {
        vec!["This invoice has been cancelled by credit note: nothing is to pay.".to_owned()]
    } else if invoice.credit_note {
        vec![format!(
            "This credit note reduces the invoice of booking {reference} by {}.",
            money(invoice.gross_minor)
        )]
    } else {
        vec![
            format!(
                "Please pay {} by the due date, quoting {} and booking {}.",
                money(invoice.gross_minor),
                invoice.number,
                reference
            ),
            "Prices include VAT.".to_owned(),
        ]
    };
    super::pdf::render(&super::pdf::Document {
        title: if invoice.credit_note {
            "Credit note".to_owned()
        } else {
            "Invoice".to_owned()
        },
        number: invoice.number.clone(),
        issuer: vec![event.name.clone(), event.venue.clone()],
        bill_to,
        facts,
        lines: invoice
            .lines
            .iter()
            .map(|l| (l.description.clone(), money(l.gross_minor)))
            .collect(),
        totals: vec![
            ("Net".to_owned(), money(invoice.net_minor)),
            (rate, money(invoice.vat_minor)),
            ("Total".to_owned(), money(invoice.gross_minor)),
        ],
        notes,
    })
}
