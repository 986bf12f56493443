//! JSON request bodies with answers a client can act on: 415 for the wrong content type, 413 for
//! an oversized body, 400 for malformed JSON, 422 naming the field for wrong types or unknown
//! fields.

use std::future::{ready, Future, Ready};
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::problem::{Kind, Problem};
use super::AppState;
use crate::validation::ValidationError;

/// A JSON body of type `T`.
pub struct ApiJson<T>(pub T);

/// A JSON body of type `T`, or nothing at all (an empty body).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            match body.await? {
                Some(bytes) => parse(&bytes).map(ApiJson),
                None => Err(Problem::new(
                    Kind::MalformedJson,
                    "The body is empty; send a JSON object",
                )),
            }
        })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            match body.await? {
                Some(bytes) => parse(&bytes).map(|v| OptionalJson(Some(v))),
                None => Ok(OptionalJson(None)),
            }
        })
    }
}

/// A JSON body of type `T`, read only when the handler asks for it. Organiser routes take their
/// body this way and read it after checking the token and role: actix polls all extractors
/// together, so with [`ApiJson`] a caller without a valid token could be answered about the
/// body's faults (400/413/422) instead of 401 or 403.
pub struct DeferredJson<T> {
    req: HttpRequest,
    payload: Payload,
    body: PhantomData<T>,
}

impl<T: DeserializeOwned> DeferredJson<T> {
    /// Reads and parses the body, with the same answers as [`ApiJson`].
    pub async fn read(mut self) -> Result<T, Problem> {
        match read_body(&self.req, &mut self.payload).await? {
            Some(bytes) => parse(&bytes),
            None => Err(Problem::new(
                Kind::MalformedJson,
                "The body is empty; send a JSON object",
            )),
        }
    }
}

impl<T> FromRequest for DeferredJson<T> {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        ready(Ok(Self {
            req: req.clone(),
            payload: payload.take(),
            body: PhantomData,
        }))
    }
}

/// Reads the body up to the configured limit; `None` when it is empty. A non-empty body must
/// say it is JSON.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<Option<web::BytesMut>, Problem>> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.server.max_body_bytes)
        .unwrap_or(64 * 1024);
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        });
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut payload = payload.take();
    async move {
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                Problem::new(Kind::MalformedJson, format!("could not read the body: {e}"))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if is_json != Some(true) {
            return Err(Problem::new(
                Kind::UnsupportedMediaType,
                "Send the body as JSON with Content-Type: application/json",
            ));
        }
        Ok(Some(body))
    }
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        Kind::PayloadTooLarge,
        format!("The body must be at most {limit} bytes"),
    )
}

/// Parses `body`, naming the field at fault when the JSON is well-formed but does not fit.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                // serde's message ends with the position, which means nothing to a client here.
                let message = inner.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_owned();
                Problem::from(ValidationError::single(&field, message))
            }
            _ => malformed(&inner),
        }
    })?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> Problem {
    Problem::new(
        Kind::MalformedJson,
        format!("The body is not valid JSON: {err}"),
    )
}
