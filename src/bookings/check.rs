//! `masterclass check`: recounts every session's seats from the seat rows and waitlist offers,
//! compares the result with the session's counter and capacity, and finds free seats that nobody
//! was offered although people wait for them.

use std::collections::HashMap;

use diesel::dsl::count_star;
use diesel::prelude::*;

use super::SeatState;
use crate::db::schema::{seats, sessions, waitlist_entries};
use crate::db::{self, DbConn, DbError};

/// One session's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatCount {
    pub session_id: i64,
    pub title: String,
    pub capacity: i32,
    /// The session's counter.
    pub taken: i32,
    /// Held and confirmed seat rows plus open waitlist offers.
    pub counted: i64,
    /// People waiting (not yet offered a seat).
    pub waiting: i64,
    /// A published session: free seats in it must go to people waiting.
    pub published: bool,
}

impl SeatCount {
    /// The counter disagrees with the rows, or more seats are out than the room holds.
    pub fn drifted(&self) -> bool {
        i64::from(self.taken) != self.counted || self.counted > i64::from(self.capacity)
    }

    /// A free seat in a published session while someone waits: nobody was offered it.
    pub fn stuck(&self) -> bool {
        self.published && self.waiting > 0 && self.taken < self.capacity
    }
}

/// Every session's counter beside a fresh count of its rows, both read from one snapshot so
/// that bookings made meanwhile cannot look like drift.
pub fn recount(conn: &mut DbConn) -> Result<Vec<SeatCount>, DbError> {
    db::read_snapshot(conn, counts)
}

fn counts(conn: &mut DbConn) -> Result<Vec<SeatCount>, DbError> {
    let counted: HashMap<i64, i64> = seats::table
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .group_by(seats::session_id)
        .select((seats::session_id, count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let mut offered: HashMap<i64, i64> = HashMap::new();
    let mut waiting: HashMap<i64, i64> = HashMap::new();
    let entries: Vec<(i64, String, i64)> = waitlist_entries::table
        .filter(waitlist_entries::state.eq_any(crate::waitlist::EntryState::ACTIVE))
        .group_by((waitlist_entries::session_id, waitlist_entries::state))
        .select((
            waitlist_entries::session_id,
            waitlist_entries::state,
            count_star(),
        ))
        .load(conn)?;
    for (session_id, state, n) in entries {
        let bucket = if state == "offered" {
            &mut offered
        } else {
            &mut waiting
        };
        *bucket.entry(session_id).or_default() += n;
    }
    let rows: Vec<(i64, String, i32, i32, String)> = sessions::table
        .order(sessions::id.asc())
        .select((
            sessions::id,
            sessions::title,
            sessions::capacity,
            sessions::taken,
            sessions::status,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(session_id, title, capacity, taken, status)| SeatCount {
            counted: counted.get(&session_id).copied().unwrap_or(0)
                + offered.get(&session_id).copied().unwrap_or(0),
            waiting: waiting.get(&session_id).copied().unwrap_or(0),
            published: status == "published",
            session_id,
            title,
            capacity,
            taken,
        })
        .collect())
}
