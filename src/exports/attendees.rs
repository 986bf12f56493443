//! The attendee list of one session: everyone holding a seat (held or confirmed), in booking
//! order, with the payment state of their booking.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::csv::{Cell, Record};
use super::{local_minute, ExportError};
use crate::bookings::SeatState;
use crate::db::schema::{bookings, seats};
use crate::db::{self, DbConn};
use crate::events::{self, Event};
use crate::sessions::{self, Session};

/// One person holding a seat in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendeeRecord {
    pub reference: String,
    pub name: String,
    pub email: String,
    pub organisation: Option<String>,
    /// `held` or `confirmed`.
    pub seat_state: String,
    /// When the seat was taken.
    pub booked_at: String,
    /// The booking's: `not_required`, `unpaid`, `paid`, `invoiced` or `refunded`.
    pub payment_status: String,
    /// When the attendee was checked in at the door, if they were.
    pub checked_in_at: Option<String>,
}

impl Record for AttendeeRecord {
    const HEADER: &'static [&'static str] = &[
        "reference",
        "name",
        "email",
        "organisation",
        "seat_state",
        "booked_at",
        "payment_status",
        "checked_in_at",
    ];

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::from(&self.reference),
            Cell::from(&self.name),
            Cell::from(&self.email),
            Cell::from(&self.organisation),
            Cell::from(&self.seat_state),
            Cell::from(&self.booked_at),
            Cell::from(&self.payment_status),
            Cell::from(&self.checked_in_at),
        ]
    }
}

/// A session's attendee list, with the session and its event (for the file name).
#[derive(Debug, Clone)]
pub struct SessionAttendees {
    pub event: Event,
    pub session: Session,
    pub rows: Vec<AttendeeRecord>,
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    NaiveDateTime,
    String,
    Option<NaiveDateTime>,
);

/// The attendee list of session `session_id`.
pub fn session_attendees(
    conn: &mut DbConn,
    session_id: i64,
) -> Result<SessionAttendees, ExportError> {
    db::read_snapshot(conn, |conn| {
        let session = sessions::find(conn, session_id)?;
        let event = events::by_id(conn, session.event_id)?;
        let rows: Vec<Row> = seats::table
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
                bookings::payment_status,
                seats::checked_in_at,
            ))
            .load(conn)?;
        let rows = rows
            .into_iter()
            .map(
                |(
                    reference,
                    name,
                    email,
                    organisation,
                    seat_state,
                    booked_at,
                    payment_status,
                    checked_in_at,
                )| {
                    AttendeeRecord {
                        reference,
                        name,
                        email,
                        organisation,
                        seat_state,
                        booked_at: local_minute(booked_at.and_utc(), event.time_zone),
                        payment_status,
                        checked_in_at: checked_in_at
                            .map(|t| local_minute(t.and_utc(), event.time_zone)),
                    }
                },
            )
            .collect();
        Ok(SessionAttendees {
            event,
            session,
            rows,
        })
    })
}
