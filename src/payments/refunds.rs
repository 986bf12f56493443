//! Refunds: a row written in the transaction that decides one, sent to Stripe after the commit
//! (with the row's id as idempotency key, so a retry never refunds twice), tried again with a
//! growing delay while Stripe cannot be reached, and counted on the booking once Stripe has
//! made it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::stripe::{Gateway, GatewayError, StripeRefund};
use super::{blocking, payment, Applied, Payment, PaymentError};
use crate::bookings::{self, PaymentStatus};
use crate::db::schema::{bookings as bookings_table, payments, refunds};
use crate::db::{self, Db, DbConn, DbError};
use crate::events;
use crate::mail::data::RefundMail;
use crate::mail::{self, compose, Template};

/// Why money goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundReason {
    /// The payment came after the hold ran out, and a place had been taken meanwhile.
    HoldLapsed,
    /// The booking was cancelled before its payment arrived.
    BookingCancelled,
    /// The booking had already been paid.
    AlreadyPaid,
    /// More was paid than the booking costs; the difference goes back.
    Overpaid,
    /// The payment does not match its booking (another currency, too little).
    Mismatch,
    /// Refunded from Stripe's dashboard, not by this service.
    AtStripe,
    /// The attendee cancelled paid places: what the refund policy gives back.
    AttendeeCancelled,
    /// The organisers cancelled a session: its price in full.
    SessionCancelled,
    /// The organisers cancelled the attendee's places: in full.
    OrganiserCancelled,
    /// An amount an organiser chose to refund.
    Organiser,
}

impl RefundReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HoldLapsed => "hold_lapsed",
            Self::BookingCancelled => "booking_cancelled",
            Self::AlreadyPaid => "already_paid",
            Self::Overpaid => "overpaid",
            Self::Mismatch => "mismatch",
            Self::AtStripe => "at_stripe",
            Self::AttendeeCancelled => "attendee_cancelled",
            Self::SessionCancelled => "session_cancelled",
            Self::OrganiserCancelled => "organiser_cancelled",
            Self::Organiser => "organiser",
        }
    }

    fn from_db(raw: &str) -> Self {
        match raw {
            "hold_lapsed" => Self::HoldLapsed,
            "booking_cancelled" => Self::BookingCancelled,
            "already_paid" => Self::AlreadyPaid,
            "overpaid" => Self::Overpaid,
            "at_stripe" => Self::AtStripe,
            "attendee_cancelled" => Self::AttendeeCancelled,
            "session_cancelled" => Self::SessionCancelled,
            "organiser_cancelled" => Self::OrganiserCancelled,
            "organiser" => Self::Organiser,
            _ => Self::Mismatch,
        }
    }

    /// How the email explains it, after "We have refunded £X to the card you paid with".
    fn why(self) -> &'static str {
        match self {
            Self::HoldLapsed => {
                "because your payment reached us after the time we could hold your places, and they had been booked by someone else in the meantime"
            }
            Self::BookingCancelled => {
                "because your booking had been cancelled before your payment reached us"
            }
            Self::AlreadyPaid => "because your booking had already been paid for",
            Self::Overpaid => "because you paid more than your booking costs",
            Self::Mismatch => "because the payment did not match your booking",
            Self::AttendeeCancelled => {
                "for the places you cancelled, as the refund policy you booked under provides"
            }
            Self::SessionCancelled => "because the organisers cancelled the session",
            Self::OrganiserCancelled => "because the organisers cancelled your places",
            Self::AtStripe | Self::Organiser => "",
        }
    }

    /// Whether the booking keeps no place after this refund.
    fn nothing_kept(self) -> bool {
        matches!(
            self,
            Self::HoldLapsed | Self::BookingCancelled | Self::Mismatch
        )
    }

    /// Whether the email lists the cancelled places the money was for.
    fn about_cancelled_places(self) -> bool {
        matches!(
            self,
            Self::AttendeeCancelled | Self::SessionCancelled | Self::OrganiserCancelled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefundState {
    Pending,
    Succeeded,
    Failed,
}

impl RefundState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Stripe's refund status: `succeeded`; `failed` or `canceled`; anything else still going.
    fn of_stripe(status: Option<&str>) -> Self {
        match status {
            Some("succeeded") => Self::Succeeded,
            Some("failed" | "canceled") => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// Writes a refund of `amount` of `payment` as owed, inside the caller's transaction; returns
/// its id, for [`send`] once the transaction has committed.
pub fn owe(
    conn: &mut DbConn,
    payment: &Payment,
    amount: i64,
    reason: RefundReason,
    now: DateTime<Utc>,
) -> Result<i64, DbError> {
    let stamp = db::stored(now);
    Ok(diesel::insert_into(refunds::table)
        .values((
            refunds::booking_id.eq(payment.booking_id),
            refunds::payment_id.eq(payment.id),
            refunds::amount_minor.eq(amount.max(1)),
            refunds::currency.eq(&payment.currency),
            refunds::reason.eq(reason.as_str()),
            refunds::state.eq(RefundState::Pending.as_str()),
            refunds::next_attempt_at.eq(stamp),
            refunds::created_at.eq(stamp),
            refunds::updated_at.eq(stamp),
        ))
        .returning(refunds::id)
        .get_result(conn)?)
}

/// How much of a cancelled seat's price comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// What the booking's refund policy gives for cancelling now (the attendee cancels).
    Policy,
    /// All of it (the organisers cancelled).
    Full,
}

/// Refunds owed for `cancelled` seats (session id and price) of booking `booking_id`, which the
/// caller has just cancelled in its transaction: each paid seat's price, or the share the
/// booking's refund policy gives for cancelling at `now`, never more than is left of what was
/// paid. Returns the refunds written, for [`send`] once the transaction has committed.
pub fn for_cancelled_seats(
    conn: &mut DbConn,
    booking_id: i64,
    cancelled: &[(chrono::DateTime<Utc>, i64)],
    share: Share,
    reason: RefundReason,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, DbError> {
    let booking = bookings::load(conn, booking_id)?;
    if booking.paid_minor == 0 {
        return Ok(Vec::new());
    }
    let policy = booking.refund_policy.clone().unwrap_or_default();
    let wanted: i64 = cancelled
        .iter()
        .map(|(starts_at, price)| match share {
            Share::Full => *price,
            Share::Policy => super::policy::share(*price, policy.percent_at(*starts_at, now)),
        })
        .sum();
    refund_up_to(conn, booking_id, wanted, reason, None, now)
}

/// Refunds `amount` of booking `booking_id`'s card payments, or as much of it as is left of
/// what they received; returns the refunds written.
pub fn refund_up_to(
    conn: &mut DbConn,
    booking_id: i64,
    amount: i64,
    reason: RefundReason,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, DbError> {
    let mut left = amount;
    let mut written = Vec::new();
    for payment in super::for_booking(conn, booking_id)? {
        if left <= 0 {
            break;
        }
        if payment.state != super::PaymentState::Succeeded {
            continue;
        }
        let room = payment.amount_minor - refundable_taken(conn, &payment)?;
        let part = left.min(room);
        if part > 0 {
            let id = owe(conn, &payment, part, reason, now)?;
            if let Some(note) = note {
                diesel::update(refunds::table.find(id))
                    .set(refunds::note.eq(note))
                    .execute(conn)?;
            }
            written.push(id);
            left -= part;
        }
    }
    Ok(written)
}

/// What of `payment` is refunded or on its way back: the larger of Stripe's count and this
/// service's refunds that have not failed.
fn refundable_taken(conn: &mut DbConn, payment: &Payment) -> Result<i64, DbError> {
    let asked: i64 = refunds::table
        .filter(refunds::payment_id.eq(payment.id))
        .filter(refunds::state.ne(RefundState::Failed.as_str()))
        .select(refunds::amount_minor)
        .load::<i64>(conn)?
        .into_iter()
        .sum();
    Ok(asked.max(payment.refunded_minor))
}

/// What cancelling some confirmed places of a booking now would give back, as the attendee is
/// told before confirming: each place's share under the booking's refund policy, and what of it
/// goes back to the card and what is credited on the invoice. Worked out as the cancellation
/// does it ([`for_cancelled_seats`], then the credit note), each part capped the same way.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Per place, in the order given: the percentage and the amount.
    pub places: Vec<(u8, i64)>,
    /// Back to the card: the shares, capped at what is left of the card payments.
    pub to_card: i64,
    /// Credited on the invoice: the shares, capped at what is left of the invoice.
    pub on_invoice: i64,
}

/// The [`Preview`] of cancelling `places` (start and price of each confirmed place) of `booking`
/// at `now`.
pub fn preview(
    conn: &mut DbConn,
    booking: &bookings::Booking,
    places: &[(DateTime<Utc>, i64)],
    now: DateTime<Utc>,
) -> Result<Preview, DbError> {
    // As the booking stands: a booking with no policy of its own gives nothing back.
    let policy = booking.refund_policy.clone().unwrap_or_default();
    let shares: Vec<(u8, i64)> = places
        .iter()
        .map(|(starts_at, price)| {
            let percent = policy.percent_at(*starts_at, now);
            (percent, super::policy::share(*price, percent))
        })
        .collect();
    let wanted: i64 = shares.iter().map(|(_, amount)| amount).sum();
    let to_card = if booking.paid_minor > 0 {
        wanted.min(refundable(conn, booking.id)?)
    } else {
        0
    };
    let on_invoice =
        super::invoices::credit_room(conn, booking.id)?.map_or(0, |room| wanted.min(room));
    Ok(Preview {
        places: shares,
        to_card,
        on_invoice,
    })
}

/// A refund of a booking as its attendee sees it.
#[derive(Debug, Clone)]
pub struct RefundLine {
    pub amount_minor: i64,
    pub currency: String,
    /// `pending` (on its way), `succeeded` or `failed`.
    pub state: &'static str,
}

/// The booking's refunds, oldest first.
pub fn for_booking(conn: &mut DbConn, booking_id: i64) -> Result<Vec<RefundLine>, DbError> {
    let rows: Vec<(i64, String, String)> = refunds::table
        .filter(refunds::booking_id.eq(booking_id))
        .order(refunds::id.asc())
        .select((refunds::amount_minor, refunds::currency, refunds::state))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(amount_minor, currency, state)| RefundLine {
            amount_minor,
            currency,
            state: match state.as_str() {
                "succeeded" => RefundState::Succeeded.as_str(),
                "failed" => RefundState::Failed.as_str(),
                _ => RefundState::Pending.as_str(),
            },
        })
        .collect())
}

/// What can still be refunded of booking `booking_id`'s card payments.
pub fn refundable(conn: &mut DbConn, booking_id: i64) -> Result<i64, DbError> {
    let mut room = 0;
    for payment in super::for_booking(conn, booking_id)? {
        if payment.state == super::PaymentState::Succeeded {
            room += (payment.amount_minor - refundable_taken(conn, &payment)?).max(0);
        }
    }
    Ok(room)
}

/// A refund owed and not yet taken by Stripe.
#[derive(Debug, Clone, Queryable)]
struct Owed {
    id: i64,
    intent_id: Option<String>,
    amount_minor: i64,
    attempts: i32,
    reference: String,
}

/// How many refunds one pass sends at most.
const SEND_BATCH: i64 = 50;
/// After this many failed attempts a refund is left failed, for a person to look at.
const MAX_ATTEMPTS: i32 = 10;

/// Sends the refunds owed by `now` (those of `only`, when given) to Stripe; returns how many
/// Stripe took.
pub async fn send(
    db: &Db,
    gateway: &Gateway,
    only: Option<Vec<i64>>,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let owed = blocking(db, move |conn| {
        let mut query = refunds::table
            .inner_join(payments::table.inner_join(bookings_table::table))
            .filter(refunds::state.eq(RefundState::Pending.as_str()))
            .filter(refunds::provider_refund_id.is_null())
            .filter(refunds::next_attempt_at.le(db::stored(now)))
            .order(refunds::id.asc())
            .limit(SEND_BATCH)
            .select((
                refunds::id,
                payments::intent_id,
                refunds::amount_minor,
                refunds::attempts,
                bookings_table::reference,
            ))
            .into_boxed();
        if let Some(ids) = only {
            query = query.filter(refunds::id.eq_any(ids));
        }
        query.load::<Owed>(conn).map_err(DbError::from)
    })
    .await?;
    let mut sent = 0;
    for refund in owed {
        let Some(intent_id) = refund.intent_id.clone() else {
            continue;
        };
        // One sender at a time per refund (the webhook's and the reconciler's may meet): the
        // claim moves its next attempt past the time a Stripe request can take.
        let id = refund.id;
        if !blocking(db, move |conn| claim(conn, id, now)).await? {
            continue;
        }
        let answer = if refund.attempts == 0 {
            ask(gateway, &intent_id, &refund).await
        } else {
            // Tried before without an answer Stripe kept: if a refund was made then, it is the
            // answer; if not, a new key (Stripe repeats a failed answer for the old one).
            match gateway.refunds_of(&intent_id).await {
                Ok(made) => match made
                    .into_iter()
                    .find(|r| r.metadata.get("refund_id") == Some(&refund.id.to_string()))
                {
                    Some(made) => Ok(made),
                    None => ask(gateway, &intent_id, &refund).await,
                },
                Err(e) => Err(e),
            }
        };
        let taken = answer.is_ok();
        blocking(db, move |conn| record_answer(conn, &refund, answer, now)).await?;
        if taken {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Asks Stripe for the refund; the key names the booking (apart across databases sharing one
/// Stripe account), the refund and the attempt.
async fn ask(
    gateway: &Gateway,
    intent_id: &str,
    refund: &Owed,
) -> Result<StripeRefund, GatewayError> {
    let metadata = HashMap::from([
        ("refund_id".to_owned(), refund.id.to_string()),
        ("booking_reference".to_owned(), refund.reference.clone()),
    ]);
    let key = format!(
        "masterclass-{}-refund-{}-{}",
        refund.reference, refund.id, refund.attempts
    );
    gateway
        .refund(intent_id, refund.amount_minor, metadata, &key)
        .await
}

/// Looks up refunds Stripe took but had not finished, and records those now done. Returns how
/// many changed.
pub async fn follow_up(db: &Db, gateway: &Gateway, now: DateTime<Utc>) -> Result<usize, DbError> {
    let waiting: Vec<(i64, String, i32)> = blocking(db, move |conn| {
        refunds::table
            .filter(refunds::state.eq(RefundState::Pending.as_str()))
            .filter(refunds::provider_refund_id.is_not_null())
            .filter(refunds::next_attempt_at.le(db::stored(now)))
            .order(refunds::next_attempt_at.asc())
            .limit(FOLLOW_UP_BATCH)
            .select((
                refunds::id,
                refunds::provider_refund_id.assume_not_null(),
                refunds::attempts,
            ))
            .load(conn)
            .map_err(DbError::from)
    })
    .await?;
    let mut changed = 0;
    for (id, provider_id, attempts) in waiting {
        let looked = gateway.retrieve_refund(&provider_id).await;
        let applied = blocking(db, move |conn| {
            let applied = match looked {
                Ok(refund) => db::write_transaction(conn, |conn| {
                    status_from_stripe(conn, &refund.id, Some(&refund.status), now).map_err(
                        |e| match e {
                            PaymentError::Db(e) => e,
                            other => DbError::Inconsistent(other.to_string()),
                        },
                    )
                })?,
                Err(e) => {
                    tracing::warn!(refund = id, error = %e, "cannot look up a refund at Stripe; trying again later");
                    Applied::Ignored
                }
            };
            // Still going: look again later, further apart each time (at most daily).
            let wait = chrono::Duration::seconds((60_i64 << attempts.clamp(0, 11)).min(86_400));
            diesel::update(refunds::table.find(id))
                .filter(refunds::state.eq(RefundState::Pending.as_str()))
                .set((
                    refunds::attempts.eq(refunds::attempts + 1),
                    refunds::next_attempt_at.eq(db::stored(now + wait)),
                ))
                .execute(conn)?;
            Ok(applied)
        })
        .await?;
        if applied == Applied::RefundUpdated {
            changed += 1;
        }
    }
    Ok(changed)
}

/// How many refunds in progress one pass looks up at most.
const FOLLOW_UP_BATCH: i64 = 20;

/// How long a sender holds a refund it is sending.
const SEND_LEASE_SECONDS: i64 = 120;

/// Takes refund `id` for sending if it is still owed and nobody else has taken it.
fn claim(conn: &mut DbConn, id: i64, now: DateTime<Utc>) -> Result<bool, DbError> {
    let changed = diesel::update(refunds::table.find(id))
        .filter(refunds::state.eq(RefundState::Pending.as_str()))
        .filter(refunds::provider_refund_id.is_null())
        .filter(refunds::next_attempt_at.le(db::stored(now)))
        .set(refunds::next_attempt_at.eq(db::stored(
            now + chrono::Duration::seconds(SEND_LEASE_SECONDS),
        )))
        .execute(conn)?;
    Ok(changed == 1)
}

/// [`send`] for every refund due.
pub async fn send_due(db: &Db, gateway: &Gateway, now: DateTime<Utc>) -> Result<usize, DbError> {
    send(db, gateway, None, now).await
}

fn record_answer(
    conn: &mut DbConn,
    refund: &Owed,
    answer: Result<StripeRefund, GatewayError>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let stamp = db::stored(now);
    match answer {
        Ok(made) => db::write_transaction(conn, |conn| {
            let state = RefundState::of_stripe(Some(&made.status));
            // Recorded once: a second answer for the same refund (Stripe returns the first
            // refund again for its idempotency key) changes nothing.
            let changed = diesel::update(refunds::table.find(refund.id))
                .filter(refunds::provider_refund_id.is_null())
                .filter(refunds::state.eq(RefundState::Pending.as_str()))
                .set((
                    refunds::provider_refund_id.eq(&made.id),
                    refunds::state.eq(state.as_str()),
                    refunds::attempts.eq(0),
                    refunds::last_error.eq(None::<String>),
                    // Still going at Stripe: the first follow-up.
                    refunds::next_attempt_at.eq(db::stored(now + chrono::Duration::minutes(1))),
                    refunds::updated_at.eq(stamp),
                ))
                .execute(conn)?;
            if changed == 1 && state == RefundState::Succeeded {
                refunded(conn, refund.id, now)?;
            }
            Ok(())
        }),
        Err(e) => {
            let attempts = refund.attempts + 1;
            let give_up = !e.is_transient() || attempts >= MAX_ATTEMPTS;
            if give_up {
                tracing::error!(refund = refund.id, error = %e, "refund refused by Stripe; left for an organiser");
            } else {
                tracing::warn!(refund = refund.id, error = %e, "refund not sent; trying again later");
            }
            // 30 s, 1 min, 2 min, ... up to 1 h.
            let delay = chrono::Duration::seconds((30_i64 << attempts.min(7)).min(3600));
            diesel::update(refunds::table.find(refund.id))
                .filter(refunds::provider_refund_id.is_null())
                .filter(refunds::state.eq(RefundState::Pending.as_str()))
                .set((
                    refunds::state.eq(if give_up {
                        RefundState::Failed.as_str()
                    } else {
                        RefundState::Pending.as_str()
                    }),
                    refunds::attempts.eq(attempts),
                    refunds::last_error.eq(e.to_string()),
                    refunds::next_attempt_at.eq(db::stored(now + delay)),
                    refunds::updated_at.eq(stamp),
                ))
                .execute(conn)?;
            Ok(())
        }
    }
}

/// A refund Stripe has made: counted on its payment and booking, and the attendee told.
fn refunded(conn: &mut DbConn, refund_id: i64, now: DateTime<Utc>) -> Result<(), DbError> {
    let (payment_id, amount, reason, note): (i64, i64, String, Option<String>) = refunds::table
        .find(refund_id)
        .select((
            refunds::payment_id,
            refunds::amount_minor,
            refunds::reason,
            refunds::note,
        ))
        .first(conn)?;
    let ours: i64 = refunds::table
        .filter(refunds::payment_id.eq(payment_id))
        .filter(refunds::state.eq(RefundState::Succeeded.as_str()))
        .select(refunds::amount_minor)
        .load::<i64>(conn)?
        .into_iter()
        .sum();
    let payment = payment(conn, payment_id)?;
    raise_refunded(conn, &payment, ours, now)?;
    tell(
        conn,
        &payment,
        amount,
        RefundReason::from_db(&reason),
        note.as_deref(),
    )
}

/// Sets the payment's refunded amount to at least `total` (Stripe's running total, or the sum of
/// this service's refunds: whichever is known to be larger), and the booking's to the sum over
/// its payments. Returns by how much the payment's amount rose.
fn raise_refunded(
    conn: &mut DbConn,
    payment: &Payment,
    total: i64,
    now: DateTime<Utc>,
) -> Result<i64, DbError> {
    let stamp = db::stored(now);
    // The booking row first: every change of refunded amounts of its payments queues here, so
    // the sum below sees them all.
    lock_booking(conn, payment.booking_id)?;
    let before: i64 = payments::table
        .find(payment.id)
        .select(payments::refunded_minor)
        .first(conn)?;
    let rise = (total - before).max(0);
    if rise > 0 {
        diesel::update(payments::table.find(payment.id))
            .filter(payments::refunded_minor.lt(total))
            .set((
                payments::refunded_minor.eq(total),
                payments::updated_at.eq(stamp),
            ))
            .execute(conn)?;
    }
    let refunded: i64 = payments::table
        .filter(payments::booking_id.eq(payment.booking_id))
        .select(payments::refunded_minor)
        .load::<i64>(conn)?
        .into_iter()
        .sum();
    let paid: i64 = bookings_table::table
        .find(payment.booking_id)
        .select(bookings_table::paid_minor)
        .first(conn)?;
    let mut status = None;
    if paid > 0 && refunded >= paid {
        status = Some(PaymentStatus::Refunded.as_str());
    }
    diesel::update(bookings_table::table.find(payment.booking_id))
        .set((
            bookings_table::refunded_minor.eq(refunded),
            bookings_table::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    if let Some(status) = status {
        diesel::update(bookings_table::table.find(payment.booking_id))
            .set(bookings_table::payment_status.eq(status))
            .execute(conn)?;
    }
    Ok(rise)
}

/// Takes booking `id`'s row lock (on SQLite writers are serialised anyway).
pub(crate) fn lock_booking(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    diesel::update(bookings_table::table.find(id))
        .set(bookings_table::refunded_minor.eq(bookings_table::refunded_minor))
        .execute(conn)?;
    Ok(())
}

/// Emails the attendee that `amount` of `payment` has been refunded.
fn tell(
    conn: &mut DbConn,
    payment: &Payment,
    amount: i64,
    reason: RefundReason,
    note: Option<&str>,
) -> Result<(), DbError> {
    let booking = bookings::load(conn, payment.booking_id)?;
    let event = events::by_id(conn, booking.event_id)?;
    let mut data = compose::booking_mail(&event, &booking.reference, &booking.attendee_name);
    data.seats = booking
        .seats
        .iter()
        .filter(|s| {
            if reason.about_cancelled_places() {
                s.state == bookings::SeatState::Cancelled
            } else {
                !reason.nothing_kept() || s.state != bookings::SeatState::Confirmed
            }
        })
        .map(|s| s.mail(&event, s.state.as_str()))
        .collect();
    data.refund = Some(RefundMail {
        amount: compose::money(amount, &payment.currency),
        why: match note {
            Some(note) => format!("with this note from the organisers: \u{201c}{note}\u{201d}"),
            None => reason.why().to_owned(),
        },
        nothing_kept: reason.nothing_kept(),
    });
    mail::enqueue(
        conn,
        Template::PaymentRefunded,
        &booking.attendee_email,
        Some(booking.id),
        &data,
    )
}

/// `charge.refunded`: Stripe's running total of what has been refunded of the intent's charge.
/// Refunds made outside this service (from Stripe's dashboard) are counted and told to the
/// attendee; this service's own are already counted when Stripe answered.
pub fn refunded_at_stripe(
    conn: &mut DbConn,
    intent_id: &str,
    total_refunded: i64,
    now: DateTime<Utc>,
) -> Result<Applied, PaymentError> {
    let Some(found) = super::by_intent(conn, intent_id)? else {
        return Ok(Applied::Ignored);
    };
    // Sessions, then the booking, as settling a payment takes them.
    bookings::lock_sessions_of(conn, found.booking_id)?;
    lock_booking(conn, found.booking_id)?;
    let payment = payment(conn, found.id)?;
    // What this service has asked for, made or not yet: the rest was refunded elsewhere.
    let taken = refundable_taken(conn, &payment)?;
    let rise = raise_refunded(conn, &payment, total_refunded, now)?;
    let elsewhere = total_refunded - taken;
    if rise > 0 && elsewhere > 0 {
        let stamp = db::stored(now);
        diesel::insert_into(refunds::table)
            .values((
                refunds::booking_id.eq(payment.booking_id),
                refunds::payment_id.eq(payment.id),
                refunds::amount_minor.eq(elsewhere),
                refunds::currency.eq(&payment.currency),
                refunds::reason.eq(RefundReason::AtStripe.as_str()),
                refunds::state.eq(RefundState::Succeeded.as_str()),
                refunds::next_attempt_at.eq(stamp),
                refunds::created_at.eq(stamp),
                refunds::updated_at.eq(stamp),
            ))
            .execute(conn)?;
        tell(conn, &payment, elsewhere, RefundReason::AtStripe, None)?;
    }
    Ok(Applied::RefundUpdated)
}

/// `refund.*`: the new status of a refund this service asked for.
pub fn status_from_stripe(
    conn: &mut DbConn,
    provider_refund_id: &str,
    status: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Applied, PaymentError> {
    let found: Option<(i64, String)> = refunds::table
        .filter(refunds::provider_refund_id.eq(provider_refund_id))
        .select((refunds::id, refunds::state))
        .first(conn)
        .optional()?;
    let Some((id, state)) = found else {
        return Ok(Applied::Ignored);
    };
    let new = RefundState::of_stripe(status);
    // Only a pending refund moves: a refund counted as made is not taken back by a late or
    // repeated event.
    if state != RefundState::Pending.as_str() || new == RefundState::Pending {
        return Ok(Applied::Ignored);
    }
    let changed = diesel::update(refunds::table.find(id))
        .filter(refunds::state.eq(RefundState::Pending.as_str()))
        .set((
            refunds::state.eq(new.as_str()),
            refunds::updated_at.eq(db::stored(now)),
        ))
        .execute(conn)?;
    if changed == 0 {
        // Another report of the same change came first.
        return Ok(Applied::Ignored);
    }
    if new == RefundState::Succeeded {
        refunded(conn, id, now)?;
    } else {
        tracing::error!(
            refund = id,
            "Stripe reports a refund failed; left for an organiser"
        );
    }
    Ok(Applied::RefundUpdated)
}

/// Why an organiser's refund was refused.
#[derive(Debug, thiserror::Error)]
pub enum RefundRefusal {
    #[error("at most {0} can be refunded")]
    TooMuch(i64),
    #[error(transparent)]
    Booking(#[from] crate::bookings::BookingError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for RefundRefusal {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// An organiser refunds `amount` of booking `reference`'s card payments, up to what is left,
/// with `note` for the attendee. Returns how many refunds were written (one per payment drawn
/// on) and what can still be refunded after this one.
pub fn by_organiser(
    conn: &mut DbConn,
    reference: &str,
    amount: i64,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(usize, i64), RefundRefusal> {
    db::write_transaction(conn, |conn| {
        let id = bookings::id_for_reference(conn, reference)?;
        lock_booking(conn, id)?;
        let room = refundable(conn, id)?;
        if amount > room {
            return Err(RefundRefusal::TooMuch(room));
        }
        let written = refund_up_to(conn, id, amount, RefundReason::Organiser, note, now)?;
        Ok((written.len(), room - amount))
    })
}
