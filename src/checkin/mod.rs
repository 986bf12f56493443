//! Check-in at the door. Every confirmed seat has a check-in code (see [`token`]), shown to the
//! attendee as a QR code on their booking page and in their emails (see [`qr`]). An organiser
//! with the `checkin` role scans it, or finds the person by name, email or booking reference,
//! and the seat is marked as attended once: the first scan checks the person in, any later one
//! says when and by whom. Only a confirmed seat of the session at hand can be checked in; a
//! cancelled, expired or unpaid one is refused with the reason. A mistaken check-in can be
//! undone.

mod door;
pub mod http;
pub mod qr;
pub mod token;

pub use door::{check_in, door_list, undo};

use chrono::{DateTime, Utc};

use crate::bookings::SeatState;
use crate::db::DbError;
use crate::events::Event;
use crate::sessions::{Session, SessionError};
use crate::validation::ValidationError;

/// How the organiser names the seat at the door.
#[derive(Debug, Clone)]
pub enum Presented {
    /// A check-in code, as scanned or typed.
    Code(String),
    /// A seat the organiser picked from the door list.
    Seat(i64),
}

/// The organiser who checked someone in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedInBy {
    pub id: i64,
    pub name: String,
}

/// A seat as the door sees it: who holds it and whether they have arrived.
#[derive(Debug, Clone)]
pub struct DoorEntry {
    pub seat_id: i64,
    pub session_id: i64,
    pub reference: String,
    pub name: String,
    pub email: String,
    pub organisation: Option<String>,
    pub state: SeatState,
    pub checked_in_at: Option<DateTime<Utc>>,
    /// `None` also when the organiser's account is gone.
    pub checked_in_by: Option<CheckedInBy>,
}

/// What presenting a seat at the door came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Let them in: the seat is now marked as attended.
    CheckedIn,
    /// The seat was checked in before (`checked_in_at`, `checked_in_by` say when and by whom).
    AlreadyCheckedIn,
    /// A genuine seat, for another session (`id`, `title`).
    OtherSession { id: i64, title: String },
    /// The seat was cancelled (by the attendee, an organiser, or with its session).
    Cancelled,
    /// The seat is not confirmed: held awaiting payment, or released unpaid (`expired`).
    NotConfirmed,
}

/// The answer at the door: the outcome, the seat, and the session being checked into.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub outcome: Outcome,
    pub entry: DoorEntry,
    pub session: Session,
    pub event: Event,
}

impl Arrival {
    /// What the audit trail keeps of this arrival: a check-in changes the seat; any other
    /// answer (already in, another session, cancelled) changes nothing and is not recorded.
    pub fn audit_record(&self) -> Option<crate::audit::Record> {
        matches!(self.outcome, Outcome::CheckedIn).then(|| {
            crate::audit::Record::new("checkin.arrive", format!("seat:{}", self.entry.seat_id))
                .before(&serde_json::json!({ "checked_in": false }))
                .after(&serde_json::json!({
                    "checked_in": true,
                    "session": self.session.id,
                    "reference": self.entry.reference,
                }))
        })
    }
}

/// A check-in taken back, or `undone: false` when the seat was not checked in.
#[derive(Debug, Clone)]
pub struct Undone {
    pub undone: bool,
    pub entry: DoorEntry,
    pub event: Event,
}

/// A session's door list: its confirmed seats (those matching a search, when there is one) and
/// its counts.
#[derive(Debug, Clone)]
pub struct DoorList {
    pub event: Event,
    pub session: Session,
    /// Confirmed seats in the session, whatever the search.
    pub confirmed: i64,
    /// Of which checked in.
    pub checked_in: i64,
    pub entries: Vec<DoorEntry>,
    /// More seats matched than [`DOOR_LIST_LIMIT`]: the search should be narrowed.
    pub more: bool,
}

/// Most seats one door list answer holds.
pub const DOOR_LIST_LIMIT: usize = 200;

/// What to look for in a door list: part of a name, an email address or a booking reference,
/// 1 to 100 characters, any case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search(String);

impl Search {
    /// A search from what was typed; nothing (or only spaces) searches for everyone.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, ValidationError> {
        crate::validation::optional_text(raw, 100)
            .map(|text| text.map(|t| Self(t.to_lowercase())))
            .map_err(|message| ValidationError::single("q", message))
    }

    /// The text, lower-cased.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckinError {
    /// Not a check-in code this server made: mistyped, damaged, forged, or made with another key.
    #[error("not a check-in code of ours")]
    UnknownCode,
    #[error("no seat {0}")]
    SeatNotFound(i64),
    #[error("seat {seat} is not in session {session}")]
    NotInSession { seat: i64, session: i64 },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for CheckinError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}
