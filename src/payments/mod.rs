//! Payments: card payments through Stripe for held bookings, what Stripe's webhooks report, the
//! refunds owed, and the reconciler that asks Stripe about payments whose webhook never came.
//!
//! Money is never lost or counted twice:
//! - a booking has at most one open payment, and every retry of "pay by card" reuses it (and
//!   Stripe's idempotency key makes a repeated creation return the same PaymentIntent);
//! - a Stripe event is recorded in the transaction of its effect, so a repeated delivery has
//!   none; a payment succeeds once, whichever of webhook and reconciler sees it first;
//! - money that cannot buy what it was for (the hold ran out and the seat is gone, the booking
//!   was cancelled, it was paid twice) becomes a refund row in the same transaction, and is sent
//!   to Stripe after the commit and again by the reconciler until Stripe has taken it.

pub mod http;
pub mod policy;
pub mod refunds;
pub mod stripe;
pub mod webhook;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::bookings::{self, Booking, BookingError, BookingStatus, PaymentStatus};
use crate::config::PaymentSettings;
use crate::db::schema::{bookings as bookings_table, payments, stripe_events};
use crate::db::{self, Db, DbConn, DbError};
use crate::events;
use crate::mail::{self, compose, Template};
use refunds::RefundReason;
use stripe::{Gateway, GatewayError, IntentStatus};

/// Card payments as configured: Stripe's gateway when both keys are set, and the webhook
/// secrets in force.
#[derive(Clone, Debug)]
pub struct Payments {
    gateway: Option<Gateway>,
    webhook_secrets: Vec<String>,
    tolerance_seconds: i64,
    reconcile_after: chrono::Duration,
}

impl Payments {
    pub fn from_settings(settings: &PaymentSettings) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let secret = settings
            .stripe_secret_key
            .as_ref()
            .map(|s| s.expose_secret().trim().to_owned())
            .filter(|s| !s.is_empty());
        let publishable = settings.stripe_publishable_key.trim();
        let gateway = match (secret, publishable.is_empty()) {
            (Some(secret), false) => Some(Gateway::new(
                &secret,
                publishable,
                &settings.stripe_api_base,
                Duration::from_secs(u64::from(settings.stripe_timeout_seconds.get())),
            )?),
            (None, true) => None,
            (Some(_), true) => anyhow::bail!(
                "payments.stripe_publishable_key is empty but a Stripe secret key is set: set both to offer card payments, or neither"
            ),
            (None, false) => anyhow::bail!(
                "payments.stripe_publishable_key is set but MASTERCLASS__PAYMENTS__STRIPE_SECRET_KEY is not: set both to offer card payments, or neither"
            ),
        };
        let webhook_secrets = settings.webhook_secrets();
        if gateway.is_some() && webhook_secrets.is_empty() {
            tracing::warn!(
                "card payments are on but no webhook secret is set \
                 (MASTERCLASS__PAYMENTS__STRIPE_WEBHOOK_SECRET): payments are confirmed only \
                 by the reconciler, minutes later"
            );
        }
        Ok(Self {
            gateway,
            webhook_secrets,
            tolerance_seconds: i64::from(settings.webhook_tolerance_seconds.get()),
            reconcile_after: chrono::Duration::seconds(i64::from(
                settings.reconcile_after_seconds.get(),
            )),
        })
    }

    /// Stripe, when card payments are offered.
    pub fn gateway(&self) -> Option<&Gateway> {
        self.gateway.as_ref()
    }

    pub fn cards_offered(&self) -> bool {
        self.gateway.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Waiting for the attendee (or their bank).
    Open,
    Succeeded,
    /// Given up: the amount changed, or Stripe cancelled the intent.
    Cancelled,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Succeeded => "succeeded",
            Self::Cancelled => "cancelled",
        }
    }

    fn from_db(raw: &str) -> Self {
        match raw {
            "succeeded" => Self::Succeeded,
            "cancelled" => Self::Cancelled,
            _ => Self::Open,
        }
    }
}

/// One card payment of a booking.
#[derive(Debug, Clone)]
pub struct Payment {
    pub id: i64,
    pub booking_id: i64,
    pub intent_id: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub state: PaymentState,
    pub refunded_minor: i64,
    pub last_error: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payments)]
struct PaymentRow {
    id: i64,
    booking_id: i64,
    intent_id: Option<String>,
    amount_minor: i64,
    currency: String,
    state: String,
    refunded_minor: i64,
    last_error: Option<String>,
}

impl From<PaymentRow> for Payment {
    fn from(row: PaymentRow) -> Self {
        Self {
            id: row.id,
            booking_id: row.booking_id,
            intent_id: row.intent_id,
            amount_minor: row.amount_minor,
            currency: row.currency,
            state: PaymentState::from_db(&row.state),
            refunded_minor: row.refunded_minor,
            last_error: row.last_error,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("card payments are not offered here")]
    CardsUnavailable,
    #[error("booking {reference} has nothing to pay: it is {status}")]
    NotPayable { reference: String, status: String },
    #[error("the hold on booking {reference} ran out at {until}; its places have been released")]
    HoldExpired {
        reference: String,
        until: DateTime<Utc>,
    },
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for PaymentError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// A payment's row by id.
pub fn payment(conn: &mut DbConn, id: i64) -> Result<Payment, DbError> {
    Ok(payments::table
        .find(id)
        .select(PaymentRow::as_select())
        .first(conn)?
        .into())
}

fn by_intent(conn: &mut DbConn, intent_id: &str) -> Result<Option<Payment>, DbError> {
    Ok(payments::table
        .filter(payments::intent_id.eq(intent_id))
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()?
        .map(Payment::from))
}

/// Every payment of a booking, oldest first.
pub fn for_booking(conn: &mut DbConn, booking_id: i64) -> Result<Vec<Payment>, DbError> {
    Ok(payments::table
        .filter(payments::booking_id.eq(booking_id))
        .order(payments::id.asc())
        .select(PaymentRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Payment::from)
        .collect())
}

/// The booking behind `manage_token`, checked to be payable now, with its open card payment
/// (made if it has none; a payment for a different amount is given up for a new one).
pub fn open_card_payment(
    conn: &mut DbConn,
    manage_token: &str,
    now: DateTime<Utc>,
) -> Result<(Booking, Payment), PaymentError> {
    let (_, booking) = bookings::find_by_token(conn, manage_token)?;
    payable(&booking, now)?;
    let payment = db::write_transaction(conn, |conn| -> Result<Payment, PaymentError> {
        let open: Option<Payment> = payments::table
            .filter(payments::booking_id.eq(booking.id))
            .filter(payments::state.eq(PaymentState::Open.as_str()))
            .select(PaymentRow::as_select())
            .first(conn)
            .optional()?
            .map(Payment::from);
        let stamp = db::stored(now);
        match open {
            Some(open) if open.amount_minor == booking.total_minor => return Ok(open),
            Some(stale) => {
                // Seats were cancelled since: that intent is for the wrong amount. If it is
                // paid after all, its webhook finds the payment cancelled and refunds it.
                diesel::update(payments::table.find(stale.id))
                    .filter(payments::state.eq(PaymentState::Open.as_str()))
                    .set((
                        payments::state.eq(PaymentState::Cancelled.as_str()),
                        payments::updated_at.eq(stamp),
                    ))
                    .execute(conn)?;
            }
            None => {}
        }
        let inserted = diesel::insert_into(payments::table)
            .values((
                payments::booking_id.eq(booking.id),
                payments::provider.eq("stripe"),
                payments::amount_minor.eq(booking.total_minor),
                payments::currency.eq(&booking.currency),
                payments::state.eq(PaymentState::Open.as_str()),
                payments::created_at.eq(stamp),
                payments::updated_at.eq(stamp),
            ))
            .returning(payments::id)
            .get_result::<i64>(conn)?;
        Ok(payment(conn, inserted)?)
    });
    match payment {
        Ok(payment) => Ok((booking, payment)),
        // Another request opened it first (the partial unique index): take theirs.
        Err(PaymentError::Db(DbError::Query(e))) if db::is_unique_violation(&e) => {
            let open = payments::table
                .filter(payments::booking_id.eq(booking.id))
                .filter(payments::state.eq(PaymentState::Open.as_str()))
                .select(PaymentRow::as_select())
                .first(conn)?;
            Ok((booking, open.into()))
        }
        Err(e) => Err(e),
    }
}

/// Refuses a booking that cannot be paid by card now.
fn payable(booking: &Booking, now: DateTime<Utc>) -> Result<(), PaymentError> {
    if booking.status == BookingStatus::Held {
        if let Some(until) = booking.hold_expires_at.filter(|until| *until <= now) {
            return Err(PaymentError::HoldExpired {
                reference: booking.reference.clone(),
                until,
            });
        }
        if booking.total_minor > 0 {
            return Ok(());
        }
    }
    let status = match (booking.status, booking.payment_status) {
        (BookingStatus::Confirmed, PaymentStatus::Paid) => "confirmed and paid".to_owned(),
        (BookingStatus::Expired, _) => "expired: its hold ran out".to_owned(),
        (status, _) => status.as_str().to_owned(),
    };
    Err(PaymentError::NotPayable {
        reference: booking.reference.clone(),
        status,
    })
}

/// Records the PaymentIntent Stripe made for `payment_id`, unless another request recorded
/// one first; returns the payment as it is now (whose intent is the one to use).
pub fn attach_intent(
    conn: &mut DbConn,
    payment_id: i64,
    intent_id: &str,
    now: DateTime<Utc>,
) -> Result<Payment, DbError> {
    diesel::update(payments::table.find(payment_id))
        .filter(payments::intent_id.is_null())
        .set((
            payments::intent_id.eq(intent_id),
            payments::updated_at.eq(db::stored(now)),
        ))
        .execute(conn)?;
    payment(conn, payment_id)
}

/// The metadata and idempotency key of the PaymentIntent for `payment`.
pub fn intent_request(booking: &Booking, payment: &Payment) -> (HashMap<String, String>, String) {
    let metadata = HashMap::from([
        ("booking_reference".to_owned(), booking.reference.clone()),
        ("payment_id".to_owned(), payment.id.to_string()),
    ]);
    (metadata, format!("masterclass-payment-{}", payment.id))
}

/// What a Stripe event (or the reconciler) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The event was seen before: nothing done again.
    Duplicate,
    /// An event type or object this service does not act on.
    Ignored,
    /// The payment succeeded and its booking is confirmed.
    Confirmed,
    /// The payment succeeded but could not buy its booking: refunded (these refunds are owed).
    Refunding(Vec<i64>),
    /// A failed attempt was recorded (the hold stands).
    Failed,
    /// Refund amounts were brought up to date.
    RefundUpdated,
}

impl Applied {
    /// Refunds this change owes, to send to Stripe once it has committed.
    pub fn refunds_owed(&self) -> &[i64] {
        match self {
            Self::Refunding(ids) => ids,
            _ => &[],
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Confirmed => "confirmed",
            Self::Refunding(_) => "refunding",
            Self::Failed => "failed",
            Self::RefundUpdated => "refund_updated",
        }
    }
}

/// Acts on one verified Stripe event, in one transaction with the record that it was seen.
pub fn apply_event(
    conn: &mut DbConn,
    event: &webhook::Event,
    now: DateTime<Utc>,
) -> Result<Applied, PaymentError> {
    let outcome = db::write_transaction(conn, |conn| {
        let seen: Option<String> = stripe_events::table
            .find(&event.id)
            .select(stripe_events::event_id)
            .first(conn)
            .optional()?;
        if seen.is_some() {
            return Ok(Applied::Duplicate);
        }
        // A delivery racing this one commits first or fails here on the primary key.
        diesel::insert_into(stripe_events::table)
            .values((
                stripe_events::event_id.eq(&event.id),
                stripe_events::event_type.eq(&event.kind),
                stripe_events::received_at.eq(db::stored(now)),
            ))
            .execute(conn)?;
        match event.kind.as_str() {
            "payment_intent.succeeded" => match webhook::object::<webhook::IntentObject>(event) {
                Ok(intent) => settle(
                    conn,
                    &intent.id,
                    intent.amount_received.unwrap_or(intent.amount),
                    &intent.currency,
                    now,
                ),
                Err(e) => unreadable(event, &e),
            },
            "payment_intent.payment_failed" => {
                match webhook::object::<webhook::IntentObject>(event) {
                    Ok(intent) => payment_failed(conn, &intent, now),
                    Err(e) => unreadable(event, &e),
                }
            }
            "charge.refunded" => match webhook::object::<webhook::ChargeObject>(event) {
                Ok(charge) => match charge.intent_id() {
                    Some(intent) => {
                        refunds::refunded_at_stripe(conn, intent, charge.amount_refunded, now)
                    }
                    None => Ok(Applied::Ignored),
                },
                Err(e) => unreadable(event, &e),
            },
            "refund.created" | "refund.updated" | "refund.failed" => {
                match webhook::object::<webhook::RefundObject>(event) {
                    Ok(refund) => {
                        refunds::status_from_stripe(conn, &refund.id, refund.status.as_deref(), now)
                    }
                    Err(e) => unreadable(event, &e),
                }
            }
            _ => Ok(Applied::Ignored),
        }
    });
    match outcome {
        Err(PaymentError::Db(DbError::Query(e))) if db::is_unique_violation(&e) => {
            Ok(Applied::Duplicate)
        }
        other => other,
    }
}

/// An event of a known type whose object lacks what is needed: acknowledged (Stripe would only
/// send it again) and logged for a person to look at.
fn unreadable(event: &webhook::Event, e: &serde_json::Error) -> Result<Applied, PaymentError> {
    tracing::error!(event = %event.id, kind = %event.kind, error = %e, "Stripe event not understood; ignored");
    Ok(Applied::Ignored)
}

/// A PaymentIntent succeeded with `received` (minor units): the payment is marked succeeded and
/// its booking confirmed, or, when the money cannot buy the booking any more, refunded. Runs
/// inside the caller's transaction; a payment already succeeded is left alone.
pub fn settle(
    conn: &mut DbConn,
    intent_id: &str,
    received: i64,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<Applied, PaymentError> {
    let Some(payment) = by_intent(conn, intent_id)? else {
        // Not one of this service's intents (another integration on the same account).
        tracing::info!(
            intent = intent_id,
            "succeeded PaymentIntent unknown here; ignored"
        );
        return Ok(Applied::Ignored);
    };
    let stamp = db::stored(now);
    let changed = diesel::update(payments::table.find(payment.id))
        .filter(payments::state.ne(PaymentState::Succeeded.as_str()))
        .set((
            payments::state.eq(PaymentState::Succeeded.as_str()),
            payments::amount_minor.eq(received.max(1)),
            payments::succeeded_at.eq(Some(stamp)),
            payments::updated_at.eq(stamp),
            payments::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Ok(Applied::Duplicate);
    }
    let payment = self::payment(conn, payment.id)?;
    if !currency.eq_ignore_ascii_case(&payment.currency) {
        tracing::error!(intent = intent_id, currency, expected = %payment.currency, "payment in another currency; refunding it");
        let id = refunds::owe(conn, &payment, received, RefundReason::Mismatch, now)?;
        return Ok(Applied::Refunding(vec![id]));
    }
    let booking = bookings::load(conn, payment.booking_id)?;
    // `paid_minor` counts all money received for the booking, `refunded_minor` all that went
    // back: money that buys nothing shows as both.
    let outcome = match booking.status {
        BookingStatus::Held if received >= booking.total_minor => {
            bookings::confirm_paid(conn, booking.id, received, now)?;
            Some(received - booking.total_minor)
        }
        BookingStatus::Expired if received >= booking.total_minor => {
            bookings::revive_paid(conn, booking.id, received, now)?
                .map(|_| received - booking.total_minor)
        }
        _ => None,
    };
    if outcome.is_some() {
        // Any other open payment of the booking is not needed now; paid after all, it is
        // refunded when it succeeds.
        diesel::update(payments::table)
            .filter(payments::booking_id.eq(booking.id))
            .filter(payments::state.eq(PaymentState::Open.as_str()))
            .set((
                payments::state.eq(PaymentState::Cancelled.as_str()),
                payments::updated_at.eq(stamp),
            ))
            .execute(conn)?;
    }
    match outcome {
        Some(0) => Ok(Applied::Confirmed),
        Some(excess) => {
            let id = refunds::owe(conn, &payment, excess, RefundReason::Overpaid, now)?;
            Ok(Applied::Refunding(vec![id]))
        }
        None => {
            let reason = match booking.status {
                BookingStatus::Expired => RefundReason::HoldLapsed,
                BookingStatus::Cancelled => RefundReason::BookingCancelled,
                BookingStatus::Confirmed => RefundReason::AlreadyPaid,
                BookingStatus::Held => RefundReason::Mismatch,
            };
            tracing::warn!(reference = %booking.reference, reason = reason.as_str(), "payment cannot buy its booking; refunding it in full");
            diesel::update(bookings_table::table.find(booking.id))
                .set((
                    bookings_table::paid_minor.eq(bookings_table::paid_minor + received),
                    bookings_table::updated_at.eq(stamp),
                ))
                .execute(conn)?;
            let id = refunds::owe(conn, &payment, received, reason, now)?;
            Ok(Applied::Refunding(vec![id]))
        }
    }
}

/// A declined or failed attempt: recorded on the payment, and the attendee told (the hold
/// stands, so they can try again).
fn payment_failed(
    conn: &mut DbConn,
    intent: &webhook::IntentObject,
    now: DateTime<Utc>,
) -> Result<Applied, PaymentError> {
    let Some(payment) = by_intent(conn, &intent.id)? else {
        return Ok(Applied::Ignored);
    };
    // A failure reported after the payment succeeded (events can arrive out of order) or for
    // an intent given up changes nothing.
    if payment.state != PaymentState::Open {
        return Ok(Applied::Ignored);
    }
    let message = intent
        .last_payment_error
        .as_ref()
        .and_then(|e| e.message.clone().or_else(|| e.code.clone()));
    diesel::update(payments::table.find(payment.id))
        .set((
            payments::last_error.eq(message.as_deref().unwrap_or("declined")),
            payments::updated_at.eq(db::stored(now)),
        ))
        .execute(conn)?;
    let booking = bookings::load(conn, payment.booking_id)?;
    if booking.status != BookingStatus::Held {
        return Ok(Applied::Failed);
    }
    let event = events::by_id(conn, booking.event_id)?;
    let mut data = compose::booking_mail(&event, &booking.reference, &booking.attendee_name);
    data.seats = booking
        .seats
        .iter()
        .filter(|s| s.state == bookings::SeatState::Held)
        .map(|s| s.mail(&event, "held"))
        .collect();
    data.total =
        (booking.total_minor > 0).then(|| compose::money(booking.total_minor, &booking.currency));
    data.hold_until = booking
        .hold_expires_at
        .map(|t| compose::moment(t, event.time_zone));
    data.payment_error = message;
    mail::enqueue(
        conn,
        Template::PaymentFailed,
        &booking.attendee_email,
        Some(booking.id),
        &data,
    )?;
    Ok(Applied::Failed)
}

/// What one reconciler pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Open payments looked up at Stripe.
    pub checked: usize,
    /// Of which found succeeded (and settled here, their webhook not having come).
    pub settled: usize,
    /// Refunds sent to Stripe.
    pub refunds_sent: usize,
}

/// How many payments one pass looks up at most.
const RECONCILE_BATCH: i64 = 50;

/// Asks Stripe about card payments still open `reconcile_after` after they started (a webhook
/// lost or late), settles those that succeeded, and sends the refunds still owed. Blocking: for
/// the sweeper's thread.
pub fn reconcile(db: &Db, payments: &Payments, now: DateTime<Utc>) -> anyhow::Result<Reconciled> {
    let Some(gateway) = payments.gateway() else {
        return Ok(Reconciled::default());
    };
    let mut conn = db.conn()?;
    let due_before = db::stored(now - payments.reconcile_after);
    let open: Vec<(i64, String)> = payments::table
        .filter(payments::state.eq(PaymentState::Open.as_str()))
        .filter(payments::intent_id.is_not_null())
        .filter(payments::created_at.le(due_before))
        // Stripe does not expire an intent by itself; a week is far beyond any hold.
        .filter(payments::created_at.ge(db::stored(now - chrono::Duration::days(7))))
        .filter(
            payments::checked_at
                .is_null()
                .or(payments::checked_at.le(due_before)),
        )
        .order(payments::id.asc())
        .limit(RECONCILE_BATCH)
        .select((payments::id, payments::intent_id.assume_not_null()))
        .load(&mut conn)?;
    let mut done = Reconciled::default();
    for (id, intent_id) in open {
        let intent = match gateway
            .block_on(gateway.retrieve_intent(&intent_id))
            .and_then(|answer| answer)
        {
            Ok(intent) => intent,
            Err(e) => {
                tracing::warn!(payment = id, intent = %intent_id, error = %e, "cannot look up a payment at Stripe; trying again later");
                continue;
            }
        };
        done.checked += 1;
        let stamp: NaiveDateTime = db::stored(now);
        match intent.status {
            IntentStatus::Succeeded => {
                let applied = db::write_transaction(&mut conn, |conn| {
                    settle(
                        conn,
                        &intent.id,
                        intent.amount_received,
                        &intent.currency,
                        now,
                    )
                })?;
                if matches!(applied, Applied::Confirmed | Applied::Refunding(_)) {
                    done.settled += 1;
                    tracing::info!(payment = id, intent = %intent.id, outcome = applied.name(), "payment settled by the reconciler");
                }
            }
            IntentStatus::Cancelled => {
                diesel::update(payments::table.find(id))
                    .filter(payments::state.eq(PaymentState::Open.as_str()))
                    .set((
                        payments::state.eq(PaymentState::Cancelled.as_str()),
                        payments::checked_at.eq(Some(stamp)),
                        payments::updated_at.eq(stamp),
                    ))
                    .execute(&mut conn)?;
            }
            IntentStatus::Open | IntentStatus::Processing => {
                diesel::update(payments::table.find(id))
                    .set(payments::checked_at.eq(Some(stamp)))
                    .execute(&mut conn)?;
            }
        }
    }
    done.refunds_sent = gateway.block_on(refunds::send_due(db, gateway, now))??;
    Ok(done)
}
