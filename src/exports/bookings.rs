//! The bookings of an event with their payment state, oldest first: one row per booking.

use std::collections::HashMap;

use diesel::prelude::*;

use super::csv::{Amount, Cell, Record};
use super::{local_minute, ExportError};
use crate::bookings::{self, Booking, SeatState};
use crate::db::schema::invoices;
use crate::db::{self, DbConn};
use crate::events::Event;

/// One booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRecord {
    pub reference: String,
    pub created_at: String,
    /// `held`, `confirmed`, `cancelled` or `expired`.
    pub status: String,
    /// `not_required`, `unpaid`, `paid`, `invoiced` or `refunded`.
    pub payment_status: String,
    pub name: String,
    pub email: String,
    pub organisation: Option<String>,
    /// Every session of the booking in time order, joined with `; `; a seat no longer held says
    /// so after its title, as in `Risk workshop (cancelled)`.
    pub sessions: String,
    /// Due for the seats held or confirmed.
    pub total: Amount,
    pub paid: Amount,
    pub refunded: Amount,
    pub currency: String,
    /// The numbers of the booking's invoices and credit notes, in order of issue, joined with
    /// `; `.
    pub invoices: String,
}

impl Record for BookingRecord {
    const HEADER: &'static [&'static str] = &[
        "reference",
        "created_at",
        "status",
        "payment_status",
        "name",
        "email",
        "organisation",
        "sessions",
        "total",
        "paid",
        "refunded",
        "currency",
        "invoices",
    ];

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::from(&self.reference),
            Cell::from(&self.created_at),
            Cell::from(&self.status),
            Cell::from(&self.payment_status),
            Cell::from(&self.name),
            Cell::from(&self.email),
            Cell::from(&self.organisation),
            Cell::from(&self.sessions),
            Cell::from(&self.total),
            Cell::from(&self.paid),
            Cell::from(&self.refunded),
            Cell::from(&self.currency),
            Cell::from(&self.invoices),
        ]
    }
}

/// An event's bookings.
#[derive(Debug, Clone)]
pub struct EventBookings {
    pub event: Event,
    pub rows: Vec<BookingRecord>,
}

/// The bookings of the event `slug`, oldest first.
pub fn event_bookings(conn: &mut DbConn, slug: &str) -> Result<EventBookings, ExportError> {
    db::read_snapshot(conn, |conn| {
        let (event, mut list) = bookings::for_event(conn, slug)?;
        list.reverse();
        let numbers: Vec<(i64, String)> = invoices::table
            .filter(invoices::event_id.eq(event.id))
            .order(invoices::id.asc())
            .select((invoices::booking_id, invoices::number))
            .load(conn)?;
        let mut by_booking: HashMap<i64, Vec<String>> = HashMap::new();
        for (booking_id, number) in numbers {
            by_booking.entry(booking_id).or_default().push(number);
        }
        let rows = list
            .iter()
            .map(|booking| {
                let invoices = by_booking.remove(&booking.id).unwrap_or_default();
                record(booking, &event, &invoices)
            })
            .collect();
        Ok(EventBookings { event, rows })
    })
}

fn record(booking: &Booking, event: &Event, invoices: &[String]) -> BookingRecord {
    let sessions: Vec<String> = booking
        .seats
        .iter()
        .map(|seat| match seat.state {
            SeatState::Held | SeatState::Confirmed => seat.title.clone(),
            SeatState::Cancelled | SeatState::Expired => {
                format!("{} ({})", seat.title, seat.state.as_str())
            }
        })
        .collect();
    let money = |minor: i64| Amount::new(minor, &booking.currency);
    BookingRecord {
        reference: booking.reference.clone(),
        created_at: local_minute(booking.created_at, event.time_zone),
        status: booking.status.as_str().to_owned(),
        payment_status: booking.payment_status.as_str().to_owned(),
        name: booking.attendee_name.clone(),
        email: booking.attendee_email.clone(),
        organisation: booking.attendee_organisation.clone(),
        sessions: sessions.join("; "),
        total: money(booking.total_minor),
        paid: money(booking.paid_minor),
        refunded: money(booking.refunded_minor),
        currency: booking.currency.clone(),
        invoices: invoices.join("; "),
    }
}
