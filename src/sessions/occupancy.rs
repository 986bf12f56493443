//! How full each session of an event is, by the state of its seats and waitlist places, as the
//! organisers' programme page shows it; and what cancelling a session would touch.

use std::collections::HashMap;

use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::bookings::SeatState;
use crate::db::schema::{seats, sessions, waitlist_entries};
use crate::db::{DbConn, DbError};
use crate::waitlist::EntryState;

/// Places in one session by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occupancy {
    pub confirmed: i64,
    pub held: i64,
    /// Seats reserved for people on the waitlist until their offer ends.
    pub offered: i64,
    pub waiting: i64,
}

/// Every session of event `event_id` that has any place, by session id (one grouped query per
/// table, whatever the number of sessions).
pub fn occupancy(conn: &mut DbConn, event_id: i64) -> Result<HashMap<i64, Occupancy>, DbError> {
    let seat_counts: Vec<(i64, String, i64)> = seats::table
        .inner_join(sessions::table)
        .filter(sessions::event_id.eq(event_id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .group_by((seats::session_id, seats::state))
        .select((seats::session_id, seats::state, count_star()))
        .load(conn)?;
    let place_counts: Vec<(i64, String, i64)> = waitlist_entries::table
        .inner_join(sessions::table)
        .filter(sessions::event_id.eq(event_id))
        .filter(waitlist_entries::state.eq_any(EntryState::ACTIVE))
        .group_by((waitlist_entries::session_id, waitlist_entries::state))
        .select((
            waitlist_entries::session_id,
            waitlist_entries::state,
            count_star(),
        ))
        .load(conn)?;
    let mut by_session: HashMap<i64, Occupancy> = HashMap::new();
    for (session, state, count) in seat_counts {
        let entry = by_session.entry(session).or_default();
        match SeatState::from_db(&state) {
            SeatState::Held => entry.held = count,
            SeatState::Confirmed => entry.confirmed = count,
            _ => {}
        }
    }
    for (session, state, count) in place_counts {
        let entry = by_session.entry(session).or_default();
        match EntryState::from_db(&state) {
            EntryState::Offered => entry.offered = count,
            EntryState::Waiting => entry.waiting = count,
            _ => {}
        }
    }
    Ok(by_session)
}

/// What cancelling a session cancels: its active seats, the bookings (people) they belong to,
/// the paid ones among them (refunded in full) and the people on its waitlist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CancelPreview {
    pub seats: i64,
    pub bookings: i64,
    pub paid_seats: i64,
    pub waitlisted: i64,
}

pub fn cancel_preview(conn: &mut DbConn, session_id: i64) -> Result<CancelPreview, DbError> {
    let active: Vec<(i64, String, i64)> = seats::table
        .filter(seats::session_id.eq(session_id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .select((seats::booking_id, seats::state, seats::price_minor))
        .load(conn)?;
    let mut bookings: Vec<i64> = active.iter().map(|(b, _, _)| *b).collect();
    bookings.sort_unstable();
    bookings.dedup();
    let waitlisted: i64 = waitlist_entries::table
        .filter(waitlist_entries::session_id.eq(session_id))
        .filter(waitlist_entries::state.eq_any(EntryState::ACTIVE))
        .count()
        .get_result(conn)?;
    Ok(CancelPreview {
        seats: active.len() as i64,
        bookings: bookings.len() as i64,
        paid_seats: active
            .iter()
            .filter(|(_, state, price)| state == SeatState::Confirmed.as_str() && *price > 0)
            .count() as i64,
        waitlisted,
    })
}
