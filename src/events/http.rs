//! `/api/v1/events` (public programme) and `/api/v1/admin/events` (organisers).

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Event, EventChanges, EventError, EventStatus, NewEvent, Slug};
use crate::api::auth::Authenticated;
use crate::api::json::DeferredJson;
use crate::api::problem::responses::{
    AuthProblems, BodyProblems, Changed, Conflict, NotFound, Unavailable,
};
use crate::api::revision::{etag, IfMatch};
use crate::api::{local_time, nullable, run, AppState, Kind, Problem};
use crate::audit::{self, Record};
use crate::organisers::Role;
use crate::payments::policy::{RefundPolicy, RefundRule};
use crate::sessions::http::SessionView;
use crate::sessions::{self};
use crate::validation::{instant, required_text, time_zone, Currency, Fields};

pub fn public_routes(cfg: &mut ServiceConfig) {
    cfg.service(list_events).service(get_event);
}

pub fn admin_routes(cfg: &mut ServiceConfig) {
    cfg.service(create_event).service(update_event);
}

/// An event as the API shows it; times in the event's time zone.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub slug: String,
    pub name: String,
    pub venue: String,
    /// IANA time zone; every time of the event is shown in it.
    pub time_zone: String,
    /// ISO 4217 code; prices are integers in its minor unit.
    pub currency: String,
    pub registration_opens_at: Option<DateTime<FixedOffset>>,
    pub registration_closes_at: Option<DateTime<FixedOffset>>,
    /// Whether bookings are accepted right now.
    pub registration_open: bool,
    pub status: EventStatus,
    /// Whether one person may book sessions that overlap in time.
    pub allow_clashes: bool,
    /// Prices include VAT at this rate, in basis points (2000 = 20 %).
    pub vat_rate_bp: i32,
    /// What an attendee who cancels a paid seat gets back: the step with the most days still
    /// ahead of the session applies; none applies, nothing comes back.
    pub refund_policy: Vec<RefundRule>,
    /// Whether buyers may pay by invoice.
    pub invoices_allowed: bool,
    /// Invoice numbers look like `PMO27-0001`.
    pub invoice_prefix: String,
    /// Days to pay an invoice (never past the event's start).
    pub invoice_due_days: i32,
    /// Goes up with every change an organiser makes; also the `ETag`. Send it back as
    /// `If-Match` with a change to have it refused if someone changed the event since.
    pub revision: i32,
}

impl From<&Event> for EventView {
    fn from(event: &Event) -> Self {
        Self {
            slug: event.slug.clone(),
            name: event.name.clone(),
            venue: event.venue.clone(),
            time_zone: event.time_zone.name().to_owned(),
            currency: event.currency.clone(),
            registration_opens_at: event
                .registration_opens_at
                .map(|t| local_time(t, event.time_zone)),
            registration_closes_at: event
                .registration_closes_at
                .map(|t| local_time(t, event.time_zone)),
            registration_open: event.registration_open(Utc::now()),
            status: event.status,
            allow_clashes: event.allow_clashes,
            vat_rate_bp: event.vat_rate_bp,
            refund_policy: event.refund_policy.rules().to_vec(),
            invoices_allowed: event.invoices_allowed,
            invoice_prefix: event.invoice_prefix.clone(),
            invoice_due_days: event.invoice_due_days,
            revision: event.revision,
        }
    }
}

/// An event with its published programme.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgrammeView {
    #[serde(flatten)]
    pub event: EventView,
    /// Published (and cancelled) sessions in time order.
    pub sessions: Vec<SessionView>,
}

/// A new event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    /// 3 to 64 lower-case letters, digits and dashes; used in URLs.
    #[schema(
        example = "pmo-masterclasses-2027",
        pattern = "^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"
    )]
    pub slug: String,
    #[schema(example = "PMO Masterclasses 2027", min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(
        example = "Riverside Conference Centre, London",
        min_length = 1,
        max_length = 300
    )]
    pub venue: String,
    #[schema(example = "Europe/London", max_length = 64)]
    pub time_zone: String,
    #[schema(example = "GBP", pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    #[serde(default)]
    pub registration_opens_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub registration_closes_at: Option<DateTime<FixedOffset>>,
    /// `draft` (the default) or `published`.
    #[serde(default)]
    pub status: Option<EventStatus>,
    /// Let one person book sessions that overlap in time (default: refused as
    /// `timetable-clash`).
    #[serde(default)]
    pub allow_clashes: bool,
    /// VAT included in prices, in basis points (2000 = 20 %; default 0).
    #[serde(default)]
    #[schema(example = 2000, minimum = 0, maximum = 10000)]
    pub vat_rate_bp: i32,
    /// Refund steps, e.g. `[{"days_before": 14, "percent": 100}, {"days_before": 7, "percent":
    /// 50}]`; default none (no refund when an attendee cancels a paid seat).
    #[serde(default)]
    pub refund_policy: Vec<RefundRule>,
    /// Let buyers pay by invoice (default: no).
    #[serde(default)]
    pub invoices_allowed: bool,
    /// 1 to 12 capital letters, digits or dashes, unique among events; invoice numbers are this,
    /// a dash and a four-digit sequence (default `EV<id>`).
    #[schema(example = "PMO27", pattern = "^[A-Z0-9][A-Z0-9-]{0,11}$")]
    pub invoice_prefix: Option<String>,
    /// Days to pay an invoice, 0 to 365 (default 14; never past the event's start).
    #[schema(minimum = 0, maximum = 365)]
    pub invoice_due_days: Option<i32>,
}

impl TryFrom<EventInput> for NewEvent {
    type Error = crate::validation::ValidationError;

    fn try_from(input: EventInput) -> Result<Self, Self::Error> {
        let mut f = Fields::new();
        let slug = f.check("slug", Slug::parse(&input.slug));
        let name = f.check("name", required_text(&input.name, 200));
        let venue = f.check("venue", required_text(&input.venue, 300));
        let zone = f.check("time_zone", time_zone(&input.time_zone));
        let currency = f.check("currency", Currency::parse(&input.currency));
        let opens = input
            .registration_opens_at
            .and_then(|t| f.check("registration_opens_at", instant(t)));
        let closes = input
            .registration_closes_at
            .and_then(|t| f.check("registration_closes_at", instant(t)));
        let vat = f.check("vat_rate_bp", vat_rate(input.vat_rate_bp));
        let policy = f.check("refund_policy", RefundPolicy::new(input.refund_policy));
        let prefix = match input.invoice_prefix.as_deref() {
            Some(raw) => f.check("invoice_prefix", invoice_prefix(raw)).map(Some),
            None => Some(None),
        };
        let due_days = f.check(
            "invoice_due_days",
            due_days(input.invoice_due_days.unwrap_or(14)),
        );
        f.finish()?;
        match (
            slug, name, venue, zone, currency, vat, policy, prefix, due_days,
        ) {
            (
                Some(slug),
                Some(name),
                Some(venue),
                Some(time_zone),
                Some(currency),
                Some(vat_rate_bp),
                Some(refund_policy),
                Some(invoice_prefix),
                Some(invoice_due_days),
            ) => Ok(NewEvent {
                slug,
                name,
                venue,
                time_zone,
                currency,
                registration_opens_at: opens,
                registration_closes_at: closes,
                status: input.status.unwrap_or(EventStatus::Draft),
                allow_clashes: input.allow_clashes,
                vat_rate_bp,
                refund_policy,
                invoices_allowed: input.invoices_allowed,
                invoice_prefix,
                invoice_due_days,
            }),
            _ => Err(crate::validation::ValidationError::single(
                "body",
                "is not valid",
            )),
        }
    }
}

/// Changes to an event: only the fields given change; `null` clears a registration time.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventPatch {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 300)]
    pub venue: Option<String>,
    #[schema(example = "Europe/London", max_length = 64)]
    pub time_zone: Option<String>,
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub registration_opens_at: Option<Option<DateTime<FixedOffset>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub registration_closes_at: Option<Option<DateTime<FixedOffset>>>,
    pub status: Option<EventStatus>,
    pub allow_clashes: Option<bool>,
    #[schema(minimum = 0, maximum = 10000)]
    pub vat_rate_bp: Option<i32>,
    /// Replaces the refund policy. Bookings already paid keep the policy they were paid under.
    pub refund_policy: Option<Vec<RefundRule>>,
    pub invoices_allowed: Option<bool>,
    /// Unique among events; cannot change once invoices have been issued.
    #[schema(pattern = "^[A-Z0-9][A-Z0-9-]{0,11}$")]
    pub invoice_prefix: Option<String>,
    #[schema(minimum = 0, maximum = 365)]
    pub invoice_due_days: Option<i32>,
}

impl TryFrom<EventPatch> for EventChanges {
    type Error = crate::validation::ValidationError;

    fn try_from(p: EventPatch) -> Result<Self, Self::Error> {
        let mut f = Fields::new();
        let changes = EventChanges {
            name: p.name.and_then(|v| f.check("name", required_text(&v, 200))),
            venue: p
                .venue
                .and_then(|v| f.check("venue", required_text(&v, 300))),
            time_zone: p
                .time_zone
                .and_then(|v| f.check("time_zone", time_zone(&v))),
            currency: p
                .currency
                .and_then(|v| f.check("currency", Currency::parse(&v))),
            registration_opens_at: p
                .registration_opens_at
                .map(|t| t.and_then(|t| f.check("registration_opens_at", instant(t)))),
            registration_closes_at: p
                .registration_closes_at
                .map(|t| t.and_then(|t| f.check("registration_closes_at", instant(t)))),
            status: p.status,
            allow_clashes: p.allow_clashes,
            vat_rate_bp: p
                .vat_rate_bp
                .and_then(|v| f.check("vat_rate_bp", vat_rate(v))),
            refund_policy: p
                .refund_policy
                .and_then(|rules| f.check("refund_policy", RefundPolicy::new(rules))),
            invoices_allowed: p.invoices_allowed,
            invoice_prefix: p
                .invoice_prefix
                .and_then(|v| f.check("invoice_prefix", invoice_prefix(&v))),
            invoice_due_days: p
                .invoice_due_days
                .and_then(|v| f.check("invoice_due_days", due_days(v))),
            // From the request's `If-Match`, not the body.
            if_revision: None,
        };
        f.finish().map(|()| changes)
    }
}

/// An invoice number prefix: 1 to 12 capital letters, digits or dashes, starting with a letter
/// or digit.
fn invoice_prefix(raw: &str) -> Result<String, String> {
    let ok = (1..=12).contains(&raw.len())
        && raw
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        && !raw.starts_with('-');
    // `EV` and digits is kept for the prefixes given to events created without one.
    let reserved = raw
        .strip_prefix("EV")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()));
    if reserved {
        Err("EV followed by digits is kept for events created without a prefix".to_owned())
    } else if ok {
        Ok(raw.to_owned())
    } else {
        Err("must be 1 to 12 capital letters, digits or dashes, e.g. PMO27".to_owned())
    }
}

/// Days to pay an invoice: 0 to 365.
fn due_days(days: i32) -> Result<i32, String> {
    if (0..=365).contains(&days) {
        Ok(days)
    } else {
        Err("must be 0 to 365 days".to_owned())
    }
}

/// A VAT rate in basis points: 0 to 10,000 (100 %).
fn vat_rate(bp: i32) -> Result<i32, String> {
    if (0..=10_000).contains(&bp) {
        Ok(bp)
    } else {
        Err("must be 0 to 10000 basis points (2000 = 20 %)".to_owned())
    }
}

impl From<EventError> for Problem {
    fn from(err: EventError) -> Self {
        match err {
            EventError::NotFound(slug) => {
                Problem::new(Kind::NotFound, format!("There is no event {slug:?}"))
            }
            EventError::SlugTaken(slug) => Problem::new(
                Kind::Conflict,
                format!("An event with slug {slug:?} exists already"),
            ),
            EventError::CurrencyLocked => Problem::new(
                Kind::Conflict,
                "The currency cannot change once the event has bookings",
            ),
            e @ (EventError::PrefixTaken(_) | EventError::PrefixLocked) => {
                Problem::new(Kind::Conflict, e.to_string())
            }
            EventError::Changed { expected, current } => Problem::new(
                Kind::Changed,
                format!(
                    "The event has changed since revision {expected} (it is at {current}); \
                     read it again and send the change against the current revision"
                ),
            ),
            EventError::Invalid(v) => v.into(),
            EventError::Db(e) => e.into(),
        }
    }
}

/// Published events.
#[utoipa::path(tag = "programme", responses((status = 200, description = "Published events", body = [EventView]), Unavailable))]
#[get("/events")]
async fn list_events(state: web::Data<AppState>) -> Result<web::Json<Vec<EventView>>, Problem> {
    let events = run(&state.db, |conn| super::list(conn, false)).await?;
    Ok(web::Json(events.iter().map(EventView::from).collect()))
}

/// A published event with its programme and the seats left in each session.
#[utoipa::path(
    tag = "programme",
    params(("slug" = String, Path, description = "The event's slug")),
    responses(
        (status = 200, description = "The event and its sessions", body = ProgrammeView),
        NotFound, Unavailable,
    )
)]
#[get("/events/{slug}")]
async fn get_event(
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<web::Json<ProgrammeView>, Problem> {
    let slug = slug.into_inner();
    let (event, sessions) = run(&state.db, move |conn| sessions::programme(conn, &slug)).await?;
    Ok(web::Json(ProgrammeView {
        event: EventView::from(&event),
        sessions: sessions
            .iter()
            .map(|s| SessionView::new(s, &event))
            .collect(),
    }))
}

/// Creates an event (a draft unless `status` says `published`).
#[utoipa::path(
    tag = "organiser",
    request_body = EventInput,
    security(("organiser_token" = [])),
    responses(
        (status = 201, description = "Created", body = EventView),
        BodyProblems, AuthProblems, Conflict, Unavailable,
    )
)]
#[post("/admin/events")]
async fn create_event(
    state: web::Data<AppState>,
    auth: Authenticated,
    input: DeferredJson<EventInput>,
) -> Result<HttpResponse, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let new = NewEvent::try_from(input.read().await?)?;
    let by = Some(organiser.id);
    let view = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, EventError> {
            let view = EventView::from(&super::create(conn, &new)?);
            let record = Record::new("event.create", format!("event:{}", view.slug)).after(&view);
            Ok((view, record))
        })
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(etag(view.revision))
        .json(view))
}

/// Changes an event's details, registration window or status.
#[utoipa::path(
    tag = "organiser",
    request_body = EventPatch,
    params(
        ("slug" = String, Path, description = "The event's slug"),
        ("If-Match" = Option<String>, Header, description = "The event's `ETag` (its revision, e.g. \"7\") as last read: the change is refused with 412 if the event has changed since"),
    ),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "Changed", body = EventView),
        BodyProblems, AuthProblems, NotFound, Conflict, Changed, Unavailable,
    )
)]
#[patch("/admin/events/{slug}")]
async fn update_event(
    state: web::Data<AppState>,
    auth: Authenticated,
    slug: web::Path<String>,
    if_match: IfMatch,
    input: DeferredJson<EventPatch>,
) -> Result<HttpResponse, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let mut changes = EventChanges::try_from(input.read().await?)?;
    changes.if_revision = if_match.0;
    let slug = slug.into_inner();
    let by = Some(organiser.id);
    let event = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, EventError> {
            // Locked first, so `before` is what the update changes.
            super::lock(conn, &slug)?;
            let before = super::find(conn, &slug)?;
            let event = super::update(conn, &slug, changes)?;
            let record = Record::new("event.update", format!("event:{}", event.slug))
                .before(&EventView::from(&before))
                .after(&EventView::from(&event));
            Ok((event, record))
        })
    })
    .await?;
    // Not needed for correctness (bookings check revisions), but saves the next one a retry.
    state.programmes.forget(&event.slug);
    Ok(HttpResponse::Ok()
        .insert_header(etag(event.revision))
        .json(EventView::from(&event)))
}
