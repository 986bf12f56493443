//! The outbox for admins: emails still to be delivered and those that gave up (`dead`), each
//! with its last error, and a retry that puts one back in line.

use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::{Admin, AdminPost, Me, PostedBy};
use crate::api::{run, AppState, Problem};
use crate::audit::{self, Record};
use crate::mail::outbox::{self, JobState, JobView, OutboxError};
use crate::pages::{csrf, html_page, redirect, FormData, PageError};

/// How many jobs of each state the page lists, newest first.
const SHOWN: i64 = 200;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/organiser/outbox", crate::pages::get().to(outbox_page))
        .route("/organiser/outbox/{id}/retry", web::post().to(retry));
}

#[derive(Serialize)]
struct JobLine {
    id: i64,
    template: String,
    recipient: String,
    attempts: i32,
    next_attempt: String,
    last_error: Option<String>,
    created: String,
}

#[derive(Serialize)]
struct OutboxPage {
    title: &'static str,
    csrf: String,
    me: Me,
    pending: Vec<JobLine>,
    dead: Vec<JobLine>,
    notice: Option<&'static str>,
}

fn line(job: JobView) -> JobLine {
    let when = |t: chrono::DateTime<chrono::Utc>| t.format("%-d %b %Y, %H:%M UTC").to_string();
    JobLine {
        id: job.id,
        template: job.template.replace('_', " "),
        recipient: job.recipient,
        attempts: job.attempts,
        next_attempt: when(job.next_attempt_at),
        last_error: job.last_error,
        created: when(job.created_at),
    }
}

async fn outbox_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let notice = match FormData(query.into_inner()).get("done") {
        Some("retried") => Some("The email is back in line and will be sent in a moment."),
        _ => None,
    };
    let (pending, dead) = run(&state.db, |conn| -> Result<_, Problem> {
        Ok((
            outbox::list(conn, Some(JobState::Pending), SHOWN)?,
            outbox::list(conn, Some(JobState::Dead), SHOWN)?,
        ))
    })
    .await?;
    let form = csrf::form_token(&req, &state.pages);
    let page = OutboxPage {
        title: "Outbox",
        csrf: form.token,
        me: Me::from(&*me),
        pending: pending.into_iter().map(line).collect(),
        dead: dead.into_iter().map(line).collect(),
        notice,
    };
    let html = state.pages.render("dashboard/people/outbox.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

async fn retry(
    state: web::Data<AppState>,
    PostedBy { me, .. }: AdminPost,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id: i64 = path.parse().map_err(|_| PageError::not_found())?;
    let by = Some(me.id);
    let outcome = run(&state.db, move |conn| -> Result<_, Problem> {
        let retried = audit::recorded(conn, by, |conn| -> Result<_, OutboxError> {
            outbox::retry(conn, id)?;
            let record = Record::new("email.retry", format!("email:{id}"))
                .after(&serde_json::json!({ "state": "pending" }));
            Ok(((), record))
        });
        match retried {
            Ok(()) => Ok(true),
            Err(OutboxError::NotFound(_)) => Ok(false),
            Err(OutboxError::Db(e)) => Err(e.into()),
        }
    })
    .await?;
    if !outcome {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "No such email",
            "There is no email with this number in the outbox.",
        )
        .with_next("Back to the outbox", "/organiser/outbox"));
    }
    tracing::info!(job = id, by = me.id, "email job put back in line");
    Ok(redirect("/organiser/outbox?done=retried"))
}
