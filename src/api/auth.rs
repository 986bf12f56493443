//! Organiser authentication for `/api/v1/admin`: `Authorization: Bearer <token>`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};

use super::problem::{Kind, Problem};
use super::{run, AppState};
use crate::organisers::{self, Organiser, Role};

/// The organiser behind the request's bearer token.
pub struct Authenticated(pub Organiser);

impl Authenticated {
    /// Refuses with 403 unless the organiser's role allows `needed`.
    pub fn require(self, needed: Role) -> Result<Organiser, Problem> {
        if self.0.role.allows(needed) {
            Ok(self.0)
        } else {
            Err(Problem::new(
                Kind::Forbidden,
                format!(
                    "This needs the {} role; you have {}",
                    needed.as_str(),
                    self.0.role.as_str()
                ),
            ))
        }
    }
}

impl FromRequest for Authenticated {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_owned());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let Some(token) = token.filter(|t| !t.is_empty()) else {
                return Err(Problem::new(
                    Kind::Unauthorized,
                    "Send an organiser API token as Authorization: Bearer <token>",
                ));
            };
            let Some(state) = state else {
                return Err(Problem::new(Kind::Internal, "application state missing"));
            };
            match run(&state.db, move |conn| {
                organisers::authenticate(conn, &token)
            })
            .await?
            {
                Some(organiser) => Ok(Self(organiser)),
                None => Err(Problem::new(
                    Kind::Unauthorized,
                    "The API token is unknown or revoked",
                )),
            }
        })
    }
}
