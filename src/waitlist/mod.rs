//! Waitlists: people waiting for a full session, first in first served.
//!
//! A freed seat never goes back to the public while someone waits: every transaction that frees
//! a seat calls [`offer_free_seats`] before it commits, and the first person waiting gets an
//! **offer**: the seat is reserved for them (counted in the session's `taken`) until a deadline.
//! Claiming turns the reservation into a booking; declining, leaving or letting the deadline pass
//! hands it to the next person in the same transaction. All of it happens under the session's
//! row lock, so `seats + offers <= capacity` holds at every instant, in any number of processes.

pub mod http;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::bookings::{self, Attendee, Booked, BookingError, Finish, Issuer, SeatState};
use crate::db::schema::{seats, waitlist_entries};
use crate::db::{self, DbConn, DbError};
use crate::events::{self, Event, EventError};
use crate::mail::data::WaitlistMail;
use crate::mail::{self, compose, Template};
use crate::sessions::{self, Session, SessionError, SessionStatus};
use crate::tokens;

/// How many lapsed offers one sweep handles at most; the next sweep takes the rest.
const SWEEP_BATCH: i64 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    Waiting,
    /// A seat is reserved for this person until `offer_expires_at`.
    Offered,
    Claimed,
    Declined,
    Expired,
    Withdrawn,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Offered => "offered",
            Self::Claimed => "claimed",
            Self::Declined => "declined",
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub(crate) fn from_db(raw: &str) -> Self {
        match raw {
            "waiting" => Self::Waiting,
            "offered" => Self::Offered,
            "claimed" => Self::Claimed,
            "declined" => Self::Declined,
            "expired" => Self::Expired,
            _ => Self::Withdrawn,
        }
    }

    /// The states in which a person is still on the list.
    pub const ACTIVE: [&'static str; 2] = ["waiting", "offered"];
}

/// One person's place on one session's waitlist.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub session_id: i64,
    pub reference: String,
    pub attendee_name: String,
    pub attendee_email: String,
    pub attendee_organisation: Option<String>,
    pub state: EntryState,
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub booking_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    queue_key: i64,
    email_key: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = waitlist_entries)]
struct EntryRow {
    id: i64,
    session_id: i64,
    reference: String,
    attendee_name: String,
    attendee_email: String,
    email_key: String,
    attendee_organisation: Option<String>,
    state: String,
    queue_key: i64,
    offer_expires_at: Option<NaiveDateTime>,
    booking_id: Option<i64>,
    created_at: NaiveDateTime,
}

impl From<EntryRow> for Entry {
    fn from(row: EntryRow) -> Self {
        Self {
            id: row.id,
            session_id: row.session_id,
            reference: row.reference,
            attendee_name: row.attendee_name,
            attendee_email: row.attendee_email,
            attendee_organisation: row.attendee_organisation,
            state: EntryState::from_db(&row.state),
            queue_key: row.queue_key,
            email_key: row.email_key,
            offer_expires_at: row.offer_expires_at.map(|t| t.and_utc()),
            booking_id: row.booking_id,
            created_at: row.created_at.and_utc(),
        }
    }
}

/// An entry with what its holder needs to see: the session, the event and their place.
#[derive(Debug, Clone)]
pub struct EntryView {
    pub entry: Entry,
    /// 1 is next in line; only while waiting.
    pub position: Option<i64>,
    pub session: Session,
    pub event: Event,
}

/// A new entry, with its manage token in the clear (shown this once only).
pub struct Joined {
    pub view: EntryView,
    pub manage_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WaitlistError {
    #[error("no waitlist entry with that manage token")]
    NotFound,
    #[error("session {0} is not in this event")]
    UnknownSession(i64),
    #[error("session {id} has no waitlist")]
    Disabled { id: i64, title: String },
    #[error("session {id} has seats left")]
    SeatsAvailable { id: i64, title: String },
    #[error("already booked")]
    AlreadyBooked { id: i64, title: String },
    #[error("already waiting")]
    AlreadyWaiting { id: i64, title: String },
    #[error("session {id} is cancelled")]
    SessionCancelled { id: i64, title: String },
    #[error("session {id} has already started")]
    SessionStarted { id: i64, title: String },
    /// The entry is not in a state that allows this (e.g. claiming without an offer).
    #[error("the waitlist entry is {0:?}")]
    NotAllowed(EntryState),
    #[error("the offer ran out")]
    OfferExpired,
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for WaitlistError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

/// Puts `attendee` on the waitlist of a full session.
#[tracing::instrument(level = "debug", skip(conn, issuer, attendee, finish))]
pub fn join(
    conn: &mut DbConn,
    issuer: &Issuer,
    event_slug: &str,
    session_id: i64,
    attendee: &Attendee,
    now: DateTime<Utc>,
    mut finish: Finish<Joined>,
) -> Result<Joined, WaitlistError> {
    db::write_transaction(conn, |conn| {
        let event = events::find_published(conn, event_slug)?;
        // Under the session's lock: a seat freed at this moment either went to the waitlist
        // already or is still free, and then the person is told to book it.
        sessions::lock(conn, session_id).map_err(WaitlistError::Db)?;
        let session = match sessions::find(conn, session_id) {
            Ok(s) if s.event_id == event.id && s.status != SessionStatus::Draft => s,
            Ok(_) | Err(SessionError::NotFound(_)) => {
                return Err(WaitlistError::UnknownSession(session_id))
            }
            Err(e) => return Err(e.into()),
        };
        let named = |s: &Session| (s.id, s.title.clone());
        if session.status == SessionStatus::Cancelled {
            let (id, title) = named(&session);
            return Err(WaitlistError::SessionCancelled { id, title });
        }
        if session.starts_at <= now {
            let (id, title) = named(&session);
            return Err(WaitlistError::SessionStarted { id, title });
        }
        if !session.waitlist_enabled {
            let (id, title) = named(&session);
            return Err(WaitlistError::Disabled { id, title });
        }
        if session.taken < session.capacity {
            let (id, title) = named(&session);
            return Err(WaitlistError::SeatsAvailable { id, title });
        }
        let email_key = attendee.email.normalized();
        if holds_seat(conn, session_id, &email_key)? {
            let (id, title) = named(&session);
            return Err(WaitlistError::AlreadyBooked { id, title });
        }
        if active_entry(conn, session_id, &email_key)?.is_some() {
            let (id, title) = named(&session);
            return Err(WaitlistError::AlreadyWaiting { id, title });
        }
        let reference = new_reference();
        let manage_token = issuer.key.manage_token(&reference);
        let stamp = db::stored(now);
        let id: i64 = diesel::insert_into(waitlist_entries::table)
            .values((
                waitlist_entries::session_id.eq(session_id),
                waitlist_entries::reference.eq(&reference),
                waitlist_entries::manage_token_hash.eq(tokens::hash_token(&manage_token)),
                waitlist_entries::attendee_name.eq(&attendee.name),
                waitlist_entries::attendee_email.eq(attendee.email.as_str()),
                waitlist_entries::email_key.eq(&email_key),
                waitlist_entries::attendee_organisation.eq(&attendee.organisation),
                waitlist_entries::state.eq(EntryState::Waiting.as_str()),
                // First in, first out by insertion (the id); only a promotion moves someone
                // ahead, with a key below everyone's.
                waitlist_entries::queue_key.eq(0),
                waitlist_entries::created_at.eq(stamp),
                waitlist_entries::updated_at.eq(stamp),
            ))
            .returning(waitlist_entries::id)
            .get_result(conn)?;
        let view = view_by_id(conn, id)?;
        tell(conn, &view, Template::WaitlistJoined)?;
        let joined = Joined { view, manage_token };
        if let Some(finish) = finish.as_mut() {
            finish(conn, &joined)?;
        }
        Ok(joined)
    })
}

/// The entry behind a manage token, with its place in the queue.
pub fn find_by_token(conn: &mut DbConn, manage_token: &str) -> Result<EntryView, WaitlistError> {
    let entry = entry_for_token(conn, manage_token)?;
    view_of(conn, entry)
}

/// Leaves the waitlist; an offered seat goes to the next person at once.
pub fn leave(
    conn: &mut DbConn,
    issuer: &Issuer,
    manage_token: &str,
    now: DateTime<Utc>,
) -> Result<EntryView, WaitlistError> {
    db::write_transaction(conn, |conn| {
        let found = entry_for_token(conn, manage_token)?;
        sessions::lock(conn, found.session_id)?;
        let entry = find(conn, found.id)?;
        let to = match entry.state {
            EntryState::Waiting => EntryState::Withdrawn,
            EntryState::Offered => EntryState::Declined,
            other => return Err(WaitlistError::NotAllowed(other)),
        };
        end_entry(conn, &entry, to, issuer, now)?;
        let view = view_by_id(conn, entry.id)?;
        tell(conn, &view, Template::WaitlistLeft)?;
        Ok(view)
    })
}

/// Declines an offer: the seat goes to the next person at once.
pub fn decline(
    conn: &mut DbConn,
    issuer: &Issuer,
    manage_token: &str,
    now: DateTime<Utc>,
) -> Result<EntryView, WaitlistError> {
    let entry = entry_for_token(conn, manage_token)?;
    if entry.state != EntryState::Offered {
        return Err(WaitlistError::NotAllowed(entry.state));
    }
    leave(conn, issuer, manage_token, now)
}

/// What a claim came to: the booking, or an offer found lapsed (and passed on).
enum Claim {
    Booked(Box<Booked>),
    Lapsed,
}

/// Claims an offered seat: it becomes a booking (confirmed if free, held for payment if
/// priced), with its own manage token. The reservation moves to the seat; no counter changes.
pub fn claim(
    conn: &mut DbConn,
    issuer: &Issuer,
    manage_token: &str,
    now: DateTime<Utc>,
    mut finish: Finish<Booked>,
) -> Result<Booked, WaitlistError> {
    let outcome = db::write_transaction(conn, |conn| -> Result<Claim, WaitlistError> {
        let found = entry_for_token(conn, manage_token)?;
        sessions::lock(conn, found.session_id)?;
        // As it is now that the session is ours: a decline or a lapse may have come first.
        let entry = find(conn, found.id)?;
        if entry.state != EntryState::Offered {
            return Err(WaitlistError::NotAllowed(entry.state));
        }
        if entry.offer_expires_at.is_none_or(|until| until <= now) {
            // Past its deadline though no sweeper has seen it yet: pass it on now.
            expire_entry(conn, &entry, issuer, now)?;
            return Ok(Claim::Lapsed);
        }
        let session = sessions::find(conn, entry.session_id)?;
        let event = events::by_id(conn, session.event_id)?;
        let attendee = Attendee {
            name: entry.attendee_name.clone(),
            email: crate::validation::Email::parse(&entry.attendee_email)
                .map_err(|e| DbError::Inconsistent(format!("stored email: {e}")))?,
            organisation: entry.attendee_organisation.clone(),
        };
        if !event.allow_clashes {
            if let Some(other) = sessions::clashing_seat(conn, &entry.email_key, &session)? {
                // Refused, and the offer stands: they may cancel the other seat and claim.
                return Err(BookingError::TimetableClash {
                    session: (session.id, session.title.clone()),
                    other,
                }
                .into());
            }
        }
        let booked =
            bookings::write_booking(conn, &event, &[&session], &attendee, issuer, now, false)?;
        diesel::update(waitlist_entries::table.find(entry.id))
            .set((
                waitlist_entries::state.eq(EntryState::Claimed.as_str()),
                waitlist_entries::booking_id.eq(Some(booked.booking.id)),
                waitlist_entries::updated_at.eq(db::stored(now)),
            ))
            .execute(conn)?;
        if let Some(finish) = finish.as_mut() {
            finish(conn, &booked)?;
        }
        Ok(Claim::Booked(Box::new(booked)))
    })?;
    match outcome {
        Claim::Booked(booked) => Ok(*booked),
        Claim::Lapsed => Err(WaitlistError::OfferExpired),
    }
}

/// Offers the session's free seats to the people waiting, first in first served, until the
/// seats or the people run out. Call it, holding the session's row lock, in every transaction
/// that frees a seat. Returns how many offers it made.
pub fn offer_free_seats(
    conn: &mut DbConn,
    session_id: i64,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let mut offered = 0;
    loop {
        let session = match sessions::find(conn, session_id) {
            Ok(s) => s,
            Err(SessionError::Db(e)) => return Err(e),
            Err(_) => return Ok(offered),
        };
        if session.status != SessionStatus::Published || session.taken >= session.capacity {
            return Ok(offered);
        }
        // Never past the start: an offer that could not be used is no offer.
        let until = (now + issuer.offer).min(session.starts_at);
        if until <= now {
            return Ok(offered);
        }
        let Some(next) = first_waiting(conn, session_id)? else {
            return Ok(offered);
        };
        let stamp = db::stored(now);
        diesel::update(waitlist_entries::table.find(next.id))
            .filter(waitlist_entries::state.eq(EntryState::Waiting.as_str()))
            .set((
                waitlist_entries::state.eq(EntryState::Offered.as_str()),
                waitlist_entries::offered_at.eq(Some(stamp)),
                waitlist_entries::offer_expires_at.eq(Some(db::stored(until))),
                waitlist_entries::updated_at.eq(stamp),
            ))
            .execute(conn)?;
        sessions::reserve_seat(conn, session_id)?;
        let entry = find(conn, next.id)?;
        let view = EntryView {
            position: None,
            event: events::by_id(conn, session.event_id)?,
            session,
            entry,
        };
        tell(conn, &view, Template::WaitlistOffer)?;
        offered += 1;
    }
}

/// Lets offers whose deadline has passed by `now` lapse: each seat goes to the next person.
/// Each entry is its own transaction and lapses only if it is still offered then, so any number
/// of sweepers may run. Returns how many lapsed.
pub fn expire_offers(
    conn: &mut DbConn,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<usize, WaitlistError> {
    let due: Vec<i64> = waitlist_entries::table
        .filter(waitlist_entries::state.eq(EntryState::Offered.as_str()))
        .filter(waitlist_entries::offer_expires_at.le(db::stored(now)))
        .order(waitlist_entries::offer_expires_at.asc())
        .select(waitlist_entries::id)
        .limit(SWEEP_BATCH)
        .load(conn)?;
    let mut lapsed = 0;
    for id in due {
        let done = db::write_transaction(conn, |conn| -> Result<bool, WaitlistError> {
            let found = find(conn, id)?;
            sessions::lock(conn, found.session_id)?;
            let entry = find(conn, id)?;
            expire_entry(conn, &entry, issuer, now)
        });
        match done {
            Ok(true) => lapsed += 1,
            Ok(false) => {}
            // One entry that cannot lapse must not hold up the others.
            Err(e) => tracing::warn!(entry = id, error = %e, "offer not lapsed; will try again"),
        }
    }
    Ok(lapsed)
}

/// Everyone on a session's list, in queue order, then those who left it.
pub fn for_session(conn: &mut DbConn, session_id: i64) -> Result<Vec<Entry>, DbError> {
    let mut entries: Vec<Entry> = waitlist_entries::table
        .filter(waitlist_entries::session_id.eq(session_id))
        .select(EntryRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Entry::from)
        .collect();
    entries.sort_by_key(|e| {
        let active = matches!(e.state, EntryState::Offered | EntryState::Waiting);
        (!active, e.state != EntryState::Offered, e.queue_key, e.id)
    });
    Ok(entries)
}

/// Moves a waiting person to the front of the queue; with `add_seat`, also raises the
/// session's capacity by one so that they get an offer now.
pub fn promote(
    conn: &mut DbConn,
    issuer: &Issuer,
    session_id: i64,
    entry_id: i64,
    add_seat: bool,
    now: DateTime<Utc>,
) -> Result<EntryView, WaitlistError> {
    db::write_transaction(conn, |conn| {
        sessions::lock(conn, session_id)?;
        let entry = waitlist_entries::table
            .find(entry_id)
            .filter(waitlist_entries::session_id.eq(session_id))
            .select(EntryRow::as_select())
            .first(conn)
            .optional()?
            .map(Entry::from)
            .ok_or(WaitlistError::NotFound)?;
        if entry.state != EntryState::Waiting {
            return Err(WaitlistError::NotAllowed(entry.state));
        }
        let front: Option<i64> = waitlist_entries::table
            .filter(waitlist_entries::session_id.eq(session_id))
            .filter(waitlist_entries::state.eq(EntryState::Waiting.as_str()))
            .select(diesel::dsl::min(waitlist_entries::queue_key))
            .first(conn)?;
        let key = front
            .map_or(entry.queue_key, |k| k.min(entry.queue_key) - 1)
            .min(-1);
        diesel::update(waitlist_entries::table.find(entry_id))
            .set((
                waitlist_entries::queue_key.eq(key),
                waitlist_entries::updated_at.eq(db::stored(now)),
            ))
            .execute(conn)?;
        if add_seat {
            sessions::add_seat(conn, session_id)?;
        }
        offer_free_seats(conn, session_id, issuer, now)?;
        view_by_id(conn, entry_id)
    })
}

/// Ends every active entry of a session an organiser cancelled, telling each person: offered
/// seats are released with the session's. Runs in the caller's transaction, under the session's
/// lock.
pub fn close_session(
    conn: &mut DbConn,
    session_id: i64,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let stamp = db::stored(now);
    let ending: Vec<i64> = waitlist_entries::table
        .filter(waitlist_entries::session_id.eq(session_id))
        .filter(waitlist_entries::state.eq_any(EntryState::ACTIVE))
        .select(waitlist_entries::id)
        .load(conn)?;
    let offers = diesel::update(waitlist_entries::table)
        .filter(waitlist_entries::session_id.eq(session_id))
        .filter(waitlist_entries::state.eq(EntryState::Offered.as_str()))
        .set((
            waitlist_entries::state.eq(EntryState::Expired.as_str()),
            waitlist_entries::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    if offers > 0 {
        sessions::free_seats(conn, session_id, offers as i32)?;
    }
    let waiting = diesel::update(waitlist_entries::table)
        .filter(waitlist_entries::session_id.eq(session_id))
        .filter(waitlist_entries::state.eq(EntryState::Waiting.as_str()))
        .set((
            waitlist_entries::state.eq(EntryState::Withdrawn.as_str()),
            waitlist_entries::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    for id in ending {
        let entry = find(conn, id)?;
        let session = sessions::find(conn, session_id).map_err(|e| match e {
            SessionError::Db(e) => e,
            other => DbError::Inconsistent(other.to_string()),
        })?;
        let view = EntryView {
            event: events::by_id(conn, session.event_id)?,
            session,
            entry,
            position: None,
        };
        tell_as(conn, &view, Template::WaitlistLeft, "cancelled")?;
    }
    Ok(offers + waiting)
}

fn expire_entry(
    conn: &mut DbConn,
    entry: &Entry,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<bool, WaitlistError> {
    let stamp = db::stored(now);
    let changed = diesel::update(waitlist_entries::table.find(entry.id))
        .filter(waitlist_entries::state.eq(EntryState::Offered.as_str()))
        .filter(waitlist_entries::offer_expires_at.le(stamp))
        .set((
            waitlist_entries::state.eq(EntryState::Expired.as_str()),
            waitlist_entries::updated_at.eq(stamp),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Ok(false);
    }
    sessions::free_seats(conn, entry.session_id, 1)?;
    offer_free_seats(conn, entry.session_id, issuer, now)?;
    let view = view_by_id(conn, entry.id)?;
    tell(conn, &view, Template::OfferExpired)?;
    Ok(true)
}

/// Ends an active entry as `to`; an offered seat goes back and on to the next person.
fn end_entry(
    conn: &mut DbConn,
    entry: &Entry,
    to: EntryState,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<(), WaitlistError> {
    let changed = diesel::update(waitlist_entries::table.find(entry.id))
        .filter(waitlist_entries::state.eq(entry.state.as_str()))
        .set((
            waitlist_entries::state.eq(to.as_str()),
            waitlist_entries::updated_at.eq(db::stored(now)),
        ))
        .execute(conn)?;
    if changed == 1 && entry.state == EntryState::Offered {
        sessions::free_seats(conn, entry.session_id, 1)?;
        offer_free_seats(conn, entry.session_id, issuer, now)?;
    }
    Ok(())
}

fn find(conn: &mut DbConn, id: i64) -> Result<Entry, DbError> {
    Ok(waitlist_entries::table
        .find(id)
        .select(EntryRow::as_select())
        .first(conn)?
        .into())
}

fn entry_for_token(conn: &mut DbConn, manage_token: &str) -> Result<Entry, WaitlistError> {
    if !tokens::plausible(manage_token) {
        return Err(WaitlistError::NotFound);
    }
    waitlist_entries::table
        .filter(waitlist_entries::manage_token_hash.eq(tokens::hash_token(manage_token)))
        .select(EntryRow::as_select())
        .first(conn)
        .optional()?
        .map(Entry::from)
        .ok_or(WaitlistError::NotFound)
}

fn first_waiting(conn: &mut DbConn, session_id: i64) -> Result<Option<Entry>, DbError> {
    Ok(waitlist_entries::table
        .filter(waitlist_entries::session_id.eq(session_id))
        .filter(waitlist_entries::state.eq(EntryState::Waiting.as_str()))
        .order((
            waitlist_entries::queue_key.asc(),
            waitlist_entries::id.asc(),
        ))
        .select(EntryRow::as_select())
        .first(conn)
        .optional()?
        .map(Entry::from))
}

fn active_entry(
    conn: &mut DbConn,
    session_id: i64,
    email_key: &str,
) -> Result<Option<i64>, DbError> {
    Ok(waitlist_entries::table
        .filter(waitlist_entries::session_id.eq(session_id))
        .filter(waitlist_entries::email_key.eq(email_key))
        .filter(waitlist_entries::state.eq_any(EntryState::ACTIVE))
        .select(waitlist_entries::id)
        .first(conn)
        .optional()?)
}

fn holds_seat(conn: &mut DbConn, session_id: i64, email_key: &str) -> Result<bool, DbError> {
    let found: Option<i64> = seats::table
        .filter(seats::session_id.eq(session_id))
        .filter(seats::attendee_email.eq(email_key))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .select(seats::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// 1 + how many wait ahead of `entry`; `None` unless it is waiting.
fn position(conn: &mut DbConn, entry: &Entry) -> Result<Option<i64>, DbError> {
    if entry.state != EntryState::Waiting {
        return Ok(None);
    }
    let ahead: i64 = waitlist_entries::table
        .filter(waitlist_entries::session_id.eq(entry.session_id))
        .filter(waitlist_entries::state.eq(EntryState::Waiting.as_str()))
        .filter(
            waitlist_entries::queue_key
                .lt(entry.queue_key)
                .or(waitlist_entries::queue_key
                    .eq(entry.queue_key)
                    .and(waitlist_entries::id.lt(entry.id))),
        )
        .count()
        .get_result(conn)?;
    Ok(Some(ahead + 1))
}

fn view_of(conn: &mut DbConn, entry: Entry) -> Result<EntryView, WaitlistError> {
    let session = sessions::find(conn, entry.session_id)?;
    let event = events::by_id(conn, session.event_id)?;
    let position = position(conn, &entry)?;
    Ok(EntryView {
        entry,
        position,
        session,
        event,
    })
}

fn view_by_id(conn: &mut DbConn, id: i64) -> Result<EntryView, WaitlistError> {
    let entry = find(conn, id)?;
    view_of(conn, entry)
}

/// Writes the email about an entry to the outbox.
fn tell(conn: &mut DbConn, view: &EntryView, template: Template) -> Result<(), DbError> {
    tell_as(conn, view, template, view.entry.state.as_str())
}

/// Like [`tell`], with the state the email gives the session (`cancelled` when an organiser
/// cancelled it).
fn tell_as(
    conn: &mut DbConn,
    view: &EntryView,
    template: Template,
    state: &str,
) -> Result<(), DbError> {
    let entry = &view.entry;
    let mut data = compose::booking_mail(&view.event, &entry.reference, &entry.attendee_name);
    let line = compose::SessionLine {
        session_id: view.session.id,
        title: &view.session.title,
        room: view.session.room.as_deref(),
        speakers: &view.session.speakers,
        starts_at: view.session.starts_at,
        ends_at: view.session.ends_at,
        sequence: view.session.sequence,
        price_minor: view.session.price_minor,
    };
    data.waitlist = Some(WaitlistMail {
        session: compose::seat_mail(0, &line, view.event.time_zone, &view.event.currency, state),
        position: view.position,
        offer_until: entry
            .offer_expires_at
            .filter(|_| entry.state == EntryState::Offered)
            .map(|t| compose::moment(t, view.event.time_zone)),
    });
    mail::enqueue(conn, template, &entry.attendee_email, None, &data)
}

/// Waitlist references look like `WL-7K3F9Q`: never confused with a booking's.
fn new_reference() -> String {
    bookings::new_reference("WL")
}
