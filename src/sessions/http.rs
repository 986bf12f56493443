//! `/api/v1/admin/.../sessions`: organisers build and change the programme.

use actix_web::{patch, post, web, HttpResponse};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{
    NewSession, Session, SessionChanges, SessionError, SessionStatus, MAX_CAPACITY, MAX_PRICE_MINOR,
};
use crate::api::auth::Authenticated;
use crate::api::json::DeferredJson;
use crate::api::problem::responses::{
    AuthProblems, BodyProblems, Changed, Conflict, NotFound, Unavailable,
};
use crate::api::revision::{etag, IfMatch};
use crate::api::{local_time, nullable, run, AppState, Kind, Problem};
use crate::audit::{self, Record};
use crate::events::http::EventView;
use crate::events::Event;
use crate::organisers::Role;
use crate::validation::{
    instant, long_text, optional_text, required_text, Fields, ValidationError,
};

pub fn admin_routes(cfg: &mut ServiceConfig) {
    cfg.service(create_session).service(update_session);
}

/// A session as the API shows it; times in the event's time zone.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: i64,
    pub title: String,
    #[serde(rename = "abstract")]
    pub abstract_text: String,
    pub speakers: Vec<String>,
    pub track: Option<String>,
    pub room: Option<String>,
    pub starts_at: DateTime<FixedOffset>,
    pub ends_at: DateTime<FixedOffset>,
    pub capacity: i32,
    pub seats_left: i32,
    /// Price per seat in the currency's minor unit (cents, pence); 0 is free.
    pub price_minor: i64,
    pub currency: String,
    pub status: SessionStatus,
    /// Whether people can join a waitlist when the session is full.
    pub waitlist_enabled: bool,
    /// CPD hours attending counts for on a certificate of attendance, in tenths of an hour
    /// (15 is 1.5 hours); set with `PATCH`.
    pub cpd_tenths: i32,
    /// Goes up with every change an organiser makes; also the `ETag` of `PATCH` answers. Send
    /// it back as `If-Match` with a change to have it refused if someone changed the session
    /// since.
    pub revision: i32,
}

impl SessionView {
    pub fn new(session: &Session, event: &Event) -> Self {
        Self {
            id: session.id,
            title: session.title.clone(),
            abstract_text: session.abstract_text.clone(),
            speakers: session.speakers.clone(),
            track: session.track.clone(),
            room: session.room.clone(),
            starts_at: local_time(session.starts_at, event.time_zone),
            ends_at: local_time(session.ends_at, event.time_zone),
            capacity: session.capacity,
            seats_left: session.seats_left(),
            waitlist_enabled: session.waitlist_enabled,
            cpd_tenths: session.cpd_tenths,
            price_minor: session.price_minor,
            currency: event.currency.clone(),
            status: session.status,
            revision: session.revision,
        }
    }
}

/// A session with the event it belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionWithEvent {
    #[serde(flatten)]
    pub session: SessionView,
    pub event: EventView,
}

/// A new session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionInput {
    #[schema(
        example = "Setting up a PMO that lasts",
        min_length = 1,
        max_length = 200
    )]
    pub title: String,
    #[serde(default, rename = "abstract")]
    #[schema(max_length = 10000)]
    pub abstract_text: String,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub speakers: Vec<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub track: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub room: Option<String>,
    pub starts_at: DateTime<FixedOffset>,
    pub ends_at: DateTime<FixedOffset>,
    #[schema(minimum = 0, maximum = 100000)]
    pub capacity: i32,
    /// Price per seat in minor units; 0 (the default) is free.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100000000)]
    pub price_minor: i64,
    /// `published` (the default), `draft` or `cancelled`.
    #[serde(default)]
    pub status: Option<SessionStatus>,
    /// CPD hours the session counts for on certificates of attendance, in tenths of an hour
    /// (15 is 1.5 hours); 0 when left out.
    #[serde(default)]
    #[schema(maximum = 1000)]
    pub cpd_tenths: i32,
}

fn capacity(value: i32) -> Result<i32, String> {
    if (0..=MAX_CAPACITY).contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be between 0 and {MAX_CAPACITY}"))
    }
}

fn price(value: i64) -> Result<i64, String> {
    if (0..=MAX_PRICE_MINOR).contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be between 0 and {MAX_PRICE_MINOR}"))
    }
}

fn cpd(value: i32) -> Result<i32, String> {
    if (0..=super::MAX_CPD_TENTHS).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "must be between 0 and {} (tenths of an hour)",
            super::MAX_CPD_TENTHS
        ))
    }
}

fn speakers(values: &[String]) -> Result<Vec<String>, String> {
    if values.len() > 20 {
        return Err("at most 20 speakers".into());
    }
    values.iter().map(|v| required_text(v, 200)).collect()
}

impl TryFrom<SessionInput> for NewSession {
    type Error = ValidationError;

    fn try_from(input: SessionInput) -> Result<Self, Self::Error> {
        let mut f = Fields::new();
        let title = f.check("title", required_text(&input.title, 200));
        let abstract_text = f.check("abstract", long_text(&input.abstract_text, 10_000));
        let speakers = f.check("speakers", speakers(&input.speakers));
        let track = f.check("track", optional_text(input.track.as_deref(), 100));
        let room = f.check("room", optional_text(input.room.as_deref(), 100));
        let capacity = f.check("capacity", capacity(input.capacity));
        let price_minor = f.check("price_minor", price(input.price_minor));
        let starts_at = f.check("starts_at", instant(input.starts_at));
        let ends_at = f.check("ends_at", instant(input.ends_at));
        let cpd_tenths = f
            .check("cpd_tenths", cpd(input.cpd_tenths))
            .unwrap_or_default();
        f.finish()?;
        match (
            title,
            abstract_text,
            speakers,
            track,
            room,
            capacity,
            price_minor,
            starts_at,
            ends_at,
        ) {
            (
                Some(title),
                Some(abstract_text),
                Some(speakers),
                Some(track),
                Some(room),
                Some(capacity),
                Some(price_minor),
                Some(starts_at),
                Some(ends_at),
            ) => Ok(NewSession {
                title,
                abstract_text,
                speakers,
                track,
                room,
                starts_at,
                ends_at,
                capacity,
                price_minor,
                status: input.status.unwrap_or(SessionStatus::Published),
                cpd_tenths,
            }),
            _ => Err(ValidationError::single("body", "is not valid")),
        }
    }
}

/// Changes to a session: only the fields given change; `null` clears track or room.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionPatch {
    pub title: Option<String>,
    #[serde(rename = "abstract")]
    pub abstract_text: Option<String>,
    pub speakers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub track: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub room: Option<Option<String>>,
    pub starts_at: Option<DateTime<FixedOffset>>,
    pub ends_at: Option<DateTime<FixedOffset>>,
    /// Refused with `capacity-below-taken` when more seats are taken.
    #[schema(minimum = 0, maximum = 100000)]
    pub capacity: Option<i32>,
    #[schema(minimum = 0, maximum = 100000000)]
    pub price_minor: Option<i64>,
    /// `cancelled` cancels every seat booked in the session.
    pub status: Option<SessionStatus>,
    /// Switches the session's waitlist on or off (people already on it stay).
    pub waitlist_enabled: Option<bool>,
    /// CPD hours attending counts for on a certificate of attendance, in tenths of an hour
    /// (15 is 1.5 hours).
    #[schema(minimum = 0, maximum = 1000)]
    pub cpd_tenths: Option<i32>,
}

impl TryFrom<SessionPatch> for SessionChanges {
    type Error = ValidationError;

    fn try_from(p: SessionPatch) -> Result<Self, Self::Error> {
        let mut f = Fields::new();
        let changes = SessionChanges {
            title: p
                .title
                .and_then(|v| f.check("title", required_text(&v, 200))),
            abstract_text: p
                .abstract_text
                .and_then(|v| f.check("abstract", long_text(&v, 10_000))),
            speakers: p.speakers.and_then(|v| f.check("speakers", speakers(&v))),
            track: p
                .track
                .and_then(|v| f.check("track", optional_text(v.as_deref(), 100))),
            room: p
                .room
                .and_then(|v| f.check("room", optional_text(v.as_deref(), 100))),
            starts_at: p.starts_at.and_then(|t| f.check("starts_at", instant(t))),
            ends_at: p.ends_at.and_then(|t| f.check("ends_at", instant(t))),
            capacity: p.capacity.and_then(|v| f.check("capacity", capacity(v))),
            price_minor: p.price_minor.and_then(|v| f.check("price_minor", price(v))),
            status: p.status,
            waitlist_enabled: p.waitlist_enabled,
            cpd_tenths: p.cpd_tenths.and_then(|v| f.check("cpd_tenths", cpd(v))),
            // From the request's `If-Match`, not the body.
            if_revision: None,
        };
        f.finish().map(|()| changes)
    }
}

impl From<SessionError> for Problem {
    fn from(err: SessionError) -> Self {
        match err {
            SessionError::NotFound(id) => Problem::new(Kind::NotFound, format!("There is no session {id}")),
            SessionError::Event(e) => e.into(),
            SessionError::CapacityBelowTaken {
                id,
                title,
                taken,
                requested,
            } => Problem::new(
                Kind::CapacityBelowTaken,
                format!("{taken} seats are taken in \"{title}\"; capacity cannot go down to {requested}"),
            )
            .with_session(id, &title),
            SessionError::Changed {
                id,
                expected,
                current,
            } => Problem::new(
                Kind::Changed,
                format!(
                    "Session {id} has changed since revision {expected} (it is at {current}); \
                     read it again and send the change against the current revision"
                ),
            ),
            SessionError::Invalid(v) => v.into(),
            SessionError::Db(e) => e.into(),
        }
    }
}

/// Adds a session to an event (published unless `status` says otherwise).
#[utoipa::path(
    tag = "organiser",
    request_body = SessionInput,
    params(("slug" = String, Path, description = "The event's slug")),
    security(("organiser_token" = [])),
    responses(
        (status = 201, description = "Created", body = SessionWithEvent),
        BodyProblems, AuthProblems, NotFound, Unavailable,
    )
)]
#[post("/admin/events/{slug}/sessions")]
async fn create_session(
    state: web::Data<AppState>,
    auth: Authenticated,
    slug: web::Path<String>,
    input: DeferredJson<SessionInput>,
) -> Result<HttpResponse, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let new = NewSession::try_from(input.read().await?)?;
    let slug = slug.into_inner();
    let by = Some(organiser.id);
    let (event, session) = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, SessionError> {
            let (event, session) = super::create(conn, &slug, &new)?;
            let record = Record::new("session.create", format!("session:{}", session.id))
                .after(&SessionView::new(&session, &event));
            Ok(((event, session), record))
        })
    })
    .await?;
    state.programmes.forget(&event.slug);
    Ok(HttpResponse::Created()
        .insert_header(etag(session.revision))
        .json(SessionWithEvent {
            session: SessionView::new(&session, &event),
            event: EventView::from(&event),
        }))
}

/// Changes any field of a session: details, times, capacity, price, publication or cancellation.
#[utoipa::path(
    tag = "organiser",
    request_body = SessionPatch,
    params(
        ("id" = i64, Path, description = "The session's id"),
        ("If-Match" = Option<String>, Header, description = "The session's `ETag` (its revision, e.g. \"7\") as last read: the change is refused with 412 if the session has changed since"),
    ),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "Changed", body = SessionWithEvent),
        BodyProblems, AuthProblems, NotFound, Conflict, Changed, Unavailable,
    )
)]
#[patch("/admin/sessions/{id}")]
async fn update_session(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
    if_match: IfMatch,
    input: DeferredJson<SessionPatch>,
) -> Result<HttpResponse, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let mut changes = SessionChanges::try_from(input.read().await?)?;
    changes.if_revision = if_match.0;
    let id = id.into_inner();
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let by = Some(organiser.id);
    let (event, session) = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, SessionError> {
            // Locked first, so `before` is what the update changes.
            super::lock(conn, id)?;
            let before = super::find(conn, id)?;
            let (event, session) = super::update(conn, id, changes, &issuer, now)?;
            let record = Record::new("session.update", format!("session:{id}"))
                .before(&SessionView::new(&before, &event))
                .after(&SessionView::new(&session, &event));
            Ok(((event, session), record))
        })
    })
    .await?;
    // Not needed for correctness (bookings check revisions), but saves the next one a retry.
    state.programmes.forget(&event.slug);
    // A cancelled session refunds its paid places.
    crate::payments::http::send_refunds_soon(&state);
    Ok(HttpResponse::Ok()
        .insert_header(etag(session.revision))
        .json(SessionWithEvent {
            session: SessionView::new(&session, &event),
            event: EventView::from(&event),
        }))
}
