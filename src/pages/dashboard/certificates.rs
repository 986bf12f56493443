//! Certificates of attendance for admins: a booking's certificate page (the sessions attended
//! with their CPD hours, or why there is no certificate yet), the PDF to download, and emailing
//! it to the attendee.

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::{Admin, AdminPost, Me, PostedBy};
use crate::api::{run, AppState, Problem};
use crate::audit::{self, Record};
use crate::certificates::{self, Certificate, CertificateError};
use crate::mail::compose;
use crate::pages::{csrf, html_page, redirect, FormData, PageError};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route(
        "/organiser/bookings/{reference}/certificate",
        crate::pages::get().to(page),
    )
    .route(
        "/organiser/bookings/{reference}/certificate",
        web::post().to(email),
    )
    .route(
        "/organiser/bookings/{reference}/certificate.pdf",
        crate::pages::get().to(download),
    );
}

/// Why there is no certificate, as the page says it.
fn refusal(e: &CertificateError, event_zone: Option<chrono_tz::Tz>) -> Option<String> {
    match e {
        CertificateError::EventNotOver { first_ends_at } => Some(match (first_ends_at, event_zone) {
            (Some(at), Some(zone)) => format!(
                "There is no certificate before the event: it can be made once the first session has ended, at {}.",
                compose::moment(*at, zone)
            ),
            _ => "There is no certificate before the event: it can be made once the first session has ended.".to_owned(),
        }),
        CertificateError::NeverCheckedIn => Some(
            "There is no certificate: this person was not checked in to any session. Check them in at the door page of a session they attended first.".to_owned(),
        ),
        CertificateError::BookingNotFound(_) | CertificateError::Db(_) => None,
    }
}

/// The certificate of `reference` at the server's time; or, when there is none yet, why not
/// with what there is so far; or the page error to show instead (404 for no such booking).
async fn certificate(
    state: &AppState,
    reference: String,
) -> Result<Result<Certificate, (String, Certificate)>, PageError> {
    let now = state.clock.now();
    run(&state.db, move |conn| -> Result<_, Problem> {
        match certificates::for_booking(conn, &reference, now) {
            Ok(c) => Ok(Some(Ok(c))),
            Err(CertificateError::BookingNotFound(_)) => Ok(None),
            Err(CertificateError::Db(e)) => Err(e.into()),
            Err(e) => {
                let read = certificates::read(conn, &reference).map_err(|e| match e {
                    CertificateError::Db(e) => Problem::from(e),
                    other => Problem::internal(&other),
                })?;
                let why = refusal(&e, Some(read.event.time_zone)).unwrap_or_default();
                Ok(Some(Err((why, read))))
            }
        }
    })
    .await?
    .ok_or_else(PageError::not_found)
}

#[derive(Serialize)]
struct Line {
    title: String,
    day: String,
    time: String,
    hours: String,
}

#[derive(Serialize)]
struct CertificatePage {
    title: String,
    csrf: String,
    me: Me,
    reference: String,
    name: String,
    email: String,
    event: String,
    lines: Vec<Line>,
    total: String,
    refused: Option<String>,
    notice: Option<String>,
}

async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    reference: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let query = FormData(query.into_inner());
    let (c, refused) = match certificate(&state, reference.into_inner()).await? {
        Ok(c) => (c, None),
        Err((why, c)) => (c, Some(why)),
    };
    let notice = (query.get("done") == Some("sent") && refused.is_none())
        .then(|| format!("The certificate is on its way to {}.", c.email));
    let zone = c.event.time_zone;
    let form = csrf::form_token(&req, &state.pages);
    let page = CertificatePage {
        title: format!("Certificate of attendance: {}", c.reference),
        csrf: form.token,
        me: Me::from(&*me),
        reference: c.reference.clone(),
        name: c.name.clone(),
        email: c.email.clone(),
        event: c.event.name.clone(),
        lines: c
            .sessions
            .iter()
            .map(|s| {
                let (day, time) = compose::day_and_time(s.starts_at, s.ends_at, zone);
                Line {
                    title: s.title.clone(),
                    day,
                    time,
                    hours: certificates::hours(s.cpd_tenths),
                }
            })
            .collect(),
        total: certificates::hours(c.total_tenths),
        refused,
        notice,
    };
    let html = state
        .pages
        .render("dashboard/checkin/certificate.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

fn refused_error(why: String, reference: &str) -> PageError {
    PageError::new(StatusCode::CONFLICT, "No certificate yet", why).with_next(
        "Back to the certificate page",
        format!("/organiser/bookings/{reference}/certificate"),
    )
}

async fn download(
    state: web::Data<AppState>,
    _: Admin,
    reference: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let reference = reference.into_inner();
    let c = match certificate(&state, reference.clone()).await? {
        Ok(c) => c,
        Err((why, _)) => return Err(refused_error(why, &reference)),
    };
    let bytes = web::block(move || certificates::pdf(&c))
        .await
        .map_err(|_| PageError::internal())?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\"",
                certificates::file_name(&reference)
            ),
        ))
        .body(bytes))
}

async fn email(
    state: web::Data<AppState>,
    PostedBy { me, .. }: AdminPost,
    reference: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let reference = reference.into_inner();
    let now = state.clock.now();
    let asked = reference.clone();
    let by = Some(me.id);
    let sent = run(&state.db, move |conn| -> Result<_, Problem> {
        let sent = audit::recorded(conn, by, |conn| -> Result<_, CertificateError> {
            let sent = certificates::send(conn, &asked, now)?;
            let record = Record::new("certificate.email", format!("booking:{asked}"))
                .after(&serde_json::json!({ "to": sent.email }));
            Ok(((), record))
        });
        match sent {
            Ok(()) => Ok(Ok(())),
            Err(CertificateError::BookingNotFound(_)) => Ok(Err(None)),
            Err(CertificateError::Db(e)) => Err(e.into()),
            Err(e) => {
                let zone = certificates::read(conn, &asked)
                    .ok()
                    .map(|c| c.event.time_zone);
                Ok(Err(refusal(&e, zone)))
            }
        }
    })
    .await?;
    match sent {
        Ok(()) => {
            tracing::info!(organiser = me.id, booking = %reference, "certificate emailed");
            Ok(redirect(&format!(
                "/organiser/bookings/{reference}/certificate?done=sent"
            )))
        }
        Err(Some(why)) => Err(refused_error(why, &reference)),
        Err(None) => Err(PageError::not_found()),
    }
}
