//! Telling attendees what happened to their seats: cancellations and changed sessions. Each
//! email is written to the outbox in the transaction of the change.

use diesel::prelude::*;

use super::queries::load;
use super::{Booking, SeatState};
use crate::db::schema::seats;
use crate::db::{DbConn, DbError};
use crate::events::Event;
use crate::mail::data::ChangeMail;
use crate::mail::{self, compose, Template};
use crate::sessions::Session;

/// Writes the email telling the attendee which of their seats were cancelled.
pub(super) fn notify(
    conn: &mut DbConn,
    event: &Event,
    booking: &Booking,
    session_ids: &[i64],
    template: Template,
) -> Result<(), DbError> {
    let mut data = compose::booking_mail(event, &booking.reference, &booking.attendee_name);
    data.seats = booking
        .seats
        .iter()
        .filter(|s| session_ids.contains(&s.session_id))
        .map(|s| s.mail(event, "cancelled"))
        .collect();
    data.total =
        (booking.total_minor > 0).then(|| compose::money(booking.total_minor, &booking.currency));
    mail::enqueue(
        conn,
        template,
        &booking.attendee_email,
        Some(booking.id),
        &data,
    )
}

/// Tells everyone holding a seat in a session that its time or room changed.
pub fn session_changed(
    conn: &mut DbConn,
    event: &Event,
    before: &Session,
    after: &Session,
) -> Result<usize, DbError> {
    let holders: Vec<i64> = seats::table
        .filter(seats::session_id.eq(after.id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .select(seats::booking_id)
        .load(conn)?;
    let (previous_day, previous_time) =
        compose::day_and_time(before.starts_at, before.ends_at, event.time_zone);
    let change = ChangeMail {
        previous_day,
        previous_time,
        previous_room: before.room.clone(),
    };
    for booking_id in &holders {
        let booking = load(conn, *booking_id)?;
        let mut data = compose::booking_mail(event, &booking.reference, &booking.attendee_name);
        data.seats = booking
            .seats
            .iter()
            .filter(|s| s.session_id == after.id)
            .map(|s| s.mail(event, "confirmed"))
            .collect();
        data.change = Some(change.clone());
        mail::enqueue(
            conn,
            Template::SessionChanged,
            &booking.attendee_email,
            Some(booking.id),
            &data,
        )?;
    }
    Ok(holders.len())
}

/// Writes the booking's confirmation to the outbox again, as an organiser asks when an attendee
/// lost it: its confirmed seats, with what was paid when something was. `Ok(false)` when the
/// booking has no confirmed seat to confirm.
pub fn resend_confirmation(
    conn: &mut DbConn,
    reference: &str,
) -> Result<bool, super::BookingError> {
    let id = super::queries::id_for_reference(conn, reference)?;
    let booking = load(conn, id)?;
    if !booking
        .seats
        .iter()
        .any(|s| s.state == SeatState::Confirmed)
    {
        return Ok(false);
    }
    let event = crate::events::by_id(conn, booking.event_id)?;
    let mut data = booking.mail(&event, SeatState::Confirmed);
    if booking.paid_minor > 0 {
        data.paid = true;
        data.payment = Some(compose::payment(
            booking.paid_minor,
            event.vat_rate_bp,
            &booking.currency,
        ));
    }
    mail::enqueue(
        conn,
        Template::BookingConfirmed,
        &booking.attendee_email,
        Some(booking.id),
        &data,
    )?;
    Ok(true)
}
