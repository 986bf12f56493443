//! `/api/v1/admin/emails` (the outbox for organisers) and the agenda as a calendar file.

use actix_web::{get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::outbox::{self, JobState, JobView, OutboxError};
use super::{calendar, compose};
use crate::api::auth::Authenticated;
use crate::api::problem::responses::{AuthProblems, NotFound, Unavailable};
use crate::api::{run, AppState, Kind, Problem};
use crate::audit::{self, Record};
use crate::bookings::{self, BookingError};
use crate::organisers::Role;

pub fn public_routes(cfg: &mut ServiceConfig) {
    cfg.service(agenda_ics);
}

pub fn admin_routes(cfg: &mut ServiceConfig) {
    cfg.service(list_emails).service(retry_email);
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EmailQuery {
    /// Only jobs in this state; all when left out.
    pub state: Option<JobState>,
    /// At most this many, newest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

impl From<OutboxError> for Problem {
    fn from(err: OutboxError) -> Self {
        match err {
            OutboxError::NotFound(id) => {
                Problem::new(Kind::NotFound, format!("There is no email job {id}"))
            }
            OutboxError::Db(e) => e.into(),
        }
    }
}

/// Email jobs: pending ones waiting for delivery, dead ones with their last error, sent ones.
#[utoipa::path(
    tag = "organiser",
    params(EmailQuery),
    security(("organiser_token" = [])),
    responses((status = 200, description = "Email jobs, newest first", body = [JobView]), AuthProblems, Unavailable,
        (status = 422, description = "A query parameter is not valid (`validation`)", body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"))
)]
#[get("/admin/emails")]
async fn list_emails(
    state: web::Data<AppState>,
    auth: Authenticated,
    query: web::Query<EmailQuery>,
) -> Result<web::Json<Vec<JobView>>, Problem> {
    auth.require(Role::Admin)?;
    let EmailQuery {
        state: wanted,
        limit,
    } = query.into_inner();
    let limit = limit.unwrap_or(100).clamp(1, 1000);
    let jobs = run(&state.db, move |conn| outbox::list(conn, wanted, limit)).await?;
    Ok(web::Json(jobs))
}

/// Puts an email job back in line now, with a fresh count of attempts.
#[utoipa::path(
    tag = "organiser",
    params(("id" = i64, Path, description = "The job's id")),
    security(("organiser_token" = [])),
    responses((status = 200, description = "The job, pending again", body = JobView), AuthProblems, NotFound, Unavailable)
)]
#[post("/admin/emails/{id}/retry")]
async fn retry_email(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<web::Json<JobView>, Problem> {
    let organiser = auth.require(Role::Admin)?;
    let id = id.into_inner();
    let by = Some(organiser.id);
    let job = run(&state.db, move |conn| {
        audit::recorded(conn, by, |conn| -> Result<_, OutboxError> {
            let job = outbox::retry(conn, id)?;
            let record = Record::new("email.retry", format!("email:{id}")).after(&job);
            Ok((job, record))
        })
    })
    .await?;
    tracing::info!(job = id, "email job put back in line");
    Ok(web::Json(job))
}

/// The attendee's agenda as a calendar file (RFC 5545): every seat they hold in the event.
#[utoipa::path(
    tag = "bookings",
    params(("manage_token" = String, Path, description = "The secret returned when booking")),
    responses((status = 200, description = "text/calendar", body = String, content_type = "text/calendar"), NotFound, Unavailable)
)]
#[get("/bookings/{manage_token}/agenda.ics")]
async fn agenda_ics(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let token = token.into_inner();
    let domain = state.settings.mail.message_id_domain.clone();
    let calendar = run(&state.db, move |conn| {
        let (event, booking) = bookings::find_by_token(conn, &token)?;
        let seats = compose::agenda(conn, booking.id)?;
        Ok::<_, BookingError>(calendar::calendar(
            &compose::event_mail(&event),
            &seats,
            &domain,
        ))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/calendar; charset=utf-8")
        .insert_header(("content-disposition", "attachment; filename=\"agenda.ics\""))
        .body(calendar))
}
