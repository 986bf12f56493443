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
pub mod invoices;
pub mod pdf;
pub mod policy;
pub mod refunds;
pub mod stripe;
pub mod webhook;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::bookings::{self, Booking, BookingError, BookingStatus, PaymentStatus};
use crate::clock::Clock;
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
    /// A concurrent delivery of the same event recorded it first.
    #[error("the event was recorded by another delivery meanwhile")]
    SeenMeanwhile,
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
    cards_offered: bool,
    now: DateTime<Utc>,
) -> Result<(Booking, Payment), PaymentError> {
    let (_, booking) = bookings::find_by_token(conn, manage_token)?;
    payable(&booking, now)?;
    if !cards_offered {
        return Err(PaymentError::CardsUnavailable);
    }
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
                // Seats were cancelled since: that intent is for the wrong amount. The
                // reconciler cancels it at Stripe; paid before that, it is refunded.
                give_up(conn, &[stale.id], now)?;
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
        (BookingStatus::Confirmed, PaymentStatus::Invoiced) => {
            "confirmed, to be paid by its invoice".to_owned()
        }
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
    first_check: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Payment, DbError> {
    diesel::update(payments::table.find(payment_id))
        .filter(payments::intent_id.is_null())
        .set((
            payments::intent_id.eq(intent_id),
            payments::next_check_at.eq(Some(db::stored(first_check))),
            payments::updated_at.eq(db::stored(now)),
        ))
        .execute(conn)?;
    payment(conn, payment_id)
}

/// The ids of a booking's open payments.
pub(crate) fn open_payments(conn: &mut DbConn, booking_id: i64) -> Result<Vec<i64>, DbError> {
    Ok(payments::table
        .filter(payments::booking_id.eq(booking_id))
        .filter(payments::state.eq(PaymentState::Open.as_str()))
        .select(payments::id)
        .load(conn)?)
}

/// A booking's open payments for another amount than `amount` (its total changed since).
pub(crate) fn open_payments_not_for(
    conn: &mut DbConn,
    booking_id: i64,
    amount: i64,
) -> Result<Vec<i64>, DbError> {
    Ok(payments::table
        .filter(payments::booking_id.eq(booking_id))
        .filter(payments::state.eq(PaymentState::Open.as_str()))
        .filter(payments::amount_minor.ne(amount))
        .select(payments::id)
        .load(conn)?)
}

/// Gives up open payments: no longer wanted, they are cancelled at Stripe by the reconciler
/// (soon), and refunded if paid before that.
pub(crate) fn give_up(conn: &mut DbConn, ids: &[i64], now: DateTime<Utc>) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    let stamp = db::stored(now);
    diesel::update(payments::table)
        .filter(payments::id.eq_any(ids))
        .filter(payments::state.eq(PaymentState::Open.as_str()))
        .set((
            payments::state.eq(PaymentState::Cancelled.as_str()),
            payments::next_check_at.eq(Some(stamp)),
            payments::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    Ok(())
}

/// A payment whose Stripe intent could not be made (Stripe keeps a failed answer for the
/// idempotency key): closed for good, so the next attempt makes a new payment with a new key.
pub fn abandon(conn: &mut DbConn, id: i64, now: DateTime<Utc>) -> Result<(), DbError> {
    let stamp = db::stored(now);
    diesel::update(payments::table.find(id))
        .filter(payments::intent_id.is_null())
        .set((
            payments::state.eq(PaymentState::Cancelled.as_str()),
            payments::final_at.eq(Some(stamp)),
            payments::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    Ok(())
}

/// Opens (or resumes) the card payment of the held booking behind `manage_token` and the
/// Stripe PaymentIntent it is paid through: made with the payment's idempotency key (a 409 from
/// Stripe, a double click's request still running, is waited out), or the one already recorded.
pub async fn start_card_payment(
    db: &Db,
    payments: &Payments,
    manage_token: &str,
    now: DateTime<Utc>,
) -> Result<(Booking, Payment, stripe::Intent), PaymentError> {
    let cards = payments.cards_offered();
    let token = manage_token.to_owned();
    // An unknown or unpayable booking says so before cards being unavailable does.
    let (booking, payment) = blocking(db, move |conn| {
        Ok(open_card_payment(conn, &token, cards, now))
    })
    .await??;
    let Some(gateway) = payments.gateway() else {
        return Err(PaymentError::CardsUnavailable);
    };
    if let Some(id) = &payment.intent_id {
        let intent = gateway.retrieve_intent(id).await?;
        return Ok((booking, payment, intent));
    }
    let (metadata, key) = intent_request(&booking, &payment);
    let mut tries = 0;
    let made = loop {
        tries += 1;
        match gateway
            .create_intent(
                payment.amount_minor,
                &payment.currency,
                metadata.clone(),
                &key,
            )
            .await
        {
            Err(GatewayError::Refused { status: 409, .. }) if tries < 4 => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => {
                if e.is_server_error() {
                    // Stripe keeps this failure for the key: the next try starts afresh.
                    let id = payment.id;
                    blocking(db, move |conn| abandon(conn, id, now)).await?;
                }
                return Err(e.into());
            }
            Ok(made) => break made,
        }
    };
    let (made_id, payment_id) = (made.id.clone(), payment.id);
    let first_check = now + payments.reconcile_after;
    let stored = blocking(db, move |conn| {
        attach_intent(conn, payment_id, &made_id, first_check, now)
    })
    .await?;
    let intent = match &stored.intent_id {
        // Another request recorded its intent first: that one is the booking's.
        Some(id) if *id != made.id => gateway.retrieve_intent(id).await?,
        _ => made,
    };
    Ok((booking, stored, intent))
}

/// The attendee is back from paying: the booking's latest card payment is looked up at Stripe
/// now and, when it succeeded, settled exactly as its webhook would settle it (the webhook, when
/// it comes, finds it done). Returns the intent's state and what settling did, or `None` when
/// cards are not set up or the booking has no card payment.
pub async fn look_up_now(
    db: &Db,
    payments: &Payments,
    booking_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<(IntentStatus, Option<Applied>)>, PaymentError> {
    let Some(gateway) = payments.gateway() else {
        return Ok(None);
    };
    let latest = blocking(db, move |conn| {
        Ok(for_booking(conn, booking_id)?
            .into_iter()
            .rev()
            .find_map(|p| p.intent_id))
    })
    .await?;
    let Some(intent_id) = latest else {
        return Ok(None);
    };
    let intent = gateway.retrieve_intent(&intent_id).await?;
    if intent.status != IntentStatus::Succeeded {
        return Ok(Some((intent.status, None)));
    }
    let db = db.clone();
    let applied = tokio::task::spawn_blocking(move || -> Result<Applied, PaymentError> {
        let mut conn = db.conn()?;
        db::write_transaction(&mut conn, |conn| {
            settle(
                conn,
                &intent.id,
                intent.amount_received,
                &intent.currency,
                now,
            )
        })
    })
    .await
    .map_err(|e| DbError::Inconsistent(format!("a database task stopped: {e}")))??;
    Ok(Some((IntentStatus::Succeeded, Some(applied))))
}

/// Runs `f` with a pooled connection on the blocking thread pool.
pub(crate) async fn blocking<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.conn()?;
        f(&mut conn)
    })
    .await
    .map_err(|e| DbError::Inconsistent(format!("a database task stopped: {e}")))?
}

/// The metadata and idempotency key of the PaymentIntent for `payment`.
pub fn intent_request(booking: &Booking, payment: &Payment) -> (HashMap<String, String>, String) {
    let metadata = HashMap::from([
        ("booking_reference".to_owned(), booking.reference.clone()),
        ("payment_id".to_owned(), payment.id.to_string()),
    ]);
    // The reference keeps keys apart across databases sharing one Stripe account.
    (
        metadata,
        format!("masterclass-{}-payment-{}", booking.reference, payment.id),
    )
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
        let recorded = diesel::insert_into(stripe_events::table)
            .values((
                stripe_events::event_id.eq(&event.id),
                stripe_events::event_type.eq(&event.kind),
                stripe_events::received_at.eq(db::stored(now)),
            ))
            .execute(conn);
        match recorded {
            Err(e) if db::is_unique_violation(&e) => return Err(PaymentError::SeenMeanwhile),
            other => other?,
        };
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
        Err(PaymentError::SeenMeanwhile) => Ok(Applied::Duplicate),
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
/// inside the caller's transaction; a payment already succeeded is left alone. Like every change
/// to seats, it takes the booking's session rows first, in id order, and decides on the booking
/// as it is once they are held.
pub fn settle(
    conn: &mut DbConn,
    intent_id: &str,
    received: i64,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<Applied, PaymentError> {
    let Some(found) = by_intent(conn, intent_id)? else {
        // Not one of this service's intents (another integration on the same account).
        tracing::info!(
            intent = intent_id,
            "succeeded PaymentIntent unknown here; ignored"
        );
        return Ok(Applied::Ignored);
    };
    if found.state == PaymentState::Succeeded {
        return Ok(Applied::Duplicate);
    }
    bookings::lock_sessions_of(conn, found.booking_id)?;
    let stamp = db::stored(now);
    let changed = diesel::update(payments::table.find(found.id))
        .filter(payments::state.ne(PaymentState::Succeeded.as_str()))
        .set((
            payments::state.eq(PaymentState::Succeeded.as_str()),
            payments::amount_minor.eq(received.max(1)),
            payments::succeeded_at.eq(Some(stamp)),
            payments::final_at.eq(Some(stamp)),
            payments::updated_at.eq(stamp),
            payments::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Ok(Applied::Duplicate);
    }
    let payment = self::payment(conn, found.id)?;
    let booking = bookings::load(conn, payment.booking_id)?;
    let same_currency = currency.eq_ignore_ascii_case(&payment.currency);
    // `paid_minor` counts all money received for the booking, `refunded_minor` all that went
    // back: money that buys nothing shows as both.
    let kept = match booking.status {
        _ if !same_currency => None,
        BookingStatus::Held if received >= booking.total_minor => {
            Some(bookings::confirm_paid(conn, booking.id, received, now)?)
        }
        BookingStatus::Expired if received >= booking.total_minor => {
            bookings::revive_paid(conn, booking.id, received, now)?
        }
        _ => None,
    };
    let Some(confirmed) = kept else {
        let reason = match booking.status {
            _ if !same_currency => RefundReason::Mismatch,
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
        return Ok(Applied::Refunding(vec![id]));
    };
    // Any other open payment of the booking is not needed now.
    let others = open_payments(conn, booking.id)?;
    give_up(conn, &others, now)?;
    let excess = received - confirmed.total_minor;
    if excess > 0 {
        let id = refunds::owe(conn, &payment, excess, RefundReason::Overpaid, now)?;
        return Ok(Applied::Refunding(vec![id]));
    }
    Ok(Applied::Confirmed)
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
    let mut data = booking.mail(&event, bookings::SeatState::Held);
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
    /// Card payments looked up at Stripe.
    pub checked: usize,
    /// Of which found succeeded and settled here (their webhook not having come).
    pub settled: usize,
    /// Intents no longer wanted, cancelled at Stripe.
    pub cancelled: usize,
    /// Refunds sent to Stripe.
    pub refunds_sent: usize,
    /// Refunds Stripe was still working on, looked up again and found done.
    pub refunds_updated: usize,
}

/// How many payments and refunds one pass looks up at most, so a slow Stripe delays a pass by
/// a bounded time.
const RECONCILE_BATCH: i64 = 20;

/// How long after a hold ran out it is released even when Stripe could not be asked about its
/// open payment.
const HOLD_GRACE_MINUTES: i64 = 10;

#[derive(Debug, Clone, Queryable)]
struct ToCheck {
    id: i64,
    booking_id: i64,
    intent_id: String,
    state: String,
    checks: i32,
}

/// Keeps every card payment true to Stripe, so a lost webhook never loses a payment: looks up
/// intents whose check is due (a while after they started, then further apart, and at once when
/// their booking's hold runs out), settles those that succeeded exactly as the webhook would,
/// cancels at Stripe those no longer wanted, and sends or follows up the refunds owed.
/// Blocking: for the reconciler's thread. One payment that fails does not stop the others.
pub fn reconcile(db: &Db, payments: &Payments, clock: &Clock) -> anyhow::Result<Reconciled> {
    let Some(gateway) = payments.gateway() else {
        return Ok(Reconciled::default());
    };
    let mut done = Reconciled::default();
    let due = {
        let mut conn = db.conn()?;
        due_checks(&mut conn, clock.now())?
    };
    for payment in due {
        // Each step reads the clock afresh: the Stripe calls before it take time.
        let now = clock.now();
        match check_one(db, gateway, &payment, payments.reconcile_after, now) {
            Ok(Checked::Settled) => {
                done.checked += 1;
                done.settled += 1;
            }
            Ok(Checked::Cancelled) => {
                done.checked += 1;
                done.cancelled += 1;
            }
            Ok(Checked::Unchanged) => done.checked += 1,
            Err(e) => {
                tracing::warn!(payment = payment.id, intent = %payment.intent_id, error = %format!("{e:#}"), "cannot reconcile a payment; trying again later");
                let mut conn = db.conn()?;
                schedule_next(&mut conn, &payment, payments.reconcile_after, now, false)?;
            }
        }
    }
    done.refunds_updated = gateway.block_on(refunds::follow_up(db, gateway, clock.now()))??;
    done.refunds_sent = gateway.block_on(refunds::send_due(db, gateway, clock.now()))??;
    Ok(done)
}

/// Payments to look up now: those whose check is due, and open ones whose booking's hold ran out
/// without a look at Stripe since.
fn due_checks(conn: &mut DbConn, now: DateTime<Utc>) -> Result<Vec<ToCheck>, DbError> {
    let stamp = db::stored(now);
    let columns = (
        payments::id,
        payments::booking_id,
        payments::intent_id.assume_not_null(),
        payments::state,
        payments::checks,
    );
    let mut due: Vec<ToCheck> = payments::table
        .filter(payments::final_at.is_null())
        .filter(payments::intent_id.is_not_null())
        .filter(payments::next_check_at.le(stamp))
        .order(payments::next_check_at.asc())
        .limit(RECONCILE_BATCH)
        .select(columns)
        .load(conn)?;
    let at_deadline: Vec<ToCheck> = payments::table
        .inner_join(bookings_table::table)
        .filter(payments::final_at.is_null())
        .filter(payments::intent_id.is_not_null())
        .filter(payments::state.eq(PaymentState::Open.as_str()))
        .filter(bookings_table::status.eq(BookingStatus::Held.as_str()))
        .filter(bookings_table::hold_expires_at.le(stamp))
        .filter(
            payments::checked_at
                .is_null()
                .or(payments::checked_at.lt(bookings_table::hold_expires_at)),
        )
        .limit(RECONCILE_BATCH)
        .select(columns)
        .load(conn)?;
    for payment in at_deadline {
        if !due.iter().any(|d| d.id == payment.id) {
            due.push(payment);
        }
    }
    Ok(due)
}

enum Checked {
    Settled,
    Cancelled,
    Unchanged,
}

fn check_one(
    db: &Db,
    gateway: &Gateway,
    payment: &ToCheck,
    every: chrono::Duration,
    now: DateTime<Utc>,
) -> anyhow::Result<Checked> {
    let intent = gateway.block_on(gateway.retrieve_intent(&payment.intent_id))??;
    let mut conn = db.conn()?;
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
            tracing::info!(payment = payment.id, intent = %intent.id, outcome = applied.name(), "payment settled by the reconciler");
            Ok(Checked::Settled)
        }
        IntentStatus::Cancelled => {
            finish_cancelled(&mut conn, payment.id, now)?;
            Ok(Checked::Cancelled)
        }
        IntentStatus::Open | IntentStatus::Processing => {
            let booking_held =
                bookings::load(&mut conn, payment.booking_id)?.status == BookingStatus::Held;
            let wanted = payment.state == PaymentState::Open.as_str() && booking_held;
            if !wanted && intent.status == IntentStatus::Open {
                // Given up here, or its booking is no longer waiting for it: nobody may pay it.
                match gateway.block_on(gateway.cancel_intent(&intent.id))? {
                    Ok(cancelled) if cancelled.status == IntentStatus::Cancelled => {
                        finish_cancelled(&mut conn, payment.id, now)?;
                        tracing::info!(payment = payment.id, intent = %intent.id, "intent no longer wanted, cancelled at Stripe");
                        return Ok(Checked::Cancelled);
                    }
                    // Paid meanwhile, most likely: the next look settles it.
                    Ok(_) => {}
                    Err(e) => {
                        tracing::info!(payment = payment.id, error = %e, "intent not cancelled; looking again soon")
                    }
                }
            }
            schedule_next(&mut conn, payment, every, now, true)?;
            Ok(Checked::Unchanged)
        }
    }
}

/// Stripe cancelled the intent: the payment is closed for good.
fn finish_cancelled(conn: &mut DbConn, id: i64, now: DateTime<Utc>) -> Result<(), DbError> {
    let stamp = db::stored(now);
    diesel::update(payments::table.find(id))
        .filter(payments::state.ne(PaymentState::Succeeded.as_str()))
        .set((
            payments::state.eq(PaymentState::Cancelled.as_str()),
            payments::final_at.eq(Some(stamp)),
            payments::checked_at.eq(Some(stamp)),
            payments::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    Ok(())
}

/// The next look at a payment: `every`, doubling with each look, at most a day apart.
fn schedule_next(
    conn: &mut DbConn,
    payment: &ToCheck,
    every: chrono::Duration,
    now: DateTime<Utc>,
    answered: bool,
) -> Result<(), DbError> {
    let factor = 1_i32 << payment.checks.clamp(0, 10);
    let wait = (every * factor).min(chrono::Duration::days(1));
    let stamp = db::stored(now);
    let checked = if answered { Some(stamp) } else { None };
    diesel::update(payments::table.find(payment.id))
        .filter(payments::final_at.is_null())
        .set((
            payments::next_check_at.eq(Some(db::stored(now + wait))),
            payments::checks.eq(payments::checks + 1),
        ))
        .execute(conn)?;
    if let Some(checked) = checked {
        diesel::update(payments::table.find(payment.id))
            .set(payments::checked_at.eq(Some(checked)))
            .execute(conn)?;
    }
    Ok(())
}

/// Whether a held booking may expire now: not while a card payment of it, still open at Stripe,
/// has not been looked up since the hold ran out (it may have been paid in time, its webhook
/// late), unless Stripe has been out of reach for [`HOLD_GRACE_MINUTES`].
pub(crate) fn hold_may_expire(
    conn: &mut DbConn,
    booking_id: i64,
    hold_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    if hold_expires_at + chrono::Duration::minutes(HOLD_GRACE_MINUTES) <= now {
        return Ok(true);
    }
    let unsure: Option<i64> = payments::table
        .filter(payments::booking_id.eq(booking_id))
        .filter(payments::state.eq(PaymentState::Open.as_str()))
        .filter(payments::intent_id.is_not_null())
        .filter(payments::final_at.is_null())
        .filter(
            payments::checked_at
                .is_null()
                .or(payments::checked_at.lt(db::stored(hold_expires_at))),
        )
        .select(payments::id)
        .first(conn)
        .optional()?;
    Ok(unsure.is_none())
}
