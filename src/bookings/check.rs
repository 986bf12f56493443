//! `masterclass check`: recounts every session's seats from the seat rows and compares the
//! result with the session's counter and capacity.

use std::collections::HashMap;

use diesel::dsl::count_star;
use diesel::prelude::*;

use super::SeatState;
use crate::db::schema::{seats, sessions};
use crate::db::{self, DbConn, DbError};

/// One session's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatCount {
    pub session_id: i64,
    pub title: String,
    pub capacity: i32,
    /// The session's counter.
    pub taken: i32,
    /// Held and confirmed seat rows.
    pub counted: i64,
}

impl SeatCount {
    /// The counter disagrees with the rows, or more seats are out than the room holds.
    pub fn drifted(&self) -> bool {
        i64::from(self.taken) != self.counted || self.counted > i64::from(self.capacity)
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
    let rows: Vec<(i64, String, i32, i32)> = sessions::table
        .order(sessions::id.asc())
        .select((
            sessions::id,
            sessions::title,
            sessions::capacity,
            sessions::taken,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(session_id, title, capacity, taken)| SeatCount {
            counted: counted.get(&session_id).copied().unwrap_or(0),
            session_id,
            title,
            capacity,
            taken,
        })
        .collect())
}
