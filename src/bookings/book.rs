//! Making a booking: every requested seat in one transaction, or none.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rand::seq::IndexedRandom;

use super::{
    Attendee, Booked, Booking, BookingError, BookingRequest, BookingStatus, Finish, Issuer,
    PaymentStatus, Seat, SeatState,
};
use crate::db::schema::{bookings, seats};
use crate::db::{self, DbConn, DbError};
use crate::events::{Event, EventError, EventStatus};
use crate::mail::compose;
use crate::mail::{self, Template};
use crate::sessions::{
    self, Cached, Programme, ProgrammeCache, Refusal, SeatRequest, Session, SessionStatus,
};
use crate::tokens;
use crate::validation::ValidationError;

/// How many times one booking is tried: a new reference after a collision, or the programme read
/// again after it changed.
const MAX_ATTEMPTS: u32 = 5;

/// Books every requested session for the attendee, or none of them.
#[tracing::instrument(level = "debug", skip_all, fields(event = event_slug, sessions = ?request.session_ids))]
pub fn book(
    conn: &mut DbConn,
    programmes: &ProgrammeCache,
    event_slug: &str,
    request: &BookingRequest,
    issuer: &Issuer,
    now: DateTime<Utc>,
    mut finish: Finish<Booked>,
) -> Result<Booked, BookingError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let Some(Cached { programme, fresh }) = programmes.get(conn, event_slug)? else {
            return Err(EventError::NotFound(event_slug.to_owned()).into());
        };
        let outcome = db::write_transaction(conn, |conn| {
            let booked = book_in(conn, &programme, request, issuer, now)?;
            if let Some(finish) = finish.as_mut() {
                finish(conn, &booked)?;
            }
            Ok(booked)
        });
        match outcome {
            // The programme changed since it was read, or it was read earlier and says no:
            // read it again, and let what is stored now decide.
            Err(e) if e.programme_changed() || (!fresh && e.is_programme_refusal()) => {
                programmes.forget(event_slug);
                if attempts >= MAX_ATTEMPTS {
                    return Err(e);
                }
            }
            // A new reference collides with an existing one about once in a billion bookings;
            // the unique index catches it and the whole attempt is made again.
            Err(BookingError::ReferenceCollision) if attempts < MAX_ATTEMPTS => {}
            outcome => return outcome,
        }
    }
}

/// The statements of one booking, inside the caller's write transaction: one conditional counter
/// update per session, then one insert per row. `programme` may have been read earlier: the
/// counter updates check that it still holds. Every round trip is paid under a busy session's
/// row lock, so there are no others.
pub fn book_in(
    conn: &mut DbConn,
    programme: &Programme,
    request: &BookingRequest,
    issuer: &Issuer,
    now: DateTime<Utc>,
) -> Result<Booked, BookingError> {
    let event = &programme.event;
    if event.status != EventStatus::Published {
        return Err(EventError::NotFound(event.slug.clone()).into());
    }
    if !event.registration_open(now) {
        return Err(BookingError::RegistrationClosed);
    }
    let wanted = bookable_sessions(programme, &request.session_ids, now)?;
    let email = request.attendee.email.normalized();
    // Counters first, in id order: a full or changed session is found before anything is
    // written, and two bookings never wait on each other's row locks in opposite orders.
    if !event.allow_clashes {
        if let Some((a, b)) = overlapping_pair(&wanted) {
            return Err(BookingError::TimetableClash {
                session: (b.id, b.title.clone()),
                other: (a.id, a.title.clone()),
            });
        }
    }
    for session in &wanted {
        let seat = SeatRequest {
            session,
            event_revision: event.revision,
            allow_clashes: event.allow_clashes,
            email: &email,
        };
        take_or_refuse(conn, &seat, Some(&event.slug), &wanted)?;
    }
    let Some(buyer) = &request.invoice else {
        return write_booking(conn, event, &wanted, &request.attendee, issuer, now, false);
    };
    if !event.invoices_allowed {
        return Err(BookingError::InvoicesNotOffered);
    }
    // Held, then confirmed by its invoice in this same transaction: the invoice's number is
    // taken here, and the one email is the confirmation with the invoice.
    let mut booked = write_booking(conn, event, &wanted, &request.attendee, issuer, now, true)?;
    if booked.booking.total_minor > 0 {
        use crate::payments::invoices::{confirm_by_invoice, InvoiceError};
        match confirm_by_invoice(conn, booked.booking.id, buyer, now) {
            Ok((booking, _)) => booked.booking = booking,
            Err(InvoiceError::Booking(e)) => return Err(e),
            Err(InvoiceError::Db(e)) => return Err(e.into()),
            Err(InvoiceError::NotOffered) => return Err(BookingError::InvoicesNotOffered),
            Err(e) => return Err(DbError::Inconsistent(e.to_string()).into()),
        }
    }
    Ok(booked)
}

/// Takes the seat `seat` asks for, or says why it cannot be had. With `waitlist_in` (the
/// event's slug) a full session's refusal points at its waitlist, when it has one; a person who
/// holds a seat in any of `wanted` is told so rather than that it is full.
pub(crate) fn take_or_refuse(
    conn: &mut DbConn,
    seat: &SeatRequest<'_>,
    waitlist_in: Option<&str>,
    wanted: &[&Session],
) -> Result<(), BookingError> {
    if sessions::take_seat(conn, seat)? {
        return Ok(());
    }
    let session = seat.session;
    Err(match sessions::why_not_taken(conn, seat)? {
        Refusal::Changed => BookingError::ProgrammeChanged,
        Refusal::Cancelled => BookingError::SessionCancelled {
            id: session.id,
            title: session.title.clone(),
        },
        Refusal::Clash { id, title } => BookingError::TimetableClash {
            session: (session.id, session.title.clone()),
            other: (id, title),
        },
        Refusal::Full => match already_holds(conn, seat.email, wanted)? {
            Some(held) => BookingError::AlreadyBooked {
                session: (held.id, held.title.clone()),
            },
            None => BookingError::SessionFull {
                id: session.id,
                title: session.title.clone(),
                waitlist: waitlist_in
                    .filter(|_| session.waitlist_enabled)
                    .map(|slug| format!("/api/v1/events/{slug}/sessions/{}/waitlist", session.id)),
            },
        },
    })
}

/// Writes a booking of `wanted`, whose seats the caller has already counted (taken in the
/// counters, or reserved by a waitlist offer): the booking row, one seat each and the email.
pub(crate) fn write_booking(
    conn: &mut DbConn,
    event: &Event,
    wanted: &[&Session],
    attendee: &Attendee,
    issuer: &Issuer,
    now: DateTime<Utc>,
    invoice_follows: bool,
) -> Result<Booked, BookingError> {
    let email = attendee.email.normalized();
    let reference = new_reference(&issuer.reference_prefix);
    let manage_token = issuer.key.manage_token(&reference);
    let total: i64 = wanted.iter().map(|s| s.price_minor).sum();
    // Something to pay: the seats are held until it is paid, or until the hold runs out.
    let (status, seat_state, payment_status, hold_expires_at) = if total > 0 {
        let until = now + issuer.hold;
        (
            BookingStatus::Held,
            SeatState::Held,
            PaymentStatus::Unpaid,
            Some(until),
        )
    } else {
        (
            BookingStatus::Confirmed,
            SeatState::Confirmed,
            PaymentStatus::NotRequired,
            None,
        )
    };
    let stamp = db::stored(now);
    let inserted = diesel::insert_into(bookings::table)
        .values((
            bookings::event_id.eq(event.id),
            bookings::reference.eq(&reference),
            bookings::manage_token_hash.eq(tokens::hash_token(&manage_token)),
            bookings::attendee_name.eq(&attendee.name),
            bookings::attendee_email.eq(attendee.email.as_str()),
            bookings::attendee_organisation.eq(&attendee.organisation),
            bookings::total_minor.eq(total),
            bookings::currency.eq(&event.currency),
            bookings::status.eq(status.as_str()),
            bookings::payment_status.eq(payment_status.as_str()),
            bookings::created_at.eq(stamp),
            bookings::updated_at.eq(stamp),
            bookings::hold_expires_at.eq(hold_expires_at.map(db::stored)),
        ))
        .returning(bookings::id)
        .get_result(conn);
    let booking_id: i64 = match inserted {
        Err(e) if db::is_unique_violation(&e) => return Err(BookingError::ReferenceCollision),
        other => other?,
    };
    // The unique index on (session, email) of active seats is what refuses a second seat for
    // the same person, also when two of their requests race.
    let mut seat_ids = Vec::with_capacity(wanted.len());
    for session in wanted {
        let inserted = diesel::insert_into(seats::table)
            .values((
                seats::booking_id.eq(booking_id),
                seats::session_id.eq(session.id),
                seats::attendee_email.eq(&email),
                seats::state.eq(seat_state.as_str()),
                seats::price_minor.eq(session.price_minor),
                seats::created_at.eq(stamp),
            ))
            .returning(seats::id)
            .get_result::<i64>(conn);
        match inserted {
            Err(e) if db::is_unique_violation(&e) => {
                return Err(BookingError::AlreadyBooked {
                    session: (session.id, session.title.clone()),
                })
            }
            other => seat_ids.push(other?),
        };
    }
    let mut seats: Vec<Seat> = wanted
        .iter()
        .zip(&seat_ids)
        .map(|(s, seat_id)| Seat {
            id: *seat_id,
            speakers: s.speakers.clone(),
            sequence: s.sequence,
            session_id: s.id,
            title: s.title.clone(),
            room: s.room.clone(),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            state: seat_state,
            price_minor: s.price_minor,
        })
        .collect();
    seats.sort_by_key(|s| (s.starts_at, s.session_id));
    let mut confirmation = compose::booking_mail(event, &reference, &attendee.name);
    confirmation.seats = seats
        .iter()
        .map(|s| s.mail(event, seat_state.as_str()))
        .collect();
    confirmation.total = (total > 0).then(|| compose::money(total, &event.currency));
    confirmation.hold_until = hold_expires_at.map(|t| compose::moment(t, event.time_zone));
    // With an invoice to follow, its confirmation is the one email.
    if !(invoice_follows && total > 0) {
        mail::enqueue(
            conn,
            if hold_expires_at.is_some() {
                Template::BookingHeld
            } else {
                Template::BookingConfirmed
            },
            attendee.email.as_str(),
            Some(booking_id),
            &confirmation,
        )?;
    }
    let booking = Booking {
        id: booking_id,
        event_id: event.id,
        reference,
        attendee_name: attendee.name.clone(),
        attendee_email: attendee.email.as_str().to_owned(),
        attendee_organisation: attendee.organisation.clone(),
        total_minor: total,
        currency: event.currency.clone(),
        status,
        payment_status,
        created_at: stamp.and_utc(),
        hold_expires_at,
        paid_minor: 0,
        refunded_minor: 0,
        refund_policy: None,
        seats,
    };
    Ok(Booked {
        event: event.clone(),
        booking,
        manage_token,
    })
}

/// The requested sessions, in id order, refusing any that is not a published, future session of
/// the event.
fn bookable_sessions<'a>(
    programme: &'a Programme,
    ids: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<&'a Session>, BookingError> {
    let found: Vec<&Session> = ids
        .iter()
        .filter_map(|id| programme.session(*id))
        .filter(|s| s.status != SessionStatus::Draft)
        .collect();
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| !found.iter().any(|s| s.id == **id))
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

/// Two of `sessions` that overlap in time, the earlier first.
fn overlapping_pair<'a>(sessions: &[&'a Session]) -> Option<(&'a Session, &'a Session)> {
    let mut by_start: Vec<&Session> = sessions.to_vec();
    by_start.sort_by_key(|s| (s.starts_at, s.id));
    by_start
        .windows(2)
        .find(|w| w[1].starts_at < w[0].ends_at)
        .map(|w| (w[0], w[1]))
}

/// The first of `wanted` in which this person (normalised email) holds an active seat.
fn already_holds<'a>(
    conn: &mut DbConn,
    email: &str,
    wanted: &[&'a Session],
) -> Result<Option<&'a Session>, DbError> {
    let ids: Vec<i64> = wanted.iter().map(|s| s.id).collect();
    let held: Vec<i64> = seats::table
        .filter(seats::attendee_email.eq(email))
        .filter(seats::session_id.eq_any(&ids))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .select(seats::session_id)
        .load(conn)?;
    Ok(wanted.iter().copied().find(|s| held.contains(&s.id)))
}

/// Letters and digits that cannot be mistaken for each other when read aloud or copied.
const REFERENCE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

pub(crate) fn new_reference(prefix: &str) -> String {
    let mut rng = rand::rng();
    let code: String = (0..6)
        .filter_map(|_| REFERENCE_ALPHABET.choose(&mut rng).map(|b| char::from(*b)))
        .collect();
    format!("{prefix}-{code}")
}
