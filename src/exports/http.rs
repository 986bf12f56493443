//! `/api/v1/admin/.../*.csv` and the sign-in sheet: exports for organisers, as files to save
//! (CSV) or a page to print (HTML).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{get, web, HttpResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use super::csv::to_csv;
use super::{file_name, ExportError};
use crate::api::auth::Authenticated;
use crate::api::problem::responses::{AuthProblems, NotFound, Unavailable};
use crate::api::{run, AppState, Problem};
use crate::events::Event;
use crate::organisers::Role;

pub fn admin_routes(cfg: &mut ServiceConfig) {
    cfg.service(attendees_csv)
        .service(sign_in_sheet)
        .service(bookings_csv)
        .service(invoices_csv);
}

impl From<ExportError> for Problem {
    fn from(err: ExportError) -> Self {
        match err {
            ExportError::Event(e) => e.into(),
            ExportError::Session(e) => e.into(),
            ExportError::Booking(e) => e.into(),
            ExportError::Db(e) => e.into(),
        }
    }
}

/// The day of the export in the event's time zone, for file names.
fn today(state: &AppState, event: &Event) -> String {
    state
        .clock
        .now()
        .with_timezone(&event.time_zone)
        .format("%Y-%m-%d")
        .to_string()
}

/// A CSV file to save as `name`. Never kept by caches: it lists people.
fn csv_file(body: String, name: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

/// The people holding a seat in a session (held or confirmed), in booking order, as CSV.
///
/// Columns: `reference`, `name`, `email`, `organisation`, `seat_state`, `booked_at` (event's
/// time zone, `YYYY-MM-DD HH:MM`), `payment_status` (the booking's), `checked_in_at`.
#[utoipa::path(
    tag = "organiser",
    params(("id" = i64, Path, description = "The session's id")),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The attendee list: UTF-8 CSV with a byte-order mark, CRLF line ends, a header row",
            body = String, content_type = "text/csv; charset=utf-8",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"<event>-session-<id>-attendees-<date>.csv\""))),
        AuthProblems, NotFound, Unavailable
    )
)]
#[get("/admin/sessions/{id}/attendees.csv")]
async fn attendees_csv(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    auth.require(Role::Admin)?;
    attendees_file(&state, id.into_inner()).await
}

/// The attendee list of session `id` as a CSV file (the API's and the dashboard's).
pub(crate) async fn attendees_file(state: &AppState, id: i64) -> Result<HttpResponse, Problem> {
    let list = run(&state.db, move |conn| super::session_attendees(conn, id)).await?;
    let session = list.session.id.to_string();
    let name = file_name(
        &[
            &list.event.slug,
            "session",
            &session,
            "attendees",
            &today(state, &list.event),
        ],
        "csv",
    );
    Ok(csv_file(to_csv(&list.rows), &name))
}

/// A printable sign-in sheet for a session: its confirmed attendees alphabetically by name, with
/// an empty signature column. For organisers with the check-in role and up.
#[utoipa::path(
    tag = "organiser",
    params(("id" = i64, Path, description = "The session's id")),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The sign-in sheet, an HTML page to print",
            body = String, content_type = "text/html; charset=utf-8"),
        (status = 401, description = "No valid organiser token (`unauthorized`)",
            body = crate::api::problem::ProblemDocument, content_type = "application/problem+json"),
        NotFound, Unavailable
    )
)]
#[get("/admin/sessions/{id}/sign-in-sheet")]
async fn sign_in_sheet(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    auth.require(Role::Checkin)?;
    sign_in_sheet_page(&state, id.into_inner()).await
}

/// The sign-in sheet of session `id` (the API's and the dashboard's).
pub(crate) async fn sign_in_sheet_page(state: &AppState, id: i64) -> Result<HttpResponse, Problem> {
    let sheet = run(&state.db, move |conn| super::sign_in_sheet(conn, id)).await?;
    // Absolute, so a saved copy prints styled too; the policy allows that one stylesheet only.
    let stylesheet = format!(
        "{}{}",
        state.settings.server.public_base_url.trim_end_matches('/'),
        crate::pages::static_url("site.css")
    );
    let policy = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src {stylesheet}; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ))
    .unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        )
    });
    let session = sheet.session.id.to_string();
    let name = file_name(
        &[
            &sheet.event.slug,
            "session",
            &session,
            "sign-in-sheet",
            &today(state, &sheet.event),
        ],
        "html",
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{name}\""),
        ))
        .insert_header((header::CONTENT_SECURITY_POLICY, policy))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(sheet.html(&stylesheet)))
}

/// Every booking of an event with its payment state, oldest first, as CSV.
///
/// Columns: `reference`, `created_at`, `status`, `payment_status`, `name`, `email`,
/// `organisation`, `sessions` (titles joined with `; `, a seat no longer held marked
/// `(cancelled)` or `(expired)`), `total`, `paid`, `refunded` (major units, e.g. `145.00`),
/// `currency`, `invoices` (numbers of invoices and credit notes, joined with `; `).
#[utoipa::path(
    tag = "organiser",
    params(("slug" = String, Path, description = "The event's slug")),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The bookings: UTF-8 CSV with a byte-order mark, CRLF line ends, a header row",
            body = String, content_type = "text/csv; charset=utf-8",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"<event>-bookings-<date>.csv\""))),
        AuthProblems, NotFound, Unavailable
    )
)]
#[get("/admin/events/{slug}/bookings.csv")]
async fn bookings_csv(
    state: web::Data<AppState>,
    auth: Authenticated,
    slug: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    auth.require(Role::Admin)?;
    bookings_file(&state, slug.into_inner()).await
}

/// The bookings of event `slug` as a CSV file (the API's and the dashboard's).
pub(crate) async fn bookings_file(state: &AppState, slug: String) -> Result<HttpResponse, Problem> {
    let list = run(&state.db, move |conn| super::event_bookings(conn, &slug)).await?;
    let name = file_name(
        &[&list.event.slug, "bookings", &today(state, &list.event)],
        "csv",
    );
    Ok(csv_file(to_csv(&list.rows), &name))
}

/// Every invoice and credit note of an event for accounting, in order of issue, as CSV.
///
/// Columns: `number`, `kind` (`invoice` or `credit_note`), `credits` (the invoice a credit note
/// credits), `issued_at`, `due_at`, `state`, `company`, `vat_number`, `po_number`, `net`, `vat`,
/// `gross` (major units; negative for a credit note), `currency`, `booking_reference`.
#[utoipa::path(
    tag = "organiser",
    params(("slug" = String, Path, description = "The event's slug")),
    security(("organiser_token" = [])),
    responses(
        (status = 200, description = "The invoices: UTF-8 CSV with a byte-order mark, CRLF line ends, a header row",
            body = String, content_type = "text/csv; charset=utf-8",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"<event>-invoices-<date>.csv\""))),
        AuthProblems, NotFound, Unavailable
    )
)]
#[get("/admin/events/{slug}/invoices.csv")]
async fn invoices_csv(
    state: web::Data<AppState>,
    auth: Authenticated,
    slug: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    auth.require(Role::Admin)?;
    invoices_file(&state, slug.into_inner()).await
}

/// The invoices of event `slug` as a CSV file (the API's and the dashboard's).
pub(crate) async fn invoices_file(state: &AppState, slug: String) -> Result<HttpResponse, Problem> {
    let list = run(&state.db, move |conn| super::event_invoices(conn, &slug)).await?;
    let name = file_name(
        &[&list.event.slug, "invoices", &today(state, &list.event)],
        "csv",
    );
    Ok(csv_file(to_csv(&list.rows), &name))
}
