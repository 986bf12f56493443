//! Certificates of attendance: for one attendee (booking) of an event, the sessions they were
//! checked in to at the door, each with the CPD hours it counts for, and the total, as a one-page
//! PDF. A certificate exists only once the event has begun in earnest (its first session has
//! ended) and only for someone checked in to at least one session; it can be downloaded by an
//! organiser or emailed to the attendee with the PDF attached.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::bookings::SeatState;
use crate::db::schema::{bookings, seats, sessions};
use crate::db::{DbConn, DbError};
use crate::events::Event;
use crate::mail::{compose, outbox, Template};
use crate::payments::pdf;
use crate::sessions::SessionStatus;

/// One session attended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attended {
    pub title: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// CPD hours, in tenths.
    pub cpd_tenths: i32,
}

/// What a certificate says.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub event: Event,
    pub booking_id: i64,
    pub reference: String,
    pub name: String,
    pub email: String,
    pub organisation: Option<String>,
    /// In time order.
    pub sessions: Vec<Attended>,
    /// CPD hours of all sessions attended, in tenths.
    pub total_tenths: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("no booking {0}")]
    BookingNotFound(String),
    /// The event's first session has not ended yet (`first_ends_at`; `None` without sessions).
    #[error("the event has not taken place yet")]
    EventNotOver {
        first_ends_at: Option<DateTime<Utc>>,
    },
    /// The attendee was not checked in to any session.
    #[error("never checked in")]
    NeverCheckedIn,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for CertificateError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

/// Hours from tenths, as a certificate prints them: "1.5", "3".
pub fn hours(tenths: i32) -> String {
    if tenths % 10 == 0 {
        (tenths / 10).to_string()
    } else {
        format!("{}.{}", tenths / 10, (tenths % 10).abs())
    }
}

type BookingRow = (i64, i64, String, String, Option<String>);

/// The certificate of the booking with `reference` at `now`: refused before the event's first
/// session has ended, and for someone checked in to no session.
#[tracing::instrument(level = "debug", skip(conn))]
pub fn for_booking(
    conn: &mut DbConn,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<Certificate, CertificateError> {
    let certificate = read(conn, reference)?;
    let first_ends_at = crate::sessions::for_event(conn, certificate.event.id, false)?
        .into_iter()
        .filter(|s| s.status != SessionStatus::Cancelled)
        .min_by_key(|s| (s.starts_at, s.id))
        .map(|s| s.ends_at);
    match first_ends_at {
        Some(at) if at <= now => {}
        _ => return Err(CertificateError::EventNotOver { first_ends_at }),
    }
    if certificate.sessions.is_empty() {
        return Err(CertificateError::NeverCheckedIn);
    }
    Ok(certificate)
}

/// The certificate of the booking with `reference` as it stands, without the checks of
/// [`for_booking`] (an emailed certificate is made when the email is sent).
pub fn read(conn: &mut DbConn, reference: &str) -> Result<Certificate, CertificateError> {
    let booking: Option<BookingRow> = bookings::table
        .filter(bookings::reference.eq(reference))
        .select((
            bookings::id,
            bookings::event_id,
            bookings::attendee_name,
            bookings::attendee_email,
            bookings::attendee_organisation,
        ))
        .first(conn)
        .optional()?;
    let Some((booking_id, event_id, name, email, organisation)) = booking else {
        return Err(CertificateError::BookingNotFound(reference.to_owned()));
    };
    let event = crate::events::by_id(conn, event_id)?;
    let rows: Vec<(String, chrono::NaiveDateTime, chrono::NaiveDateTime, i32)> = seats::table
        .inner_join(sessions::table)
        .filter(seats::booking_id.eq(booking_id))
        .filter(seats::checked_in_at.is_not_null())
        // A check-in counts only while the seat is still held for a session that still runs.
        .filter(seats::state.eq(SeatState::Confirmed.as_str()))
        .filter(sessions::status.ne(SessionStatus::Cancelled.as_str()))
        .order((sessions::starts_at.asc(), sessions::id.asc()))
        .select((
            sessions::title,
            sessions::starts_at,
            sessions::ends_at,
            sessions::cpd_tenths,
        ))
        .load(conn)?;
    let sessions: Vec<Attended> = rows
        .into_iter()
        .map(|(title, starts_at, ends_at, cpd_tenths)| Attended {
            title,
            starts_at: starts_at.and_utc(),
            ends_at: ends_at.and_utc(),
            cpd_tenths,
        })
        .collect();
    let total_tenths = sessions.iter().map(|s| s.cpd_tenths).sum();
    Ok(Certificate {
        event,
        booking_id,
        reference: reference.to_owned(),
        name,
        email,
        organisation,
        sessions,
        total_tenths,
    })
}

/// Emails the certificate of the booking with `reference` to its attendee, with the PDF
/// attached (made when the email is sent); refused as [`for_booking`] refuses.
#[tracing::instrument(level = "debug", skip(conn))]
pub fn send(
    conn: &mut DbConn,
    reference: &str,
    now: DateTime<Utc>,
) -> Result<Certificate, CertificateError> {
    let certificate = for_booking(conn, reference, now)?;
    let data = compose::booking_mail(
        &certificate.event,
        &certificate.reference,
        &certificate.name,
    );
    outbox::enqueue(
        conn,
        Template::Certificate,
        &certificate.email,
        Some(certificate.booking_id),
        &data,
    )?;
    Ok(certificate)
}

/// The file name of a certificate: `certificate-PMO-7K3F9Q.pdf`.
pub fn file_name(reference: &str) -> String {
    format!("certificate-{reference}.pdf")
}

/// The certificate as a one-page A4 PDF.
pub fn pdf(certificate: &Certificate) -> Vec<u8> {
    let event = &certificate.event;
    let zone = event.time_zone;
    let mut attendee = vec![certificate.name.clone()];
    attendee.extend(certificate.organisation.clone());
    let lines = certificate
        .sessions
        .iter()
        .map(|s| {
            let (day, time) = compose::day_and_time(s.starts_at, s.ends_at, zone);
            // A plain hyphen keeps the line's text searchable in every PDF reader.
            let time = time.replace('\u{2013}', "-");
            (
                format!("{} ({day}, {time})", s.title),
                format!("{} h", hours(s.cpd_tenths)),
            )
        })
        .collect();
    let last_day = certificate
        .sessions
        .iter()
        .map(|s| s.ends_at)
        .max()
        .map(|at| compose::day(at, zone))
        .unwrap_or_default();
    let document = pdf::Document {
        title: "Certificate of attendance".to_owned(),
        number: certificate.reference.clone(),
        issuer: vec![event.name.clone(), event.venue.clone()],
        bill_to: attendee,
        facts: vec![
            ("Booking".to_owned(), certificate.reference.clone()),
            ("Last attended".to_owned(), last_day),
        ],
        lines,
        totals: vec![(
            "Total CPD hours".to_owned(),
            format!("{} h", hours(certificate.total_tenths)),
        )],
        notes: vec![format!(
            "This certifies that {} attended the sessions above at {}, as recorded when they were checked in at the door.",
            certificate.name, event.name
        )],
    };
    pdf::render_labelled(
        &document,
        pdf::Labels {
            party: "Awarded to",
            description: "Session attended",
            value: "CPD hours",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::hours;

    #[test]
    fn hours_are_printed_from_tenths_without_a_needless_decimal() {
        assert_eq!(hours(0), "0");
        assert_eq!(hours(15), "1.5");
        assert_eq!(hours(30), "3");
        assert_eq!(hours(1000), "100");
    }
}
