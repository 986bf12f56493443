//! Reading bookings: by manage token, per event, per session.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{Booking, BookingError, BookingRow, Seat, SeatState, SessionAttendee};
use crate::db::schema::{bookings, seats, sessions as sessions_table};
use crate::db::{like_literal, lower, lower_nullable};
use crate::db::{DbConn, DbError};
use crate::events::{self, Event};
use crate::sessions::{self, Session};
use crate::tokens;

type SeatRow = (
    i64,
    i64,
    i64,
    String,
    String,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
    i64,
    String,
    i32,
);

/// Bookings with their seats, in one query for all seats.
fn with_seats(conn: &mut DbConn, rows: Vec<BookingRow>) -> Result<Vec<Booking>, DbError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut by_booking: HashMap<i64, Vec<Seat>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let seat_rows: Vec<SeatRow> = seats::table
            .inner_join(sessions_table::table)
            .filter(seats::booking_id.eq_any(chunk))
            .order((sessions_table::starts_at.asc(), seats::id.asc()))
            .select((
                seats::id,
                seats::booking_id,
                seats::session_id,
                seats::state,
                sessions_table::title,
                sessions_table::room,
                sessions_table::starts_at,
                sessions_table::ends_at,
                seats::price_minor,
                sessions_table::speakers,
                sessions_table::sequence,
            ))
            .load(conn)?;
        for (
            id,
            booking_id,
            session_id,
            state,
            title,
            room,
            starts_at,
            ends_at,
            price_minor,
            speakers,
            sequence,
        ) in seat_rows
        {
            by_booking.entry(booking_id).or_default().push(Seat {
                id,
                session_id,
                speakers: serde_json::from_str(&speakers).unwrap_or_default(),
                sequence,
                title,
                room,
                starts_at: starts_at.and_utc(),
                ends_at: ends_at.and_utc(),
                state: SeatState::from_db(&state),
                price_minor,
            });
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let seats = by_booking.remove(&row.id).unwrap_or_default();
            row.into_booking(seats)
        })
        .collect())
}

pub(crate) fn load(conn: &mut DbConn, id: i64) -> Result<Booking, DbError> {
    let row = bookings::table
        .find(id)
        .select(BookingRow::as_select())
        .first(conn)?;
    with_seats(conn, vec![row])?
        .pop()
        .ok_or(DbError::Query(diesel::result::Error::NotFound))
}

pub(super) fn id_for_token(conn: &mut DbConn, manage_token: &str) -> Result<i64, BookingError> {
    if !tokens::plausible(manage_token) {
        return Err(BookingError::NotFound);
    }
    bookings::table
        .filter(bookings::manage_token_hash.eq(tokens::hash_token(manage_token)))
        .select(bookings::id)
        .first(conn)
        .optional()?
        .ok_or(BookingError::NotFound)
}

pub(crate) fn id_for_reference(conn: &mut DbConn, reference: &str) -> Result<i64, BookingError> {
    bookings::table
        .filter(bookings::reference.eq(reference))
        .select(bookings::id)
        .first(conn)
        .optional()?
        .ok_or(BookingError::NotFound)
}

/// The booking behind a manage link, with its event.
pub fn find_by_token(
    conn: &mut DbConn,
    manage_token: &str,
) -> Result<(Event, Booking), BookingError> {
    let id = id_for_token(conn, manage_token)?;
    let booking = load(conn, id)?;
    let event = events::by_id(conn, booking.event_id)?;
    Ok((event, booking))
}

/// Every booking of an event, newest first.
pub fn for_event(
    conn: &mut DbConn,
    event_slug: &str,
) -> Result<(Event, Vec<Booking>), BookingError> {
    let event = events::find(conn, event_slug)?;
    let rows = bookings::table
        .filter(bookings::event_id.eq(event.id))
        .order(bookings::id.desc())
        .select(BookingRow::as_select())
        .load(conn)?;
    let bookings = with_seats(conn, rows)?;
    Ok((event, bookings))
}

/// The people holding seats (held or confirmed) in a session, in booking order.
pub fn attendees(
    conn: &mut DbConn,
    session_id: i64,
) -> Result<(Event, Session, Vec<SessionAttendee>), BookingError> {
    let session = sessions::find(conn, session_id)?;
    let event = events::by_id(conn, session.event_id)?;
    let rows: Vec<(
        String,
        String,
        String,
        Option<String>,
        String,
        NaiveDateTime,
    )> = seats::table
        .inner_join(bookings::table)
        .filter(seats::session_id.eq(session_id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .order(seats::id.asc())
        .select((
            bookings::reference,
            bookings::attendee_name,
            bookings::attendee_email,
            bookings::attendee_organisation,
            seats::state,
            seats::created_at,
        ))
        .load(conn)?;
    let attendees = rows
        .into_iter()
        .map(
            |(reference, name, email, organisation, state, booked_at)| SessionAttendee {
                reference,
                name,
                email,
                organisation,
                state: SeatState::from_db(&state),
                booked_at: booked_at.and_utc(),
            },
        )
        .collect();
    Ok((event, session, attendees))
}

/// Bookings of any event whose reference, attendee name, email or organisation contains
/// `text` in any case, newest first, at most `limit`.
pub fn search(conn: &mut DbConn, text: &str, limit: i64) -> Result<Vec<Booking>, DbError> {
    let pattern = format!("%{}%", like_literal(&text.trim().to_lowercase()));
    let rows = bookings::table
        .filter(
            lower(bookings::reference)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(bookings::attendee_name)
                    .like(pattern.clone())
                    .escape('\\'))
                .or(lower(bookings::attendee_email)
                    .like(pattern.clone())
                    .escape('\\'))
                .or(lower_nullable(bookings::attendee_organisation)
                    .like(pattern)
                    .escape('\\')
                    .assume_not_null()),
        )
        .order(bookings::id.desc())
        .limit(limit)
        .select(BookingRow::as_select())
        .load(conn)?;
    with_seats(conn, rows)
}

/// When each booking (by reference) holding an active seat in a session was checked in, for
/// those checked in.
pub fn check_ins(
    conn: &mut DbConn,
    session_id: i64,
) -> Result<HashMap<String, chrono::DateTime<chrono::Utc>>, DbError> {
    let rows: Vec<(String, Option<NaiveDateTime>)> = seats::table
        .inner_join(bookings::table)
        .filter(seats::session_id.eq(session_id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .filter(seats::checked_in_at.is_not_null())
        .select((bookings::reference, seats::checked_in_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(reference, at)| at.map(|at| (reference, at.and_utc())))
        .collect())
}
