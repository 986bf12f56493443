//! The JSON API under `/api/v1`: shared request plumbing (state, JSON bodies, running domain calls
//! off the async threads) and the OpenAPI document. Each domain keeps its handlers in its own
//! `http.rs`.

pub mod auth;
pub mod idempotency;
pub mod json;
pub mod problem;
pub mod revision;

use std::sync::Arc;

use actix_web::web;
use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::config::Settings;
use crate::db::{Db, DbConn, DbError};
pub use problem::{Kind, Problem};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    /// Reference prefix and manage-link key for new bookings.
    pub issuer: Arc<crate::bookings::Issuer>,
    /// Programmes as bookings last read them.
    pub programmes: Arc<crate::sessions::ProgrammeCache>,
    /// The time deadlines are measured in (a test clock in tests).
    pub clock: crate::clock::Clock,
    /// Card payments, when set up.
    pub payments: Arc<crate::payments::Payments>,
    /// The attendee pages' templates, form rate limit and keys.
    pub pages: Arc<crate::pages::Pages>,
}

/// Runs one domain call with a pooled connection on the blocking thread pool.
pub async fn run<T, E, F>(db: &Db, f: F) -> Result<T, Problem>
where
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    Problem: From<E>,
{
    let db = db.clone();
    let outcome = web::block(move || -> Result<Result<T, E>, DbError> {
        let mut conn = db.conn()?;
        Ok(f(&mut conn))
    })
    .await??;
    outcome.map_err(Problem::from)
}

/// For optional fields in a PATCH body: absent is `None`, `null` is `Some(None)`.
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A stored UTC time as the event's local time with its offset, as the API shows times.
pub fn local_time(at: DateTime<Utc>, zone: Tz) -> DateTime<FixedOffset> {
    at.with_timezone(&zone).fixed_offset()
}

/// The document's fixed parts; paths are collected from the handlers as they are mounted.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "masterclass",
        description = "Registration and ticketing for PMO Masterclasses. Errors are application/problem+json (RFC 9457).",
        license(name = "MIT OR Apache-2.0")
    ),
    // Filter: the invoice list reads its query by hand (after the role check), so it is not
    // collected from the extractor.
    components(schemas(problem::ProblemDocument, crate::validation::FieldError, crate::payments::invoices::Filter)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "organiser_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
