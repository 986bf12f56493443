//! The programme section of the dashboard (admins and owners): the events, drafts too, created
//! and changed through forms; each event's sessions with how full they are; creating, changing,
//! duplicating and cancelling sessions.
//!
//! Forms are read into the JSON API's input types (`EventInput`, `SessionInput`, ...), so the
//! same rules and messages apply; times are entered as local times of the event's time zone.

// These imports serve the page modules below as well (`use super::*`).
use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{Admin, AdminPost, Me, PostedBy};
use crate::api::{run, AppState, Problem};
use crate::events::http::{EventInput, EventPatch};
use crate::events::{self, Event, EventChanges, EventError, EventStatus, NewEvent};
use crate::organisers::Organiser;
use crate::pages::booking::{sentence, FieldMessage};
use crate::pages::{csrf, html_page, redirect, FormData, PageError};
use crate::payments::policy::RefundRule;
use crate::sessions::http::{SessionInput, SessionPatch};
use crate::sessions::{
    self, NewSession, Occupancy, Session, SessionChanges, SessionError, SessionStatus,
};
use crate::validation::ValidationError;

/// Refund steps offered by the event form.
const REFUND_ROWS: usize = 4;
const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M";

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/organiser/events", crate::pages::get().to(list))
        .route("/organiser/events", web::post().to(create_event))
        .route("/organiser/events/{slug}", crate::pages::get().to(event))
        .route("/organiser/events/{slug}", web::post().to(update_event))
        .route(
            "/organiser/events/{slug}/status",
            web::post().to(event_status),
        )
        .route(
            "/organiser/events/{slug}/sessions/new",
            crate::pages::get().to(new_session),
        )
        .route(
            "/organiser/events/{slug}/sessions",
            web::post().to(create_session),
        )
        .route("/organiser/sessions/{id}", crate::pages::get().to(session))
        .route("/organiser/sessions/{id}", web::post().to(update_session))
        .route(
            "/organiser/sessions/{id}/capacity",
            web::post().to(change_capacity),
        )
        .route(
            "/organiser/sessions/{id}/duplicate",
            web::post().to(duplicate_session),
        )
        .route(
            "/organiser/sessions/{id}/cancel",
            crate::pages::get().to(cancel_form),
        )
        .route(
            "/organiser/sessions/{id}/cancel",
            web::post().to(cancel_session),
        );
}

mod capacity;
mod event_pages;
mod session_pages;

use capacity::{cancel_form, cancel_session, change_capacity};
use event_pages::{create_event, event, event_status, list, update_event};
use session_pages::{create_session, duplicate_session, new_session, session, update_session};

/// A form's field messages from refused input, under the form's field names.
fn messages(err: &ValidationError) -> Vec<FieldMessage> {
    err.0
        .iter()
        .map(|f| FieldMessage::new(form_field(&f.field), &f.message))
        .collect()
}

fn form_field(api: &str) -> &str {
    match api {
        "vat_rate_bp" => "vat_rate",
        "refund_policy" => "refund_days_1",
        "price_minor" => "price",
        other => other,
    }
}

fn message(field: &str, text: impl Into<String>) -> FieldMessage {
    FieldMessage::new(field, &text.into())
}

/// The message next to a field whose saved value differs from what was entered, after someone
/// else saved the form's subject meanwhile. It names the field, as the error summary lists it.
fn overtaken(label: &str, now: &str) -> String {
    if now.is_empty() {
        format!("{label} is now saved empty")
    } else {
        format!("{label} is now saved as “{now}”")
    }
}

/// A message for each text field whose saved value differs from the one entered, in order.
/// Each field is (form field, label, entered, saved).
fn overtaken_texts<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str, &'a String, &'a String)>,
) -> Vec<FieldMessage> {
    fields
        .into_iter()
        .filter(|(_, _, entered, saved)| entered != saved)
        .map(|(field, label, _, saved)| message(field, overtaken(label, &shorten(saved))))
        .collect()
}

/// A message for each tick box whose saved state differs from the one entered, in order.
/// Each box is (form field, label, entered, saved).
fn overtaken_ticks<'a>(
    boxes: impl IntoIterator<Item = (&'a str, &'a str, bool, bool)>,
) -> Vec<FieldMessage> {
    boxes
        .into_iter()
        .filter(|(_, _, entered, saved)| entered != saved)
        .map(|(field, label, _, saved)| {
            let now = if saved { "ticked" } else { "not ticked" };
            message(field, overtaken(label, now))
        })
        .collect()
}

/// The API type read from a form, or the messages to show: those of the fields the form could
/// not read (`errors`) and those of the API's rules, one per field.
fn accepted<T>(
    read: Result<T, ValidationError>,
    mut errors: Vec<FieldMessage>,
) -> Result<T, Vec<FieldMessage>> {
    match read {
        Ok(value) if errors.is_empty() => Ok(value),
        Ok(_) => Err(errors),
        Err(e) => {
            merge(&mut errors, messages(&e));
            Err(errors)
        }
    }
}

/// What a form page says about what was sent: messages by field, and one for the whole form.
#[derive(Default)]
struct Said {
    errors: Vec<FieldMessage>,
    problem: Option<&'static str>,
}

impl From<Vec<FieldMessage>> for Said {
    fn from(errors: Vec<FieldMessage>) -> Self {
        Self {
            errors,
            problem: None,
        }
    }
}

/// The revision a form was opened at: none for a form without one (a client that asks for no
/// check, as an API `PATCH` without `If-Match` does), refused when it cannot be read rather than
/// saving without the check.
fn form_revision(raw: &str) -> Result<Option<i32>, PageError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i32>()
        .map(Some)
        .map_err(|_| PageError::from_status(StatusCode::BAD_REQUEST))
}

/// The page's problem when a form was overtaken by someone else's change.
const OVERTAKEN: &str = "Someone else saved a change while you were editing, so nothing was \
    saved. Your entries are kept below; where they differ from what is saved now, the field \
    says so. Check them and save again to keep yours.";

/// `text` cut to a length a field message can quote.
fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= MAX && line.len() == text.len() {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(MAX).collect();
        format!("{}…", cut.trim_end())
    }
}

/// Adds `more`, except for fields that already have a message.
fn merge(errors: &mut Vec<FieldMessage>, more: Vec<FieldMessage>) {
    for m in more {
        if !errors.iter().any(|e| e.field == m.field) {
            errors.push(m);
        }
    }
}

/// A `datetime-local` value for `at` in `zone`.
fn local_input(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone).format(LOCAL_FORMAT).to_string()
}

/// A `datetime-local` value read as a time in `zone`; empty is none.
fn parse_local(raw: &str, zone: Tz) -> Result<Option<DateTime<FixedOffset>>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let naive = NaiveDateTime::parse_from_str(raw, LOCAL_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| "must be a date and time such as 2027-05-12T09:30".to_owned())?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| Some(t.fixed_offset()))
        .ok_or_else(|| {
            format!(
                "does not exist in {} (the clocks go forward then)",
                zone.name()
            )
        })
}

/// "20" or "5.5" (per cent) as basis points.
fn parse_percent(raw: &str) -> Result<i32, String> {
    let raw = raw.trim().trim_end_matches('%').trim();
    let bad = || "must be a percentage such as 20 or 5.5".to_owned();
    if raw.is_empty() {
        return Ok(0);
    }
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
        || whole.len() > 5
    {
        return Err(bad());
    }
    let whole: i32 = whole.parse().map_err(|_| bad())?;
    let fraction: i32 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    Ok(whole * 100 + fraction)
}

fn percent_text(bp: i32) -> String {
    if bp % 100 == 0 {
        (bp / 100).to_string()
    } else {
        format!("{}.{:02}", bp / 100, bp % 100)
            .trim_end_matches('0')
            .to_owned()
    }
}

/// A price such as "120" or "120.50" in minor units (cents, pence).
fn parse_price(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let bad = || "must be an amount such as 120 or 120.50 (0 is free)".to_owned();
    if raw.is_empty() {
        return Ok(0);
    }
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || whole.len() > 9
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    Ok(whole * 100 + fraction)
}

fn price_text(minor: i64) -> String {
    if minor % 100 == 0 {
        (minor / 100).to_string()
    } else {
        format!("{}.{:02}", minor / 100, minor % 100)
    }
}

fn whole_number<T: std::str::FromStr>(raw: &str) -> Result<T, String> {
    raw.trim()
        .parse()
        .map_err(|_| "must be a whole number".to_owned())
}

fn checked(form: &FormData, name: &str) -> bool {
    form.get(name).is_some_and(|v| !v.is_empty())
}

fn when(session: &Session, zone: Tz) -> String {
    let (start, end) = (
        session.starts_at.with_timezone(&zone),
        session.ends_at.with_timezone(&zone),
    );
    format!(
        "{}, {}–{}",
        start.format("%a %-d %b %Y"),
        start.format("%H:%M"),
        end.format("%H:%M")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_and_prices_are_read_to_the_hundredth() {
        assert_eq!(parse_percent("20"), Ok(2000));
        assert_eq!(parse_percent("5.5"), Ok(550));
        assert_eq!(parse_percent(""), Ok(0));
        assert!(parse_percent("twenty").is_err());
        assert_eq!(percent_text(550), "5.5");
        assert_eq!(percent_text(2000), "20");
        assert_eq!(parse_price("120.50"), Ok(12050));
        assert_eq!(parse_price("120"), Ok(12000));
        assert!(parse_price("1.234").is_err());
        assert!(parse_price("-3").is_err());
        assert_eq!(price_text(12050), "120.50");
    }

    #[test]
    fn local_times_are_read_in_the_event_zone() {
        let zone: Tz = "Europe/London".parse().expect("zone");
        let summer = parse_local("2027-05-12T09:30", zone)
            .expect("valid")
            .expect("given");
        assert_eq!(summer.to_rfc3339(), "2027-05-12T09:30:00+01:00");
        assert_eq!(
            local_input(summer.with_timezone(&Utc), zone),
            "2027-05-12T09:30"
        );
        assert_eq!(parse_local(" ", zone), Ok(None));
        assert!(parse_local("2027-03-28T01:30", zone).is_err());
        assert!(parse_local("12/05/2027", zone).is_err());
    }
}
