//! Bookings: one attendee's checkout for one or more sessions, with a human reference and a
//! secret manage token. A booking is all-or-nothing: every seat is taken in one transaction or
//! none is. Free bookings are confirmed at once; a booking with a price holds its seats until it
//! is paid ([`confirm_payment`]) or the hold runs out ([`expire_holds`]).

mod book;
mod cancel;
pub mod check;
mod holds;
pub mod http;
mod notices;
mod queries;

pub use book::{book, book_in};
pub(crate) use book::{new_reference, write_booking};
pub use cancel::{cancel, cancel_by_reference, cancel_session_seats, move_seat};
pub use holds::{confirm_paid, confirm_payment, expire_holds, lock_sessions_of, revive_paid};
pub use notices::{resend_confirmation, session_changed};
pub use queries::{attendees, check_ins, find_by_token, for_event, search};
pub(crate) use queries::{id_for_reference, load};

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::bookings;
use crate::db::DbError;
use crate::events::{Event, EventError};
use crate::sessions::SessionError;
use crate::validation::{Email, ValidationError};

/// What a new booking is issued with: its reference's prefix, the key its manage token is
/// derived from, and how long unpaid seats are held.
#[derive(Clone)]
pub struct Issuer {
    pub reference_prefix: String,
    pub key: crate::tokens::TokenKey,
    pub hold: chrono::Duration,
    /// How long a waitlist offer keeps its seat (never past the session's start).
    pub offer: chrono::Duration,
}

/// Work to do inside the transaction that made something, before it commits (recording the
/// answer to an idempotent request).
pub type Finish<T> =
    Option<Box<dyn FnMut(&mut crate::db::DbConn, &T) -> Result<(), DbError> + Send>>;

/// Most sessions one booking may hold.
pub const MAX_SESSIONS_PER_BOOKING: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// Seats kept until payment arrives or `hold_expires_at` passes.
    Held,
    Confirmed,
    Cancelled,
    /// Not paid in time: the seats went back.
    Expired,
}

impl BookingStatus {
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
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            _ => Self::Confirmed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Nothing to pay: every seat is free (or cancelled).
    NotRequired,
    Unpaid,
    Paid,
    /// Confirmed with an invoice that is not paid yet.
    Invoiced,
    /// Everything paid has been refunded.
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRequired => "not_required",
            Self::Unpaid => "unpaid",
            Self::Paid => "paid",
            Self::Invoiced => "invoiced",
            Self::Refunded => "refunded",
        }
    }

    fn from_db(raw: &str) -> Self {
        match raw {
            "unpaid" => Self::Unpaid,
            "paid" => Self::Paid,
            "invoiced" => Self::Invoiced,
            "refunded" => Self::Refunded,
            _ => Self::NotRequired,
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

    pub(crate) fn from_db(raw: &str) -> Self {
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
    /// Pay by invoice, to this buyer.
    invoice: Option<crate::payments::invoices::Buyer>,
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
            invoice: None,
        })
    }

    /// The same request, paid by invoice to `buyer` when there is one.
    pub fn paid_by_invoice(mut self, buyer: Option<crate::payments::invoices::Buyer>) -> Self {
        self.invoice = buyer;
        self
    }
}

/// One seat of a booking, with what the attendee needs to know of its session.
#[derive(Debug, Clone)]
pub struct Seat {
    pub id: i64,
    pub session_id: i64,
    pub title: String,
    pub room: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub state: SeatState,
    pub price_minor: i64,
    pub speakers: Vec<String>,
    /// The session's calendar SEQUENCE.
    pub sequence: i32,
}

impl Booking {
    /// What an email about this booking is rendered with: its seats in `state` and its total.
    pub fn mail(&self, event: &Event, state: SeatState) -> crate::mail::MailData {
        use crate::mail::compose;
        let mut data = compose::booking_mail(event, &self.reference, &self.attendee_name);
        data.seats = self
            .seats
            .iter()
            .filter(|s| s.state == state)
            .map(|s| s.mail(event, state.as_str()))
            .collect();
        data.total =
            (self.total_minor > 0).then(|| compose::money(self.total_minor, &self.currency));
        data
    }
}

impl Seat {
    /// The seat as emails and calendar files show it, in `state`.
    pub fn mail(&self, event: &Event, state: &str) -> crate::mail::data::SeatMail {
        let line = crate::mail::compose::SessionLine {
            session_id: self.session_id,
            title: &self.title,
            room: self.room.as_deref(),
            speakers: &self.speakers,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            sequence: self.sequence,
            price_minor: self.price_minor,
        };
        crate::mail::compose::seat_mail(self.id, &line, event.time_zone, &event.currency, state)
    }
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
    /// Until when a held booking keeps its seats.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// Received for the booking, in minor units.
    pub paid_minor: i64,
    /// Given back, in minor units.
    pub refunded_minor: i64,
    /// The event's refund policy as it stood when the booking was paid.
    pub refund_policy: Option<crate::payments::policy::RefundPolicy>,
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
    SessionFull {
        id: i64,
        title: String,
        /// Where to join its waitlist, when it has one.
        waitlist: Option<String>,
    },
    #[error("already booked")]
    AlreadyBooked { session: (i64, String) },
    /// `session` overlaps `other` in time (both requested, or `other` already held) and the
    /// event does not allow clashes.
    #[error("session {} overlaps session {}", session.0, other.0)]
    TimetableClash {
        session: (i64, String),
        other: (i64, String),
    },
    #[error("no booking with that manage token")]
    NotFound,
    #[error("this event does not take payment by invoice")]
    InvoicesNotOffered,
    /// The generated reference was in use; [`book`] tries again with another.
    #[error("booking reference already in use")]
    ReferenceCollision,
    /// The event or a session changed while the booking was made; [`book`] reads the programme
    /// again and retries, and gives up with this after a few changes in a row.
    #[error("the programme changed while booking")]
    ProgrammeChanged,
    /// Payment for a booking whose hold has already run out (or that was cancelled).
    #[error("booking {reference} is {status:?}, not held")]
    NotHeld {
        reference: String,
        status: BookingStatus,
    },
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl BookingError {
    fn programme_changed(&self) -> bool {
        matches!(self, Self::ProgrammeChanged)
    }

    /// A refusal decided from the programme alone (not from seats or counters), which a
    /// programme read earlier may have got wrong.
    fn is_programme_refusal(&self) -> bool {
        matches!(
            self,
            Self::Event(EventError::NotFound(_))
                | Self::RegistrationClosed
                | Self::Invalid(_)
                | Self::SessionCancelled { .. }
                | Self::SessionStarted { .. }
        )
    }
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
    hold_expires_at: Option<NaiveDateTime>,
    paid_minor: i64,
    refunded_minor: i64,
    refund_policy: Option<String>,
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
            status: BookingStatus::from_db(&self.status),
            payment_status: PaymentStatus::from_db(&self.payment_status),
            created_at: self.created_at.and_utc(),
            hold_expires_at: self.hold_expires_at.map(|t| t.and_utc()),
            paid_minor: self.paid_minor,
            refunded_minor: self.refunded_minor,
            refund_policy: self
                .refund_policy
                .as_deref()
                .map(crate::payments::policy::RefundPolicy::from_stored),
            seats,
        }
    }
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
