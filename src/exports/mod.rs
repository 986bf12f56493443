//! Exports for organisers: an event's bookings and invoices and a session's attendees as CSV
//! files that open cleanly in a spreadsheet (see [`csv`]), and a session's printable sign-in
//! sheet.
//!
//! Each export is a domain function returning rows with every value already as the file shows
//! it: money in major units (`145.00`) next to a currency column, times in the event's time
//! zone as `YYYY-MM-DD HH:MM`, states as the API names them. Everything an export reads is read
//! in one snapshot, so its rows agree with each other.

mod attendees;
mod bookings;
pub mod csv;
pub mod http;
mod invoices;
mod sign_in;

pub use attendees::{session_attendees, AttendeeRecord, SessionAttendees};
pub use bookings::{event_bookings, BookingRecord, EventBookings};
pub use invoices::{event_invoices, EventInvoices, InvoiceRecord};
pub use sign_in::{sign_in_sheet, SignInLine, SignInSheet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::bookings::BookingError;
use crate::db::DbError;
use crate::events::EventError;
use crate::sessions::SessionError;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ExportError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

/// A moment as the exports give it: `2027-03-10 09:00`, in the event's time zone.
pub fn local_minute(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
}

/// A file name made of `parts` joined by dashes, keeping only ASCII letters, digits and dashes
/// (anything else becomes a dash), so it is safe in a `Content-Disposition` header and on any
/// file system.
pub fn file_name(parts: &[&str], extension: &str) -> String {
    let stem: String = parts
        .join("-")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem = stem.trim_matches('-');
    let stem = if stem.is_empty() { "export" } else { stem };
    format!("{stem}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn moments_are_shown_to_the_minute_in_the_events_zone() {
        let at = Utc
            .with_ymd_and_hms(2027, 7, 10, 8, 30, 59)
            .single()
            .expect("a valid time");
        assert_eq!(
            local_minute(at, chrono_tz::Europe::London),
            "2027-07-10 09:30"
        );
        assert_eq!(local_minute(at, chrono_tz::Asia::Tokyo), "2027-07-10 17:30");
    }

    #[test]
    fn file_names_keep_letters_digits_and_dashes_only() {
        assert_eq!(
            file_name(&["pmo-2027", "bookings", "2027-03-01"], "csv"),
            "pmo-2027-bookings-2027-03-01.csv"
        );
        assert_eq!(file_name(&["a\"b;c/..\\d é"], "csv"), "a-b-c----d.csv");
        assert_eq!(file_name(&["\"\r\n"], "html"), "export.html");
    }
}
