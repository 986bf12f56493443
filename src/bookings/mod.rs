//! Bookings: one attendee's checkout for one or more sessions, with a human reference and a
//! secret manage token. A booking is all-or-nothing: every seat is taken in one transaction or
//! none is. In this version every seat is confirmed at once; payment comes later.

pub mod check;
pub mod http;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use rand::seq::IndexedRandom;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::{bookings, seats, sessions as sessions_table};
use crate::db::{self, DbConn, DbError};
use crate::events::{self, Event, EventError, EventStatus};
use crate::sessions::{self, Session, SessionError, SessionStatus};
use crate::tokens;
use crate::validation::{Email, ValidationError};

/// Most sessions one booking may hold.
pub const MAX_SESSIONS_PER_BOOKING: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    Confirmed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Nothing to pay: every seat is free (or cancelled).
    NotRequired,
    Unpaid,
    Paid,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRequired => "not_required",
            Self::Unpaid => "unpaid",
            Self::Paid => "paid",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatState {
    Held,
    Confirmed,
    Cancelled,
    Expired,
}

impl SeatState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    fn from_db(raw: &str) -> Self {
        match raw {
            "held" => Self::Held,
            "confirmed" => Self::Confirmed,
            "expired" => Self::Expired,
            _ => Self::Cancelled,
        }
    }

    /// The states that occupy a place in the session.
    pub const ACTIVE: [&'static str; 2] = ["held", "confirmed"];
}

/// Who is booking.
#[derive(Debug, Clone)]
pub struct Attendee {
    pub name: String,
    pub email: Email,
    pub organisation: Option<String>,
}

/// A valid booking request: an attendee and 1..=20 distinct sessions.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    attendee: Attendee,
    session_ids: Vec<i64>,
}

impl BookingRequest {
    pub fn new(attendee: Attendee, session_ids: &[i64]) -> Result<Self, ValidationError> {
        let unique: BTreeSet<i64> = session_ids.iter().copied().collect();
        if session_ids.is_empty() {
            return Err(ValidationError::single(
                "session_ids",
                "name at least one session",
            ));
        }
        if session_ids.len() > MAX_SESSIONS_PER_BOOKING {
            return Err(ValidationError::single(
                "session_ids",
                format!("at most {MAX_SESSIONS_PER_BOOKING} sessions per booking"),
            ));
        }
        if unique.len() != session_ids.len() {
            return Err(ValidationError::single(
                "session_ids",
                "each session may be named once",
            ));
        }
        Ok(Self {
            attendee,
            session_ids: unique.into_iter().collect(),
        })
    }
}

/// One seat of a booking, with what the attendee needs to know of its session.
#[derive(Debug, Clone)]
pub struct Seat {
    pub session_id: i64,
    pub title: String,
    pub room: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub state: SeatState,
    pub price_minor: i64,
}

#[derive(Debug, Clone)]
pub struct Booking {
    pub id: i64,
    pub event_id: i64,
    pub reference: String,
    pub attendee_name: String,
    pub attendee_email: String,
    pub attendee_organisation: Option<String>,
    pub total_minor: i64,
    pub currency: String,
    pub status: BookingStatus,
    pub payment_status: PaymentStatus,
    pub created_at: DateTime<Utc>,
    pub seats: Vec<Seat>,
}

/// A booking just made, with its manage token in the clear (shown this once only).
pub struct Booked {
    pub event: Event,
    pub booking: Booking,
    pub manage_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error("registration for this event is closed")]
    RegistrationClosed,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("session {id} is cancelled")]
    SessionCancelled { id: i64, title: String },
    #[error("session {id} has already started")]
    SessionStarted { id: i64, title: String },
    #[error("session {id} is full")]
    SessionFull { id: i64, title: String },
    #[error("already booked")]
    AlreadyBooked { session: Option<(i64, String)> },
    #[error("no booking with that manage token")]
    NotFound,
    /// The generated reference was in use; [`book`] tries again with another.
    #[error("booking reference already in use")]
    ReferenceCollision,
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for BookingError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = bookings)]
struct BookingRow {
    id: i64,
    event_id: i64,
    reference: String,
    attendee_name: String,
    attendee_email: String,
    attendee_organisation: Option<String>,
    total_minor: i64,
    currency: String,
    status: String,
    payment_status: String,
    created_at: NaiveDateTime,
}

impl BookingRow {
    fn into_booking(self, seats: Vec<Seat>) -> Booking {
        Booking {
            id: self.id,
            event_id: self.event_id,
            reference: self.reference,
            attendee_name: self.attendee_name,
            attendee_email: self.attendee_email,
            attendee_organisation: self.attendee_organisation,
            total_minor: self.total_minor,
            currency: self.currency,
            status: if self.status == "cancelled" {
                BookingStatus::Cancelled
            } else {
                BookingStatus::Confirmed
            },
            payment_status: match self.payment_status.as_str() {
                "unpaid" => PaymentStatus::Unpaid,
                "paid" => PaymentStatus::Paid,
                _ => PaymentStatus::NotRequired,
            },
            created_at: self.created_at.and_utc(),
            seats,
        }
    }
}

/// Books every requested session for the attendee, or none of them.
#[tracing::instrument(level = "debug", skip_all, fields(event = event_slug, sessions = ?request.session_ids))]
pub fn book(
    conn: &mut DbConn,
    event_slug: &str,
    request: &BookingRequest,
    reference_prefix: &str,
) -> Result<Booked, BookingError> {
    // A new reference collides with an existing one about once in a billion bookings; the
    // unique index catches it and the whole attempt is made again with another reference.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match book_once(conn, event_slug, request, reference_prefix) {
            Err(BookingError::ReferenceCollision) if attempts < 5 => continue,
            outcome => return outcome,
        }
    }
}

/// One booking transaction: two reads, one insert per row, one conditional counter update per
/// session. Every round trip is paid under a busy session's row lock, so there are no others.
fn book_once(
    conn: &mut DbConn,
    event_slug: &str,
    request: &BookingRequest,
    reference_prefix: &str,
) -> Result<Booked, BookingError> {
    db::write_transaction(conn, |conn| {
        let (event, found) = match sessions::with_event(conn, event_slug, &request.session_ids)? {
            Some(both) => both,
            // Nothing matched: find out why, for the answer.
            None => (events::find_published(conn, event_slug)?, Vec::new()),
        };
        if event.status != EventStatus::Published {
            return Err(EventError::NotFound(event_slug.to_owned()).into());
        }
        let now = Utc::now();
        if !event.registration_open(now) {
            return Err(BookingError::RegistrationClosed);
        }
        let wanted = bookable_sessions(found, &event, &request.session_ids, now)?;
        // Fail fast on what was full when read; the conditional update below decides for real.
        if let Some(full) = wanted.iter().find(|s| s.taken >= s.capacity) {
            return Err(BookingError::SessionFull {
                id: full.id,
                title: full.title.clone(),
            });
        }

        let manage_token = tokens::random_token("");
        let reference = new_reference(reference_prefix);
        let total: i64 = wanted.iter().map(|s| s.price_minor).sum();
        let payment_status = if total > 0 {
            PaymentStatus::Unpaid
        } else {
            PaymentStatus::NotRequired
        };
        let stamp = db::now();
        let inserted = diesel::insert_into(bookings::table)
            .values((
                bookings::event_id.eq(event.id),
                bookings::reference.eq(&reference),
                bookings::manage_token_hash.eq(tokens::hash_token(&manage_token)),
                bookings::attendee_name.eq(&request.attendee.name),
                bookings::attendee_email.eq(request.attendee.email.as_str()),
                bookings::attendee_organisation.eq(&request.attendee.organisation),
                bookings::total_minor.eq(total),
                bookings::currency.eq(&event.currency),
                bookings::status.eq("confirmed"),
                bookings::payment_status.eq(payment_status.as_str()),
                bookings::created_at.eq(stamp),
                bookings::updated_at.eq(stamp),
            ))
            .returning(bookings::id)
            .get_result(conn);
        let booking_id: i64 = match inserted {
            Err(e) if db::is_unique_violation(&e) => return Err(BookingError::ReferenceCollision),
            other => other?,
        };
        // The unique index on (session, email) of active seats is what refuses a second seat for
        // the same person, also when two of their requests race.
        let email = request.attendee.email.normalized();
        for session in &wanted {
            let inserted = diesel::insert_into(seats::table)
                .values((
                    seats::booking_id.eq(booking_id),
                    seats::session_id.eq(session.id),
                    seats::attendee_email.eq(&email),
                    seats::state.eq(SeatState::Confirmed.as_str()),
                    seats::price_minor.eq(session.price_minor),
                    seats::created_at.eq(stamp),
                ))
                .execute(conn);
            match inserted {
                Err(e) if db::is_unique_violation(&e) => {
                    return Err(BookingError::AlreadyBooked {
                        session: Some((session.id, session.title.clone())),
                    })
                }
                other => other?,
            };
        }
        // Counters last, in id order: row locks on busy sessions are held only until the commit
        // that follows, and two bookings never wait on each other in opposite orders.
        for session in &wanted {
            if !sessions::take_seat(conn, session.id)? {
                return Err(BookingError::SessionFull {
                    id: session.id,
                    title: session.title.clone(),
                });
            }
        }
        let mut seats: Vec<Seat> = wanted
            .iter()
            .map(|s| Seat {
                session_id: s.id,
                title: s.title.clone(),
                room: s.room.clone(),
                starts_at: s.starts_at,
                ends_at: s.ends_at,
                state: SeatState::Confirmed,
                price_minor: s.price_minor,
            })
            .collect();
        seats.sort_by_key(|s| (s.starts_at, s.session_id));
        let booking = Booking {
            id: booking_id,
            event_id: event.id,
            reference,
            attendee_name: request.attendee.name.clone(),
            attendee_email: request.attendee.email.as_str().to_owned(),
            attendee_organisation: request.attendee.organisation.clone(),
            total_minor: total,
            currency: event.currency.clone(),
            status: BookingStatus::Confirmed,
            payment_status,
            created_at: stamp.and_utc(),
            seats,
        };
        Ok(Booked {
            event,
            booking,
            manage_token,
        })
    })
}

/// The requested sessions, refusing any that is not a published, future session of the event.
fn bookable_sessions(
    found: Vec<Session>,
    event: &Event,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<Session>, BookingError> {
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| {
            !found
                .iter()
                .any(|s| s.id == **id && s.event_id == event.id && s.status != SessionStatus::Draft)
        })
        .map(i64::to_string)
        .collect();
    if !unknown.is_empty() {
        return Err(ValidationError::single(
            "session_ids",
            format!("no such session in this event: {}", unknown.join(", ")),
        )
        .into());
    }
    for s in &found {
        if s.status == SessionStatus::Cancelled {
            return Err(BookingError::SessionCancelled {
                id: s.id,
                title: s.title.clone(),
            });
        }
        if s.starts_at <= now {
            return Err(BookingError::SessionStarted {
                id: s.id,
                title: s.title.clone(),
            });
        }
    }
    Ok(found)
}

/// Letters and digits that cannot be mistaken for each other when read aloud or copied.
const REFERENCE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

fn new_reference(prefix: &str) -> String {
    let mut rng = rand::rng();
    let code: String = (0..6)
        .filter_map(|_| REFERENCE_ALPHABET.choose(&mut rng).map(|b| char::from(*b)))
        .collect();
    format!("{prefix}-{code}")
}

type SeatRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
    i64,
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
                seats::booking_id,
                seats::session_id,
                seats::state,
                sessions_table::title,
                sessions_table::room,
                sessions_table::starts_at,
                sessions_table::ends_at,
                seats::price_minor,
            ))
            .load(conn)?;
        for (booking_id, session_id, state, title, room, starts_at, ends_at, price_minor) in
            seat_rows
        {
            by_booking.entry(booking_id).or_default().push(Seat {
                session_id,
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

fn load(conn: &mut DbConn, id: i64) -> Result<Booking, DbError> {
    let row = bookings::table
        .find(id)
        .select(BookingRow::as_select())
        .first(conn)?;
    with_seats(conn, vec![row])?
        .pop()
        .ok_or(DbError::Query(diesel::result::Error::NotFound))
}

fn id_for_token(conn: &mut DbConn, manage_token: &str) -> Result<i64, BookingError> {
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

/// Cancels the booking's seats in `session_ids`, or all of them; each freed seat goes back to
/// its session in the same transaction. Seats already cancelled are left as they are.
#[tracing::instrument(level = "debug", skip(conn, manage_token))]
pub fn cancel(
    conn: &mut DbConn,
    manage_token: &str,
    session_ids: Option<&[i64]>,
) -> Result<(Event, Booking), BookingError> {
    db::write_transaction(conn, |conn| {
        let id = id_for_token(conn, manage_token)?;
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
        let now = db::now();
        for session_id in targets {
            let changed = diesel::update(seats::table)
                .filter(seats::booking_id.eq(id))
                .filter(seats::session_id.eq(session_id))
                .filter(seats::state.eq_any(SeatState::ACTIVE))
                .set((
                    seats::state.eq(SeatState::Cancelled.as_str()),
                    seats::cancelled_at.eq(Some(now)),
                ))
                .execute(conn)?;
            if changed > 0 {
                sessions::free_seats(conn, session_id, changed as i32)?;
            }
        }
        refresh(conn, id)?;
        let booking = load(conn, id)?;
        let event = events::by_id(conn, booking.event_id)?;
        Ok((event, booking))
    })
}

/// Recomputes a booking's total and status from its active seats.
fn refresh(conn: &mut DbConn, id: i64) -> Result<(), DbError> {
    let active: Vec<i64> = seats::table
        .filter(seats::booking_id.eq(id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .select(seats::price_minor)
        .load(conn)?;
    let total: i64 = active.iter().sum();
    let status = if active.is_empty() {
        "cancelled"
    } else {
        "confirmed"
    };
    diesel::update(bookings::table.find(id))
        .set((
            bookings::total_minor.eq(total),
            bookings::status.eq(status),
            bookings::updated_at.eq(db::now()),
        ))
        .execute(conn)?;
    // Nothing left to pay for an unpaid booking once its priced seats are gone.
    diesel::update(bookings::table.find(id))
        .filter(bookings::payment_status.eq("unpaid"))
        .filter(bookings::total_minor.eq(0))
        .set(bookings::payment_status.eq("not_required"))
        .execute(conn)?;
    Ok(())
}

/// Cancels every active seat of a session (the organiser cancelled it). Runs inside the
/// caller's transaction.
pub fn cancel_session_seats(conn: &mut DbConn, session_id: i64) -> Result<usize, DbError> {
    let affected: Vec<i64> = seats::table
        .filter(seats::session_id.eq(session_id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .select(seats::booking_id)
        .load(conn)?;
    let changed = diesel::update(seats::table)
        .filter(seats::session_id.eq(session_id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .set((
            seats::state.eq(SeatState::Cancelled.as_str()),
            seats::cancelled_at.eq(Some(db::now())),
        ))
        .execute(conn)?;
    if changed > 0 {
        sessions::free_seats(conn, session_id, changed as i32)?;
    }
    for booking_id in affected {
        refresh(conn, booking_id)?;
    }
    Ok(changed)
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

/// A person holding a seat in a session.
#[derive(Debug, Clone)]
pub struct SessionAttendee {
    pub reference: String,
    pub name: String,
    pub email: String,
    pub organisation: Option<String>,
    pub state: SeatState,
    pub booked_at: DateTime<Utc>,
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
