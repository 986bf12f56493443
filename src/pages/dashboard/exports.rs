//! The exports from the dashboard, with the session cookie: a session's attendees as CSV and its
//! printable sign-in sheet, an event's bookings and invoices as CSV. The files are the same as
//! the API's (`src/exports/http.rs`).

use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;

use super::{Admin, Anyone};
use crate::api::AppState;
use crate::exports::http as files;
use crate::pages::{get, PageError};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route(
        "/organiser/sessions/{id}/attendees.csv",
        get().to(attendees),
    )
    .route(
        "/organiser/sessions/{id}/sign-in-sheet",
        get().to(sign_in_sheet),
    )
    .route("/organiser/events/{slug}/bookings.csv", get().to(bookings))
    .route("/organiser/events/{slug}/invoices.csv", get().to(invoices));
}

/// The session id in the address, read in the handler rather than by the path extractor: a
/// failed extractor would answer before the role check, and a too-small role gets 404, not 403.
fn session_id(raw: &str) -> Result<i64, PageError> {
    raw.parse().map_err(|_| PageError::not_found())
}

async fn attendees(
    state: web::Data<AppState>,
    _: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    Ok(files::attendees_file(&state, session_id(&id)?).await?)
}

async fn sign_in_sheet(
    state: web::Data<AppState>,
    _: Anyone,
    id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    Ok(files::sign_in_sheet_page(&state, session_id(&id)?).await?)
}

async fn bookings(
    state: web::Data<AppState>,
    _: Admin,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    Ok(files::bookings_file(&state, slug.into_inner()).await?)
}

async fn invoices(
    state: web::Data<AppState>,
    _: Admin,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    Ok(files::invoices_file(&state, slug.into_inner()).await?)
}
