//! The `Idempotency-Key` header on the routes that create things (bookings, waitlist joins,
//! claims): see [`crate::idempotency`] for how keys are kept.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::problem::{Kind, Problem};
use super::{run, AppState};
use crate::idempotency::{self, Claim, Key, LEASE};
use crate::validation::ValidationError;

pub const HEADER: &str = "Idempotency-Key";

/// The key sent with `req`, if any, bound to its route and to `body` (canonical JSON).
pub fn key_of(req: &HttpRequest, body: &impl Serialize) -> Result<Option<Key>, Problem> {
    let Some(value) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            Problem::from(ValidationError::single(
                HEADER,
                "must be 1 to 255 visible ASCII characters",
            ))
        })?;
    let canonical = serde_json::to_vec(body).map_err(|e| Problem::internal(&e))?;
    let scope = format!("{} {}", req.method(), req.path());
    Ok(Some(Key::new(scope, key.to_owned(), &canonical)))
}

/// Claims the key, waiting while another request holds it: `None` means go ahead (and settle
/// the key afterwards), `Some` is the first request's answer to send again.
pub async fn begin(state: &AppState, key: &mut Key) -> Result<Option<HttpResponse>, Problem> {
    let give_up = Instant::now() + LEASE.to_std().unwrap_or(Duration::from_secs(60));
    loop {
        let now = state.clock.now();
        let claimed = {
            let key = key.clone();
            run(&state.db, move |conn| idempotency::claim(conn, &key, now)).await?
        };
        match claimed {
            Claim::Fresh { lease } => {
                key.lease = Some(lease);
                return Ok(None);
            }
            Claim::Answered { status, body } => return Ok(Some(replay(state, status, &body))),
            Claim::Reused => {
                return Err(Problem::new(
                    Kind::IdempotencyKeyReused,
                    "This Idempotency-Key was used with a different request; use a new key for a new request",
                ))
            }
            Claim::Running if Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Claim::Running => {
                return Err(Problem::new(
                    Kind::Conflict,
                    "A request with this Idempotency-Key is still being processed; try again shortly",
                ))
            }
        }
    }
}

/// After a request with a key failed: a refusal (4xx) is the answer to keep; a failure of ours
/// (5xx) frees the key so that a retry does the work.
pub async fn settle_failure(state: &AppState, key: Option<Key>, problem: &Problem) {
    let Some(key) = key else {
        return;
    };
    let status = problem.status();
    let body = serde_json::to_string(&problem.document()).unwrap_or_default();
    let outcome = run(&state.db, move |conn| {
        if status.is_client_error() {
            idempotency::complete(conn, &key, status.as_u16(), &body)
        } else {
            idempotency::release(conn, &key)
        }
    })
    .await;
    if let Err(e) = outcome {
        tracing::warn!(error = ?e, "could not record the answer to an idempotent request");
    }
}

/// The kept answer, as first sent. A body with a `reference` gets its manage token back: it is
/// derived again, never stored.
fn replay(state: &AppState, status: u16, body: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = HttpResponse::build(status);
    builder.insert_header(("Idempotent-Replayed", "true"));
    if !status.is_success() {
        return builder
            .content_type("application/problem+json")
            .body(body.to_owned());
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut fields)) => {
            if let Some(reference) = fields.get("reference").and_then(|r| r.as_str()) {
                let token = state.issuer.key.manage_token(reference);
                fields.insert("manage_token".to_owned(), serde_json::Value::String(token));
            }
            builder.json(serde_json::Value::Object(fields))
        }
        _ => builder
            .content_type("application/json")
            .body(body.to_owned()),
    }
}
