//! Checking in, undoing a check-in, and the door list: the queries behind the door.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::{
    token, Arrival, CheckedInBy, CheckinError, DoorEntry, DoorList, Outcome, Presented, Search,
    Undone, DOOR_LIST_LIMIT,
};
use crate::bookings::SeatState;
use crate::db::schema::{bookings, organisers, seats};
use crate::db::{self, DbConn, DbError};
use crate::db::{like_literal, lower};
use crate::tokens::TokenKey;
use crate::{events, sessions};

/// Marks the seat presented at the door of session `session_id` as attended by `organiser_id`,
/// once. The update is conditional (confirmed, of this session, not yet checked in), so of two
/// scanners reading one code at the same moment exactly one checks the person in and the other
/// is told they already are. A code is checked before the database is asked anything.
#[tracing::instrument(level = "debug", skip(conn, presented, key))]
pub fn check_in(
    conn: &mut DbConn,
    session_id: i64,
    presented: &Presented,
    key: &TokenKey,
    organiser_id: i64,
    now: DateTime<Utc>,
) -> Result<Arrival, CheckinError> {
    let (seat_id, from_code) = match presented {
        Presented::Code(code) => {
            let ticket = token::read(key, code).ok_or(CheckinError::UnknownCode)?;
            (ticket.seat_id, Some(ticket.session_id))
        }
        Presented::Seat(id) => (*id, None),
    };
    db::write_transaction(conn, |conn| {
        let session = sessions::find(conn, session_id)?;
        let event = events::by_id(conn, session.event_id)?;
        // A seat that changes between the read and the update (cancelled, or a check-in undone,
        // by someone else) is read again; on SQLite writers take turns and it never happens.
        for _ in 0..3 {
            let entry = match (read_entry(conn, seat_id)?, from_code) {
                // Seats never change session: a code naming another is not ours.
                (Some(e), Some(signed)) if e.session_id != signed => {
                    return Err(CheckinError::UnknownCode)
                }
                (Some(e), _) => e,
                (None, Some(_)) => return Err(CheckinError::UnknownCode),
                (None, None) => return Err(CheckinError::SeatNotFound(seat_id)),
            };
            let outcome = if entry.session_id != session_id {
                let other = sessions::find(conn, entry.session_id)?;
                Outcome::OtherSession {
                    id: other.id,
                    title: other.title,
                }
            } else {
                match entry.state {
                    SeatState::Cancelled => Outcome::Cancelled,
                    SeatState::Held | SeatState::Expired => Outcome::NotConfirmed,
                    SeatState::Confirmed if entry.checked_in_at.is_some() => {
                        Outcome::AlreadyCheckedIn
                    }
                    SeatState::Confirmed => {
                        let changed = diesel::update(seats::table.find(seat_id))
                            .filter(seats::session_id.eq(session_id))
                            .filter(seats::state.eq(SeatState::Confirmed.as_str()))
                            .filter(seats::checked_in_at.is_null())
                            .set((
                                seats::checked_in_at.eq(Some(db::stored(now))),
                                seats::checked_in_by.eq(Some(organiser_id)),
                            ))
                            .execute(conn)?;
                        if changed != 1 {
                            continue;
                        }
                        let entry = read_entry(conn, seat_id)?.ok_or_else(|| {
                            DbError::Inconsistent(format!("seat {seat_id} vanished"))
                        })?;
                        return Ok(Arrival {
                            outcome: Outcome::CheckedIn,
                            entry,
                            session,
                            event,
                        });
                    }
                }
            };
            return Ok(Arrival {
                outcome,
                entry,
                session,
                event,
            });
        }
        Err(DbError::Inconsistent(format!("seat {seat_id} kept changing during check-in")).into())
    })
}

/// Takes back the check-in of seat `seat_id` of session `session_id` (a mistake at the door).
/// Undoing what is not checked in changes nothing and says so.
#[tracing::instrument(level = "debug", skip(conn))]
pub fn undo(conn: &mut DbConn, session_id: i64, seat_id: i64) -> Result<Undone, CheckinError> {
    db::write_transaction(conn, |conn| {
        let session = sessions::find(conn, session_id)?;
        let event = events::by_id(conn, session.event_id)?;
        match read_entry(conn, seat_id)? {
            Some(e) if e.session_id == session_id => {}
            Some(_) => {
                return Err(CheckinError::NotInSession {
                    seat: seat_id,
                    session: session_id,
                })
            }
            None => return Err(CheckinError::SeatNotFound(seat_id)),
        }
        let changed = diesel::update(seats::table.find(seat_id))
            .filter(seats::checked_in_at.is_not_null())
            .set((
                seats::checked_in_at.eq(None::<NaiveDateTime>),
                seats::checked_in_by.eq(None::<i64>),
            ))
            .execute(conn)?;
        let entry = read_entry(conn, seat_id)?
            .ok_or_else(|| DbError::Inconsistent(format!("seat {seat_id} vanished")))?;
        Ok(Undone {
            undone: changed == 1,
            entry,
            event,
        })
    })
}

/// The confirmed seats of a session, those matching `search` when given (at most
/// [`DOOR_LIST_LIMIT`], by name), with the session's counts, all read at one moment.
#[tracing::instrument(level = "debug", skip(conn))]
pub fn door_list(
    conn: &mut DbConn,
    session_id: i64,
    search: Option<&Search>,
) -> Result<DoorList, CheckinError> {
    db::read_snapshot(conn, |conn| {
        let session = sessions::find(conn, session_id)?;
        let event = events::by_id(conn, session.event_id)?;
        let confirmed = seats::table
            .filter(seats::session_id.eq(session_id))
            .filter(seats::state.eq(SeatState::Confirmed.as_str()));
        let confirmed_count: i64 = confirmed.count().get_result(conn)?;
        let checked_in: i64 = confirmed
            .filter(seats::checked_in_at.is_not_null())
            .count()
            .get_result(conn)?;
        let mut entries = session_entries(conn, session_id, search)?;
        let more = entries.len() > DOOR_LIST_LIMIT;
        entries.truncate(DOOR_LIST_LIMIT);
        Ok(DoorList {
            event,
            session,
            confirmed: confirmed_count,
            checked_in,
            entries,
            more,
        })
    })
}

type EntryRow = (
    i64,
    i64,
    String,
    Option<NaiveDateTime>,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// The door entry of one seat, if there is such a seat.
fn read_entry(conn: &mut DbConn, seat_id: i64) -> Result<Option<DoorEntry>, DbError> {
    let row: Option<EntryRow> = seats::table
        .inner_join(bookings::table)
        .left_join(organisers::table.on(seats::checked_in_by.eq(organisers::id.nullable())))
        .filter(seats::id.eq(seat_id))
        .select(entry_columns())
        .first(conn)
        .optional()?;
    Ok(row.map(door_entry))
}

/// Up to one more than [`DOOR_LIST_LIMIT`] confirmed seats of a session matching `search`, so
/// the caller can tell that there are more.
fn session_entries(
    conn: &mut DbConn,
    session_id: i64,
    search: Option<&Search>,
) -> Result<Vec<DoorEntry>, DbError> {
    let mut query = seats::table
        .inner_join(bookings::table)
        .left_join(organisers::table.on(seats::checked_in_by.eq(organisers::id.nullable())))
        .filter(seats::session_id.eq(session_id))
        .filter(seats::state.eq(SeatState::Confirmed.as_str()))
        .select(entry_columns())
        .order((lower(bookings::attendee_name).asc(), seats::id.asc()))
        .limit(DOOR_LIST_LIMIT as i64 + 1)
        .into_boxed();
    if let Some(search) = search {
        let pattern = format!("%{}%", like_literal(search.as_str()));
        query = query.filter(
            lower(bookings::attendee_name)
                .like(pattern.clone())
                .escape('\\')
                .or(seats::attendee_email.like(pattern.clone()).escape('\\'))
                .or(lower(bookings::reference).like(pattern).escape('\\')),
        );
    }
    let rows: Vec<EntryRow> = query.load(conn)?;
    Ok(rows.into_iter().map(door_entry).collect())
}

type EntryColumns = (
    seats::id,
    seats::session_id,
    seats::state,
    seats::checked_in_at,
    bookings::reference,
    bookings::attendee_name,
    bookings::attendee_email,
    bookings::attendee_organisation,
    diesel::helper_types::Nullable<organisers::id>,
    diesel::helper_types::Nullable<organisers::name>,
);

/// What a door entry is read from: the seat, its booking and the organiser who checked it in.
fn entry_columns() -> EntryColumns {
    (
        seats::id,
        seats::session_id,
        seats::state,
        seats::checked_in_at,
        bookings::reference,
        bookings::attendee_name,
        bookings::attendee_email,
        bookings::attendee_organisation,
        organisers::id.nullable(),
        organisers::name.nullable(),
    )
}

fn door_entry(row: EntryRow) -> DoorEntry {
    let (
        seat_id,
        session_id,
        state,
        checked_in_at,
        reference,
        name,
        email,
        organisation,
        by_id,
        by_name,
    ) = row;
    DoorEntry {
        seat_id,
        session_id,
        reference,
        name,
        email,
        organisation,
        state: SeatState::from_db(&state),
        checked_in_at: checked_in_at.map(|t| t.and_utc()),
        checked_in_by: by_id
            .zip(by_name)
            .map(|(id, name)| CheckedInBy { id, name }),
    }
}

#[cfg(test)]
mod tests {
    use super::like_literal;

    #[test]
    fn like_wildcards_in_a_search_are_taken_literally() {
        assert_eq!(like_literal("ada"), "ada");
        assert_eq!(like_literal("100%_a\\b"), "100\\%\\_a\\\\b");
    }
}
