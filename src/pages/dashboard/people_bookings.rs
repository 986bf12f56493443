//! Bookings for admins: a search by reference, name, email or organisation; one booking with
//! its seats, card payments, invoices and credit notes, refunds and emails; refunding an
//! amount, marking an invoice paid, cancelling seats; and the overdue invoices of every event.

use std::collections::hash_map::{Entry, HashMap};

use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::people::{run_recorded, when};
use super::{Admin, AdminPost, Me, PostedBy};
use crate::api::{run, AppState, Problem};
use crate::audit::{self, Record};
use crate::bookings::{self, Booking, BookingError, SeatState};
use crate::events::Event;
use crate::mail::compose::money;
use crate::mail::outbox::{self, JobView};
use crate::organisers::Organiser;
use crate::pages::booking::{sentence, FieldMessage};
use crate::pages::{csrf, html_page, redirect, FormData, PageError};
use crate::payments::invoices::{self, Filter, Invoice, InvoiceError};
use crate::payments::refunds::{self, RefundLine, RefundRefusal};
use crate::payments::Payment;

/// At most this many bookings answer a search, newest first.
const SEARCH_LIMIT: i64 = 100;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/organiser/bookings", crate::pages::get().to(search))
        .route(
            "/organiser/bookings/{reference}",
            crate::pages::get().to(booking),
        )
        .route(
            "/organiser/bookings/{reference}/refund",
            web::post().to(refund),
        )
        .route(
            "/organiser/bookings/{reference}/cancel",
            web::post().to(cancel),
        )
        .route(
            "/organiser/bookings/{reference}/invoices/{number}/paid",
            web::post().to(invoice_paid),
        )
        .route(
            "/organiser/invoices/overdue",
            crate::pages::get().to(overdue),
        )
        .route(
            "/organiser/invoices/{number}/pdf",
            crate::pages::get().to(invoice_pdf),
        );
}

/// An amount such as "120" or "120.50" in minor units; more than zero.
fn parse_amount(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let bad = || "Enter an amount such as 20 or 12.50.".to_owned();
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || whole.len() > 9
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    match whole * 100 + fraction {
        0 => Err("Enter an amount of more than 0.".to_owned()),
        minor => Ok(minor),
    }
}

/// Why a refund of more than `room` is refused.
fn too_much(room: i64, currency: &str) -> String {
    if room == 0 {
        "Nothing is left to refund of this booking's card payments.".to_owned()
    } else {
        format!(
            "That is more than is left to refund of this booking's card payments ({}).",
            money(room, currency)
        )
    }
}

#[derive(Serialize)]
struct BookingLine {
    reference: String,
    name: String,
    email: String,
    organisation: Option<String>,
    status: &'static str,
    payment: String,
    total: String,
    booked: String,
}

fn booking_line(b: &Booking) -> BookingLine {
    BookingLine {
        reference: b.reference.clone(),
        name: b.attendee_name.clone(),
        email: b.attendee_email.clone(),
        organisation: b.attendee_organisation.clone(),
        status: b.status.as_str(),
        payment: b.payment_status.as_str().replace('_', " "),
        total: money(b.total_minor, &b.currency),
        booked: b.created_at.format("%-d %b %Y, %H:%M UTC").to_string(),
    }
}

#[derive(Serialize)]
struct SearchPage {
    title: &'static str,
    csrf: String,
    me: Me,
    q: String,
    searched: bool,
    results: Vec<BookingLine>,
    limit: i64,
}

async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let q = FormData(query.into_inner())
        .get("q")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let results = if q.is_empty() {
        Vec::new()
    } else {
        let text = q.clone();
        run(&state.db, move |conn| {
            bookings::search(conn, &text, SEARCH_LIMIT)
        })
        .await?
    };
    let form = csrf::form_token(&req, &state.pages);
    let page = SearchPage {
        title: "Bookings",
        csrf: form.token,
        me: Me::from(&*me),
        searched: !q.is_empty(),
        q,
        results: results.iter().map(booking_line).collect(),
        limit: SEARCH_LIMIT,
    };
    let html = state.pages.render("dashboard/people/bookings.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

/// Everything one booking's page shows, read in one go.
struct Dossier {
    event: Event,
    booking: Booking,
    payments: Vec<Payment>,
    invoices: Vec<Invoice>,
    refunds: Vec<RefundLine>,
    refundable: i64,
    emails: Vec<JobView>,
}

fn read_dossier(conn: &mut crate::db::DbConn, reference: &str) -> Result<Dossier, BookingError> {
    let id = bookings::id_for_reference(conn, reference)?;
    let booking = bookings::load(conn, id)?;
    let event = crate::events::by_id(conn, booking.event_id)?;
    Ok(Dossier {
        payments: crate::payments::for_booking(conn, id)?,
        invoices: invoices::for_booking(conn, id)?,
        refunds: refunds::for_booking(conn, id)?,
        refundable: refunds::refundable(conn, id)?,
        emails: outbox::for_booking(conn, id)?,
        event,
        booking,
    })
}

#[derive(Serialize)]
struct SeatLine {
    session_id: i64,
    title: String,
    when: String,
    room: Option<String>,
    state: &'static str,
    price: String,
    active: bool,
}

#[derive(Serialize)]
struct PaymentLine {
    amount: String,
    state: &'static str,
    refunded: String,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct InvoiceLine {
    number: String,
    credit_note: bool,
    company: String,
    po_number: Option<String>,
    gross: String,
    issued: String,
    due: Option<String>,
    state: &'static str,
    overdue: bool,
    unpaid: bool,
}

#[derive(Serialize)]
struct RefundShown {
    amount: String,
    state: &'static str,
}

#[derive(Serialize)]
struct EmailLine {
    template: String,
    recipient: String,
    state: &'static str,
    attempts: i32,
    last_error: Option<String>,
    written: String,
    sent: Option<String>,
}

#[derive(Serialize)]
struct BookingPage {
    title: String,
    csrf: String,
    me: Me,
    event: String,
    booking: BookingLine,
    paid: String,
    refunded: String,
    refundable: String,
    can_refund: bool,
    hold_until: Option<String>,
    seats: Vec<SeatLine>,
    payments: Vec<PaymentLine>,
    invoices: Vec<InvoiceLine>,
    refunds: Vec<RefundShown>,
    emails: Vec<EmailLine>,
    amount: String,
    note: String,
    errors: Vec<FieldMessage>,
    notice: Option<&'static str>,
}

fn invoice_line(i: &Invoice, event: &Event, now: DateTime<Utc>) -> InvoiceLine {
    InvoiceLine {
        number: i.number.clone(),
        credit_note: i.credit_note,
        company: i.buyer.company.clone(),
        po_number: i.buyer.po_number.clone(),
        gross: money(i.gross_minor, &i.currency),
        issued: when(i.issued_at, event),
        due: i.due_at.map(|t| when(t, event)),
        state: i.state.as_str(),
        overdue: i.overdue(now),
        unpaid: !i.credit_note && i.state == invoices::InvoiceState::Unpaid,
    }
}

/// What the booking page shows besides the booking: values kept and messages after a refusal.
#[derive(Default)]
struct Shown {
    amount: String,
    note: String,
    errors: Vec<FieldMessage>,
    notice: Option<&'static str>,
    status: Option<StatusCode>,
}

impl Shown {
    fn refused(field: &str, message: String, status: StatusCode) -> Self {
        Self {
            errors: vec![FieldMessage {
                field: field.to_owned(),
                message,
            }],
            status: Some(status),
            ..Default::default()
        }
    }
}

/// A domain refusal as a message by `field`; a failure of ours stays an error page.
fn refusal(problem: Problem, field: &str) -> Result<Shown, PageError> {
    let status = problem.status();
    if status == StatusCode::NOT_FOUND || !status.is_client_error() {
        return Err(problem.into());
    }
    let message = problem
        .field_errors()
        .first()
        .map(|f| sentence(&f.message))
        .unwrap_or_else(|| sentence(problem.detail()));
    Ok(Shown::refused(field, message, status))
}

fn no_such_invoice() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "No such invoice",
        "There is no invoice with this number.",
    )
}

fn no_such_booking() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "No such booking",
        "There is no booking with this reference. Check it, or search for the person.",
    )
    .with_next("Search bookings", "/organiser/bookings")
}

async fn booking_page(
    state: &AppState,
    req: &HttpRequest,
    me: &Organiser,
    reference: String,
    shown: Shown,
) -> Result<HttpResponse, PageError> {
    let found = run(&state.db, move |conn| -> Result<_, Problem> {
        match read_dossier(conn, &reference) {
            Ok(d) => Ok(Some(d)),
            Err(BookingError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let d = found.ok_or_else(no_such_booking)?;
    let (event, b, now) = (&d.event, &d.booking, state.clock.now());
    let stamp = |t: DateTime<Utc>| when(t, event);
    let form = csrf::form_token(req, &state.pages);
    let page = BookingPage {
        title: format!("Booking {}", b.reference),
        csrf: form.token,
        me: Me::from(me),
        event: event.name.clone(),
        booking: booking_line(b),
        paid: money(b.paid_minor, &b.currency),
        refunded: money(b.refunded_minor, &b.currency),
        refundable: money(d.refundable, &b.currency),
        can_refund: d.refundable > 0,
        hold_until: b
            .hold_expires_at
            .filter(|_| b.status == bookings::BookingStatus::Held)
            .map(stamp),
        seats: b
            .seats
            .iter()
            .map(|s| SeatLine {
                session_id: s.session_id,
                title: s.title.clone(),
                when: stamp(s.starts_at),
                room: s.room.clone(),
                state: s.state.as_str(),
                price: money(s.price_minor, &b.currency),
                active: matches!(s.state, SeatState::Held | SeatState::Confirmed),
            })
            .collect(),
        payments: d
            .payments
            .iter()
            .map(|p| PaymentLine {
                amount: money(p.amount_minor, &p.currency),
                state: p.state.as_str(),
                refunded: money(p.refunded_minor, &p.currency),
                last_error: p.last_error.clone(),
            })
            .collect(),
        invoices: d
            .invoices
            .iter()
            .map(|i| invoice_line(i, event, now))
            .collect(),
        refunds: d
            .refunds
            .iter()
            .map(|r| RefundShown {
                amount: money(r.amount_minor, &r.currency),
                state: r.state,
            })
            .collect(),
        emails: d
            .emails
            .into_iter()
            .map(|e| EmailLine {
                template: e.template.replace('_', " "),
                recipient: e.recipient,
                state: e.state.as_str(),
                attempts: e.attempts,
                last_error: e.last_error,
                written: stamp(e.created_at),
                sent: e.sent_at.map(stamp),
            })
            .collect(),
        amount: shown.amount,
        note: shown.note,
        errors: shown.errors,
        notice: shown.notice,
    };
    let html = state.pages.render("dashboard/people/booking.html", page)?;
    Ok(html_page(
        shown.status.unwrap_or(StatusCode::OK),
        html,
        form.set_cookie,
    ))
}

async fn booking(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    reference: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let notice = match FormData(query.into_inner()).get("done") {
        Some("refunded") => Some("The refund is on its way to the card; the attendee is emailed once the payment provider has made it."),
        Some("paid") => Some("The invoice is marked paid."),
        Some("cancelled") => Some("The seats have been cancelled and refunded in full; the attendee has been told by email."),
        _ => None,
    };
    let shown = Shown {
        notice,
        ..Default::default()
    };
    booking_page(&state, &req, &me, reference.into_inner(), shown).await
}

fn booking_path(reference: &str, done: &str) -> String {
    format!("/organiser/bookings/{reference}?done={done}")
}

#[derive(Serialize)]
struct ConfirmPage {
    title: &'static str,
    csrf: String,
    me: Me,
    reference: String,
    name: String,
    /// Refunding: the amount as entered, shown as money, and the note.
    amount: Option<String>,
    amount_text: String,
    note: String,
    /// Cancelling: the seats.
    seats: Vec<(i64, String)>,
}

async fn confirm_page(
    state: &AppState,
    req: &HttpRequest,
    page: ConfirmPage,
) -> Result<HttpResponse, PageError> {
    let form = csrf::form_token(req, &state.pages);
    let html = state.pages.render(
        "dashboard/people/confirm.html",
        ConfirmPage {
            csrf: form.token,
            ..page
        },
    )?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

/// The booking named by `reference`, for a confirmation step.
async fn booking_named(state: &AppState, reference: &str) -> Result<Booking, PageError> {
    let reference = reference.to_owned();
    run(&state.db, move |conn| -> Result<_, Problem> {
        match bookings::id_for_reference(conn, &reference) {
            Ok(id) => Ok(Some(bookings::load(conn, id)?)),
            Err(BookingError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?
    .ok_or_else(no_such_booking)
}

async fn refund(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    reference: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let reference = reference.into_inner();
    let raw = form.text("amount");
    let note_raw = form.text("note");
    // A refused refund shows the form again with what was typed.
    let keep = |mut shown: Shown| {
        shown.amount = raw.clone();
        shown.note = note_raw.clone();
        shown
    };
    let invalid = |field, message| {
        keep(Shown::refused(
            field,
            message,
            StatusCode::UNPROCESSABLE_ENTITY,
        ))
    };
    let amount = match parse_amount(&raw) {
        Ok(amount) => amount,
        Err(m) => return booking_page(&state, &req, &me, reference, invalid("amount", m)).await,
    };
    let note = match crate::validation::optional_text(Some(&note_raw), 500) {
        Ok(note) => note,
        Err(m) => {
            let shown = invalid("note", sentence(&m));
            return booking_page(&state, &req, &me, reference, shown).await;
        }
    };
    if form.get("confirm") != Some("yes") {
        let booking = booking_named(&state, &reference).await?;
        let id = booking.id;
        let room = run(&state.db, move |conn| refunds::refundable(conn, id)).await?;
        if amount > room {
            let shown = invalid("amount", too_much(room, &booking.currency));
            return booking_page(&state, &req, &me, reference, shown).await;
        }
        let page = ConfirmPage {
            title: "Refund this amount?",
            csrf: String::new(),
            me: Me::from(&*me),
            amount: Some(money(amount, &booking.currency)),
            amount_text: raw,
            note: note_raw,
            reference: booking.reference,
            name: booking.attendee_name,
            seats: Vec::new(),
        };
        return confirm_page(&state, &req, page).await;
    }
    let now = state.clock.now();
    let refunded_ref = reference.clone();
    let asked = serde_json::json!({ "amount_minor": amount, "note": note_raw });
    let outcome = run_recorded(&state, me.id, move |conn| -> Result<_, RefundRefusal> {
        let refunded = refunds::by_organiser(conn, &refunded_ref, amount, note.as_deref(), now)?;
        let record = Record::new("booking.refund", format!("booking:{refunded_ref}")).after(&asked);
        Ok((refunded, record))
    })
    .await?;
    match outcome {
        Ok((written, _)) => {
            tracing::info!(%reference, amount, refunds = written, by = me.id, "refund made by an organiser");
            crate::payments::http::send_refunds_soon(&state);
            Ok(redirect(&booking_path(&reference, "refunded")))
        }
        Err(RefundRefusal::TooMuch(room)) => {
            let booking = booking_named(&state, &reference).await?;
            let shown = invalid("amount", too_much(room, &booking.currency));
            booking_page(&state, &req, &me, reference, shown).await
        }
        Err(RefundRefusal::Booking(BookingError::NotFound)) => Err(no_such_booking()),
        Err(e) => {
            let shown = keep(refusal(e.into(), "amount")?);
            booking_page(&state, &req, &me, reference, shown).await
        }
    }
}

async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    reference: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let reference = reference.into_inner();
    let chosen: Vec<i64> = form
        .0
        .iter()
        .filter(|(name, _)| name == "session")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let booking = booking_named(&state, &reference).await?;
    let seats: Vec<(i64, String)> = booking
        .seats
        .iter()
        .filter(|s| chosen.contains(&s.session_id))
        .filter(|s| matches!(s.state, SeatState::Held | SeatState::Confirmed))
        .map(|s| (s.session_id, s.title.clone()))
        .collect();
    if seats.is_empty() {
        let shown = Shown::refused(
            "session",
            "Choose at least one seat to cancel.".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        return booking_page(&state, &req, &me, reference, shown).await;
    }
    if form.get("confirm") != Some("yes") {
        let page = ConfirmPage {
            title: "Cancel these seats?",
            csrf: String::new(),
            me: Me::from(&*me),
            reference: booking.reference,
            name: booking.attendee_name,
            amount: None,
            amount_text: String::new(),
            note: String::new(),
            seats,
        };
        return confirm_page(&state, &req, page).await;
    }
    let ids: Vec<i64> = seats.iter().map(|(id, _)| *id).collect();
    let (issuer, now) = (state.issuer.clone(), state.clock.now());
    let cancelled_ref = reference.clone();
    let asked = serde_json::json!({ "session_ids": ids });
    let outcome = run_recorded(&state, me.id, move |conn| -> Result<_, BookingError> {
        bookings::cancel_by_reference(conn, &cancelled_ref, Some(&ids), &issuer, now)?;
        let record =
            Record::new("booking.cancel", format!("booking:{cancelled_ref}")).before(&asked);
        Ok(((), record))
    })
    .await?;
    match outcome {
        Ok(()) => {
            tracing::info!(%reference, by = me.id, "seats cancelled by an organiser");
            crate::payments::http::send_refunds_soon(&state);
            Ok(redirect(&booking_path(&reference, "cancelled")))
        }
        Err(e) => {
            let shown = refusal(e.into(), "session")?;
            booking_page(&state, &req, &me, reference, shown).await
        }
    }
}

async fn invoice_paid(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (reference, number) = path.into_inner();
    let (now, by) = (state.clock.now(), Some(me.id));
    let marked = number.clone();
    let owner = reference.clone();
    let outcome = run(&state.db, move |conn| -> Result<_, Problem> {
        // Only an invoice of the booking in the address: any other is not found here.
        let booking_id = match bookings::id_for_reference(conn, &owner) {
            Ok(id) => Some(id),
            Err(BookingError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        match invoices::by_number(conn, &marked) {
            Ok(invoice) if Some(invoice.booking_id) == booking_id => {}
            Ok(_) => return Ok(Err(InvoiceError::NotFound(marked))),
            Err(e) => return Ok(Err(e)),
        }
        Ok(audit::recorded(
            conn,
            by,
            |conn| -> Result<_, InvoiceError> {
                let invoice = invoices::mark_paid(conn, &marked, now)?;
                let record = Record::new("invoice.paid", format!("invoice:{}", invoice.number))
                    .after(&serde_json::json!({ "state": "paid" }));
                Ok((invoice, record))
            },
        ))
    })
    .await?;
    let field = format!("invoice-{number}");
    match outcome {
        Ok(invoice) => {
            tracing::info!(invoice = %invoice.number, by = me.id, "invoice marked paid");
            let back = if form.get("back") == Some("overdue") {
                "/organiser/invoices/overdue?done=paid".to_owned()
            } else {
                booking_path(&reference, "paid")
            };
            Ok(redirect(&back))
        }
        Err(InvoiceError::NotFound(_)) => Err(no_such_invoice()),
        Err(InvoiceError::NotUnpaid { number, state: is }) => {
            let shown = Shown::refused(
                &field,
                format!("Invoice {number} is {is}, so it cannot be marked paid."),
                StatusCode::CONFLICT,
            );
            booking_page(&state, &req, &me, reference, shown).await
        }
        Err(e) => {
            let shown = refusal(e.into(), &field)?;
            booking_page(&state, &req, &me, reference, shown).await
        }
    }
}

#[derive(Serialize)]
struct OverdueLine {
    event: String,
    reference: String,
    invoice: InvoiceLine,
    days: i64,
}

#[derive(Serialize)]
struct OverduePage {
    title: &'static str,
    csrf: String,
    me: Me,
    invoices: Vec<OverdueLine>,
    notice: Option<&'static str>,
}

async fn overdue(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let notice = match FormData(query.into_inner()).get("done") {
        Some("paid") => Some("The invoice is marked paid."),
        _ => None,
    };
    let now = state.clock.now();
    let found = run(&state.db, move |conn| -> Result<_, Problem> {
        let mut found = Vec::new();
        // A booking with several overdue invoices is read once.
        let mut references: HashMap<i64, String> = HashMap::new();
        for event in crate::events::list(conn, true)? {
            for invoice in invoices::for_event(conn, event.id, Filter::Overdue, now)? {
                let reference = match references.entry(invoice.booking_id) {
                    Entry::Occupied(known) => known.get().clone(),
                    Entry::Vacant(slot) => slot
                        .insert(bookings::load(conn, invoice.booking_id)?.reference)
                        .clone(),
                };
                found.push((event.clone(), reference, invoice));
            }
        }
        Ok(found)
    })
    .await?;
    let mut invoices: Vec<OverdueLine> = found
        .iter()
        .map(|(event, reference, invoice)| OverdueLine {
            event: event.name.clone(),
            reference: reference.clone(),
            invoice: invoice_line(invoice, event, now),
            days: invoice.due_at.map_or(0, |due| (now - due).num_days()),
        })
        .collect();
    invoices.sort_by_key(|l| std::cmp::Reverse(l.days));
    let form = csrf::form_token(&req, &state.pages);
    let page = OverduePage {
        title: "Overdue invoices",
        csrf: form.token,
        me: Me::from(&*me),
        invoices,
        notice,
    };
    let html = state.pages.render("dashboard/people/overdue.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

/// An invoice or credit note as a PDF, as the admin API serves it.
async fn invoice_pdf(
    state: web::Data<AppState>,
    _: Admin,
    number: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let number = number.into_inner();
    let shown = number.clone();
    let bytes = run(&state.db, move |conn| -> Result<_, Problem> {
        let invoice = match invoices::by_number(conn, &number) {
            Ok(invoice) => invoice,
            Err(InvoiceError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let event = crate::events::by_id(conn, invoice.event_id)?;
        let booking = bookings::load(conn, invoice.booking_id)?;
        Ok(Some(invoices::pdf(&invoice, &event, &booking.reference)))
    })
    .await?
    .ok_or_else(no_such_invoice)?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header(("cache-control", "no-store"))
        .insert_header((
            "content-disposition",
            format!("inline; filename=\"{shown}.pdf\""),
        ))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::parse_amount;

    #[test]
    fn refund_amounts_are_read_to_the_hundredth_and_must_be_positive() {
        assert_eq!(parse_amount("20"), Ok(2000));
        assert_eq!(parse_amount(" 12.5 "), Ok(1250));
        assert_eq!(parse_amount("0.07"), Ok(7));
        for bad in ["", "0", "0.00", "-5", "1.234", "12,50", "£5", ".5"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
    }
}
