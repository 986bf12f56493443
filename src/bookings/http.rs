//! `/api/v1/events/{slug}/bookings` and `/api/v1/bookings/{manage_token}` for attendees;
//! bookings and attendee lists for organisers.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{
    Attendee, Booked, Booking, BookingError, BookingRequest, BookingStatus, PaymentStatus,
    SeatState, SessionAttendee,
};
use crate::api::auth::Authenticated;
use crate::api::idempotency::{self, Guarded};
use crate::api::json::{ApiJson, DeferredJson, OptionalJson};
use crate::api::problem::responses::{AuthProblems, BodyProblems, NotFound, Unavailable};
use crate::api::{local_time, run, AppState, Kind, Problem};
use crate::audit::{self, Record};
use crate::events::Event;
use crate::organisers::Role;
use crate::sessions::http::SessionView;
use crate::validation::{optional_text, required_text, Email, Fields, ValidationError};

pub fn public_routes(cfg: &mut ServiceConfig) {
    cfg.service(create_booking)
        .service(get_booking)
        .service(cancel_booking);
}

pub fn admin_routes(cfg: &mut ServiceConfig) {
    cfg.service(event_bookings)
        .service(session_attendees)
        .service(admin_cancel)
        .service(admin_move);
}

/// Which seat to move where.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveInput {
    pub from_session_id: i64,
    pub to_session_id: i64,
    /// A confirmed seat keeps the price it was paid or invoiced at. Moving it to a dearer
    /// session is refused (`validation`, on this field) unless this is `true`: the attendee
    /// then does not pay the difference.
    #[serde(default)]
    pub waive_difference: bool,
}

/// Cancels seats of a booking for the attendee (some, or all without a body); freed seats go
/// to the waitlist first and the attendee is told.
#[utoipa::path(
    tag = "organiser",
    request_body(content = Option<CancelInput>, description = "Leave out to cancel every seat"),
    params(("reference" = String, Path, description = "The booking's reference, e.g. PMO-7K3F9Q")),
    security(("organiser_token" = [])),
    responses((status = 200, description = "The booking after cancelling", body = BookingView), BodyProblems, AuthProblems, NotFound, Unavailable)
)]
#[post("/admin/bookings/{reference}/cancel")]
async fn admin_cancel(
    state: web::Data<AppState>,
    auth: Authenticated,
    reference: web::Path<String>,
    input: OptionalJson<CancelInput>,
) -> Result<web::Json<BookingView>, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let reference = reference.into_inner();
    let session_ids = input.0.and_then(|i| i.session_ids);
    let asked = serde_json::json!({ "session_ids": session_ids });
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let by = Some(organiser.id);
    let (event, booking) = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, BookingError> {
            let (event, booking) =
                super::cancel_by_reference(conn, &reference, session_ids.as_deref(), &issuer, now)?;
            let record = Record::new("booking.cancel", format!("booking:{}", booking.reference))
                .before(&asked)
                .after(&BookingView::new(&booking, &event));
            Ok(((event, booking), record))
        })
    })
    .await?;
    tracing::info!(reference = %booking.reference, "seats cancelled by an organiser");
    crate::payments::http::send_refunds_soon(&state);
    Ok(web::Json(BookingView::new(&booking, &event)))
}

/// Moves an attendee from one session to another, atomically: if the new seat cannot be had
/// (full, clash, cancelled) the old one is kept. A held seat takes the new session's price; a
/// confirmed one keeps the price it was paid or invoiced at, and goes to a dearer session only
/// with `waive_difference`.
#[utoipa::path(
    tag = "organiser",
    request_body = MoveInput,
    params(("reference" = String, Path, description = "The booking's reference, e.g. PMO-7K3F9Q")),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The booking after the move", body = BookingView),
        BodyProblems, AuthProblems, NotFound,
        (status = 409, description = "`session-full`, `already-booked`, `timetable-clash`, `session-cancelled` or `session-started`; nothing changed", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable
    )
)]
#[post("/admin/bookings/{reference}/move")]
async fn admin_move(
    state: web::Data<AppState>,
    auth: Authenticated,
    reference: web::Path<String>,
    input: DeferredJson<MoveInput>,
) -> Result<web::Json<BookingView>, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let input = input.read().await?;
    let reference = reference.into_inner();
    let asked = serde_json::json!({ "session_id": input.from_session_id });
    let moved = if input.waive_difference {
        serde_json::json!({ "session_id": input.to_session_id, "waive_difference": true })
    } else {
        serde_json::json!({ "session_id": input.to_session_id })
    };
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let by = Some(organiser.id);
    let (event, booking) = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, BookingError> {
            let (event, booking) = super::move_seat(
                conn,
                &reference,
                input.from_session_id,
                input.to_session_id,
                input.waive_difference,
                &issuer,
                now,
            )?;
            let record = Record::new("booking.move", format!("booking:{}", booking.reference))
                .before(&asked)
                .after(&moved);
            Ok(((event, booking), record))
        })
    })
    .await?;
    tracing::info!(reference = %booking.reference, "seat moved by an organiser");
    Ok(web::Json(BookingView::new(&booking, &event)))
}

/// Who is booking.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttendeeInput {
    #[schema(example = "Ada Lovelace", min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(example = "ada@example.org", format = Email, max_length = 254)]
    pub email: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub organisation: Option<String>,
}

/// A booking request: one attendee, one or more sessions of the event.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingInput {
    pub attendee: AttendeeInput,
    #[schema(min_items = 1, max_items = 20)]
    pub session_ids: Vec<i64>,
    /// Pay by invoice (events that take invoices): the places are confirmed at once and the
    /// invoice, numbered in this booking's transaction, is emailed as a PDF.
    #[serde(default)]
    pub invoice: Option<crate::payments::http::InvoiceInput>,
}

impl TryFrom<BookingInput> for BookingRequest {
    type Error = ValidationError;

    fn try_from(input: BookingInput) -> Result<Self, Self::Error> {
        let mut f = Fields::new();
        let name = f.check("attendee.name", required_text(&input.attendee.name, 200));
        let email = f.check("attendee.email", Email::parse(&input.attendee.email));
        let organisation = f.check(
            "attendee.organisation",
            optional_text(input.attendee.organisation.as_deref(), 200),
        );
        let attendee = match (name, email, organisation) {
            (Some(name), Some(email), Some(organisation)) => Some(Attendee {
                name,
                email,
                organisation,
            }),
            _ => None,
        };
        let buyer = input.invoice.as_ref().map(|i| {
            crate::payments::invoices::Buyer::parse(
                &i.company,
                &i.billing_address,
                i.vat_number.as_deref(),
                i.po_number.as_deref(),
            )
        });
        if let Some(Err(e)) = &buyer {
            for err in &e.0 {
                f.add(&err.field, err.message.clone());
            }
        }
        let buyer = buyer.and_then(Result::ok);
        let request = attendee
            .map(|a| BookingRequest::new(a, &input.session_ids).map(|r| r.paid_by_invoice(buyer)));
        if let Some(Err(e)) = &request {
            for err in &e.0 {
                f.add(&err.field, err.message.clone());
            }
        }
        f.finish()?;
        match request {
            Some(Ok(request)) => Ok(request),
            _ => Err(ValidationError::single("body", "is not valid")),
        }
    }
}

/// Which seats to cancel; leave it out (or send no body) to cancel the whole booking.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    #[serde(default)]
    pub session_ids: Option<Vec<i64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttendeeView {
    pub name: String,
    pub email: String,
    pub organisation: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeatView {
    pub session_id: i64,
    pub title: String,
    pub room: Option<String>,
    pub starts_at: DateTime<FixedOffset>,
    pub ends_at: DateTime<FixedOffset>,
    pub state: SeatState,
    pub price_minor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventRef {
    pub slug: String,
    pub name: String,
}

/// A booking as the attendee (with the manage token) or an organiser sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    /// Human reference, e.g. `PMO-7K3F9Q`.
    pub reference: String,
    pub status: BookingStatus,
    pub payment_status: PaymentStatus,
    /// Amount due for the active seats, in minor units.
    pub total_minor: i64,
    pub currency: String,
    /// Received for the booking, in minor units.
    pub paid_minor: i64,
    /// Given back, in minor units.
    pub refunded_minor: i64,
    pub event: EventRef,
    pub attendee: AttendeeView,
    pub seats: Vec<SeatView>,
    pub created_at: DateTime<Utc>,
    /// For a held booking: the seats go back unless it is paid by then.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub hold_expires_at: Option<DateTime<FixedOffset>>,
}

impl BookingView {
    /// A booking just made, as its answer shows it (without the manage token).
    pub fn of(booked: &Booked) -> Self {
        Self::new(&booked.booking, &booked.event)
    }

    pub fn new(booking: &Booking, event: &Event) -> Self {
        Self {
            reference: booking.reference.clone(),
            hold_expires_at: booking
                .hold_expires_at
                .map(|t| local_time(t, event.time_zone)),
            status: booking.status,
            payment_status: booking.payment_status,
            total_minor: booking.total_minor,
            currency: booking.currency.clone(),
            paid_minor: booking.paid_minor,
            refunded_minor: booking.refunded_minor,
            event: EventRef {
                slug: event.slug.clone(),
                name: event.name.clone(),
            },
            attendee: AttendeeView {
                name: booking.attendee_name.clone(),
                email: booking.attendee_email.clone(),
                organisation: booking.attendee_organisation.clone(),
            },
            seats: booking
                .seats
                .iter()
                .map(|s| SeatView {
                    session_id: s.session_id,
                    title: s.title.clone(),
                    room: s.room.clone(),
                    starts_at: local_time(s.starts_at, event.time_zone),
                    ends_at: local_time(s.ends_at, event.time_zone),
                    state: s.state,
                    price_minor: s.price_minor,
                })
                .collect(),
            created_at: booking.created_at,
        }
    }
}

/// A booking just made. `manage_token` is shown here only: it is the key to the booking.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingCreated {
    pub manage_token: String,
    #[serde(flatten)]
    pub booking: BookingView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionAttendeeView {
    pub reference: String,
    pub name: String,
    pub email: String,
    pub organisation: Option<String>,
    pub state: SeatState,
    pub booked_at: DateTime<Utc>,
}

impl From<SessionAttendee> for SessionAttendeeView {
    fn from(a: SessionAttendee) -> Self {
        Self {
            reference: a.reference,
            name: a.name,
            email: a.email,
            organisation: a.organisation,
            state: a.state,
            booked_at: a.booked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttendeeList {
    pub session: SessionView,
    pub attendees: Vec<SessionAttendeeView>,
}

impl From<BookingError> for Problem {
    fn from(err: BookingError) -> Self {
        match err {
            BookingError::Event(e) => e.into(),
            BookingError::RegistrationClosed => Problem::new(
                Kind::RegistrationClosed,
                "Registration for this event is not open right now",
            ),
            BookingError::Invalid(v) => v.into(),
            BookingError::SessionCancelled { id, title } => {
                Problem::new(Kind::SessionCancelled, format!("\"{title}\" is cancelled"))
                    .with_session(id, &title)
            }
            BookingError::SessionStarted { id, title } => Problem::new(
                Kind::SessionStarted,
                format!("\"{title}\" has already started"),
            )
            .with_session(id, &title),
            BookingError::SessionFull {
                id,
                title,
                waitlist,
            } => match waitlist {
                Some(path) => Problem::new(
                    Kind::SessionFull,
                    format!("\"{title}\" is full; nothing was booked. Its waitlist is open: join it to be offered the next free seat"),
                )
                .with_session(id, &title)
                .with_waitlist(path),
                None => Problem::new(
                    Kind::SessionFull,
                    format!("\"{title}\" is full; nothing was booked"),
                )
                .with_session(id, &title),
            },
            BookingError::AlreadyBooked {
                session: (id, title),
            } => Problem::new(
                Kind::AlreadyBooked,
                format!("This email address already has a seat in \"{title}\"; nothing was booked"),
            )
            .with_session(id, &title),
            BookingError::TimetableClash { session, other } => Problem::new(
                Kind::TimetableClash,
                format!(
                    "\"{}\" overlaps \"{}\" in time; nothing was booked",
                    session.1, other.1
                ),
            )
            .with_session(session.0, &session.1)
            .with_other_session(other.0, &other.1),
            BookingError::NotFound => Problem::not_found("The booking"),
            e @ BookingError::ReferenceCollision => Problem::internal(&e),
            e @ BookingError::NotHeld { .. } => Problem::new(Kind::Conflict, e.to_string()),
            e @ BookingError::InvoicesNotOffered => Problem::new(Kind::NotPayable, e.to_string()),
            BookingError::ProgrammeChanged => Problem::new(
                Kind::Conflict,
                "The programme changed while this booking was made; nothing was booked, please try again",
            ),
            BookingError::Session(e) => e.into(),
            BookingError::Db(e) => e.into(),
        }
    }
}

/// Books one or more sessions for one attendee: all of them, or none.
#[utoipa::path(
    tag = "bookings",
    request_body = BookingInput,
    params(
        ("slug" = String, Path, description = "The event's slug"),
        ("Idempotency-Key" = Option<String>, Header, description = "Any unique string (1 to 255 visible ASCII characters): a retry with the same key and body gets the first answer and books nothing more, for 24 hours"),
    ),
    responses(
        (status = 201, description = "Booked; keep `manage_token`, it is not shown again", body = BookingCreated),
        BodyProblems, NotFound,
        (status = 409, description = "`session-full`, `already-booked`, `timetable-clash`, `registration-closed`, `session-cancelled`, `session-started`, or `conflict` when the programme kept changing during the booking; nothing was booked", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable,
    )
)]
#[post("/events/{slug}/bookings")]
async fn create_booking(
    state: web::Data<AppState>,
    req: HttpRequest,
    slug: web::Path<String>,
    input: ApiJson<BookingInput>,
) -> Result<HttpResponse, Problem> {
    let key = idempotency::key_of(&req, &input.0)?;
    let request = BookingRequest::try_from(input.0)?;
    let slug = slug.into_inner();
    let issuer = state.issuer.clone();
    let programmes = state.programmes.clone();
    let now = state.clock.now();
    let db = state.db.clone();
    let outcome = idempotency::guarded(&state, key, |key| {
        run(&db, move |conn| {
            let finish = idempotency::answer_with(key, BookingView::of);
            super::book(conn, &programmes, &slug, &request, &issuer, now, finish)
        })
    })
    .await?;
    let booked = match outcome {
        Guarded::Replayed(answer) => return Ok(answer),
        Guarded::Done(booked) => booked,
    };
    tracing::info!(reference = %booked.booking.reference, seats = booked.booking.seats.len(), "booked");
    Ok(HttpResponse::Created().json(BookingCreated {
        booking: BookingView::of(&booked),
        manage_token: booked.manage_token,
    }))
}

/// The booking behind a manage token.
#[utoipa::path(
    tag = "bookings",
    params(("manage_token" = String, Path, description = "The secret returned when booking")),
    responses((status = 200, description = "The booking", body = BookingView), NotFound, Unavailable)
)]
#[get("/bookings/{manage_token}")]
async fn get_booking(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<web::Json<BookingView>, Problem> {
    let token = token.into_inner();
    let (event, booking) = run(&state.db, move |conn| super::find_by_token(conn, &token)).await?;
    Ok(web::Json(BookingView::new(&booking, &event)))
}

/// Cancels some seats (`session_ids`) or the whole booking (no body); a freed seat goes to the
/// session's waitlist first, then back on sale.
#[utoipa::path(
    tag = "bookings",
    request_body(content = Option<CancelInput>, description = "Leave out to cancel every seat"),
    params(("manage_token" = String, Path, description = "The secret returned when booking")),
    responses((status = 200, description = "The booking after cancelling", body = BookingView), BodyProblems, NotFound, Unavailable)
)]
#[post("/bookings/{manage_token}/cancel")]
async fn cancel_booking(
    state: web::Data<AppState>,
    token: web::Path<String>,
    input: OptionalJson<CancelInput>,
) -> Result<web::Json<BookingView>, Problem> {
    let token = token.into_inner();
    let session_ids = input.0.and_then(|i| i.session_ids);
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let (event, booking) = run(&state.db, move |conn| {
        super::cancel(conn, &token, session_ids.as_deref(), &issuer, now)
    })
    .await?;
    tracing::info!(reference = %booking.reference, "booking cancelled");
    crate::payments::http::send_refunds_soon(&state);
    Ok(web::Json(BookingView::new(&booking, &event)))
}

/// Every booking of an event, newest first.
#[utoipa::path(
    tag = "organiser",
    params(("slug" = String, Path, description = "The event's slug")),
    security(("organiser_token" = [])),
    responses((status = 200, description = "Bookings", body = [BookingView]), AuthProblems, NotFound, Unavailable)
)]
#[get("/admin/events/{slug}/bookings")]
async fn event_bookings(
    state: web::Data<AppState>,
    auth: Authenticated,
    slug: web::Path<String>,
) -> Result<web::Json<Vec<BookingView>>, Problem> {
    auth.require(Role::Admin)?;
    let slug = slug.into_inner();
    let (event, bookings) = run(&state.db, move |conn| super::for_event(conn, &slug)).await?;
    Ok(web::Json(
        bookings
            .iter()
            .map(|b| BookingView::new(b, &event))
            .collect(),
    ))
}

/// The people holding seats in a session, in booking order.
#[utoipa::path(
    tag = "organiser",
    params(("id" = i64, Path, description = "The session's id")),
    security(("organiser_token" = [])),
    responses((status = 200, description = "Attendees", body = AttendeeList), AuthProblems, NotFound, Unavailable)
)]
#[get("/admin/sessions/{id}/attendees")]
async fn session_attendees(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<web::Json<AttendeeList>, Problem> {
    auth.require(Role::Admin)?;
    let id = id.into_inner();
    let (event, session, attendees) =
        run(&state.db, move |conn| super::attendees(conn, id)).await?;
    Ok(web::Json(AttendeeList {
        session: SessionView::new(&session, &event),
        attendees: attendees
            .into_iter()
            .map(SessionAttendeeView::from)
            .collect(),
    }))
}
