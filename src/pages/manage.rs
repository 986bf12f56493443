//! The pages behind a booking's secret link: `/bookings/{token}` (seats, payment, invoices,
//! refunds, calendar), `/booked` (the confirmation right after booking),
//! `/cancel` (what comes back, then cancelling), `/pay` and `/paid` (card payment through
//! Stripe.js and the return from it) and `/invoice` (paying a held booking by invoice).

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::booking::{sentence, FieldMessage};
use super::programme::price;
use super::{csrf, html_page, redirect, FormData, PageError};
use crate::api::{run, AppState, Kind, Problem};
use crate::bookings::{Booking, BookingError, BookingStatus, PaymentStatus, SeatState};
use crate::events::Event;
use crate::mail::compose;
use crate::payments::invoices::{Invoice, InvoiceState};
use crate::payments::refunds::RefundLine;
use crate::payments::stripe::IntentStatus;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/bookings/{token}", super::get().to(manage))
        .route("/bookings/{token}/booked", super::get().to(booked))
        .route("/bookings/{token}/cancel", super::get().to(cancel_form))
        .route("/bookings/{token}/cancel", web::post().to(cancel))
        .route("/bookings/{token}/pay", super::get().to(pay))
        .route("/bookings/{token}/paid", super::get().to(paid))
        .route("/bookings/{token}/invoice", web::post().to(invoice));
}

/// A booking as its pages show it.
#[derive(Serialize)]
struct Summary {
    reference: String,
    href: String,
    event_name: String,
    event_href: String,
    venue: String,
    time_zone: String,
    name: String,
    email: String,
    organisation: Option<String>,
    /// `held`, `confirmed`, `cancelled`, `expired`.
    status: &'static str,
    status_text: String,
    seats: Vec<SeatLine>,
    total: String,
    held_until: Option<String>,
    agenda_href: String,
    cancellable: bool,
}

#[derive(Serialize)]
struct SeatLine {
    session_id: i64,
    title: String,
    href: String,
    day: String,
    time: String,
    room: Option<String>,
    state: &'static str,
    state_text: &'static str,
    price: String,
    /// Can be cancelled by the attendee now.
    cancellable: bool,
}

fn summary(event: &Event, booking: &Booking, token: &str, now: DateTime<Utc>) -> Summary {
    let zone = event.time_zone;
    let seats: Vec<SeatLine> = booking
        .seats
        .iter()
        .map(|s| {
            let (day, time) = compose::day_and_time(s.starts_at, s.ends_at, zone);
            let active = matches!(s.state, SeatState::Held | SeatState::Confirmed);
            SeatLine {
                session_id: s.session_id,
                title: s.title.clone(),
                href: format!("/events/{}/sessions/{}", event.slug, s.session_id),
                day,
                time,
                room: s.room.clone(),
                state: s.state.as_str(),
                state_text: match s.state {
                    SeatState::Held => "Held for payment",
                    SeatState::Confirmed => "Confirmed",
                    SeatState::Cancelled => "Cancelled",
                    SeatState::Expired => "Released (not paid in time)",
                },
                price: price(s.price_minor, &booking.currency),
                cancellable: active && s.starts_at > now,
            }
        })
        .collect();
    let held_until = (booking.status == BookingStatus::Held)
        .then_some(booking.hold_expires_at)
        .flatten()
        .map(|t| compose::moment(t, zone));
    let status_text = match booking.status {
        BookingStatus::Held => "Waiting for payment".to_owned(),
        BookingStatus::Confirmed => "Confirmed".to_owned(),
        BookingStatus::Cancelled => "Cancelled".to_owned(),
        BookingStatus::Expired => "Expired: not paid in time, the places were released".to_owned(),
    };
    Summary {
        reference: booking.reference.clone(),
        href: format!("/bookings/{token}"),
        event_name: event.name.clone(),
        event_href: format!("/events/{}", event.slug),
        venue: event.venue.clone(),
        time_zone: zone.name().to_owned(),
        name: booking.attendee_name.clone(),
        email: booking.attendee_email.clone(),
        organisation: booking.attendee_organisation.clone(),
        status: booking.status.as_str(),
        status_text,
        cancellable: seats.iter().any(|s| s.cancellable),
        seats,
        total: price(booking.total_minor, &booking.currency),
        held_until,
        agenda_href: format!("/api/v1/bookings/{token}/agenda.ics"),
    }
}

fn not_valid(problem: Problem) -> PageError {
    if problem.kind() == Kind::NotFound {
        PageError::link_not_valid()
    } else {
        problem.into()
    }
}

/// Everything the manage page shows of a booking.
struct Loaded {
    event: Event,
    booking: Booking,
    invoices: Vec<Invoice>,
    refunds: Vec<RefundLine>,
}

async fn load(state: &AppState, token: &str) -> Result<Loaded, PageError> {
    let token = token.to_owned();
    run(&state.db, move |conn| -> Result<Loaded, Problem> {
        let (event, booking) = crate::bookings::find_by_token(conn, &token)?;
        let invoices = crate::payments::invoices::for_booking(conn, booking.id)?;
        let refunds = crate::payments::refunds::for_booking(conn, booking.id)?;
        Ok(Loaded {
            event,
            booking,
            invoices,
            refunds,
        })
    })
    .await
    .map_err(not_valid)
}

async fn load_booking(state: &AppState, token: &str) -> Result<(Event, Booking), PageError> {
    let token = token.to_owned();
    run(&state.db, move |conn| {
        crate::bookings::find_by_token(conn, &token)
    })
    .await
    .map_err(not_valid)
}

#[derive(Serialize)]
struct InvoiceLine {
    number: String,
    kind: &'static str,
    amount: String,
    due: Option<String>,
    state: &'static str,
    href: String,
}

/// A confirmed seat's check-in code, as the manage page shows it.
#[derive(Serialize)]
struct TicketLine {
    title: String,
    day: String,
    time: String,
    room: Option<String>,
    /// The QR code as inline SVG, marked safe: it is drawn here and its one text, the label, is
    /// escaped as it is drawn.
    code: minijinja::Value,
}

/// The check-in codes of the booking's confirmed seats, in timetable order.
fn ticket_lines(
    event: &Event,
    booking: &Booking,
    key: &crate::tokens::TokenKey,
) -> Vec<TicketLine> {
    use crate::checkin::{qr::QrImage, token};
    booking
        .seats
        .iter()
        .filter(|s| s.state == SeatState::Confirmed)
        .filter_map(|s| {
            let (day, time) = compose::day_and_time(s.starts_at, s.ends_at, event.time_zone);
            let label = format!("Check-in code for {}, {day}", s.title);
            match QrImage::encode(&token::code(key, s.id, s.session_id)) {
                Ok(code) => Some(TicketLine {
                    code: minijinja::Value::from_safe_string(code.svg(&label, 200)),
                    title: s.title.clone(),
                    day,
                    time,
                    room: s.room.clone(),
                }),
                Err(e) => {
                    tracing::error!(seat = s.id, error = %e, "check-in code not drawn");
                    None
                }
            }
        })
        .collect()
}

#[derive(Serialize)]
struct ManagePage {
    title: String,
    booking: Summary,
    tickets: Vec<TicketLine>,
    /// What was just done, from the form that led here.
    notice: Option<String>,
    payment: Vec<String>,
    pay_href: Option<String>,
    invoices: Vec<InvoiceLine>,
}

fn payment_lines(booking: &Booking, refunds: &[RefundLine]) -> Vec<String> {
    let money = |minor| compose::money(minor, &booking.currency);
    let mut lines = Vec::new();
    match booking.payment_status {
        PaymentStatus::NotRequired if booking.paid_minor == 0 => {
            lines.push("Nothing to pay.".to_owned())
        }
        PaymentStatus::Unpaid => lines.push(format!(
            "Not paid yet: {} to pay.",
            money(booking.total_minor)
        )),
        PaymentStatus::Invoiced => lines.push("To be paid by invoice (see below).".to_owned()),
        _ => {}
    }
    if booking.paid_minor > 0 {
        lines.push(format!("Paid: {}.", money(booking.paid_minor)));
    }
    let pending: i64 = refunds
        .iter()
        .filter(|r| r.state == "pending")
        .map(|r| r.amount_minor)
        .sum();
    if booking.refunded_minor > 0 {
        lines.push(format!(
            "Refunded to your card: {}.",
            money(booking.refunded_minor)
        ));
    }
    if pending > 0 {
        lines.push(format!(
            "Refund on its way to your card: {} (it usually shows within 5 to 10 days).",
            money(pending)
        ));
    }
    lines
}

fn invoice_lines(invoices: &[Invoice], token: &str, event: &Event) -> Vec<InvoiceLine> {
    invoices
        .iter()
        .map(|i| InvoiceLine {
            number: i.number.clone(),
            kind: if i.credit_note {
                "Credit note"
            } else {
                "Invoice"
            },
            amount: compose::money(i.gross_minor, &i.currency),
            due: (!i.credit_note && i.state == InvoiceState::Unpaid)
                .then_some(i.due_at)
                .flatten()
                .map(|t| compose::day(t, event.time_zone)),
            state: match (i.credit_note, i.state) {
                (true, _) => "issued",
                (false, InvoiceState::Paid) => "paid",
                (false, InvoiceState::Unpaid) => "unpaid",
                (false, _) => "cancelled",
            },
            href: format!("/api/v1/bookings/{token}/invoices/{}", i.number),
        })
        .collect()
}

async fn manage(
    state: web::Data<AppState>,
    token: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let query = FormData(query.into_inner());
    let loaded = load(&state, &token).await?;
    let now = state.clock.now();
    let notice = match query.get("done") {
        Some("cancelled") => Some("Cancelled. We have sent you an email about it.".to_owned()),
        Some("claimed") => Some("The seat is yours: it has been added to this booking.".to_owned()),
        _ => None,
    };
    let booking = &loaded.booking;
    let page = ManagePage {
        title: format!("Booking {}", booking.reference),
        notice,
        payment: payment_lines(booking, &loaded.refunds),
        pay_href: (booking.status == BookingStatus::Held).then(|| format!("/bookings/{token}/pay")),
        invoices: invoice_lines(&loaded.invoices, &token, &loaded.event),
        tickets: ticket_lines(&loaded.event, booking, &state.issuer.key),
        booking: summary(&loaded.event, booking, &token, now),
    };
    let html = state.pages.render("manage.html", page)?;
    Ok(html_page(StatusCode::OK, html, None))
}

#[derive(Serialize)]
struct BookedPage {
    title: String,
    booking: Summary,
    invoices: Vec<InvoiceLine>,
    pay_href: Option<String>,
}

async fn booked(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let loaded = load(&state, &token).await?;
    let now = state.clock.now();
    let booking = &loaded.booking;
    if !matches!(
        booking.status,
        BookingStatus::Held | BookingStatus::Confirmed
    ) {
        // Cancelled or expired since: the manage page says which.
        return Ok(redirect(&format!("/bookings/{token}")));
    }
    let page = BookedPage {
        title: match booking.status {
            BookingStatus::Held => "Your places are held".to_owned(),
            _ => "You are booked".to_owned(),
        },
        pay_href: (booking.status == BookingStatus::Held).then(|| format!("/bookings/{token}/pay")),
        invoices: invoice_lines(&loaded.invoices, &token, &loaded.event),
        booking: summary(&loaded.event, booking, &token, now),
    };
    let html = state.pages.render("booked.html", page)?;
    Ok(html_page(StatusCode::OK, html, None))
}

#[derive(Serialize)]
struct CancelPage {
    title: String,
    booking: Summary,
    csrf: String,
    /// Every active seat is to be cancelled.
    all: bool,
    places: Vec<CancelLine>,
    to_card: String,
    to_card_minor: i64,
    on_invoice: String,
    on_invoice_minor: i64,
    policy: Vec<String>,
}

#[derive(Serialize)]
struct CancelLine {
    session_id: i64,
    title: String,
    day: String,
    time: String,
    price: String,
    percent: u8,
    back: String,
}

/// The seats to cancel: those named in `session` fields, or every active one.
fn targets(booking: &Booking, named: &[i64], now: DateTime<Utc>) -> Vec<i64> {
    booking
        .seats
        .iter()
        .filter(|s| matches!(s.state, SeatState::Held | SeatState::Confirmed) && s.starts_at > now)
        .filter(|s| named.is_empty() || named.contains(&s.session_id))
        .map(|s| s.session_id)
        .collect()
}

/// The booking's refund policy in words; none for a booking without one (nothing was paid).
fn policy_lines(booking: &Booking) -> Vec<String> {
    let Some(policy) = booking.refund_policy.clone() else {
        return Vec::new();
    };
    let mut rules = policy.rules().to_vec();
    rules.sort_by_key(|r| std::cmp::Reverse(r.days_before));
    if rules.is_empty() {
        return vec!["Cancelled places are not refunded.".to_owned()];
    }
    let mut lines: Vec<String> = rules
        .iter()
        .map(|r| match r.days_before {
            0 => format!(
                "{} % back when cancelled before the session starts.",
                r.percent
            ),
            1 => format!(
                "{} % back when cancelled at least 1 day before the session.",
                r.percent
            ),
            d => format!(
                "{} % back when cancelled at least {d} days before the session.",
                r.percent
            ),
        })
        .collect();
    if rules.iter().all(|r| r.days_before > 0) {
        lines.push("Nothing back after that.".to_owned());
    }
    lines
}

async fn cancel_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let query = FormData(query.into_inner());
    let named: Vec<i64> = query
        .all("session")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let (event, booking) = load_booking(&state, &token).await?;
    let now = state.clock.now();
    let chosen = targets(&booking, &named, now);
    if chosen.is_empty() {
        return Ok(redirect(&format!("/bookings/{token}")));
    }
    let places: Vec<(DateTime<Utc>, i64)> = booking
        .seats
        .iter()
        .filter(|s| chosen.contains(&s.session_id) && s.state == SeatState::Confirmed)
        .map(|s| (s.starts_at, s.price_minor))
        .collect();
    let preview = {
        let booking = booking.clone();
        let places = places.clone();
        run(&state.db, move |conn| {
            crate::payments::refunds::preview(conn, &booking, &places, now)
        })
        .await?
    };
    let mut shares = preview.places.iter();
    let lines: Vec<CancelLine> = booking
        .seats
        .iter()
        .filter(|s| chosen.contains(&s.session_id))
        .map(|s| {
            let (day, time) = compose::day_and_time(s.starts_at, s.ends_at, event.time_zone);
            let (percent, back) = if s.state == SeatState::Confirmed {
                shares.next().copied().unwrap_or((0, 0))
            } else {
                (0, 0)
            };
            CancelLine {
                session_id: s.session_id,
                title: s.title.clone(),
                day,
                time,
                price: price(s.price_minor, &booking.currency),
                percent,
                back: compose::money(back, &booking.currency),
            }
        })
        .collect();
    let all_active = booking
        .seats
        .iter()
        .filter(|s| matches!(s.state, SeatState::Held | SeatState::Confirmed))
        .count();
    let form = csrf::form_token(&req, &state.pages);
    let page = CancelPage {
        title: "Cancel places".to_owned(),
        all: chosen.len() == all_active,
        csrf: form.token,
        to_card: compose::money(preview.to_card, &booking.currency),
        to_card_minor: preview.to_card,
        on_invoice: compose::money(preview.on_invoice, &booking.currency),
        on_invoice_minor: preview.on_invoice,
        policy: policy_lines(&booking),
        places: lines,
        booking: summary(&event, &booking, &token, now),
    };
    let html = state.pages.render("cancel.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let form = FormData(body.into_inner());
    csrf::check(&req, &state.pages, form.get(csrf::FIELD))?;
    state.pages.limiter.check(&req)?;
    let token = token.into_inner();
    let named: Vec<i64> = form
        .all("session")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    let (_, booking) = load_booking(&state, &token).await?;
    let now = state.clock.now();
    // Only what this page offers to cancel: active seats of sessions not yet started.
    let chosen = if named.is_empty() && form.get("all") != Some("yes") {
        Vec::new()
    } else {
        targets(&booking, &named, now)
    };
    if chosen.is_empty() {
        return Ok(redirect(&format!("/bookings/{token}")));
    }
    let issuer = state.issuer.clone();
    let cancel_token = token.clone();
    let (_, booking) = run(&state.db, move |conn| {
        crate::bookings::cancel(conn, &cancel_token, Some(&chosen), &issuer, now)
    })
    .await
    .map_err(not_valid)?;
    tracing::info!(reference = %booking.reference, "booking cancelled on the web");
    crate::payments::http::send_refunds_soon(&state);
    Ok(redirect(&format!("/bookings/{token}?done=cancelled")))
}

#[derive(Serialize)]
struct PayPage {
    title: String,
    booking: Summary,
    csrf: String,
    stripe_js_url: String,
    publishable_key: String,
    client_secret: String,
    return_url: String,
    amount: String,
    /// Why cards cannot be used now, when they cannot.
    card_problem: Option<String>,
    invoices: bool,
    values: super::booking::Values,
    errors: Vec<FieldMessage>,
}

async fn pay(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let (event, booking) = load_booking(&state, &token).await?;
    if booking.status != BookingStatus::Held {
        return Ok(redirect(&format!("/bookings/{token}")));
    }
    let now = state.clock.now();
    let mut page = PayPage {
        title: "Pay for your booking".to_owned(),
        csrf: String::new(),
        stripe_js_url: state.pages.stripe_js_url.clone(),
        publishable_key: String::new(),
        client_secret: String::new(),
        return_url: format!(
            "{}/bookings/{token}/paid",
            state.settings.server.public_base_url.trim_end_matches('/')
        ),
        amount: compose::money(booking.total_minor, &booking.currency),
        card_problem: None,
        invoices: event.invoices_allowed,
        values: Default::default(),
        errors: Vec::new(),
        booking: summary(&event, &booking, &token, now),
    };
    match crate::payments::start_card_payment(&state.db, &state.payments, &token, now).await {
        Ok((_, _, intent)) => match (
            intent.status,
            intent.client_secret,
            state.payments.gateway(),
        ) {
            (IntentStatus::Succeeded | IntentStatus::Processing, _, _) => {
                return Ok(redirect(&format!("/bookings/{token}/paid")));
            }
            (_, Some(secret), Some(gateway)) => {
                page.client_secret = secret;
                page.publishable_key = gateway.publishable_key().to_owned();
            }
            _ => {
                page.card_problem = Some(
                    "Card payment could not be started just now. Please try again in a moment."
                        .to_owned(),
                )
            }
        },
        Err(e) => {
            let problem = Problem::from(e);
            if problem.kind() == Kind::NotFound {
                return Err(PageError::link_not_valid());
            }
            page.card_problem = Some(problem.detail().to_owned());
        }
    }
    pay_page(&state, &req, page, StatusCode::OK)
}

fn pay_page(
    state: &AppState,
    req: &HttpRequest,
    mut page: PayPage,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let form = csrf::form_token(req, &state.pages);
    page.csrf = form.token;
    let with_card = !page.client_secret.is_empty();
    let html = state.pages.render("pay.html", page)?;
    let mut answer = html_page(status, html, form.set_cookie);
    if with_card {
        answer.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            state.pages.csp_with_stripe.clone(),
        );
    }
    Ok(answer)
}

#[derive(Serialize)]
struct PaidPage {
    title: String,
    booking: Summary,
    /// `confirmed`, `processing`, `failed` or `not_paid`.
    outcome: &'static str,
    message: String,
    pay_href: String,
}

/// Where Stripe sends the attendee back: says "confirmed" only once the booking is, "processing"
/// while the bank works on it, and what to do when the payment did not go through.
async fn paid(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let (event, mut booking) = load_booking(&state, &token).await?;
    let now = state.clock.now();
    // What Stripe says of the booking's card payment, asked now; `Err(())` when it could not
    // be asked (the page then says it is checking, never that the payment failed).
    let mut looked: Option<Result<(IntentStatus, bool), ()>> = None;
    let mut no_card_payment = false;
    // A hold may have run out during 3-D Secure: the payment can still revive it.
    if matches!(booking.status, BookingStatus::Held | BookingStatus::Expired) {
        looked = Some(
            match crate::payments::look_up_now(&state.db, &state.payments, booking.id, now).await {
                Ok(Some((status, applied))) => {
                    let refunding = applied
                        .as_ref()
                        .is_some_and(|a| !a.refunds_owed().is_empty());
                    if refunding {
                        crate::payments::http::send_refunds_soon(&state);
                    }
                    if status == IntentStatus::Succeeded {
                        booking = load_booking(&state, &token).await?.1;
                    }
                    Ok((status, refunding))
                }
                // No card payment has been started for it (or cards are not offered).
                Ok(None) => {
                    no_card_payment = true;
                    Ok((IntentStatus::Open, false))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "payment not looked up on return");
                    Err(())
                }
            },
        );
    }
    let (outcome, message) = match (booking.status, looked) {
        (BookingStatus::Confirmed, _) if booking.paid_minor > 0 => (
            "confirmed",
            format!(
                "Payment received: {}. Your booking is confirmed and a confirmation email is on its way to {}.",
                compose::money(booking.paid_minor, &booking.currency),
                booking.attendee_email
            ),
        ),
        (BookingStatus::Confirmed, _) => ("confirmed", "Your booking is confirmed.".to_owned()),
        (_, Some(Ok((_, true)))) => (
            "refunding",
            "Your payment arrived, but it could not buy these places any more (they were \
             released or the booking changed). It is being refunded to your card in full, and \
             we have emailed you about it."
                .to_owned(),
        ),
        (BookingStatus::Held | BookingStatus::Expired, Some(Ok((IntentStatus::Processing | IntentStatus::Succeeded, _)))) => (
            "processing",
            "Your payment is being processed; we will email you as soon as it is through. This \
             page updates itself."
                .to_owned(),
        ),
        (BookingStatus::Held, Some(Err(()))) => (
            "checking",
            "We are checking your payment with our payment provider. This page updates itself, \
             and you will get an email as soon as the payment is confirmed."
                .to_owned(),
        ),
        (BookingStatus::Held, _) if no_card_payment => (
            "failed",
            "No payment has been made for this booking yet. Your places are still held: please pay \
             before the time shown."
                .to_owned(),
        ),
        (BookingStatus::Held, _) => (
            "failed",
            "Your payment has not gone through, and no money has been taken. Your places are \
             still held: please try again, with another card if need be."
                .to_owned(),
        ),
        (BookingStatus::Expired, _) => (
            "not_paid",
            "This booking was not paid in time, so its places were released. If money was \
             taken for it, it is refunded to your card automatically."
                .to_owned(),
        ),
        _ => (
            "not_paid",
            "This booking is no longer waiting for payment. If money was taken for it, it is \
             refunded to your card automatically."
                .to_owned(),
        ),
    };
    let page = PaidPage {
        title: match outcome {
            "confirmed" => "Payment received",
            "processing" => "Payment processing",
            "checking" => "Checking your payment",
            "refunding" => "Payment refunded",
            "failed" => "Payment not completed",
            _ => "Not paid",
        }
        .to_owned(),
        outcome,
        message,
        pay_href: format!("/bookings/{token}/pay"),
        booking: summary(&event, &booking, &token, now),
    };
    let html = state.pages.render("paid.html", page)?;
    let mut answer = html_page(StatusCode::OK, html, None);
    if matches!(outcome, "processing" | "checking") {
        answer
            .headers_mut()
            .insert(header::REFRESH, header::HeaderValue::from_static("5"));
    }
    Ok(answer)
}

/// Pays a held booking by invoice instead of by card.
async fn invoice(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let form = FormData(body.into_inner());
    csrf::check(&req, &state.pages, form.get(csrf::FIELD))?;
    state.pages.limiter.check(&req)?;
    let token = token.into_inner();
    let text = |name: &str| form.get(name).unwrap_or_default().to_owned();
    let values = super::booking::Values {
        company: text("company"),
        billing_address: text("billing_address"),
        vat_number: text("vat_number"),
        po_number: text("po_number"),
        ..Default::default()
    };
    let optional = |v: &str| (!v.trim().is_empty()).then(|| v.to_owned());
    let buyer = crate::payments::invoices::Buyer::parse(
        &values.company,
        &values.billing_address,
        optional(&values.vat_number).as_deref(),
        optional(&values.po_number).as_deref(),
    );
    let outcome = match buyer {
        Ok(buyer) => {
            let now = state.clock.now();
            let pay_token = token.clone();
            run(&state.db, move |conn| {
                crate::payments::invoices::pay_held_by_invoice(conn, &pay_token, &buyer, now)
            })
            .await
        }
        Err(e) => Err(e.into()),
    };
    match outcome {
        Ok(_) => Ok(redirect(&format!("/bookings/{token}/booked"))),
        Err(problem) if problem.kind() == Kind::Validation => {
            let (event, booking) = load_booking(&state, &token).await?;
            let now = state.clock.now();
            let page = PayPage {
                title: "Pay for your booking".to_owned(),
                csrf: String::new(),
                stripe_js_url: String::new(),
                publishable_key: String::new(),
                client_secret: String::new(),
                return_url: String::new(),
                amount: compose::money(booking.total_minor, &booking.currency),
                card_problem: None,
                invoices: event.invoices_allowed,
                errors: problem
                    .field_errors()
                    .iter()
                    .map(|e| FieldMessage {
                        field: e.field.trim_start_matches("invoice.").to_owned(),
                        message: sentence(&e.message),
                    })
                    .collect(),
                values,
                booking: summary(&event, &booking, &token, now),
            };
            pay_page(&state, &req, page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(problem) => {
            // Sent twice: the first made the invoice, and the second finds nothing held.
            if let Ok((_, booking)) = load_booking(&state, &token).await {
                if booking.payment_status == PaymentStatus::Invoiced {
                    return Ok(redirect(&format!("/bookings/{token}/booked")));
                }
            }
            Err(not_valid(problem))
        }
    }
}

impl From<BookingError> for PageError {
    fn from(e: BookingError) -> Self {
        Problem::from(e).into()
    }
}
