//! Cancelling seats: by the attendee (some or all of a booking) or because an organiser
//! cancelled the session. Each freed seat goes back to its session in the same transaction.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::book::take_or_refuse;
use super::notices::notify;
use super::queries::{id_for_reference, id_for_token, load};
use super::{Booking, BookingError, BookingStatus, Issuer, SeatState};
use crate::db::schema::{bookings, seats};
use crate::db::{self, DbConn, DbError};
use crate::events::{self, Event};
use crate::mail::Template;
use crate::payments::invoices;
use crate::payments::refunds::{self, RefundReason, Share};
use crate::validation::{Email, ValidationError};
use crate::{sessions, waitlist};

/// Cancels the booking's seats in `session_ids`, or all of them; each freed seat goes back to
/// its session in the same transaction. Seats already cancelled are left as they are.
#[tracing::instrument(level = "debug", skip(conn, manage_token, issuer))]
pub fn cancel(
    conn: &mut DbConn,
    manage_token: &str,
    session_ids: Option<&[i64]>,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<(Event, Booking), BookingError> {
    db::write_transaction(conn, |conn| {
        let id = id_for_token(conn, manage_token)?;
        cancel_seats(conn, id, session_ids, issuer, Refund::ByPolicy, now)
    })
}

/// What a cancellation gives back of paid seats.
#[derive(Debug, Clone, Copy)]
enum Refund {
    /// The attendee cancelled: what the refund policy of the booking gives.
    ByPolicy,
    /// The organisers cancelled: the price in full.
    InFull,
}

/// Like [`cancel`], for an organiser who names the booking by its reference.
#[tracing::instrument(level = "debug", skip(conn, issuer))]
pub fn cancel_by_reference(
    conn: &mut DbConn,
    reference: &str,
    session_ids: Option<&[i64]>,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<(Event, Booking), BookingError> {
    db::write_transaction(conn, |conn| {
        let id = id_for_reference(conn, reference)?;
        cancel_seats(conn, id, session_ids, issuer, Refund::InFull, now)
    })
}

/// Cancels seats of booking `id` inside the caller's transaction.
fn cancel_seats(
    conn: &mut DbConn,
    id: i64,
    session_ids: Option<&[i64]>,
    issuer: &Issuer,
    refund: Refund,
    now: DateTime<Utc>,
) -> Result<(Event, Booking), BookingError> {
    {
        let booking = load(conn, id)?;
        if let Some(ids) = session_ids {
            if ids.is_empty() {
                return Err(ValidationError::single(
                    "session_ids",
                    "name at least one session, or leave it out to cancel all",
                )
                .into());
            }
            let foreign: Vec<String> = ids
                .iter()
                .filter(|id| !booking.seats.iter().any(|s| s.session_id == **id))
                .map(i64::to_string)
                .collect();
            if !foreign.is_empty() {
                return Err(ValidationError::single(
                    "session_ids",
                    format!("not part of this booking: {}", foreign.join(", ")),
                )
                .into());
            }
        }
        let mut targets: Vec<i64> = booking
            .seats
            .iter()
            .filter(|s| matches!(s.state, SeatState::Held | SeatState::Confirmed))
            .filter(|s| session_ids.is_none_or(|ids| ids.contains(&s.session_id)))
            .map(|s| s.session_id)
            .collect();
        targets.sort_unstable();
        // Session rows first, in id order, as every writer of a session does: an organiser
        // cancelling one of these sessions at the same moment then waits instead of deadlocking.
        for session_id in &targets {
            sessions::lock(conn, *session_id)?;
        }
        let stamp = db::stored(now);
        let mut cancelled = Vec::new();
        // Paid or invoiced places cancelled (start, price, title): confirmed seats, read under
        // the locks.
        let mut paid = Vec::new();
        for session_id in targets {
            if let Some(seat) = load(conn, id)?
                .seats
                .iter()
                .find(|s| s.session_id == session_id && s.state == SeatState::Confirmed)
            {
                paid.push((seat.starts_at, seat.price_minor, seat.title.clone()));
            }
            let changed = diesel::update(seats::table)
                .filter(seats::booking_id.eq(id))
                .filter(seats::session_id.eq(session_id))
                .filter(seats::state.eq_any(SeatState::ACTIVE))
                .set((
                    seats::state.eq(SeatState::Cancelled.as_str()),
                    seats::cancelled_at.eq(Some(stamp)),
                ))
                .execute(conn)?;
            if changed > 0 {
                sessions::free_seats(conn, session_id, changed as i32)?;
                // The freed seat goes to the first person waiting, never back to the public.
                waitlist::offer_free_seats(conn, session_id, issuer, now)?;
                cancelled.push(session_id);
            }
        }
        let confirmed_now = refresh(conn, id, now)?;
        let (share, reason) = match refund {
            Refund::ByPolicy => (Share::Policy, RefundReason::AttendeeCancelled),
            Refund::InFull => (Share::Full, RefundReason::OrganiserCancelled),
        };
        let card: Vec<(DateTime<Utc>, i64)> =
            paid.iter().map(|(at, price, _)| (*at, *price)).collect();
        refunds::for_cancelled_seats(conn, id, &card, share, reason, now)?;
        invoices::credit_cancelled_places(conn, id, &paid, share, now)?;
        let booking = load(conn, id)?;
        let event = events::by_id(conn, booking.event_id)?;
        if !cancelled.is_empty() {
            notify(
                conn,
                &event,
                &booking,
                &cancelled,
                Template::BookingCancelled,
            )?;
        }
        if confirmed_now {
            confirmation(conn, &event, &booking)?;
        }
        Ok((event, booking))
    }
}

/// Moves a person's seat from one session to another of the same event, atomically: the new
/// seat is taken (within capacity, without clashes) in the same transaction that gives the old
/// one back, so if the new one cannot be had the old one is kept. The freed seat goes to the old
/// session's waitlist. The new seat keeps the old one's state (held or confirmed).
///
/// The price: a held seat is not paid yet, so it takes the new session's price and the booking
/// is paid at its new total (card payments begun for the old total are given up, and the
/// attendee is sent the held places with the new total; with nothing left to pay, the booking
/// is confirmed). A confirmed seat was paid (or invoiced) at its price and keeps that
/// price, so payments, invoices and later refunds stay in step with what the attendee was
/// charged. A dearer session is refused for a confirmed seat unless the organiser waives the
/// difference (`waive_difference`); for a cheaper one the organiser may refund the difference.
#[tracing::instrument(level = "debug", skip(conn, issuer))]
#[allow(clippy::too_many_arguments)]
pub fn move_seat(
    conn: &mut DbConn,
    reference: &str,
    from: i64,
    to: i64,
    waive_difference: bool,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<(Event, Booking), BookingError> {
    db::write_transaction(conn, |conn| {
        let id = id_for_reference(conn, reference)?;
        // Both sessions first, in id order, as every writer of seats does; then the booking as
        // it is under those locks (a cancellation, expiry or payment may have come first).
        let mut ids = [from, to];
        ids.sort_unstable();
        for session_id in ids {
            sessions::lock(conn, session_id)?;
        }
        let booking = load(conn, id)?;
        let Some(old) = booking.seats.iter().find(|s| {
            s.session_id == from && matches!(s.state, SeatState::Held | SeatState::Confirmed)
        }) else {
            return Err(ValidationError::single(
                "from_session_id",
                "the booking holds no seat in this session",
            )
            .into());
        };
        let event = events::by_id(conn, booking.event_id)?;
        let target = match sessions::find(conn, to) {
            Ok(s) if s.event_id == event.id && from != to => s,
            Ok(_) | Err(sessions::SessionError::NotFound(_)) => {
                return Err(ValidationError::single(
                    "to_session_id",
                    "not another session of this booking's event",
                )
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        if target.status == sessions::SessionStatus::Cancelled {
            return Err(BookingError::SessionCancelled {
                id: target.id,
                title: target.title,
            });
        }
        if target.starts_at <= now {
            return Err(BookingError::SessionStarted {
                id: target.id,
                title: target.title,
            });
        }
        let state = old.state;
        let price = if state == SeatState::Held {
            target.price_minor
        } else {
            if target.price_minor > old.price_minor && !waive_difference {
                return Err(ValidationError::single(
                    "waive_difference",
                    format!(
                        "“{}” costs {} more than this seat was booked for; move it only if \
                         the attendee is not to pay the difference",
                        target.title,
                        crate::mail::compose::money(
                            target.price_minor - old.price_minor,
                            &event.currency
                        ),
                    ),
                )
                .into());
            }
            old.price_minor
        };
        let stamp = db::stored(now);
        let changed = diesel::update(seats::table.find(old.id))
            .filter(seats::state.eq(state.as_str()))
            .set((
                seats::state.eq(SeatState::Cancelled.as_str()),
                seats::cancelled_at.eq(Some(stamp)),
            ))
            .execute(conn)?;
        if changed != 1 {
            return Err(
                DbError::Inconsistent(format!("seat {} changed under its lock", old.id)).into(),
            );
        }
        sessions::free_seats(conn, from, 1)?;
        let email = Email::normalize(&booking.attendee_email);
        let seat = sessions::SeatRequest {
            session: &target,
            event_revision: event.revision,
            allow_clashes: event.allow_clashes,
            email: &email,
        };
        // An organiser's move: a full session is refused as full, with no waitlist to point at.
        take_or_refuse(conn, &seat, None, &[])?;
        let inserted = diesel::insert_into(seats::table)
            .values((
                seats::booking_id.eq(id),
                seats::session_id.eq(to),
                seats::attendee_email.eq(&email),
                seats::state.eq(state.as_str()),
                seats::price_minor.eq(price),
                seats::created_at.eq(stamp),
            ))
            .execute(conn);
        match inserted {
            Err(e) if db::is_unique_violation(&e) => {
                return Err(BookingError::AlreadyBooked {
                    session: (target.id, target.title.clone()),
                })
            }
            other => other?,
        };
        let confirmed_now = refresh(conn, id, now)?;
        waitlist::offer_free_seats(conn, from, issuer, now)?;
        let booking = load(conn, id)?;
        notify(conn, &event, &booking, &[from], Template::BookingCancelled)?;
        if booking.status == BookingStatus::Held {
            // Still to be paid (at its new total): the held places, the total and the deadline.
            let mut data = booking.mail(&event, SeatState::Held);
            data.moved = true;
            data.hold_until = booking
                .hold_expires_at
                .map(|t| crate::mail::compose::moment(t, event.time_zone));
            crate::mail::enqueue(
                conn,
                Template::BookingHeld,
                &booking.attendee_email,
                Some(id),
                &data,
            )?;
        } else if confirmed_now {
            confirmation(conn, &event, &booking)?;
        } else {
            let mut data = crate::mail::compose::booking_mail(
                &event,
                &booking.reference,
                &booking.attendee_name,
            );
            data.seats = booking
                .seats
                .iter()
                .filter(|s| s.session_id == to && s.state == state)
                .map(|s| s.mail(&event, state.as_str()))
                .collect();
            crate::mail::enqueue(
                conn,
                Template::BookingConfirmed,
                &booking.attendee_email,
                Some(id),
                &data,
            )?;
        }
        Ok((event, booking))
    })
}

/// The confirmation of a booking confirmed because nothing was left to pay: every place it has.
fn confirmation(conn: &mut DbConn, event: &Event, booking: &Booking) -> Result<(), DbError> {
    crate::mail::enqueue(
        conn,
        Template::BookingConfirmed,
        &booking.attendee_email,
        Some(booking.id),
        &booking.mail(event, SeatState::Confirmed),
    )?;
    Ok(())
}

/// Recomputes a booking's total and status from its seats: held while any seat is held,
/// confirmed while any is confirmed, else expired if the hold ran out, else cancelled. A held
/// booking left with nothing to pay (its priced places cancelled or moved to free sessions) is
/// confirmed, as a booking of free sessions is when made: then `true`, and the caller sends
/// the confirmation. Card payments begun for another amount are given up (cancelled at Stripe,
/// refunded if paid meanwhile).
fn refresh(conn: &mut DbConn, id: i64, now: DateTime<Utc>) -> Result<bool, DbError> {
    // The booking's row before its seats are read: two changes to different sessions of one
    // booking (which lock different session rows) then recount one after the other.
    crate::payments::refunds::lock_booking(conn, id)?;
    let seats_now: Vec<(String, i64)> = seats::table
        .filter(seats::booking_id.eq(id))
        .select((seats::state, seats::price_minor))
        .load(conn)?;
    let has = |state: SeatState| seats_now.iter().any(|(s, _)| s == state.as_str());
    let total: i64 = seats_now
        .iter()
        .filter(|(s, _)| SeatState::ACTIVE.contains(&s.as_str()))
        .map(|(_, price)| price)
        .sum();
    let confirmed_now = has(SeatState::Held) && total == 0;
    if confirmed_now {
        diesel::update(seats::table)
            .filter(seats::booking_id.eq(id))
            .filter(seats::state.eq(SeatState::Held.as_str()))
            .set(seats::state.eq(SeatState::Confirmed.as_str()))
            .execute(conn)?;
    }
    let status = if has(SeatState::Held) && !confirmed_now {
        BookingStatus::Held
    } else if has(SeatState::Confirmed) || confirmed_now {
        BookingStatus::Confirmed
    } else if has(SeatState::Expired) && !has(SeatState::Cancelled) {
        BookingStatus::Expired
    } else {
        BookingStatus::Cancelled
    };
    diesel::update(bookings::table.find(id))
        .set((
            bookings::total_minor.eq(total),
            bookings::status.eq(status.as_str()),
            bookings::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    if status != BookingStatus::Held {
        diesel::update(bookings::table.find(id))
            .set(bookings::hold_expires_at.eq(None::<chrono::NaiveDateTime>))
            .execute(conn)?;
        // Nothing left to pay: its card payments are cancelled at Stripe by the reconciler.
        let open = crate::payments::open_payments(conn, id)?;
        crate::payments::give_up(conn, &open, now)?;
    } else {
        // Payments begun for an amount that is no longer the total are given up.
        let stale = crate::payments::open_payments_not_for(conn, id, total)?;
        crate::payments::give_up(conn, &stale, now)?;
    }
    // Nothing left to pay for an unpaid booking once its priced seats are gone.
    diesel::update(bookings::table.find(id))
        .filter(bookings::payment_status.eq("unpaid"))
        .filter(bookings::total_minor.eq(0))
        .set(bookings::payment_status.eq("not_required"))
        .execute(conn)?;
    Ok(confirmed_now)
}

/// Cancels every active seat of a session (the organiser cancelled it). Runs inside the
/// caller's transaction.
/// The caller holds the session's row lock (see [`sessions::lock`]), so no booking can take a
/// seat in it meanwhile.
pub fn cancel_session_seats(
    conn: &mut DbConn,
    session_id: i64,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    // Paid places first, read under the lock: each is refunded in full.
    let paid: Vec<(i64, i64, chrono::NaiveDateTime, String)> = seats::table
        .inner_join(crate::db::schema::sessions::table)
        .filter(seats::session_id.eq(session_id))
        .filter(seats::state.eq(SeatState::Confirmed.as_str()))
        .select((
            seats::booking_id,
            seats::price_minor,
            crate::db::schema::sessions::starts_at,
            crate::db::schema::sessions::title,
        ))
        .load(conn)?;
    // The bookings are those whose seats this very statement cancelled.
    let mut affected: Vec<i64> = diesel::update(seats::table)
        .filter(seats::session_id.eq(session_id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .set((
            seats::state.eq(SeatState::Cancelled.as_str()),
            seats::cancelled_at.eq(Some(db::stored(now))),
        ))
        .returning(seats::booking_id)
        .get_results(conn)?;
    let changed = affected.len();
    if changed > 0 {
        sessions::free_seats(conn, session_id, changed as i32)?;
    }
    affected.sort_unstable();
    affected.dedup();
    // Every affected booking's row before any credit note takes the event's row, in id order:
    // a booking's own cancellation (its row, then the event's) then never waits in a circle.
    for booking_id in &affected {
        crate::payments::refunds::lock_booking(conn, *booking_id)?;
    }
    for booking_id in affected {
        let confirmed_now = refresh(conn, booking_id, now)?;
        let places: Vec<(DateTime<Utc>, i64, String)> = paid
            .iter()
            .filter(|(b, _, _, _)| *b == booking_id)
            .map(|(_, price, starts_at, title)| (starts_at.and_utc(), *price, title.clone()))
            .collect();
        let card: Vec<(DateTime<Utc>, i64)> =
            places.iter().map(|(at, price, _)| (*at, *price)).collect();
        refunds::for_cancelled_seats(
            conn,
            booking_id,
            &card,
            Share::Full,
            RefundReason::SessionCancelled,
            now,
        )?;
        invoices::credit_cancelled_places(conn, booking_id, &places, Share::Full, now)?;
        let booking = load(conn, booking_id)?;
        let event = events::by_id(conn, booking.event_id)?;
        notify(
            conn,
            &event,
            &booking,
            &[session_id],
            Template::SessionCancelled,
        )?;
        if confirmed_now {
            confirmation(conn, &event, &booking)?;
        }
    }
    Ok(changed)
}
