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

/// What a request with a possible key came to.
pub enum Guarded<T> {
    /// The first request's answer, to send again as it is.
    Replayed(HttpResponse),
    Done(T),
}

/// Runs `work` for a request that may carry a key: with a key already answered, the kept
/// answer instead; with a fresh one, `work` gets the key it holds (to record its answer in its
/// own transaction, see [`answer_with`]), and a failure is settled (see [`settle_failure`]).
pub async fn guarded<T, F, Fut>(
    state: &AppState,
    mut key: Option<Key>,
    work: F,
) -> Result<Guarded<T>, Problem>
where
    F: FnOnce(Option<Key>) -> Fut,
    Fut: std::future::Future<Output = Result<T, Problem>>,
{
    if let Some(key) = key.as_mut() {
        if let Some(answer) = begin(state, key).await? {
            return Ok(Guarded::Replayed(answer));
        }
    }
    match work(key.clone()).await {
        Ok(done) => Ok(Guarded::Done(done)),
        Err(problem) => {
            settle_failure(state, key, &problem).await;
            Err(problem)
        }
    }
}

/// Records `view(&made)` as the 201 answer to `key`, inside the transaction that made it. The
/// view must leave out the manage token: it is derived again when the answer is repeated.
pub fn answer_with<T: 'static, V: Serialize + 'static>(
    key: Option<Key>,
    view: fn(&T) -> V,
) -> crate::bookings::Finish<T> {
    let key = key?;
    Some(Box::new(move |conn, made| {
        let body = serde_json::to_string(&view(made))
            .map_err(|e| crate::db::DbError::Inconsistent(e.to_string()))?;
        idempotency::complete(conn, &key, 201, &body)
    }))
}

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
async fn begin(state: &AppState, key: &mut Key) -> Result<Option<HttpResponse>, Problem> {
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
async fn settle_failure(state: &AppState, key: Option<Key>, problem: &Problem) {
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
