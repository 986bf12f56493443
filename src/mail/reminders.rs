//! The agenda reminder: each attendee gets their personal timetable again a configured number of
//! days before the event's first session, once, whichever worker finds it due first.

use std::collections::HashSet;

use chrono::Duration;
use diesel::dsl::min;
use diesel::prelude::*;

use super::data::Template;
use super::{compose, outbox};
use crate::bookings::SeatState;
use crate::db::schema::{agenda_reminders, bookings, events, seats, sessions};
use crate::db::{self, DbConn, DbError};

/// Writes an agenda email for every attendee of every event starting within `days_before` days
/// who has not had one. Returns how many were written.
pub fn enqueue_due(conn: &mut DbConn, days_before: i64) -> Result<usize, DbError> {
    let now = db::now();
    let horizon = now + Duration::days(days_before.max(0));
    let starts: Vec<(i64, Option<chrono::NaiveDateTime>)> = sessions::table
        .inner_join(events::table)
        .filter(events::status.eq("published"))
        .filter(sessions::status.eq("published"))
        .group_by(sessions::event_id)
        .select((sessions::event_id, min(sessions::starts_at)))
        .load(conn)?;
    let mut written = 0;
    for (event_id, first) in starts {
        if first.is_some_and(|first| first > now && first <= horizon) {
            written += remind_event(conn, event_id)?;
        }
    }
    Ok(written)
}

type Holder = (String, i64, String, String, String);

fn remind_event(conn: &mut DbConn, event_id: i64) -> Result<usize, DbError> {
    let done: HashSet<String> = agenda_reminders::table
        .filter(agenda_reminders::event_id.eq(event_id))
        .select(agenda_reminders::attendee_email)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    // One row per person: their most recent booking with a seat still held.
    let holders: Vec<Holder> = seats::table
        .inner_join(bookings::table)
        .filter(bookings::event_id.eq(event_id))
        .filter(seats::state.eq_any(SeatState::ACTIVE))
        .order((seats::attendee_email.asc(), bookings::id.desc()))
        .select((
            seats::attendee_email,
            bookings::id,
            bookings::reference,
            bookings::attendee_name,
            bookings::attendee_email,
        ))
        .load(conn)?;
    let event = crate::events::by_id(conn, event_id)?;
    let mut seen = HashSet::new();
    let mut written = 0;
    for (person, booking_id, reference, name, address) in holders {
        if done.contains(&person) || !seen.insert(person.clone()) {
            continue;
        }
        let outcome = db::write_transaction(conn, |conn| {
            diesel::insert_into(agenda_reminders::table)
                .values((
                    agenda_reminders::event_id.eq(event_id),
                    agenda_reminders::attendee_email.eq(&person),
                    agenda_reminders::created_at.eq(db::now()),
                ))
                .execute(conn)?;
            let data = compose::booking_mail(&event, &reference, &name);
            outbox::enqueue(conn, Template::Agenda, &address, Some(booking_id), &data)
        });
        match outcome {
            Ok(()) => written += 1,
            // Another worker reminded this person a moment ago.
            Err(DbError::Query(e)) if db::is_unique_violation(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}
