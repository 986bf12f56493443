//! The organisers' dashboard under `/organiser`: signing in and out, invitations and password
//! resets by emailed link, the team (owners invite colleagues with a role) and API tokens.
//!
//! A signed-in organiser has a session cookie (`mc_session`: HttpOnly, SameSite=Lax, Secure
//! behind HTTPS, for `/organiser` only, expiring with the session); only its hash is stored.
//! Sign-in attempts are limited per client address and per account, and a failed one is logged
//! with the address tried, never the password.

mod account;
mod certificates;
mod checkin;
mod exports;
mod insights;
mod people;
mod people_bookings;
mod people_outbox;
mod programme;

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::web::ServiceConfig;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::{redirect, PageError, Pages};
use crate::api::{run, AppState};
use crate::organisers::{Organiser, Role};

pub const SESSION_COOKIE: &str = "mc_session";
const COOKIE_PATH: &str = "/organiser";

/// Who is signed in, as every dashboard page shows it.
#[derive(Serialize)]
pub struct Me {
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub owner: bool,
    /// May change events, sessions, bookings and payments.
    pub admin: bool,
}

impl From<&Organiser> for Me {
    fn from(o: &Organiser) -> Self {
        Self {
            name: o.name.clone(),
            email: o.email.clone(),
            role: o.role.as_str(),
            owner: o.role == Role::Owner,
            admin: o.role.allows(Role::Admin),
        }
    }
}

pub fn routes(cfg: &mut ServiceConfig) {
    account::routes(cfg);
    programme::routes(cfg);
    checkin::routes(cfg);
    certificates::routes(cfg);
    exports::routes(cfg);
    insights::routes(cfg);
    people::routes(cfg);
}

/// The organiser signed in on `req`, if any.
pub async fn signed_in(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<Organiser>, PageError> {
    let Some(token) = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()) else {
        return Ok(None);
    };
    let now = state.clock.now();
    Ok(run(&state.db, move |conn| {
        crate::organisers::accounts::session(conn, &token, now)
    })
    .await?)
}

/// What a dashboard page needs first: the organiser signed in with at least `role`, or the
/// answer to send instead (the sign-in page for nobody, a 403 page for too small a role).
pub async fn require(
    state: &AppState,
    req: &HttpRequest,
    role: Role,
) -> Result<Result<Organiser, HttpResponse>, PageError> {
    match signed_in(state, req).await? {
        None => {
            let next = req.path();
            Ok(Err(redirect(&format!(
                "/organiser/login?next={}",
                encode(next)
            ))))
        }
        Some(organiser) if organiser.role.allows(role) => Ok(Ok(organiser)),
        Some(_) => Err(PageError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "Not for your role",
            format!(
                "This page needs the {} role or above. Ask an owner if you need it.",
                role.as_str()
            ),
        )
        .with_next("Back to the dashboard", "/organiser")),
    }
}

/// The session cookie for a session that ends at `expires_at`.
fn session_cookie(
    pages: &Pages,
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token)
        .path(COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(pages.secure_cookies)
        .max_age(time::Duration::seconds(
            (expires_at - now).num_seconds().max(0),
        ))
        .finish()
}

/// The cookie that removes the session cookie.
fn ended_cookie(pages: &Pages) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, "")
        .path(COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(pages.secure_cookies)
        .max_age(time::Duration::ZERO)
        .finish()
}

/// Where to go after signing in: a dashboard path only, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with("/organiser")
                && !path.starts_with("//")
                && !path.contains(['\\', '\r', '\n']) =>
        {
            path.to_owned()
        }
        _ => "/organiser".to_owned(),
    }
}

/// `path` as a query value.
fn encode(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_signing_in_only_dashboard_paths_are_followed() {
        assert_eq!(safe_next(Some("/organiser/team")), "/organiser/team");
        assert_eq!(safe_next(Some("https://evil.example/")), "/organiser");
        assert_eq!(safe_next(Some("//evil.example/organiser")), "/organiser");
        assert_eq!(safe_next(Some("/organiser\r\nSet-Cookie: x")), "/organiser");
        assert_eq!(safe_next(None), "/organiser");
        assert_eq!(encode("/organiser/a b?x"), "/organiser/a%20b%3Fx");
    }
}
