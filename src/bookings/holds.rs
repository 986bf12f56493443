//! Held bookings: confirmed when their payment arrives, expired when the hold runs out first.
//! Every change to a booking's seats takes the session rows first, in id order, as bookings and
//! cancellations do, so none of them wait on each other in a circle.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::notices::notify;
use super::queries::load;
use super::{Booking, BookingError, BookingStatus, Issuer, PaymentStatus, SeatState};
use crate::db::schema::{bookings, seats};
use crate::db::{self, DbConn, DbError};
use crate::events;
use crate::mail::{self, compose, Template};
use crate::{sessions, waitlist};

/// How many held bookings one sweep expires at most; the next sweep takes the rest.
const SWEEP_BATCH: i64 = 200;

/// Confirms a held booking whose payment has arrived: its held seats become confirmed, it is
/// marked paid and the attendee gets their confirmation. A booking that is no longer held
/// (expired, cancelled, already confirmed) is refused with [`BookingError::NotHeld`] and left
/// as it is; the payments code decides what to do with the money.
#[tracing::instrument(level = "debug", skip(conn))]
pub fn confirm_payment(
    conn: &mut DbConn,
    booking_id: i64,
    now: DateTime<Utc>,
) -> Result<Booking, BookingError> {
    db::write_transaction(conn, |conn| {
        let total = load(conn, booking_id)?.total_minor;
        confirm_paid(conn, booking_id, total, now)
    })
}

/// [`confirm_payment`] inside the caller's transaction, recording `paid` (minor units) as
/// received and the event's refund policy as the one promised.
pub fn confirm_paid(
    conn: &mut DbConn,
    booking_id: i64,
    paid: i64,
    now: DateTime<Utc>,
) -> Result<Booking, BookingError> {
    let booking = load(conn, booking_id)?;
    lock_sessions(conn, &booking, SeatState::Held)?;
    let event = events::by_id(conn, booking.event_id)?;
    let stamp = db::stored(now);
    let changed = diesel::update(bookings::table.find(booking_id))
        .filter(bookings::status.eq(BookingStatus::Held.as_str()))
        .set((
            bookings::status.eq(BookingStatus::Confirmed.as_str()),
            bookings::payment_status.eq(PaymentStatus::Paid.as_str()),
            bookings::paid_minor.eq(bookings::paid_minor + paid),
            bookings::refund_policy.eq(Some(event.refund_policy.to_stored())),
            bookings::hold_expires_at.eq(None::<chrono::NaiveDateTime>),
            bookings::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    if changed == 0 {
        let now_status = load(conn, booking_id)?.status;
        return Err(BookingError::NotHeld {
            reference: booking.reference,
            status: now_status,
        });
    }
    diesel::update(seats::table)
        .filter(seats::booking_id.eq(booking_id))
        .filter(seats::state.eq(SeatState::Held.as_str()))
        .set(seats::state.eq(SeatState::Confirmed.as_str()))
        .execute(conn)?;
    let booking = load(conn, booking_id)?;
    send_receipt(conn, &event, &booking, paid)?;
    Ok(booking)
}

/// A payment arrived for a booking whose hold had already run out: if every seat it held is
/// still free (and the person has not booked it, or anything clashing with it, since), the seats
/// are taken again and the booking confirmed as paid. Returns `None`, changing nothing, when
/// any seat is gone; the payments code then refunds the money.
pub fn revive_paid(
    conn: &mut DbConn,
    booking_id: i64,
    paid: i64,
    now: DateTime<Utc>,
) -> Result<Option<Booking>, BookingError> {
    let booking = load(conn, booking_id)?;
    if booking.status != BookingStatus::Expired {
        return Ok(None);
    }
    let wanted = lock_sessions(conn, &booking, SeatState::Expired)?;
    if wanted.is_empty() {
        return Ok(None);
    }
    let event = events::by_id(conn, booking.event_id)?;
    let email = crate::validation::Email::normalize(&booking.attendee_email);
    // Everything is checked under the session locks before anything changes.
    for id in &wanted {
        let session = sessions::find(conn, *id)?;
        let free = session.status == sessions::SessionStatus::Published
            && session.starts_at > now
            && session.taken < session.capacity;
        if !free || holds_active_seat(conn, &email, *id)? {
            return Ok(None);
        }
        if !event.allow_clashes && sessions::clashing_seat(conn, &email, &session)?.is_some() {
            return Ok(None);
        }
    }
    let stamp = db::stored(now);
    for id in &wanted {
        sessions::reserve_seat(conn, *id)?;
        diesel::update(seats::table)
            .filter(seats::booking_id.eq(booking_id))
            .filter(seats::session_id.eq(id))
            .filter(seats::state.eq(SeatState::Expired.as_str()))
            .set((
                seats::state.eq(SeatState::Confirmed.as_str()),
                seats::cancelled_at.eq(None::<chrono::NaiveDateTime>),
            ))
            .execute(conn)?;
    }
    diesel::update(bookings::table.find(booking_id))
        .filter(bookings::status.eq(BookingStatus::Expired.as_str()))
        .set((
            bookings::status.eq(BookingStatus::Confirmed.as_str()),
            bookings::payment_status.eq(PaymentStatus::Paid.as_str()),
            bookings::paid_minor.eq(bookings::paid_minor + paid),
            bookings::refund_policy.eq(Some(event.refund_policy.to_stored())),
            bookings::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    let booking = load(conn, booking_id)?;
    send_receipt(conn, &event, &booking, paid)?;
    tracing::info!(reference = %booking.reference, "late payment: expired seats taken again");
    Ok(Some(booking))
}

/// Whether the person (normalised email) holds an active seat in the session.
fn holds_active_seat(conn: &mut DbConn, email: &str, session_id: i64) -> Result<bool, DbError> {
    let held: Option<i64> = seats::table
        .filter(seats::attendee_email.eq(email))
        .filter(seats::session_id.eq(session_id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .select(seats::id)
        .first(conn)
        .optional()?;
    Ok(held.is_some())
}

/// The confirmation of a paid booking, which is its receipt: the seats, and what was paid
/// split into net and VAT.
fn send_receipt(
    conn: &mut DbConn,
    event: &events::Event,
    booking: &Booking,
    paid: i64,
) -> Result<(), DbError> {
    let mut data = booking.mail(event, SeatState::Confirmed);
    data.paid = true;
    data.payment = Some(compose::payment(paid, event.vat_rate_bp, &booking.currency));
    mail::enqueue(
        conn,
        Template::BookingConfirmed,
        &booking.attendee_email,
        Some(booking.id),
        &data,
    )
}

/// Expires held bookings whose hold ran out by `now`: their seats go back to their sessions
/// (offered to the waitlist first) and the attendees are told. Each booking is its own
/// transaction and is expired only if it is still held then, so any number of sweepers may run.
/// Returns how many bookings this call expired.
pub fn expire_holds(
    conn: &mut DbConn,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<usize, BookingError> {
    let due: Vec<i64> = bookings::table
        .filter(bookings::status.eq(BookingStatus::Held.as_str()))
        .filter(bookings::hold_expires_at.le(db::stored(now)))
        .order(bookings::hold_expires_at.asc())
        .select(bookings::id)
        .limit(SWEEP_BATCH)
        .load(conn)?;
    let mut expired = 0;
    for id in due {
        match db::write_transaction(conn, |conn| expire_one(conn, id, issuer, now)) {
            Ok(true) => expired += 1,
            Ok(false) => {}
            // One booking that cannot expire must not hold up the others.
            Err(e) => tracing::warn!(booking = id, error = %e, "hold not expired; will try again"),
        }
    }
    Ok(expired)
}

fn expire_one(
    conn: &mut DbConn,
    id: i64,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<bool, BookingError> {
    let booking = load(conn, id)?;
    let held = lock_sessions(conn, &booking, SeatState::Held)?;
    if let Some(until) = booking.hold_expires_at {
        if !crate::payments::hold_may_expire(conn, id, until, now)? {
            return Ok(false);
        }
    }
    // Read again under the locks: a seat moved meanwhile would sit in a session not locked
    // here. Leave the booking to the next sweep, which reads it afresh.
    let now_held: Vec<i64> = load(conn, id)?
        .seats
        .iter()
        .filter(|s| s.state == SeatState::Held)
        .map(|s| s.session_id)
        .collect();
    if now_held.iter().any(|s| !held.contains(s)) {
        return Ok(false);
    }
    let stamp = db::stored(now);
    // Still held and still due, now that the locks are ours: a payment or another sweeper may
    // have come first.
    let changed = diesel::update(bookings::table.find(id))
        .filter(bookings::status.eq(BookingStatus::Held.as_str()))
        .filter(bookings::hold_expires_at.le(stamp))
        .set((
            bookings::status.eq(BookingStatus::Expired.as_str()),
            bookings::hold_expires_at.eq(None::<chrono::NaiveDateTime>),
            bookings::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Ok(false);
    }
    for session_id in &held {
        let freed = diesel::update(seats::table)
            .filter(seats::booking_id.eq(id))
            .filter(seats::session_id.eq(session_id))
            .filter(seats::state.eq(SeatState::Held.as_str()))
            .set((
                seats::state.eq(SeatState::Expired.as_str()),
                seats::cancelled_at.eq(Some(stamp)),
            ))
            .execute(conn)?;
        if freed > 0 {
            sessions::free_seats(conn, *session_id, freed as i32)?;
            waitlist::offer_free_seats(conn, *session_id, issuer, now)?;
        }
    }
    // Its card payments are not wanted now: the reconciler cancels them at Stripe.
    let open = crate::payments::open_payments(conn, id)?;
    crate::payments::give_up(conn, &open, now)?;
    let booking = load(conn, id)?;
    let event = events::by_id(conn, booking.event_id)?;
    notify(conn, &event, &booking, &held, Template::HoldExpired)?;
    tracing::info!(reference = %booking.reference, seats = held.len(), "hold expired");
    Ok(true)
}

/// Takes the row locks of every session booking `id` has a seat in, whatever the seat's state, in
/// id order: what a change to the booking's seats or its payment takes first. The seats are read
/// again once the locks are held: a seat moved to another session meanwhile has its new session
/// locked too (rarely, and then out of order, which PostgreSQL resolves by failing one side for
/// a retry).
pub fn lock_sessions_of(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    let mut locked: Vec<i64> = Vec::new();
    loop {
        let mut ids: Vec<i64> = seats::table
            .filter(seats::booking_id.eq(id))
            .select(seats::session_id)
            .load(conn)?;
        ids.sort_unstable();
        ids.dedup();
        let new: Vec<i64> = ids.into_iter().filter(|s| !locked.contains(s)).collect();
        if new.is_empty() {
            return Ok(());
        }
        for session in &new {
            sessions::lock(conn, *session)?;
        }
        locked.extend(new);
    }
}

/// Takes the row locks of the sessions where `booking` has seats in `state`, in id order;
/// returns those session ids.
fn lock_sessions(
    conn: &mut DbConn,
    booking: &Booking,
    state: SeatState,
) -> Result<Vec<i64>, DbError> {
    let mut ids: Vec<i64> = booking
        .seats
        .iter()
        .filter(|s| s.state == state)
        .map(|s| s.session_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for id in &ids {
        sessions::lock(conn, *id)?;
    }
    Ok(ids)
}
