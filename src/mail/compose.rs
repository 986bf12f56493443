//! What emails say, built from events, sessions and seats: times in the event's zone, prices
//! with their currency.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;

use super::data::{AccountMail, EventMail, MailData, PaymentMail, SeatMail};
use crate::db::schema::{bookings, events, seats, sessions};
use crate::db::{DbConn, DbError};
use crate::events::Event;

/// An email about one booking, with nothing in it yet but who and what it is about.
pub fn booking_mail(event: &Event, reference: &str, attendee_name: &str) -> MailData {
    MailData {
        event: event_mail(event),
        reference: reference.to_owned(),
        attendee_name: attendee_name.to_owned(),
        seats: Vec::new(),
        agenda: Vec::new(),
        total: None,
        change: None,
        hold_until: None,
        moved: false,
        paid: false,
        payment: None,
        refund: None,
        payment_error: None,
        invoice: None,
        waitlist: None,
        account: None,
        account_url: None,
        manage_url: None,
        agenda_url: None,
    }
}

/// An email about an organiser's account (an invitation or a password reset), from the site.
pub fn account_mail(site_name: &str, organiser_name: &str, account: AccountMail) -> MailData {
    MailData {
        event: EventMail {
            slug: String::new(),
            name: site_name.to_owned(),
            venue: String::new(),
            time_zone: "UTC".to_owned(),
        },
        reference: String::new(),
        attendee_name: organiser_name.to_owned(),
        seats: Vec::new(),
        agenda: Vec::new(),
        total: None,
        change: None,
        hold_until: None,
        moved: false,
        paid: false,
        payment: None,
        refund: None,
        payment_error: None,
        invoice: None,
        waitlist: None,
        account: Some(account),
        account_url: None,
        manage_url: None,
        agenda_url: None,
    }
}

/// A moment as emails give a deadline: "14:15 on Wednesday 6 January 2027", in `zone`.
pub fn moment(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%H:%M on %A %-d %B %Y")
        .to_string()
}

/// A date as documents give it: "6 January 2027", in `zone`.
pub fn day(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format("%-d %B %Y").to_string()
}

/// A session's day ("Wednesday 6 January 2027") and time ("09:00–10:30") in `zone`.
pub fn day_and_time(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    zone: Tz,
) -> (String, String) {
    let starts = starts_at.with_timezone(&zone);
    let ends = ends_at.with_timezone(&zone);
    (
        starts.format("%A %-d %B %Y").to_string(),
        format!("{}–{}", starts.format("%H:%M"), ends.format("%H:%M")),
    )
}

pub fn event_mail(event: &Event) -> EventMail {
    EventMail {
        slug: event.slug.clone(),
        name: event.name.clone(),
        venue: event.venue.clone(),
        time_zone: event.time_zone.name().to_owned(),
    }
}

/// Whether `currency` has no minor unit (amounts are whole units: ¥1200, not ¥12.00).
pub fn whole_units(currency: &str) -> bool {
    matches!(currency, "JPY" | "KRW" | "ISK" | "CLP" | "VND")
}

/// "£145.00", "€95.00", "CHF 120.00"; whole units for currencies without minor units.
pub fn money(minor: i64, currency: &str) -> String {
    let symbol = match currency {
        "GBP" => "£",
        "EUR" => "€",
        "USD" => "$",
        _ => "",
    };
    let sign = if minor < 0 { "-" } else { "" };
    let units = minor.unsigned_abs();
    let body = if whole_units(currency) {
        units.to_string()
    } else {
        format!("{}.{:02}", units / 100, units % 100)
    };
    if symbol.is_empty() {
        format!("{sign}{currency} {body}")
    } else {
        format!("{sign}{symbol}{body}")
    }
}

/// `paid` (minor units, VAT included at `vat_rate_bp` basis points) as a receipt shows it.
pub fn payment(paid: i64, vat_rate_bp: i32, currency: &str) -> PaymentMail {
    let (net, vat) = crate::payments::policy::vat_split(paid, vat_rate_bp);
    PaymentMail {
        gross: money(paid, currency),
        net: money(net, currency),
        vat: money(vat, currency),
        vat_rate: (vat_rate_bp > 0).then(|| percent(vat_rate_bp)),
    }
}

/// Basis points as a percentage: 2000 → "20%", 550 → "5.5%".
pub fn percent(bp: i32) -> String {
    let whole = bp / 100;
    let rest = bp % 100;
    if rest == 0 {
        format!("{whole}%")
    } else if rest % 10 == 0 {
        format!("{whole}.{}%", rest / 10)
    } else {
        format!("{whole}.{rest:02}%")
    }
}

/// The parts of a session a seat line shows.
pub struct SessionLine<'a> {
    pub session_id: i64,
    pub title: &'a str,
    pub room: Option<&'a str>,
    pub speakers: &'a [String],
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub sequence: i32,
    pub price_minor: i64,
}

pub fn seat_mail(
    seat_id: i64,
    line: &SessionLine<'_>,
    zone: Tz,
    currency: &str,
    state: &str,
) -> SeatMail {
    let (day, time) = day_and_time(line.starts_at, line.ends_at, zone);
    SeatMail {
        seat_id,
        session_id: line.session_id,
        title: line.title.to_owned(),
        room: line.room.map(str::to_owned),
        speakers: line.speakers.to_vec(),
        starts_at: line.starts_at,
        ends_at: line.ends_at,
        day,
        time,
        sequence: line.sequence,
        state: state.to_owned(),
        price: (line.price_minor > 0).then(|| money(line.price_minor, currency)),
    }
}

type AgendaRow = (
    i64,
    i64,
    String,
    Option<String>,
    String,
    chrono::NaiveDateTime,
    chrono::NaiveDateTime,
    i32,
    i64,
    String,
);

/// The timetable of the person behind a booking: every seat they hold in its event (across all
/// their bookings), in time order, as it stands now.
pub fn agenda(conn: &mut DbConn, booking_id: i64) -> Result<Vec<SeatMail>, DbError> {
    let owner: Option<(i64, String, String)> = seats::table
        .inner_join(bookings::table.inner_join(events::table))
        .filter(seats::booking_id.eq(booking_id))
        .select((bookings::event_id, seats::attendee_email, events::time_zone))
        .first(conn)
        .optional()?;
    let Some((event_id, email, zone)) = owner else {
        return Ok(Vec::new());
    };
    let zone: Tz = zone.parse().unwrap_or(Tz::UTC);
    let currency: String = events::table
        .find(event_id)
        .select(events::currency)
        .first(conn)?;
    let rows: Vec<AgendaRow> = seats::table
        .inner_join(sessions::table)
        .filter(seats::attendee_email.eq(&email))
        .filter(sessions::event_id.eq(event_id))
        .filter(seats::state.eq_any(crate::bookings::SeatState::ACTIVE))
        .order((sessions::starts_at.asc(), sessions::id.asc()))
        .select((
            seats::id,
            sessions::id,
            sessions::title,
            sessions::room,
            sessions::speakers,
            sessions::starts_at,
            sessions::ends_at,
            sessions::sequence,
            seats::price_minor,
            seats::state,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(
                seat_id,
                session_id,
                title,
                room,
                speakers,
                starts,
                ends,
                sequence,
                price_minor,
                state,
            )| {
                let speakers: Vec<String> = serde_json::from_str(&speakers).unwrap_or_default();
                let line = SessionLine {
                    session_id,
                    title: &title,
                    room: room.as_deref(),
                    speakers: &speakers,
                    starts_at: starts.and_utc(),
                    ends_at: ends.and_utc(),
                    sequence,
                    price_minor,
                };
                seat_mail(seat_id, &line, zone, &currency, &state)
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn money_is_shown_with_its_currency() {
        assert_eq!(money(14_500, "GBP"), "£145.00");
        assert_eq!(money(9_505, "EUR"), "€95.05");
        assert_eq!(money(12_000, "CHF"), "CHF 120.00");
        assert_eq!(money(5_000, "JPY"), "JPY 5000");
    }

    #[test]
    fn negative_amounts_keep_their_sign() {
        assert_eq!(money(-50, "GBP"), "-£0.50");
        assert_eq!(money(-14_505, "EUR"), "-€145.05");
        assert_eq!(money(-1, "CHF"), "-CHF 0.01");
        assert_eq!(money(-300, "JPY"), "-JPY 300");
        assert_eq!(money(0, "GBP"), "£0.00");
    }
}
