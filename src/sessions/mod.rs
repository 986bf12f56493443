//! Sessions: the masterclasses of an event, with their capacity and the counter of seats taken.
//!
//! `taken` counts the active seats (held or confirmed). It is only ever changed by a conditional
//! update in the same transaction as the seat row that justifies it, so concurrent requests and
//! several processes can never push it past `capacity` (the table's CHECK is the last guard).

mod cache;
pub mod http;
mod occupancy;

pub use cache::{Cached, Programme, ProgrammeCache};
pub use occupancy::{cancel_preview, occupancy, CancelPreview, Occupancy};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::bookings;
use crate::db::schema::sessions;
use crate::db::{self, DbConn, DbError};
use crate::events::{self, Event, EventError};
use crate::validation::ValidationError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    Draft,
    Published,
    Cancelled,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
            Self::Cancelled => "cancelled",
        }
    }

    fn from_db(raw: &str) -> Self {
        match raw {
            "published" => Self::Published,
            "cancelled" => Self::Cancelled,
            _ => Self::Draft,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub event_id: i64,
    pub title: String,
    pub abstract_text: String,
    pub speakers: Vec<String>,
    pub track: Option<String>,
    pub room: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub taken: i32,
    pub price_minor: i64,
    pub status: SessionStatus,
    /// Goes up whenever the time or room changes (calendar files' SEQUENCE).
    pub sequence: i32,
    /// Raised by every change an organiser makes; see [`ProgrammeCache`].
    pub revision: i32,
    /// Whether people may wait for a seat when it is full.
    pub waitlist_enabled: bool,
    /// CPD hours attending counts for on a certificate of attendance, in tenths of an hour.
    pub cpd_tenths: i32,
}

impl Session {
    pub fn seats_left(&self) -> i32 {
        (self.capacity - self.taken).max(0)
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionRow {
    id: i64,
    event_id: i64,
    title: String,
    abstract_text: String,
    speakers: String,
    track: Option<String>,
    room: Option<String>,
    starts_at: NaiveDateTime,
    ends_at: NaiveDateTime,
    capacity: i32,
    taken: i32,
    price_minor: i64,
    status: String,
    sequence: i32,
    revision: i32,
    waitlist_enabled: bool,
    cpd_tenths: i32,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Self {
            id: row.id,
            event_id: row.event_id,
            title: row.title,
            abstract_text: row.abstract_text,
            speakers: serde_json::from_str(&row.speakers).unwrap_or_default(),
            track: row.track,
            room: row.room,
            starts_at: row.starts_at.and_utc(),
            ends_at: row.ends_at.and_utc(),
            capacity: row.capacity,
            taken: row.taken,
            price_minor: row.price_minor,
            status: SessionStatus::from_db(&row.status),
            sequence: row.sequence,
            revision: row.revision,
            waitlist_enabled: row.waitlist_enabled,
            cpd_tenths: row.cpd_tenths,
        }
    }
}

/// Largest capacity a session may have.
pub const MAX_CAPACITY: i32 = 100_000;
/// Most CPD hours one session may count for, in tenths (100 hours).
pub const MAX_CPD_TENTHS: i32 = 1000;
/// Largest price, in minor units (one million in the major unit).
pub const MAX_PRICE_MINOR: i64 = 100_000_000;

/// A valid new session.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub title: String,
    pub abstract_text: String,
    pub speakers: Vec<String>,
    pub track: Option<String>,
    pub room: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub capacity: i32,
    pub price_minor: i64,
    pub status: SessionStatus,
    /// CPD hours it counts for on certificates of attendance, in tenths of an hour.
    pub cpd_tenths: i32,
}

/// Changes to a session; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct SessionChanges {
    pub title: Option<String>,
    pub abstract_text: Option<String>,
    pub speakers: Option<Vec<String>>,
    pub track: Option<Option<String>>,
    pub room: Option<Option<String>>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub capacity: Option<i32>,
    pub price_minor: Option<i64>,
    pub status: Option<SessionStatus>,
    pub waitlist_enabled: Option<bool>,
    /// CPD hours in tenths, at most [`MAX_CPD_TENTHS`].
    pub cpd_tenths: Option<i32>,
    /// The revision these changes were made against (an edit form's, an `If-Match`): when the
    /// session has changed since, nothing changes and [`SessionError::Changed`] says so.
    pub if_revision: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no session {0}")]
    NotFound(i64),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("capacity {requested} is below the {taken} seats taken in session {id}")]
    CapacityBelowTaken {
        id: i64,
        title: String,
        taken: i32,
        requested: i32,
    },
    /// Someone changed the session after the revision the changes were made against.
    #[error("session {id} has changed since revision {expected}: it is at {current}")]
    Changed {
        id: i64,
        expected: i32,
        current: i32,
    },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for SessionError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

fn check_times(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> Result<(), ValidationError> {
    if ends_at <= starts_at {
        Err(ValidationError::single(
            "ends_at",
            "must be after starts_at",
        ))
    } else {
        Ok(())
    }
}

fn speakers_json(speakers: &[String]) -> String {
    serde_json::to_string(speakers).unwrap_or_else(|_| "[]".to_owned())
}

/// Adds a session to an event.
#[tracing::instrument(level = "debug", skip(conn, new))]
pub fn create(
    conn: &mut DbConn,
    event_slug: &str,
    new: &NewSession,
) -> Result<(Event, Session), SessionError> {
    check_times(new.starts_at, new.ends_at)?;
    let event = events::find(conn, event_slug)?;
    let now = db::now();
    let row = diesel::insert_into(sessions::table)
        .values((
            sessions::event_id.eq(event.id),
            sessions::title.eq(&new.title),
            sessions::abstract_text.eq(&new.abstract_text),
            sessions::speakers.eq(speakers_json(&new.speakers)),
            sessions::track.eq(&new.track),
            sessions::room.eq(&new.room),
            sessions::starts_at.eq(db::stored(new.starts_at)),
            sessions::ends_at.eq(db::stored(new.ends_at)),
            sessions::capacity.eq(new.capacity),
            sessions::taken.eq(0),
            sessions::price_minor.eq(new.price_minor),
            sessions::status.eq(new.status.as_str()),
            sessions::cpd_tenths.eq(new.cpd_tenths),
            sessions::created_at.eq(now),
            sessions::updated_at.eq(now),
        ))
        .returning(sessions::id)
        .get_result::<i64>(conn)?;
    Ok((event, find(conn, row)?))
}

#[derive(AsChangeset, Default)]
#[diesel(table_name = sessions)]
struct SessionChangeset {
    title: Option<String>,
    abstract_text: Option<String>,
    speakers: Option<String>,
    track: Option<Option<String>>,
    room: Option<Option<String>>,
    starts_at: Option<NaiveDateTime>,
    ends_at: Option<NaiveDateTime>,
    price_minor: Option<i64>,
    status: Option<String>,
    updated_at: Option<NaiveDateTime>,
    sequence: Option<i32>,
    waitlist_enabled: Option<bool>,
    cpd_tenths: Option<i32>,
}

/// Changes a session. A lower capacity is refused when more seats are taken than it allows (an
/// offer to someone on the waitlist counts as taken); a higher one offers the new seats to the
/// waitlist first. Cancelling a session cancels its seats and closes its waitlist in the same
/// transaction.
#[tracing::instrument(level = "debug", skip(conn, changes, issuer))]
pub fn update(
    conn: &mut DbConn,
    id: i64,
    changes: SessionChanges,
    issuer: &bookings::Issuer,
    now: DateTime<Utc>,
) -> Result<(Event, Session), SessionError> {
    db::write_transaction(conn, |conn| {
        lock(conn, id)?;
        let current = find(conn, id)?;
        // Under the lock: nobody changes the session between this check and the update.
        if let Some(expected) = changes.if_revision {
            if expected != current.revision {
                return Err(SessionError::Changed {
                    id,
                    expected,
                    current: current.revision,
                });
            }
        }
        check_times(
            changes.starts_at.unwrap_or(current.starts_at),
            changes.ends_at.unwrap_or(current.ends_at),
        )?;
        if let Some(capacity) = changes.capacity {
            // Conditional, so a booking committed since `current` was read is counted.
            let changed = diesel::update(sessions::table.find(id))
                .filter(sessions::taken.le(capacity))
                .set(sessions::capacity.eq(capacity))
                .execute(conn)?;
            if changed == 0 {
                let now_taken = find(conn, id)?.taken;
                return Err(SessionError::CapacityBelowTaken {
                    id,
                    title: current.title,
                    taken: now_taken,
                    requested: capacity,
                });
            }
        }
        let cancelling = changes.status == Some(SessionStatus::Cancelled)
            && current.status != SessionStatus::Cancelled;
        if cancelling {
            bookings::cancel_session_seats(conn, id, now)?;
            crate::waitlist::close_session(conn, id, now)?;
        }
        // Calendars update an event only when its SEQUENCE goes up.
        let moved = changes.starts_at.is_some_and(|t| t != current.starts_at)
            || changes.ends_at.is_some_and(|t| t != current.ends_at)
            || changes.room.as_ref().is_some_and(|r| *r != current.room);
        let changeset = SessionChangeset {
            sequence: moved.then_some(current.sequence + 1),
            title: changes.title,
            abstract_text: changes.abstract_text,
            speakers: changes.speakers.as_deref().map(speakers_json),
            track: changes.track,
            room: changes.room,
            starts_at: changes.starts_at.map(db::stored),
            ends_at: changes.ends_at.map(db::stored),
            price_minor: changes.price_minor,
            status: changes.status.map(|s| s.as_str().to_owned()),
            updated_at: Some(db::now()),
            waitlist_enabled: changes.waitlist_enabled,
            cpd_tenths: changes.cpd_tenths,
        };
        diesel::update(sessions::table.find(id))
            .set((&changeset, sessions::revision.eq(sessions::revision + 1)))
            .execute(conn)?;
        // More room, or published again: people waiting come first.
        crate::waitlist::offer_free_seats(conn, id, issuer, now)?;
        let session = find(conn, id)?;
        let event = events::by_id(conn, session.event_id)?;
        if moved && !cancelling && session.status != SessionStatus::Cancelled {
            bookings::session_changed(conn, &event, &current, &session)?;
        }
        Ok((event, session))
    })
}

/// A session by id, in any state.
pub fn find(conn: &mut DbConn, id: i64) -> Result<Session, SessionError> {
    sessions::table
        .find(id)
        .select(SessionRow::as_select())
        .first(conn)
        .optional()?
        .map(Session::from)
        .ok_or(SessionError::NotFound(id))
}

/// The sessions of an event in time order; only published and cancelled ones unless `all`.
pub fn for_event(conn: &mut DbConn, event_id: i64, all: bool) -> Result<Vec<Session>, DbError> {
    let mut query = sessions::table
        .filter(sessions::event_id.eq(event_id))
        .select(SessionRow::as_select())
        .order((sessions::starts_at.asc(), sessions::id.asc()))
        .into_boxed();
    if !all {
        query = query.filter(sessions::status.ne(SessionStatus::Draft.as_str()));
    }
    Ok(query.load(conn)?.into_iter().map(Session::from).collect())
}

/// A published event with its public programme.
pub fn programme(
    conn: &mut DbConn,
    event_slug: &str,
) -> Result<(Event, Vec<Session>), SessionError> {
    let event = events::find_published(conn, event_slug)?;
    let sessions = for_event(conn, event.id, false)?;
    Ok((event, sessions))
}

/// Takes the session's row lock for the rest of the transaction. Every transaction that changes
/// a session and its seats takes the session rows first, in id order, so two of them never wait
/// on each other in a circle. (On SQLite writers are serialised anyway; the write is harmless.)
pub fn lock(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    diesel::update(sessions::table.find(id))
        .set(sessions::taken.eq(sessions::taken))
        .execute(conn)?;
    Ok(())
}

/// Takes one seat if one is left in a published session whose programme is still as the caller
/// read it (`session.revision` and `event_revision`): the only way `taken` goes up. When it
/// returns `false`, [`why_not_taken`] says why.
pub fn take_seat(conn: &mut DbConn, seat: &SeatRequest<'_>) -> Result<bool, DbError> {
    let changed = TakeSeat {
        session_id: seat.session.id,
        revision: seat.session.revision,
        event_revision: seat.event_revision,
        allow_clashes: seat.allow_clashes,
        email: seat.email.to_owned(),
    }
    .execute(conn)?;
    Ok(changed == 1)
}

/// One seat wanted by one person, with what the caller read of the programme.
pub struct SeatRequest<'a> {
    pub session: &'a Session,
    pub event_revision: i32,
    /// The event's setting: when `false`, a seat overlapping one the person holds is refused.
    pub allow_clashes: bool,
    /// The person's normalised email.
    pub email: &'a str,
}

/// Why [`take_seat`] took nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The session or its event changed since the caller read them: read again and retry.
    Changed,
    Cancelled,
    /// The person holds a seat in this session of the event, which overlaps it.
    Clash {
        id: i64,
        title: String,
    },
    Full,
}

/// Reads the session as it is now to explain a refused [`take_seat`], checking its conditions
/// in the same order.
pub fn why_not_taken(conn: &mut DbConn, seat: &SeatRequest<'_>) -> Result<Refusal, DbError> {
    let (session, event_revision) = (seat.session, seat.event_revision);
    use crate::db::schema::events;
    let now: Option<(String, i32, i32)> = sessions::table
        .inner_join(events::table)
        .filter(sessions::id.eq(session.id))
        .select((sessions::status, sessions::revision, events::revision))
        .first(conn)
        .optional()?;
    Ok(match now {
        Some((_, revision, event_now))
            if revision != session.revision || event_now != event_revision =>
        {
            Refusal::Changed
        }
        Some((status, ..)) => match SessionStatus::from_db(&status) {
            SessionStatus::Published => match clashing_seat(conn, seat.email, session)? {
                Some((id, title)) if !seat.allow_clashes => Refusal::Clash { id, title },
                _ => Refusal::Full,
            },
            SessionStatus::Cancelled => Refusal::Cancelled,
            SessionStatus::Draft => Refusal::Changed,
        },
        None => Refusal::Changed,
    })
}

/// A session of the same event, overlapping `session` in time, in which the person (normalised
/// email) holds a seat.
pub fn clashing_seat(
    conn: &mut DbConn,
    email: &str,
    session: &Session,
) -> Result<Option<(i64, String)>, DbError> {
    use crate::db::schema::seats;
    Ok(seats::table
        .inner_join(sessions::table)
        .filter(seats::attendee_email.eq(email))
        .filter(seats::state.eq_any(bookings::SeatState::ACTIVE))
        .filter(sessions::event_id.eq(session.event_id))
        .filter(sessions::id.ne(session.id))
        .filter(sessions::starts_at.lt(db::stored(session.ends_at)))
        .filter(sessions::ends_at.gt(db::stored(session.starts_at)))
        .order(sessions::starts_at.asc())
        .select((sessions::id, sessions::title))
        .first(conn)
        .optional()?)
}

/// `UPDATE sessions SET taken = taken + 1 WHERE id = ? AND taken < capacity AND status =
/// 'published' AND revision = ? AND (SELECT revision FROM events ...) = ? AND (clashes allowed
/// OR no overlapping seat of this person)`, written out as a
/// query of its own because diesel never caches the prepared statement of an `update()`, and this
/// one runs in every booking, under the session's row lock.
#[derive(diesel::query_builder::QueryId)]
struct TakeSeat {
    session_id: i64,
    revision: i32,
    event_revision: i32,
    allow_clashes: bool,
    email: String,
}

impl<DB> diesel::query_builder::QueryFragment<DB> for TakeSeat
where
    DB: diesel::backend::Backend,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    i32: diesel::serialize::ToSql<diesel::sql_types::Integer, DB>,
    bool: diesel::serialize::ToSql<diesel::sql_types::Bool, DB>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    DB: diesel::sql_types::HasSqlType<diesel::sql_types::Bool>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Bool, Integer, Text};
        out.push_sql("UPDATE sessions SET taken = taken + 1 WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.session_id)?;
        // The status is checked here, under the row lock, so a booking racing an organiser who
        // cancels the session cannot slip in after the cancellation freed the seats.
        out.push_sql(" AND taken < capacity AND status = 'published' AND revision = ");
        out.push_bind_param::<Integer, _>(&self.revision)?;
        out.push_sql(
            " AND (SELECT events.revision FROM events WHERE events.id = sessions.event_id) = ",
        );
        out.push_bind_param::<Integer, _>(&self.event_revision)?;
        // In the same statement, so it costs no round trip of its own: the person holds no seat
        // in another session of the event that overlaps this one.
        out.push_sql(" AND (");
        out.push_bind_param::<Bool, _>(&self.allow_clashes)?;
        out.push_sql(
            " OR NOT EXISTS (SELECT 1 FROM seats JOIN sessions AS other ON other.id = seats.session_id \
             WHERE seats.attendee_email = ",
        );
        out.push_bind_param::<Text, _>(&self.email)?;
        out.push_sql(
            " AND seats.state IN ('held', 'confirmed') AND other.event_id = sessions.event_id \
             AND other.id <> sessions.id AND other.starts_at < sessions.ends_at \
             AND other.ends_at > sessions.starts_at))",
        );
        Ok(())
    }
}

impl<Conn> RunQueryDsl<Conn> for TakeSeat {}

/// Reserves one free seat for a waitlist offer (the caller holds the row lock and has seen a
/// free seat under it).
pub fn reserve_seat(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    let changed = diesel::update(sessions::table.find(id))
        .filter(sessions::taken.lt(sessions::capacity))
        .set(sessions::taken.eq(sessions::taken + 1))
        .execute(conn)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(DbError::Inconsistent(format!(
            "session {id}: no free seat to offer"
        )))
    }
}

/// One more place in a session, for a person an organiser promotes from its waitlist.
pub fn add_seat(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    diesel::update(sessions::table.find(id))
        .set((
            sessions::capacity.eq(sessions::capacity + 1),
            sessions::revision.eq(sessions::revision + 1),
            sessions::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Gives `count` seats back: the only way `taken` goes down.
pub fn free_seats(conn: &mut DbConn, id: i64, count: i32) -> Result<(), DbError> {
    diesel::update(sessions::table.find(id))
        .set(sessions::taken.eq(sessions::taken - count))
        .execute(conn)?;
    Ok(())
}
