//! `/api/v1/bookings/{manage_token}/payments…` for attendees and `/api/v1/webhooks/stripe` for
//! Stripe.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::invoices::{Buyer, Filter, Invoice, InvoiceError, InvoiceState};
use super::refunds::RefundRefusal;
use super::stripe::{GatewayError, IntentStatus};
use super::{webhook, PaymentError, PaymentState};
use crate::api::auth::Authenticated;
use crate::api::json::DeferredJson;
use crate::api::problem::responses::{
    AuthProblems, BodyProblems, Conflict, NotFound, PaymentProblems, QueryProblems, Unavailable,
    WebhookProblems,
};
use crate::api::{run, AppState, Kind, Problem};
use crate::audit::{self, Record};
use crate::bookings::{BookingError, BookingStatus};
use crate::organisers::Role;
use crate::validation::{optional_text, Fields, ValidationError};

pub fn public_routes(cfg: &mut ServiceConfig) {
    cfg.service(payment_options)
        .service(pay_by_card)
        .service(pay_by_invoice)
        .service(booking_invoice_pdf)
        .service(stripe_webhook);
}

pub fn admin_routes(cfg: &mut ServiceConfig) {
    cfg.service(organiser_refund)
        .service(list_invoices)
        .service(invoice_paid)
        .service(admin_invoice_pdf);
}

/// Who pays an invoice.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceInput {
    #[schema(example = "Analytical Engines Ltd", max_length = 200)]
    pub company: String,
    /// Up to 8 lines.
    #[schema(example = "1 Babbage Street\nLondon EC1 2AB", max_length = 500)]
    pub billing_address: String,
    #[schema(example = "GB123456789", max_length = 40)]
    pub vat_number: Option<String>,
    /// The buyer's purchase-order number, printed on the invoice.
    #[schema(example = "PO-4471", max_length = 60)]
    pub po_number: Option<String>,
}

/// An invoice or credit note.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceView {
    /// e.g. `PMO27-0001`.
    pub number: String,
    /// `invoice` or `credit_note`.
    pub kind: String,
    pub company: String,
    pub billing_address: String,
    pub vat_number: Option<String>,
    pub po_number: Option<String>,
    pub net_minor: i64,
    pub vat_minor: i64,
    pub gross_minor: i64,
    pub currency: String,
    pub issued_at: chrono::DateTime<chrono::Utc>,
    /// Invoices: payment is due by then (never after the event starts).
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
    pub state: InvoiceState,
    /// Unpaid past its due date.
    pub overdue: bool,
    /// Where to download it as a PDF.
    pub pdf: String,
}

impl InvoiceView {
    fn new(invoice: &Invoice, pdf: String, now: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            number: invoice.number.clone(),
            kind: if invoice.credit_note {
                "credit_note"
            } else {
                "invoice"
            }
            .to_owned(),
            company: invoice.buyer.company.clone(),
            billing_address: invoice.buyer.billing_address.clone(),
            vat_number: invoice.buyer.vat_number.clone(),
            po_number: invoice.buyer.po_number.clone(),
            net_minor: invoice.net_minor,
            vat_minor: invoice.vat_minor,
            gross_minor: invoice.gross_minor,
            currency: invoice.currency.clone(),
            issued_at: invoice.issued_at,
            due_at: invoice.due_at,
            state: invoice.state,
            overdue: invoice.overdue(now),
            pdf,
        }
    }
}

impl From<InvoiceError> for Problem {
    fn from(err: InvoiceError) -> Self {
        match err {
            e @ InvoiceError::NotOffered => Problem::new(Kind::NotPayable, e.to_string()),
            InvoiceError::NotFound(number) => {
                Problem::new(Kind::NotFound, format!("There is no invoice {number:?}"))
            }
            e @ InvoiceError::NotUnpaid { .. } => Problem::new(Kind::Conflict, e.to_string()),
            e @ InvoiceError::HoldExpired { .. } => Problem::new(
                Kind::HoldExpired,
                format!("{e}. You are welcome to book again while places remain."),
            ),
            InvoiceError::Booking(BookingError::NotHeld { reference, status }) => Problem::new(
                Kind::NotPayable,
                format!(
                    "Booking {reference} has nothing to pay by invoice: it is {}",
                    status.as_str()
                ),
            ),
            InvoiceError::Booking(e) => e.into(),
            InvoiceError::Db(e) => e.into(),
        }
    }
}

/// Pays a held booking by invoice: its places are confirmed at once and an invoice with the
/// event's next number is issued to the buyer, due in the event's days (never after it starts),
/// and emailed as a PDF.
#[utoipa::path(
    tag = "payments",
    request_body = InvoiceInput,
    params(("manage_token" = String, Path, description = "The secret returned when booking")),
    responses(
        (status = 201, description = "Confirmed; the invoice issued", body = InvoiceView),
        BodyProblems, NotFound, PaymentProblems,
    )
)]
#[post("/bookings/{manage_token}/payments/invoice")]
async fn pay_by_invoice(
    state: web::Data<AppState>,
    token: web::Path<String>,
    input: DeferredJson<InvoiceInput>,
) -> Result<HttpResponse, Problem> {
    let input = input.read().await?;
    let buyer = Buyer::parse(
        &input.company,
        &input.billing_address,
        input.vat_number.as_deref(),
        input.po_number.as_deref(),
    )?;
    let token = token.into_inner();
    let now = state.clock.now();
    let pdf_token = token.clone();
    let invoice = run(&state.db, move |conn| {
        super::invoices::pay_held_by_invoice(conn, &token, &buyer, now)
    })
    .await?;
    Ok(HttpResponse::Created().json(InvoiceView::new(
        &invoice,
        format!("/api/v1/bookings/{pdf_token}/invoices/{}", invoice.number),
        now,
    )))
}

fn pdf_response(bytes: Vec<u8>, number: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "content-disposition",
            format!("inline; filename=\"{number}.pdf\""),
        ))
        .body(bytes)
}

/// One of the booking's invoices or credit notes, as a PDF.
#[utoipa::path(
    tag = "payments",
    params(
        ("manage_token" = String, Path, description = "The secret returned when booking"),
        ("number" = String, Path, description = "The invoice number, e.g. PMO27-0001"),
    ),
    responses(
        (status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>),
        NotFound, Unavailable,
    )
)]
#[get("/bookings/{manage_token}/invoices/{number}")]
async fn booking_invoice_pdf(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Problem> {
    let (token, number) = path.into_inner();
    let shown = number.clone();
    let bytes = run(&state.db, move |conn| -> Result<_, InvoiceError> {
        let (event, booking) = crate::bookings::find_by_token(conn, &token)?;
        let invoice = super::invoices::by_number(conn, &number)?;
        if invoice.booking_id != booking.id {
            return Err(InvoiceError::NotFound(number));
        }
        Ok(super::invoices::pdf(&invoice, &event, &booking.reference))
    })
    .await?;
    Ok(pdf_response(bytes, &shown))
}

/// Which invoices to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct InvoiceQuery {
    /// The event's slug.
    pub event: String,
    /// `unpaid` (the default), `overdue`, `paid` or `all`.
    pub state: Option<Filter>,
}

/// An event's invoices: unpaid (the default), overdue, paid or all.
#[utoipa::path(
    tag = "organiser",
    params(InvoiceQuery),
    security(("organiser_token" = [])),
    responses((status = 200, description = "Invoices by number", body = [InvoiceView]), QueryProblems, AuthProblems, NotFound, Unavailable)
)]
#[get("/admin/invoices")]
async fn list_invoices(
    state: web::Data<AppState>,
    auth: Authenticated,
    // Read after the role check, so a role without access is told that, whatever it asked.
    query: Result<web::Query<InvoiceQuery>, actix_web::Error>,
) -> Result<web::Json<Vec<InvoiceView>>, Problem> {
    auth.require(Role::Admin)?;
    let query = query
        .map_err(|e| Problem::from(ValidationError::single("query", e.to_string())))?
        .into_inner();
    let filter = query.state.unwrap_or(Filter::Unpaid);
    let now = state.clock.now();
    let invoices = run(
        &state.db,
        move |conn| -> Result<_, crate::events::EventError> {
            let event = crate::events::find(conn, &query.event)?;
            Ok(super::invoices::for_event(conn, event.id, filter, now)?)
        },
    )
    .await?;
    Ok(web::Json(
        invoices
            .iter()
            .map(|i| InvoiceView::new(i, format!("/api/v1/admin/invoices/{}", i.number), now))
            .collect(),
    ))
}

/// Marks an invoice paid: the money has arrived. Its booking is then paid.
#[utoipa::path(
    tag = "organiser",
    params(("number" = String, Path, description = "The invoice number, e.g. PMO27-0001")),
    security(("organiser_token" = [])),
    responses((status = 200, description = "The invoice, paid", body = InvoiceView), AuthProblems, NotFound, Conflict, Unavailable)
)]
#[post("/admin/invoices/{number}/paid")]
async fn invoice_paid(
    state: web::Data<AppState>,
    auth: Authenticated,
    number: web::Path<String>,
) -> Result<web::Json<InvoiceView>, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let number = number.into_inner();
    let now = state.clock.now();
    let by = Some(organiser.id);
    let invoice = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, InvoiceError> {
            let invoice = super::invoices::mark_paid(conn, &number, now)?;
            let record = Record::new("invoice.paid", format!("invoice:{}", invoice.number))
                .after(&serde_json::json!({ "state": "paid" }));
            Ok((invoice, record))
        })
    })
    .await?;
    tracing::info!(invoice = %invoice.number, "invoice marked paid");
    Ok(web::Json(InvoiceView::new(
        &invoice,
        format!("/api/v1/admin/invoices/{}", invoice.number),
        now,
    )))
}

/// An invoice or credit note as a PDF.
#[utoipa::path(
    tag = "organiser",
    params(("number" = String, Path, description = "The invoice number, e.g. PMO27-0001")),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The PDF", content_type = "application/pdf", body = Vec<u8>),
        AuthProblems, NotFound, Unavailable,
    )
)]
#[get("/admin/invoices/{number}")]
async fn admin_invoice_pdf(
    state: web::Data<AppState>,
    auth: Authenticated,
    number: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    auth.require(Role::Admin)?;
    let number = number.into_inner();
    let shown = number.clone();
    let bytes = run(&state.db, move |conn| -> Result<_, InvoiceError> {
        let invoice = super::invoices::by_number(conn, &number)?;
        let event = crate::events::by_id(conn, invoice.event_id)?;
        let booking = crate::bookings::load(conn, invoice.booking_id)?;
        Ok(super::invoices::pdf(&invoice, &event, &booking.reference))
    })
    .await?;
    Ok(pdf_response(bytes, &shown))
}

/// Sends the refunds owed (after a cancellation, say) in the background, right away; whatever
/// is not sent now, the reconciler sends.
pub fn send_refunds_soon(state: &AppState) {
    send_refunds(state, None);
}

/// Sends the refunds owed (those of `only`, when given) in the background.
fn send_refunds(state: &AppState, only: Option<Vec<i64>>) {
    if let Some(gateway) = state.payments.gateway() {
        let (db, gateway, now) = (state.db.clone(), gateway.clone(), state.clock.now());
        actix_web::rt::spawn(async move {
            if let Err(e) = super::refunds::send(&db, &gateway, only, now).await {
                tracing::warn!(error = %e, "refunds not sent yet; the reconciler will");
            }
        });
    }
}

/// A refund an organiser makes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    /// In minor units: at most what is left of what the booking's card payments received.
    #[schema(minimum = 1, example = 5000)]
    pub amount_minor: i64,
    /// Told to the attendee in the refund email.
    #[schema(max_length = 500, example = "Goodwill refund for the room change")]
    pub note: Option<String>,
}

/// What an organiser's refund did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundAnswer {
    /// Refunds written (one per card payment drawn on), sent to Stripe right away.
    pub refunds: usize,
    pub amount_minor: i64,
    /// What can still be refunded after this one.
    pub refundable_minor: i64,
}

/// What the attendee's page needs to take the card payment with Stripe.js.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardCheckoutView {
    /// Stripe's PaymentIntent.
    pub payment_intent_id: String,
    /// For `stripe.confirmCardPayment` (or the Payment Element) in the attendee's browser only.
    pub client_secret: String,
    pub publishable_key: String,
    /// In minor units, computed by the service from the booking.
    pub amount_minor: i64,
    pub currency: String,
    /// `requires_payment` (waiting for the card), `processing`, or `succeeded` (the
    /// confirmation follows in a moment).
    pub status: String,
}

/// How a booking can be paid, and what has been paid and refunded.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentOptionsView {
    /// Ways to pay this booking now: `card` when card payments are set up and `invoice` when
    /// the event takes invoices, while the booking is held for payment; empty when nothing is
    /// to pay.
    pub methods: Vec<String>,
    /// Why cards cannot be used, when they cannot.
    pub card_unavailable: Option<String>,
    pub amount_due_minor: i64,
    pub currency: String,
    pub paid_minor: i64,
    pub refunded_minor: i64,
    /// Card payments of the booking, oldest first.
    pub payments: Vec<PaymentView>,
    /// Its invoices and credit notes, oldest first.
    pub invoices: Vec<InvoiceView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub amount_minor: i64,
    /// `open`, `succeeded` or `cancelled`.
    pub state: String,
    pub refunded_minor: i64,
    /// The last decline or failure, while open.
    pub last_error: Option<String>,
}

/// What was done with a webhook delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    pub received: bool,
    /// `confirmed`, `refunding`, `failed`, `refund_updated`, `duplicate` or `ignored`.
    pub outcome: String,
}

const NO_CARDS: &str = "Card payments are not set up on this service. Please contact the organisers to pay another way; your places stay held until the time shown on your booking.";

impl From<PaymentError> for Problem {
    fn from(err: PaymentError) -> Self {
        match err {
            PaymentError::CardsUnavailable => Problem::new(Kind::CardPaymentsUnavailable, NO_CARDS),
            e @ PaymentError::NotPayable { .. } => Problem::new(Kind::NotPayable, e.to_string()),
            e @ PaymentError::HoldExpired { .. } => Problem::new(
                Kind::HoldExpired,
                format!("{e}. You are welcome to book again while places remain."),
            ),
            // Stripe said no for good (an amount below its minimum, say): trying again will not
            // help, so this is not the provider failing.
            PaymentError::Gateway(GatewayError::Refused { status, message })
                if status < 500 && !matches!(status, 409 | 429) =>
            {
                tracing::warn!(status, message = %message, "Stripe refused a payment");
                Problem::new(
                    Kind::NotPayable,
                    format!("The payment provider refused this payment: {message}"),
                )
            }
            PaymentError::Gateway(e) => {
                tracing::warn!(error = %e, "Stripe request failed");
                Problem::new(
                    Kind::PaymentProvider,
                    "The card payment could not be started: the payment provider did not answer as expected. No money has been taken; please try again in a moment.",
                )
            }
            PaymentError::Booking(e) => e.into(),
            e @ PaymentError::SeenMeanwhile => Problem::new(Kind::Conflict, e.to_string()),
            PaymentError::Db(e) => e.into(),
        }
    }
}

/// Refunds any amount of what a booking's card payments received, up to what is left; the
/// attendee is emailed once Stripe has made it.
#[utoipa::path(
    tag = "organiser",
    request_body = RefundInput,
    params(("reference" = String, Path, description = "The booking's reference, e.g. PMO-7K3F9Q")),
    security(("organiser_token" = [])),
    responses(
        (status = 201, description = "Refund owed and on its way", body = RefundAnswer),
        BodyProblems, AuthProblems, NotFound, Unavailable,
    )
)]
#[post("/admin/bookings/{reference}/refund")]
async fn organiser_refund(
    state: web::Data<AppState>,
    auth: Authenticated,
    reference: web::Path<String>,
    input: DeferredJson<RefundInput>,
) -> Result<HttpResponse, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let input = input.read().await?;
    let mut fields = Fields::new();
    if input.amount_minor <= 0 {
        fields.add("amount_minor", "must be at least 1");
    }
    let note = fields
        .check("note", optional_text(input.note.as_deref(), 500))
        .flatten();
    fields.finish()?;
    let reference = reference.into_inner();
    let amount = input.amount_minor;
    let now = state.clock.now();
    let by = Some(organiser.id);
    let (written, refundable) = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, RefundRefusal> {
            let refunded =
                super::refunds::by_organiser(conn, &reference, amount, note.as_deref(), now)?;
            let record = Record::new("booking.refund", format!("booking:{reference}"))
                .after(&serde_json::json!({ "amount_minor": amount, "note": note }));
            Ok((refunded, record))
        })
    })
    .await?;
    tracing::info!(amount, refunds = written, "refund made by an organiser");
    send_refunds_soon(&state);
    Ok(HttpResponse::Created().json(RefundAnswer {
        refunds: written,
        amount_minor: amount,
        refundable_minor: refundable,
    }))
}

impl From<RefundRefusal> for Problem {
    fn from(e: RefundRefusal) -> Self {
        match e {
            RefundRefusal::TooMuch(room) => ValidationError::single(
                "amount_minor",
                format!(
                    "is more than what is left to refund of this booking's card payments ({room})"
                ),
            )
            .into(),
            RefundRefusal::Booking(e) => e.into(),
            RefundRefusal::Db(e) => e.into(),
        }
    }
}

/// How this booking can be paid, and its payments and refunds so far.
#[utoipa::path(
    tag = "payments",
    params(("manage_token" = String, Path, description = "The secret returned when booking")),
    responses((status = 200, description = "Payment options and history", body = PaymentOptionsView), NotFound, Unavailable)
)]
#[get("/bookings/{manage_token}/payments")]
async fn payment_options(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<web::Json<PaymentOptionsView>, Problem> {
    let token = token.into_inner();
    let link_token = token.clone();
    let (event, booking, payments, invoices) =
        run(&state.db, move |conn| -> Result<_, BookingError> {
            let (event, booking) = crate::bookings::find_by_token(conn, &token)?;
            let payments = super::for_booking(conn, booking.id)?;
            let invoices = super::invoices::for_booking(conn, booking.id)?;
            Ok((event, booking, payments, invoices))
        })
        .await?;
    let now = state.clock.now();
    let payable = super::payable(&booking, now);
    let cards = state.payments.cards_offered();
    let mut methods = Vec::new();
    if payable.is_ok() && cards {
        methods.push("card".to_owned());
    }
    if payable.is_ok() && event.invoices_allowed {
        methods.push("invoice".to_owned());
    }
    let card_unavailable = match (&payable, cards) {
        (Ok(()), true) => None,
        (Ok(()), false) => Some(NO_CARDS.to_owned()),
        (Err(e), _) => Some(format!("Nothing to pay by card now: {e}.")),
    };
    Ok(web::Json(PaymentOptionsView {
        methods,
        card_unavailable,
        amount_due_minor: if booking.status == BookingStatus::Held {
            booking.total_minor
        } else {
            0
        },
        currency: booking.currency.clone(),
        paid_minor: booking.paid_minor,
        refunded_minor: booking.refunded_minor,
        payments: payments
            .into_iter()
            .map(|p| PaymentView {
                amount_minor: p.amount_minor,
                state: p.state.as_str().to_owned(),
                refunded_minor: p.refunded_minor,
                last_error: p.last_error.filter(|_| p.state == PaymentState::Open),
            })
            .collect(),
        invoices: invoices
            .iter()
            .map(|i| {
                let link = format!("/api/v1/bookings/{link_token}/invoices/{}", i.number);
                InvoiceView::new(i, link, now)
            })
            .collect(),
    }))
}

/// Starts (or resumes) paying a held booking by card: creates the booking's Stripe
/// PaymentIntent for the amount the service computes, or returns the one already made, with what
/// Stripe.js needs to take the card. The booking is confirmed when Stripe reports the payment.
#[utoipa::path(
    tag = "payments",
    params(("manage_token" = String, Path, description = "The secret returned when booking")),
    responses(
        (status = 200, description = "The PaymentIntent to confirm in the browser", body = CardCheckoutView),
        NotFound, PaymentProblems,
    )
)]
#[post("/bookings/{manage_token}/payments/stripe")]
async fn pay_by_card(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<web::Json<CardCheckoutView>, Problem> {
    let now = state.clock.now();
    let (booking, payment, intent) =
        super::start_card_payment(&state.db, &state.payments, &token.into_inner(), now).await?;
    let Some(gateway) = state.payments.gateway() else {
        return Err(PaymentError::CardsUnavailable.into());
    };
    let Some(client_secret) = intent.client_secret.clone() else {
        tracing::error!(intent = %intent.id, "PaymentIntent without a client secret");
        return Err(
            PaymentError::Gateway(super::stripe::GatewayError::Unavailable(
                "no client secret in Stripe's answer".to_owned(),
            ))
            .into(),
        );
    };
    tracing::info!(reference = %booking.reference, intent = %intent.id, "card payment started");
    Ok(web::Json(CardCheckoutView {
        payment_intent_id: intent.id,
        client_secret,
        publishable_key: gateway.publishable_key().to_owned(),
        amount_minor: intent.amount,
        currency: payment.currency,
        status: match intent.status {
            IntentStatus::Open => "requires_payment",
            IntentStatus::Processing => "processing",
            IntentStatus::Succeeded => "succeeded",
            IntentStatus::Cancelled => "cancelled",
        }
        .to_owned(),
    }))
}

/// Stripe's webhook endpoint. The `Stripe-Signature` header is checked against the raw body
/// first; then `payment_intent.succeeded` confirms the held booking (or refunds money that came
/// too late), `payment_intent.payment_failed` tells the attendee, and `charge.refunded` and
/// `refund.*` bring refunds up to date. Every event acts once; others are acknowledged.
#[utoipa::path(
    tag = "payments",
    request_body(content = String, content_type = "application/json", description = "A Stripe event, as Stripe signed it"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix time>,v1=<HMAC-SHA256 hex>")),
    responses(
        (status = 200, description = "Received (acted on, or seen before, or not of interest)", body = WebhookAnswer),
        WebhookProblems,
    )
)]
#[post("/webhooks/stripe")]
async fn stripe_webhook(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, Problem> {
    let payments = &state.payments;
    if state.payments.webhook_secrets.is_empty() {
        return Err(Problem::new(
            Kind::CardPaymentsUnavailable,
            "No Stripe webhook secret is configured (MASTERCLASS__PAYMENTS__STRIPE_WEBHOOK_SECRET)",
        ));
    }
    // Freshness is a matter of real time, whatever clock deadlines are measured by.
    let signed_now = chrono::Utc::now();
    let now = state.clock.now();
    let header = request
        .headers()
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = webhook::verify(
        header,
        &body,
        &payments.webhook_secrets,
        signed_now,
        payments.tolerance_seconds,
    ) {
        tracing::warn!(error = %e, "webhook refused");
        return Err(Problem::new(Kind::BadSignature, e.to_string()));
    }
    let event: webhook::Event = serde_json::from_slice(&body).map_err(|e| {
        Problem::new(
            Kind::MalformedJson,
            format!("The signed body is not a Stripe event: {e}"),
        )
    })?;
    let kind = event.kind.clone();
    let id = event.id.clone();
    let applied = run(&state.db, move |conn| super::apply_event(conn, &event, now)).await?;
    tracing::info!(event = %id, kind = %kind, outcome = applied.name(), "Stripe event");
    if !applied.refunds_owed().is_empty() {
        // After the commit, without keeping Stripe waiting for its answer.
        send_refunds(&state, Some(applied.refunds_owed().to_vec()));
    }
    Ok(HttpResponse::Ok().json(WebhookAnswer {
        received: true,
        outcome: applied.name().to_owned(),
    }))
}
