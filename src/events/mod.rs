//! Events: one programme of masterclasses (venue, time zone, currency, registration window),
//! created and changed by organisers, listed publicly once published.

pub mod http;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::schema::{bookings, events};
use crate::db::{self, DbConn, DbError};
use crate::payments::policy::RefundPolicy;
use crate::validation::{Currency, ValidationError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Draft,
    Published,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
        }
    }

    fn from_db(raw: &str) -> Self {
        if raw == "published" {
            Self::Published
        } else {
            Self::Draft
        }
    }
}

/// A programme as stored.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub venue: String,
    pub time_zone: Tz,
    pub currency: String,
    pub registration_opens_at: Option<DateTime<Utc>>,
    pub registration_closes_at: Option<DateTime<Utc>>,
    pub status: EventStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Raised by every change; see [`crate::sessions::ProgrammeCache`].
    pub revision: i32,
    /// Whether one person may hold seats in sessions that overlap in time.
    pub allow_clashes: bool,
    /// Prices include VAT at this rate, in basis points (2000 = 20 %).
    pub vat_rate_bp: i32,
    /// What an attendee who cancels a paid seat gets back.
    pub refund_policy: RefundPolicy,
    /// Whether buyers may pay by invoice.
    pub invoices_allowed: bool,
    /// Invoice numbers look like `PMO27-0001`: this, a dash, then the event's sequence.
    pub invoice_prefix: String,
    /// Days to pay an invoice (never past the event's start).
    pub invoice_due_days: i32,
}

impl Event {
    /// Whether attendees may book at `now`: published and inside the registration window.
    pub fn registration_open(&self, now: DateTime<Utc>) -> bool {
        self.status == EventStatus::Published
            && self.registration_opens_at.is_none_or(|opens| now >= opens)
            && self
                .registration_closes_at
                .is_none_or(|closes| now < closes)
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = events)]
pub(crate) struct EventRow {
    id: i64,
    slug: String,
    name: String,
    venue: String,
    time_zone: String,
    currency: String,
    registration_opens_at: Option<NaiveDateTime>,
    registration_closes_at: Option<NaiveDateTime>,
    status: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    revision: i32,
    allow_clashes: bool,
    vat_rate_bp: i32,
    refund_policy: String,
    invoices_allowed: bool,
    invoice_prefix: Option<String>,
    invoice_due_days: i32,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Self {
        let time_zone = row.time_zone.parse().unwrap_or_else(|_| {
            tracing::warn!(event = row.id, zone = %row.time_zone, "unknown stored time zone; showing UTC");
            Tz::UTC
        });
        Self {
            id: row.id,
            slug: row.slug,
            name: row.name,
            venue: row.venue,
            time_zone,
            currency: row.currency,
            registration_opens_at: row.registration_opens_at.map(|t| t.and_utc()),
            registration_closes_at: row.registration_closes_at.map(|t| t.and_utc()),
            status: EventStatus::from_db(&row.status),
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
            revision: row.revision,
            allow_clashes: row.allow_clashes,
            vat_rate_bp: row.vat_rate_bp,
            refund_policy: RefundPolicy::from_stored(&row.refund_policy),
            invoices_allowed: row.invoices_allowed,
            invoice_prefix: row
                .invoice_prefix
                .unwrap_or_else(|| format!("EV{}", row.id)),
            invoice_due_days: row.invoice_due_days,
        }
    }
}

/// URL name of an event: 3 to 64 lower-case letters, digits and dashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = (3..=64).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 3 to 64 lower-case letters, digits and inner dashes".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A valid new event.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub slug: Slug,
    pub name: String,
    pub venue: String,
    pub time_zone: Tz,
    pub currency: Currency,
    pub registration_opens_at: Option<DateTime<Utc>>,
    pub registration_closes_at: Option<DateTime<Utc>>,
    pub status: EventStatus,
    pub allow_clashes: bool,
    pub vat_rate_bp: i32,
    pub refund_policy: RefundPolicy,
    pub invoices_allowed: bool,
    /// `None`: `EV<id>`.
    pub invoice_prefix: Option<String>,
    pub invoice_due_days: i32,
}

/// Changes to an event; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default)]
pub struct EventChanges {
    pub name: Option<String>,
    pub venue: Option<String>,
    pub time_zone: Option<Tz>,
    pub currency: Option<Currency>,
    pub registration_opens_at: Option<Option<DateTime<Utc>>>,
    pub registration_closes_at: Option<Option<DateTime<Utc>>>,
    pub status: Option<EventStatus>,
    pub allow_clashes: Option<bool>,
    pub vat_rate_bp: Option<i32>,
    pub refund_policy: Option<RefundPolicy>,
    pub invoices_allowed: Option<bool>,
    pub invoice_prefix: Option<String>,
    pub invoice_due_days: Option<i32>,
    /// The revision these changes were made against (an edit form's, an `If-Match`): when the
    /// event has changed since, nothing changes and [`EventError::Changed`] says so.
    pub if_revision: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("no event {0:?}")]
    NotFound(String),
    #[error("an event with slug {0:?} exists already")]
    SlugTaken(String),
    #[error("the currency cannot change once the event has bookings")]
    CurrencyLocked,
    #[error("invoice prefix {0:?} is used by another event")]
    PrefixTaken(String),
    #[error("the invoice prefix cannot change once invoices have been issued")]
    PrefixLocked,
    /// Someone changed the event after the revision the changes were made against.
    #[error("the event has changed since revision {expected}: it is at {current}")]
    Changed { expected: i32, current: i32 },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for EventError {
    fn from(err: diesel::result::Error) -> Self {
        Self::Db(err.into())
    }
}

fn check_window(
    opens: Option<DateTime<Utc>>,
    closes: Option<DateTime<Utc>>,
) -> Result<(), ValidationError> {
    match (opens, closes) {
        (Some(o), Some(c)) if c <= o => Err(ValidationError::single(
            "registration_closes_at",
            "must be after registration_opens_at",
        )),
        _ => Ok(()),
    }
}

#[derive(Insertable)]
#[diesel(table_name = events)]
struct EventInsert<'a> {
    slug: &'a str,
    name: &'a str,
    venue: &'a str,
    time_zone: &'a str,
    currency: &'a str,
    registration_opens_at: Option<NaiveDateTime>,
    registration_closes_at: Option<NaiveDateTime>,
    status: &'a str,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    allow_clashes: bool,
    vat_rate_bp: i32,
    refund_policy: String,
    invoices_allowed: bool,
    invoice_prefix: Option<&'a str>,
    invoice_due_days: i32,
}

#[tracing::instrument(level = "debug", skip_all, fields(slug = new.slug.as_str()))]
pub fn create(conn: &mut DbConn, new: &NewEvent) -> Result<Event, EventError> {
    check_window(new.registration_opens_at, new.registration_closes_at)?;
    let now = db::now();
    let row = EventInsert {
        slug: new.slug.as_str(),
        name: &new.name,
        venue: &new.venue,
        time_zone: new.time_zone.name(),
        currency: new.currency.as_str(),
        registration_opens_at: new.registration_opens_at.map(db::stored),
        registration_closes_at: new.registration_closes_at.map(db::stored),
        status: new.status.as_str(),
        created_at: now,
        updated_at: now,
        allow_clashes: new.allow_clashes,
        vat_rate_bp: new.vat_rate_bp,
        refund_policy: new.refund_policy.to_stored(),
        invoices_allowed: new.invoices_allowed,
        invoice_prefix: new.invoice_prefix.as_deref(),
        invoice_due_days: new.invoice_due_days,
    };
    let inserted = diesel::insert_into(events::table)
        .values(&row)
        .returning(events::id)
        .get_result::<i64>(conn);
    match inserted {
        Ok(id) => {
            if new.invoice_prefix.is_none() {
                diesel::update(events::table.find(id))
                    .set(events::invoice_prefix.eq(format!("EV{id}")))
                    .execute(conn)?;
            }
            Ok(by_id(conn, id)?)
        }
        Err(e) if db::is_unique_violation_of(&e, "invoice_prefix") => Err(EventError::PrefixTaken(
            new.invoice_prefix.clone().unwrap_or_default(),
        )),
        Err(e) if db::is_unique_violation(&e) => {
            Err(EventError::SlugTaken(new.slug.as_str().to_owned()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(AsChangeset)]
#[diesel(table_name = events)]
struct EventChangeset {
    name: Option<String>,
    venue: Option<String>,
    time_zone: Option<String>,
    currency: Option<String>,
    registration_opens_at: Option<Option<NaiveDateTime>>,
    registration_closes_at: Option<Option<NaiveDateTime>>,
    status: Option<String>,
    updated_at: NaiveDateTime,
    allow_clashes: Option<bool>,
    vat_rate_bp: Option<i32>,
    refund_policy: Option<String>,
    invoices_allowed: Option<bool>,
    invoice_prefix: Option<String>,
    invoice_due_days: Option<i32>,
}

#[tracing::instrument(level = "debug", skip(conn, changes))]
pub fn update(conn: &mut DbConn, slug: &str, changes: EventChanges) -> Result<Event, EventError> {
    db::write_transaction(conn, |conn| {
        // Under the row's lock, what is read below stays true until the update: an invoice
        // numbered at the same moment (which locks the row too) is counted by the prefix check.
        lock(conn, slug)?;
        let current = find(conn, slug)?;
        if let Some(expected) = changes.if_revision {
            if expected != current.revision {
                return Err(EventError::Changed {
                    expected,
                    current: current.revision,
                });
            }
        }
        let opens = changes
            .registration_opens_at
            .unwrap_or(current.registration_opens_at);
        let closes = changes
            .registration_closes_at
            .unwrap_or(current.registration_closes_at);
        check_window(opens, closes)?;
        if let Some(currency) = &changes.currency {
            if currency.as_str() != current.currency && has_bookings(conn, current.id)? {
                return Err(EventError::CurrencyLocked);
            }
        }
        if let Some(prefix) = &changes.invoice_prefix {
            let issued: i32 = events::table
                .find(current.id)
                .select(events::invoice_next)
                .first(conn)?;
            if *prefix != current.invoice_prefix && issued > 1 {
                return Err(EventError::PrefixLocked);
            }
        }
        let prefix = changes.invoice_prefix.clone();
        let changeset = EventChangeset {
            name: changes.name,
            venue: changes.venue,
            time_zone: changes.time_zone.map(|tz| tz.name().to_owned()),
            currency: changes.currency.map(|c| c.as_str().to_owned()),
            registration_opens_at: changes.registration_opens_at.map(|t| t.map(db::stored)),
            registration_closes_at: changes.registration_closes_at.map(|t| t.map(db::stored)),
            status: changes.status.map(|s| s.as_str().to_owned()),
            updated_at: db::now(),
            allow_clashes: changes.allow_clashes,
            vat_rate_bp: changes.vat_rate_bp,
            refund_policy: changes.refund_policy.map(|p| p.to_stored()),
            invoices_allowed: changes.invoices_allowed,
            invoice_prefix: changes.invoice_prefix,
            invoice_due_days: changes.invoice_due_days,
        };
        let expected = changes.if_revision;
        // Conditional on the revision read when one is expected: a change committed since
        // `current` was read is not overwritten.
        let mut update = diesel::update(events::table.find(current.id)).into_boxed();
        if expected.is_some() {
            update = update.filter(events::revision.eq(current.revision));
        }
        let updated = update
            .set((&changeset, events::revision.eq(events::revision + 1)))
            .execute(conn);
        match updated {
            Err(e) if db::is_unique_violation(&e) => {
                return Err(EventError::PrefixTaken(prefix.unwrap_or_default()))
            }
            Ok(0) if expected.is_some() => {
                let now = by_id(conn, current.id)?;
                return Err(EventError::Changed {
                    expected: current.revision,
                    current: now.revision,
                });
            }
            other => other?,
        };
        Ok(by_id(conn, current.id)?)
    })
}

/// Locks an event's row until the end of the transaction (a no-op update: one statement for
/// both backends; SQLite's writer lock covers it already). An unknown slug locks nothing.
pub fn lock(conn: &mut DbConn, slug: &str) -> Result<(), DbError> {
    // Anything that is not a slug (a path may carry any bytes, even NUL) names no event.
    if Slug::parse(slug).is_err() {
        return Ok(());
    }
    diesel::update(events::table.filter(events::slug.eq(slug)))
        .set(events::revision.eq(events::revision))
        .execute(conn)?;
    Ok(())
}

fn has_bookings(conn: &mut DbConn, event_id: i64) -> Result<bool, DbError> {
    let any: Option<i64> = bookings::table
        .filter(bookings::event_id.eq(event_id))
        .select(bookings::id)
        .first(conn)
        .optional()?;
    Ok(any.is_some())
}

/// Any event, draft or published.
pub fn find(conn: &mut DbConn, slug: &str) -> Result<Event, EventError> {
    // Anything that is not a slug (a path may carry any bytes, even NUL) names no event.
    if Slug::parse(slug).is_err() {
        return Err(EventError::NotFound(slug.to_owned()));
    }
    events::table
        .filter(events::slug.eq(slug))
        .select(EventRow::as_select())
        .first(conn)
        .optional()?
        .map(Event::from)
        .ok_or_else(|| EventError::NotFound(slug.to_owned()))
}

/// The event a session or booking belongs to.
pub fn by_id(conn: &mut DbConn, id: i64) -> Result<Event, DbError> {
    let row = events::table
        .find(id)
        .select(EventRow::as_select())
        .first(conn)?;
    Ok(row.into())
}

/// A published event; drafts are as good as absent to the public.
pub fn find_published(conn: &mut DbConn, slug: &str) -> Result<Event, EventError> {
    let event = find(conn, slug)?;
    if event.status == EventStatus::Published {
        Ok(event)
    } else {
        Err(EventError::NotFound(slug.to_owned()))
    }
}

/// Events in order of creation; drafts only when asked for.
pub fn list(conn: &mut DbConn, include_drafts: bool) -> Result<Vec<Event>, DbError> {
    let mut query = events::table
        .select(EventRow::as_select())
        .order(events::id.asc())
        .into_boxed();
    if !include_drafts {
        query = query.filter(events::status.eq(EventStatus::Published.as_str()));
    }
    Ok(query.load(conn)?.into_iter().map(Event::from).collect())
}

/// Whether any event exists at all (the demo programme is only made on an empty database).
pub fn any_exist(conn: &mut DbConn) -> Result<bool, DbError> {
    let first: Option<i64> = events::table.select(events::id).first(conn).optional()?;
    Ok(first.is_some())
}
