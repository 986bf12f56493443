//! Check-in routes for organisers with the `checkin` role or above: present a seat at a
//! session's door (a scanned code or a seat picked from the list), undo a mistaken check-in, and
//! the door list with its counts.

use actix_web::{delete, get, post, web, HttpRequest};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{Arrival, CheckinError, DoorEntry, Outcome, Presented, Search};
use crate::api::auth::Authenticated;
use crate::api::json::DeferredJson;
use crate::api::problem::responses::{AuthProblems, BodyProblems, QueryProblems, Unavailable};
use crate::api::{local_time, run, AppState, Kind, Problem};
use crate::audit::{self, Record};
use crate::bookings::SeatState;
use crate::db;
use crate::events::Event;
use crate::mail::compose;
use crate::organisers::Role;
use crate::sessions::Session;
use crate::validation::ValidationError;

pub fn admin_routes(cfg: &mut ServiceConfig) {
    cfg.service(check_in)
        .service(undo_check_in)
        .service(door_list);
}

/// The seat presented at the door: exactly one of `token` and `seat_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(max_properties = 1)]
pub struct CheckinInput {
    /// The check-in code from the attendee's QR code (or typed from it), e.g.
    /// `1234.56.0F3A…` (seat, session, 32 hex digits).
    #[serde(default)]
    #[schema(
        nullable = false,
        min_length = 1,
        example = "1234.56.0123456789ABCDEF0123456789ABCDEF"
    )]
    pub token: Option<String>,
    /// A seat picked from the door list (`GET …/checkin?q=`), for someone without their code.
    #[serde(default)]
    #[schema(nullable = false)]
    pub seat_id: Option<i64>,
}

impl TryFrom<CheckinInput> for Presented {
    type Error = ValidationError;

    fn try_from(input: CheckinInput) -> Result<Self, Self::Error> {
        match (input.token, input.seat_id) {
            (Some(token), None) if token.trim().is_empty() => Err(ValidationError::single(
                "token",
                "must not be empty: scan or type the attendee's check-in code",
            )),
            (Some(token), None) => Ok(Presented::Code(token)),
            (None, Some(seat_id)) => Ok(Presented::Seat(seat_id)),
            (Some(_), Some(_)) => Err(ValidationError::single(
                "body",
                "send either token or seat_id, not both",
            )),
            (None, None) => Err(ValidationError::single(
                "body",
                "send the check-in code as token, or the seat_id picked from the door list",
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// Let them in: the seat is now marked as attended.
    CheckedIn,
    /// Checked in before: `attendee.checked_in_at` and `attendee.checked_in_by` say when and by
    /// whom.
    AlreadyCheckedIn,
    /// The seat is for another session, named in `other_session`.
    OtherSession,
    /// The seat was cancelled.
    Cancelled,
    /// The seat is held awaiting payment, or was released unpaid (`attendee.state` says which).
    NotConfirmed,
}

/// The organiser who checked someone in.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganiserRef {
    pub id: i64,
    pub name: String,
}

/// A seat as the door sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoorEntryView {
    pub seat_id: i64,
    /// The booking's reference, e.g. `PMO-7K3F9Q`.
    pub reference: String,
    pub name: String,
    pub email: String,
    pub organisation: Option<String>,
    pub state: SeatState,
    /// When they were checked in, in the event's time zone; `null` while not checked in.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_in_at: Option<DateTime<FixedOffset>>,
    /// Who checked them in; `null` while not checked in.
    pub checked_in_by: Option<OrganiserRef>,
}

impl DoorEntryView {
    fn new(entry: &DoorEntry, event: &Event) -> Self {
        Self {
            seat_id: entry.seat_id,
            reference: entry.reference.clone(),
            name: entry.name.clone(),
            email: entry.email.clone(),
            organisation: entry.organisation.clone(),
            state: entry.state,
            checked_in_at: entry.checked_in_at.map(|t| local_time(t, event.time_zone)),
            checked_in_by: entry.checked_in_by.as_ref().map(|by| OrganiserRef {
                id: by.id,
                name: by.name.clone(),
            }),
        }
    }
}

/// The session at whose door people are checked in.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoorSessionView {
    pub id: i64,
    pub title: String,
    pub room: Option<String>,
    pub starts_at: DateTime<FixedOffset>,
    pub ends_at: DateTime<FixedOffset>,
}

impl DoorSessionView {
    fn new(session: &Session, event: &Event) -> Self {
        Self {
            id: session.id,
            title: session.title.clone(),
            room: session.room.clone(),
            starts_at: local_time(session.starts_at, event.time_zone),
            ends_at: local_time(session.ends_at, event.time_zone),
        }
    }
}

/// Another session, named.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionRef {
    pub id: i64,
    pub title: String,
}

/// What presenting a seat came to. Every refusal is a 200 with its outcome: the code was read
/// and the seat found, the person just cannot go in (an unknown code is a 404).
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckinAnswer {
    pub outcome: OutcomeKind,
    /// What to tell the person at the door, in a sentence.
    pub message: String,
    pub attendee: DoorEntryView,
    /// The session being checked into.
    pub session: DoorSessionView,
    /// For `other_session`: the session the seat is for; otherwise `null`.
    pub other_session: Option<SessionRef>,
}

impl CheckinAnswer {
    fn new(arrival: &Arrival) -> Self {
        let entry = &arrival.entry;
        let title = &arrival.session.title;
        let name = &entry.name;
        let (outcome, message, other_session) = match &arrival.outcome {
            Outcome::CheckedIn => (
                OutcomeKind::CheckedIn,
                format!("{name} is checked in to \"{title}\"."),
                None,
            ),
            Outcome::AlreadyCheckedIn => {
                let at = entry
                    .checked_in_at
                    .map(|t| format!(" at {}", compose::moment(t, arrival.event.time_zone)))
                    .unwrap_or_default();
                let by = entry
                    .checked_in_by
                    .as_ref()
                    .map(|by| format!(" by {}", by.name))
                    .unwrap_or_default();
                (
                    OutcomeKind::AlreadyCheckedIn,
                    format!("{name} was already checked in to \"{title}\"{at}{by}."),
                    None,
                )
            }
            Outcome::OtherSession { id, title: other } => (
                OutcomeKind::OtherSession,
                format!("{name}'s place is in \"{other}\", not \"{title}\"; not checked in."),
                Some(SessionRef {
                    id: *id,
                    title: other.clone(),
                }),
            ),
            Outcome::Cancelled => (
                OutcomeKind::Cancelled,
                format!("{name}'s place in \"{title}\" was cancelled; not checked in."),
                None,
            ),
            Outcome::NotConfirmed => (
                OutcomeKind::NotConfirmed,
                if entry.state == SeatState::Expired {
                    format!("{name}'s place in \"{title}\" was released because it was not paid for in time; not checked in.")
                } else {
                    format!("{name}'s place in \"{title}\" is held but not paid for yet; not checked in.")
                },
                None,
            ),
        };
        Self {
            outcome,
            message,
            attendee: DoorEntryView::new(entry, &arrival.event),
            session: DoorSessionView::new(&arrival.session, &arrival.event),
            other_session,
        }
    }
}

/// A check-in taken back.
#[derive(Debug, Serialize, ToSchema)]
pub struct UndoAnswer {
    /// Whether the seat was checked in (and now is not); `false` changed nothing.
    pub undone: bool,
    pub attendee: DoorEntryView,
}

/// A session's door list.
#[derive(Debug, Serialize, ToSchema)]
pub struct DoorListView {
    pub session: DoorSessionView,
    /// Confirmed seats in the session (whatever the search).
    pub confirmed: i64,
    /// Of which checked in.
    pub checked_in: i64,
    /// The confirmed seats matching the search, by name.
    pub attendees: Vec<DoorEntryView>,
    /// More seats matched than are listed (200): narrow the search.
    pub more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DoorQuery {
    /// Part of a name, email address or booking reference, in any case; everyone when left out.
    #[param(max_length = 100)]
    pub q: Option<String>,
}

impl From<CheckinError> for Problem {
    fn from(err: CheckinError) -> Self {
        match err {
            CheckinError::UnknownCode => Problem::new(
                Kind::NotFound,
                "This is not a valid check-in code: it may be mistyped, damaged or not one of ours. Find the person by name or booking reference instead.",
            ),
            CheckinError::SeatNotFound(id) => {
                Problem::new(Kind::NotFound, format!("There is no seat {id}"))
            }
            CheckinError::NotInSession { seat, session } => Problem::new(
                Kind::NotFound,
                format!("Seat {seat} is not in session {session}"),
            ),
            CheckinError::Session(e) => e.into(),
            CheckinError::Db(e) => e.into(),
        }
    }
}

/// Checks a person in at a session's door, from their check-in code or a seat picked from the
/// door list. Once only: presenting the same seat again answers `already_checked_in` with when
/// and by whom. A seat that cannot go in (another session's, cancelled, not paid) is answered
/// with its outcome and changes nothing.
#[utoipa::path(
    tag = "organiser",
    request_body = CheckinInput,
    params(("id" = i64, Path, description = "The session's id")),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The outcome: `checked_in`, `already_checked_in`, `other_session`, `cancelled` or `not_confirmed`", body = CheckinAnswer),
        BodyProblems, AuthProblems,
        (status = 404, description = "No such session or seat, or the code is not a valid check-in code (`not-found`); nothing changed", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable
    )
)]
#[post("/admin/sessions/{id}/checkin")]
async fn check_in(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
    input: DeferredJson<CheckinInput>,
) -> Result<web::Json<CheckinAnswer>, Problem> {
    let organiser = auth.require(Role::Checkin)?;
    let presented = Presented::try_from(input.read().await?)?;
    let session_id = id.into_inner();
    let key = state.issuer.key.clone();
    let now = state.clock.now();
    let organiser_id = organiser.id;
    let (seat_id, answer) = run(&state.db, move |conn| {
        audit::recorded(
            conn,
            Some(organiser_id),
            |conn| -> Result<_, CheckinError> {
                let arrival =
                    super::check_in(conn, session_id, &presented, &key, organiser_id, now)?;
                let seat_id = arrival.entry.seat_id;
                let answer = CheckinAnswer::new(&arrival);
                Ok(((seat_id, answer), arrival.audit_record()))
            },
        )
    })
    .await?;
    tracing::info!(
        session = session_id,
        seat = seat_id,
        organiser = organiser_id,
        outcome = ?answer.outcome,
        "presented at the door"
    );
    Ok(web::Json(answer))
}

/// Takes back a check-in made by mistake. A seat that is not checked in is left as it is
/// (`undone: false`).
#[utoipa::path(
    tag = "organiser",
    params(
        ("id" = i64, Path, description = "The session's id"),
        ("seat_id" = i64, Path, description = "The seat's id, from the door list or a check-in answer"),
    ),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The seat, not checked in", body = UndoAnswer),
        AuthProblems,
        (status = 404, description = "No such session, or no such seat in it (`not-found`)", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable
    )
)]
#[delete("/admin/sessions/{id}/checkin/{seat_id}")]
async fn undo_check_in(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(i64, i64)>,
) -> Result<web::Json<UndoAnswer>, Problem> {
    let organiser = auth.require(Role::Checkin)?;
    let (session_id, seat_id) = path.into_inner();
    let by = Some(organiser.id);
    let undone = run(&state.db, move |conn| {
        db::write_transaction(conn, |conn| -> Result<_, CheckinError> {
            let undone = super::undo(conn, session_id, seat_id)?;
            // A seat that was not checked in is left as it was: nothing to record.
            if undone.undone {
                audit::recorded(conn, by, |_| -> Result<_, CheckinError> {
                    let record = Record::new("checkin.undo", format!("seat:{seat_id}"))
                        .before(&serde_json::json!({ "checked_in": true }))
                        .after(&serde_json::json!({ "checked_in": false }));
                    Ok(((), record))
                })?;
            }
            Ok(undone)
        })
    })
    .await?;
    if undone.undone {
        tracing::info!(
            session = session_id,
            seat = seat_id,
            organiser = organiser.id,
            "check-in undone"
        );
    }
    Ok(web::Json(UndoAnswer {
        undone: undone.undone,
        attendee: DoorEntryView::new(&undone.entry, &undone.event),
    }))
}

/// The door list of a session: its confirmed seats matching `q` (part of a name, email address
/// or booking reference; everyone without it), by name, each with its check-in state, and how
/// many are confirmed and checked in.
#[utoipa::path(
    tag = "organiser",
    params(("id" = i64, Path, description = "The session's id"), DoorQuery),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The door list", body = DoorListView),
        AuthProblems, QueryProblems,
        (status = 404, description = "No such session (`not-found`)", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        Unavailable
    )
)]
#[get("/admin/sessions/{id}/checkin")]
async fn door_list(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
    req: HttpRequest,
) -> Result<web::Json<DoorListView>, Problem> {
    auth.require(Role::Checkin)?;
    // Read after the token is checked, so a caller without one hears 401 whatever the query.
    let query = web::Query::<DoorQuery>::from_query(req.query_string())
        .map_err(|e| Problem::from(ValidationError::single("query", e.to_string())))?
        .into_inner();
    let search = Search::parse(query.q.as_deref())?;
    let session_id = id.into_inner();
    let list = run(&state.db, move |conn| {
        super::door_list(conn, session_id, search.as_ref())
    })
    .await?;
    Ok(web::Json(DoorListView {
        session: DoorSessionView::new(&list.session, &list.event),
        confirmed: list.confirmed,
        checked_in: list.checked_in,
        attendees: list
            .entries
            .iter()
            .map(|e| DoorEntryView::new(e, &list.event))
            .collect(),
        more: list.more,
    }))
}
