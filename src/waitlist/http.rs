//! Waitlist routes: join a full session's list; with the entry's manage token see your place,
//! leave, claim or decline an offer; organisers see each list in order and promote people.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Entry, EntryState, EntryView, Joined, WaitlistError};
use crate::api::auth::Authenticated;
use crate::api::idempotency::{self, Guarded};
use crate::api::json::{ApiJson, OptionalJson};
use crate::api::problem::responses::{AuthProblems, BodyProblems, NotFound, Unavailable};
use crate::api::{local_time, run, AppState, Kind, Problem};
use crate::audit::{self, Record};
use crate::bookings::http::{AttendeeInput, AttendeeView, BookingCreated, BookingView, EventRef};
use crate::bookings::Attendee;
use crate::organisers::Role;
use crate::sessions::http::SessionView;
use crate::validation::{optional_text, required_text, Email, Fields, ValidationError};

pub fn public_routes(cfg: &mut ServiceConfig) {
    cfg.service(join_waitlist)
        .service(get_entry)
        .service(leave_waitlist)
        .service(decline_offer)
        .service(claim_offer);
}

pub fn admin_routes(cfg: &mut ServiceConfig) {
    cfg.service(session_waitlist).service(promote_entry);
}

/// A place on a waitlist, as its holder sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitlistView {
    /// e.g. `WL-7K3F9Q`.
    pub reference: String,
    pub state: EntryState,
    /// 1 is next in line; only while waiting.
    pub position: Option<i64>,
    /// While offered: claim before this, or the seat passes to the next person.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub offer_expires_at: Option<DateTime<FixedOffset>>,
    pub session: SessionView,
    pub event: EventRef,
    pub attendee: AttendeeView,
    pub created_at: DateTime<Utc>,
}

impl From<&EntryView> for WaitlistView {
    fn from(view: &EntryView) -> Self {
        let entry = &view.entry;
        Self {
            reference: entry.reference.clone(),
            state: entry.state,
            position: view.position,
            offer_expires_at: entry
                .offer_expires_at
                .filter(|_| entry.state == EntryState::Offered)
                .map(|t| local_time(t, view.event.time_zone)),
            session: SessionView::new(&view.session, &view.event),
            event: EventRef {
                slug: view.event.slug.clone(),
                name: view.event.name.clone(),
            },
            attendee: attendee_view(entry),
            created_at: entry.created_at,
        }
    }
}

/// A new place on a waitlist, with the secret to manage it (returned only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitlistJoined {
    /// Keep it: it is the only way to see, leave or claim this place, and it is not shown again.
    pub manage_token: String,
    #[serde(flatten)]
    pub entry: WaitlistView,
}

/// One entry of a session's waitlist, as organisers see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitlistEntryView {
    pub id: i64,
    pub reference: String,
    pub state: EntryState,
    pub attendee: AttendeeView,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<&Entry> for WaitlistEntryView {
    fn from(entry: &Entry) -> Self {
        Self {
            id: entry.id,
            reference: entry.reference.clone(),
            state: entry.state,
            attendee: attendee_view(entry),
            offer_expires_at: entry
                .offer_expires_at
                .filter(|_| entry.state == EntryState::Offered),
            created_at: entry.created_at,
        }
    }
}

fn attendee_view(entry: &Entry) -> AttendeeView {
    AttendeeView {
        name: entry.attendee_name.clone(),
        email: entry.attendee_email.clone(),
        organisation: entry.attendee_organisation.clone(),
    }
}

/// How an organiser promotes someone.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteInput {
    /// Also raise the session's capacity by one, so that they are offered a seat now. Without
    /// it they move to the front of the queue and get the next seat that frees up.
    #[serde(default)]
    pub add_seat: bool,
}

impl From<WaitlistError> for Problem {
    fn from(err: WaitlistError) -> Self {
        match err {
            WaitlistError::NotFound => Problem::not_found("The waitlist entry"),
            WaitlistError::UnknownSession(id) => Problem::new(
                Kind::NotFound,
                format!("There is no session {id} in this event"),
            ),
            WaitlistError::Disabled { id, title } => {
                Problem::new(Kind::WaitlistClosed, format!("\"{title}\" has no waitlist"))
                    .with_session(id, &title)
            }
            WaitlistError::SeatsAvailable { id, title } => Problem::new(
                Kind::SeatsAvailable,
                format!("\"{title}\" has seats left: book one instead"),
            )
            .with_session(id, &title),
            WaitlistError::AlreadyBooked { id, title } => Problem::new(
                Kind::AlreadyBooked,
                format!("This email address already has a seat in \"{title}\""),
            )
            .with_session(id, &title),
            WaitlistError::AlreadyWaiting { id, title } => Problem::new(
                Kind::AlreadyWaiting,
                format!("This email address is already on the waitlist for \"{title}\""),
            )
            .with_session(id, &title),
            WaitlistError::SessionCancelled { id, title } => {
                Problem::new(Kind::SessionCancelled, format!("\"{title}\" is cancelled"))
                    .with_session(id, &title)
            }
            WaitlistError::SessionStarted { id, title } => Problem::new(
                Kind::SessionStarted,
                format!("\"{title}\" has already started"),
            )
            .with_session(id, &title),
            WaitlistError::NotAllowed(state) => Problem::new(
                Kind::Conflict,
                format!(
                    "This waitlist place is {}; that cannot be done now",
                    state.as_str()
                ),
            ),
            WaitlistError::OfferExpired => Problem::new(
                Kind::OfferExpired,
                "The offer ran out before it was claimed; the seat has passed to the next person",
            ),
            WaitlistError::Booking(e) => e.into(),
            WaitlistError::Event(e) => e.into(),
            WaitlistError::Session(e) => e.into(),
            WaitlistError::Db(e) => e.into(),
        }
    }
}

fn attendee(input: AttendeeInput) -> Result<Attendee, ValidationError> {
    let mut f = Fields::new();
    let name = f.check("name", required_text(&input.name, 200));
    let email = f.check("email", Email::parse(&input.email));
    let organisation = f.check(
        "organisation",
        optional_text(input.organisation.as_deref(), 200),
    );
    f.finish()?;
    match (name, email, organisation) {
        (Some(name), Some(email), Some(organisation)) => Ok(Attendee {
            name,
            email,
            organisation,
        }),
        _ => Err(ValidationError::single("email", "is required")),
    }
}

/// Joins the waitlist of a full session; the answer says your place in the queue.
#[utoipa::path(
    tag = "waitlist",
    request_body = AttendeeInput,
    params(
        ("slug" = String, Path, description = "The event's slug"),
        ("id" = i64, Path, description = "The session's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Any unique string: a retry with the same key and body gets the first answer and joins nothing more, for 24 hours"),
    ),
    responses(
        (status = 201, description = "On the waitlist; keep `manage_token`, it is not shown again", body = WaitlistJoined),
        BodyProblems, NotFound,
        (status = 409, description = "`seats-available`, `already-booked`, `already-waiting`, `waitlist-closed`, `session-cancelled` or `session-started`", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable,
    )
)]
#[post("/events/{slug}/sessions/{id}/waitlist")]
async fn join_waitlist(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, i64)>,
    input: ApiJson<AttendeeInput>,
) -> Result<HttpResponse, Problem> {
    let key = idempotency::key_of(&req, &input.0)?;
    let who = attendee(input.0)?;
    let (slug, session_id) = path.into_inner();
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let db = state.db.clone();
    let outcome = idempotency::guarded(&state, key, |key| {
        run(&db, move |conn| {
            let finish =
                idempotency::answer_with(key, |joined: &Joined| WaitlistView::from(&joined.view));
            super::join(conn, &issuer, &slug, session_id, &who, now, finish)
        })
    })
    .await?;
    let joined = match outcome {
        Guarded::Replayed(answer) => return Ok(answer),
        Guarded::Done(joined) => joined,
    };
    tracing::info!(reference = %joined.view.entry.reference, session = session_id, "joined waitlist");
    Ok(HttpResponse::Created().json(WaitlistJoined {
        manage_token: joined.manage_token,
        entry: WaitlistView::from(&joined.view),
    }))
}

/// A place on a waitlist: its state, position or offer.
#[utoipa::path(
    tag = "waitlist",
    params(("manage_token" = String, Path, description = "The secret returned when joining")),
    responses((status = 200, description = "The waitlist place", body = WaitlistView), NotFound, Unavailable)
)]
#[get("/waitlist/{manage_token}")]
async fn get_entry(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<web::Json<WaitlistView>, Problem> {
    let token = token.into_inner();
    let view = run(&state.db, move |conn| super::find_by_token(conn, &token)).await?;
    Ok(web::Json(WaitlistView::from(&view)))
}

/// Leaves the waitlist; a seat on offer passes to the next person at once.
#[utoipa::path(
    tag = "waitlist",
    params(("manage_token" = String, Path, description = "The secret returned when joining")),
    responses(
        (status = 200, description = "The place, now withdrawn or declined", body = WaitlistView),
        NotFound,
        (status = 409, description = "`conflict`: the place is no longer on the list", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable
    )
)]
#[post("/waitlist/{manage_token}/leave")]
async fn leave_waitlist(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<web::Json<WaitlistView>, Problem> {
    end_place(&state, token.into_inner(), super::leave).await
}

/// Leaving and declining: the same call shape, a different rule.
async fn end_place(
    state: &AppState,
    token: String,
    end: fn(
        &mut crate::db::DbConn,
        &crate::bookings::Issuer,
        &str,
        chrono::DateTime<Utc>,
    ) -> Result<EntryView, WaitlistError>,
) -> Result<web::Json<WaitlistView>, Problem> {
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let view = run(&state.db, move |conn| end(conn, &issuer, &token, now)).await?;
    Ok(web::Json(WaitlistView::from(&view)))
}

/// Declines an offered seat: it passes to the next person at once.
#[utoipa::path(
    tag = "waitlist",
    params(("manage_token" = String, Path, description = "The secret returned when joining")),
    responses(
        (status = 200, description = "The place, now declined", body = WaitlistView),
        NotFound,
        (status = 409, description = "`conflict`: there is no offer to decline", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable
    )
)]
#[post("/waitlist/{manage_token}/decline")]
async fn decline_offer(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<web::Json<WaitlistView>, Problem> {
    end_place(&state, token.into_inner(), super::decline).await
}

/// Claims an offered seat: it becomes a booking (held for payment when the session is priced).
#[utoipa::path(
    tag = "waitlist",
    params(
        ("manage_token" = String, Path, description = "The secret returned when joining"),
        ("Idempotency-Key" = Option<String>, Header, description = "Any unique string: a retry with the same key gets the first answer and books nothing more, for 24 hours"),
    ),
    responses(
        (status = 201, description = "Booked; keep `manage_token` (the booking's), it is not shown again", body = BookingCreated),
        NotFound,
        (status = 422, description = "`validation`: the Idempotency-Key header is not a key, or `idempotency-key-reused`", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`offer-expired`, or `conflict` when there is no offer", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable
    )
)]
#[post("/waitlist/{manage_token}/claim")]
async fn claim_offer(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let key = idempotency::key_of(&req, &())?;
    let token = token.into_inner();
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let db = state.db.clone();
    let outcome = idempotency::guarded(&state, key, |key| {
        run(&db, move |conn| {
            let finish = idempotency::answer_with(key, BookingView::of);
            super::claim(conn, &issuer, &token, now, finish)
        })
    })
    .await?;
    let booked = match outcome {
        Guarded::Replayed(answer) => return Ok(answer),
        Guarded::Done(booked) => booked,
    };
    tracing::info!(reference = %booked.booking.reference, "offer claimed");
    Ok(HttpResponse::Created().json(BookingCreated {
        manage_token: booked.manage_token,
        booking: BookingView::new(&booked.booking, &booked.event),
    }))
}

/// A session's waitlist in order: offered first, then waiting, then those who left it.
#[utoipa::path(
    tag = "organiser",
    params(("id" = i64, Path, description = "The session's id")),
    security(("organiser_token" = [])),
    responses((status = 200, description = "The waitlist", body = [WaitlistEntryView]), AuthProblems, NotFound, Unavailable)
)]
#[get("/admin/sessions/{id}/waitlist")]
async fn session_waitlist(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<web::Json<Vec<WaitlistEntryView>>, Problem> {
    auth.require(Role::Admin)?;
    let id = id.into_inner();
    let entries = run(&state.db, move |conn| {
        crate::sessions::find(conn, id)?;
        super::for_session(conn, id).map_err(crate::sessions::SessionError::from)
    })
    .await?;
    Ok(web::Json(
        entries.iter().map(WaitlistEntryView::from).collect(),
    ))
}

/// Moves a waiting person to the front of the queue, optionally adding a seat so they are
/// offered one now.
#[utoipa::path(
    tag = "organiser",
    request_body(content = Option<PromoteInput>, description = "Leave out to move them to the front only"),
    params(
        ("id" = i64, Path, description = "The session's id"),
        ("entry_id" = i64, Path, description = "The waitlist entry's id"),
    ),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The entry after promotion", body = WaitlistView),
        BodyProblems, AuthProblems, NotFound,
        (status = 409, description = "`conflict`: the person is not waiting", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable
    )
)]
#[post("/admin/sessions/{id}/waitlist/{entry_id}/promote")]
async fn promote_entry(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
    input: OptionalJson<PromoteInput>,
) -> Result<web::Json<WaitlistView>, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let (session_id, entry_id) = path.into_inner();
    let add_seat = input.0.unwrap_or_default().add_seat;
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let by = Some(organiser.id);
    let view = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, WaitlistError> {
            let entry = super::promote(conn, &issuer, session_id, entry_id, add_seat, now)?;
            let view = WaitlistView::from(&entry);
            let record = Record::new("waitlist.promote", format!("waitlist:{entry_id}"))
                .before(&serde_json::json!({ "session_id": session_id, "add_seat": add_seat }))
                .after(&view);
            Ok((view, record))
        })
    })
    .await?;
    Ok(web::Json(view))
}
