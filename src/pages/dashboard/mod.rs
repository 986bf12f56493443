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

use std::marker::PhantomData;
use std::ops::Deref;

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::web::{self, ServiceConfig};
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use super::{csrf, FormData, PageError, Pages};
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

/// The roles a dashboard handler may ask for, as types for [`SignedIn`].
pub mod needs {
    use crate::organisers::Role;

    /// A role a handler needs, at least.
    pub trait Needs {
        const ROLE: Role;
    }

    /// Any organiser: the `checkin` role is the smallest.
    pub struct AnyRole;
    pub struct AdminRole;
    pub struct OwnerRole;

    impl Needs for AnyRole {
        const ROLE: Role = Role::Checkin;
    }
    impl Needs for AdminRole {
        const ROLE: Role = Role::Admin;
    }
    impl Needs for OwnerRole {
        const ROLE: Role = Role::Owner;
    }
}

/// The organiser signed in with at least the role `R` needs, from the session cookie. A handler
/// that takes one runs for such an organiser only: nobody signed in is sent to the sign-in page
/// (and back here after), a smaller role gets a 403 page saying which role it takes.
pub struct SignedIn<R>(Organiser, PhantomData<R>);

/// Any organiser signed in.
pub type Anyone = SignedIn<needs::AnyRole>;
/// An admin or an owner.
pub type Admin = SignedIn<needs::AdminRole>;
/// An owner.
pub type Owner = SignedIn<needs::OwnerRole>;

impl<R> From<&SignedIn<R>> for Me {
    fn from(signed: &SignedIn<R>) -> Self {
        Me::from(&signed.0)
    }
}

impl<R> Deref for SignedIn<R> {
    type Target = Organiser;

    fn deref(&self) -> &Organiser {
        &self.0
    }
}

impl<R: needs::Needs + 'static> FromRequest for SignedIn<R> {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(PageError::internal)?
                .clone();
            match signed_in(&state, &req).await? {
                None => Err(PageError::see_other(format!(
                    "/organiser/login?next={}",
                    encode(req.path())
                ))),
                Some(organiser) if organiser.role.allows(R::ROLE) => {
                    Ok(SignedIn(organiser, PhantomData))
                }
                Some(_) => Err(not_for_your_role(R::ROLE)),
            }
        })
    }
}

/// A posted form whose CSRF token was checked: without a valid one the handler does not run and
/// nothing changes. For the forms of people not signed in yet; signed-in organisers' forms are
/// taken with [`PostedBy`].
pub struct Posted(pub FormData);

impl FromRequest for Posted {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Form::<Vec<(String, String)>>::from_request(&req, payload);
        Box::pin(async move {
            let form = FormData(
                body.await
                    .map_err(|e| PageError::from_status(e.as_response_error().status_code()))?
                    .into_inner(),
            );
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(PageError::internal)?;
            csrf::check(&req, &state.pages, form.get(csrf::FIELD))?;
            Ok(Posted(form))
        })
    }
}

/// A posted dashboard form and the organiser who sent it: the CSRF token is checked first, then
/// the sign-in and role, one after the other (as separate extractors they would race, and which
/// refusal came back would vary).
pub struct PostedBy<R> {
    pub form: FormData,
    pub me: SignedIn<R>,
}

/// A form sent by any organiser signed in.
pub type AnyonePost = PostedBy<needs::AnyRole>;
/// A form sent by an admin or an owner.
pub type AdminPost = PostedBy<needs::AdminRole>;
/// A form sent by an owner.
pub type OwnerPost = PostedBy<needs::OwnerRole>;

impl<R: needs::Needs + 'static> FromRequest for PostedBy<R> {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let posted = Posted::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let Posted(form) = posted.await?;
            let me = SignedIn::<R>::extract(&req).await?;
            Ok(PostedBy { form, me })
        })
    }
}

fn not_for_your_role(role: Role) -> PageError {
    PageError::new(
        actix_web::http::StatusCode::FORBIDDEN,
        "Not for your role",
        format!(
            "This page needs the {} role or above. Ask an owner if you need it.",
            role.as_str()
        ),
    )
    .with_next("Back to the dashboard", "/organiser")
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
