//! API errors as `application/problem+json` (RFC 9457).
//!
//! Every failure a client can act on has a stable `type` (a relative URI under `/problems/`), the
//! fitting status and a sentence saying what went wrong. Domain errors are turned into a
//! [`Problem`] in one place per domain (`From` impls next to each module's handlers). Internal
//! failures are logged with their cause chain and answered with an opaque 500 or 503.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;
use crate::validation::{FieldError, ValidationError};

/// The kinds of failure, each with its stable `type`, title and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MalformedJson,
    Validation,
    Unauthorized,
    Forbidden,
    NotFound,
    SessionFull,
    SessionCancelled,
    SessionStarted,
    AlreadyBooked,
    RegistrationClosed,
    CapacityBelowTaken,
    SeatsAvailable,
    TimetableClash,
    AlreadyWaiting,
    WaitlistClosed,
    OfferExpired,
    IdempotencyKeyReused,
    NotPayable,
    HoldExpired,
    CardPaymentsUnavailable,
    PaymentProvider,
    BadSignature,
    Conflict,
    /// An `If-Match` revision that is no longer the current one.
    Changed,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unavailable,
    Internal,
}

impl Kind {
    pub fn slug(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed-json",
            Self::Validation => "validation",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::SessionFull => "session-full",
            Self::SessionCancelled => "session-cancelled",
            Self::SessionStarted => "session-started",
            Self::AlreadyBooked => "already-booked",
            Self::RegistrationClosed => "registration-closed",
            Self::CapacityBelowTaken => "capacity-below-taken",
            Self::SeatsAvailable => "seats-available",
            Self::TimetableClash => "timetable-clash",
            Self::AlreadyWaiting => "already-waiting",
            Self::WaitlistClosed => "waitlist-closed",
            Self::OfferExpired => "offer-expired",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::NotPayable => "not-payable",
            Self::HoldExpired => "hold-expired",
            Self::CardPaymentsUnavailable => "card-payments-unavailable",
            Self::PaymentProvider => "payment-provider-error",
            Self::BadSignature => "bad-signature",
            Self::Conflict => "conflict",
            Self::Changed => "changed-since-read",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::MalformedJson => "The request body is not valid JSON",
            Self::Validation => "Some fields are not valid",
            Self::Unauthorized => "An organiser token is required",
            Self::Forbidden => "Your role does not allow this",
            Self::NotFound => "Not found",
            Self::SessionFull => "The session is full",
            Self::SessionCancelled => "The session is cancelled",
            Self::SessionStarted => "The session has started",
            Self::AlreadyBooked => "Already booked",
            Self::RegistrationClosed => "Registration is closed",
            Self::CapacityBelowTaken => "Capacity below seats taken",
            Self::SeatsAvailable => "Seats are available",
            Self::TimetableClash => "Sessions overlap in time",
            Self::AlreadyWaiting => "Already on the waitlist",
            Self::WaitlistClosed => "The session has no waitlist",
            Self::OfferExpired => "The offer has run out",
            Self::IdempotencyKeyReused => "Idempotency key used for another request",
            Self::NotPayable => "Nothing to pay",
            Self::HoldExpired => "The hold has run out",
            Self::CardPaymentsUnavailable => "Card payments are not available",
            Self::PaymentProvider => "The payment provider could not be reached",
            Self::BadSignature => "The webhook signature is not valid",
            Self::Conflict => "Conflict",
            Self::Changed => "Changed since it was read",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Unavailable => "The service is busy",
            Self::Internal => "Internal error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedJson | Self::BadSignature => StatusCode::BAD_REQUEST,
            Self::Validation | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::SessionFull
            | Self::SessionCancelled
            | Self::SessionStarted
            | Self::AlreadyBooked
            | Self::RegistrationClosed
            | Self::CapacityBelowTaken
            | Self::SeatsAvailable
            | Self::TimetableClash
            | Self::AlreadyWaiting
            | Self::WaitlistClosed
            | Self::OfferExpired
            | Self::NotPayable
            | Self::HoldExpired
            | Self::Conflict => StatusCode::CONFLICT,
            Self::Changed => StatusCode::PRECONDITION_FAILED,
            Self::PaymentProvider => StatusCode::BAD_GATEWAY,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable | Self::CardPaymentsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A failure to answer with, as `application/problem+json`. Kept small: it travels in the `Err`
/// of every handler; [`ProblemDocument`] is what goes over the wire.
#[derive(Debug, Clone)]
pub struct Problem {
    kind: Kind,
    detail: String,
    errors: Vec<FieldError>,
    session: Option<Box<(i64, String)>>,
    waitlist: Option<Box<str>>,
    other_session: Option<Box<(i64, String)>>,
}

/// A problem details object (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDocument<'a> {
    /// Stable identifier of the kind of failure, e.g. `/problems/session-full`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'a str,
    pub status: u16,
    /// What went wrong in this case, in a sentence.
    pub detail: &'a str,
    /// For `validation`: every field at fault.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub errors: &'a [FieldError],
    /// For failures about one session (`session-full`, `already-booked`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_title: Option<&'a str>,
    /// For `session-full`: where to join the session's waitlist (`POST`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waitlist: Option<&'a str>,
    /// For `timetable-clash`: the other session, which overlaps `session_id` in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_session_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_session_title: Option<&'a str>,
}

impl Problem {
    pub fn new(kind: Kind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            session: None,
            waitlist: None,
            other_session: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(Kind::NotFound, format!("{what} was not found"))
    }

    pub fn with_session(mut self, id: i64, title: &str) -> Self {
        self.session = Some(Box::new((id, title.to_owned())));
        self
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// For [`Kind::Validation`]: every field at fault.
    pub fn field_errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// Names a second session (the one a `timetable-clash` overlaps).
    pub fn with_other_session(mut self, id: i64, title: &str) -> Self {
        self.other_session = Some(Box::new((id, title.to_owned())));
        self
    }

    /// Points at the waitlist to join (a `session-full` answer for a session that has one).
    pub fn with_waitlist(mut self, path: String) -> Self {
        self.waitlist = Some(path.into_boxed_str());
        self
    }

    /// A failure of ours: logged with its whole cause chain, answered without internals.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %chain(err), "request failed");
        Self::new(
            Kind::Internal,
            "Something went wrong on our side; nothing was changed. Please try again.",
        )
    }

    /// The body sent to the client.
    pub fn document(&self) -> ProblemDocument<'_> {
        ProblemDocument {
            kind: format!("/problems/{}", self.kind.slug()),
            title: self.kind.title(),
            status: self.kind.status().as_u16(),
            detail: &self.detail,
            errors: &self.errors,
            session_id: self.session.as_ref().map(|s| s.0),
            session_title: self.session.as_ref().map(|s| s.1.as_str()),
            waitlist: self.waitlist.as_deref(),
            other_session_id: self.other_session.as_ref().map(|s| s.0),
            other_session_title: self.other_session.as_ref().map(|s| s.1.as_str()),
        }
    }
}

/// `error: cause: cause …`, for logs.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.kind.slug(),
            self.kind.status().as_u16(),
            self.detail
        )
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if self.status_code() == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(self.document())
    }
}

impl From<ValidationError> for Problem {
    fn from(err: ValidationError) -> Self {
        let detail = match err.0.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are not valid", many.len()),
        };
        let mut problem = Self::new(Kind::Validation, detail);
        problem.errors = err.0;
        problem
    }
}

impl From<DbError> for Problem {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Pool(_) => {
                tracing::warn!(error = %chain(&err), "no database connection in time");
                Self::new(
                    Kind::Unavailable,
                    "The service is busy; nothing was changed. Please try again shortly.",
                )
            }
            other => Self::internal(&other),
        }
    }
}

impl From<actix_web::error::BlockingError> for Problem {
    fn from(err: actix_web::error::BlockingError) -> Self {
        Self::internal(&err)
    }
}

/// OpenAPI response sets for the failures many routes share, so each route lists its own
/// outcomes and names these instead of repeating them.
pub mod responses {
    use std::collections::BTreeMap;

    use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
    use utoipa::IntoResponses;

    fn problems(list: &[(u16, &str)]) -> BTreeMap<String, RefOr<Response>> {
        list.iter()
            .map(|(status, description)| {
                let content = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build();
                let response = ResponseBuilder::new()
                    .description(*description)
                    .content("application/problem+json", content)
                    .build();
                (status.to_string(), RefOr::T(response))
            })
            .collect()
    }

    /// A JSON body that is missing, too large, not JSON, malformed or has invalid fields.
    pub struct BodyProblems;

    impl IntoResponses for BodyProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[
                (400, "The body is not valid JSON"),
                (413, "The body is too large"),
                (415, "The body is not sent as JSON"),
                (
                    422,
                    "Some fields are not valid (`validation`, with `errors`)",
                ),
            ])
        }
    }

    /// No valid organiser token, or a role that does not allow the action.
    pub struct AuthProblems;

    impl IntoResponses for AuthProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[
                (401, "No valid organiser token (`unauthorized`)"),
                (
                    403,
                    "The organiser's role does not allow this (`forbidden`)",
                ),
            ])
        }
    }

    /// A query parameter missing or not valid.
    pub struct QueryProblems;

    impl IntoResponses for QueryProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(
                422,
                "A query parameter is missing or not valid (`validation`, with `errors`)",
            )])
        }
    }

    /// What the path names does not exist.
    pub struct NotFound;

    impl IntoResponses for NotFound {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(404, "Not found (`not-found`)")])
        }
    }

    /// The request conflicts with the current state (the `type` says how).
    pub struct Conflict;

    impl IntoResponses for Conflict {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(409, "Conflicts with the current state; `type` says how")])
        }
    }

    /// An `If-Match` revision that is no longer the current one.
    pub struct Changed;

    impl IntoResponses for Changed {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(
                412,
                "Changed since the revision in `If-Match` (`changed-since-read`); nothing was changed",
            )])
        }
    }

    /// Paying by card: the booking cannot be paid now, cards are not offered, or Stripe failed.
    pub struct PaymentProblems;

    impl IntoResponses for PaymentProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[
                (
                    409,
                    "Nothing to pay now (`not-payable`) or the hold has run out (`hold-expired`)",
                ),
                (502, "Stripe could not be reached (`payment-provider-error`)"),
                (
                    503,
                    "Card payments are not set up (`card-payments-unavailable`), or the service is busy",
                ),
            ])
        }
    }

    /// A webhook delivery that is not Stripe's, or cannot be read.
    pub struct WebhookProblems;

    impl IntoResponses for WebhookProblems {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[
                (
                    400,
                    "No valid Stripe-Signature (`bad-signature`) or not an event (`malformed-json`)",
                ),
                (
                    503,
                    "No webhook secret is configured (`card-payments-unavailable`), or the service is busy",
                ),
            ])
        }
    }

    /// The database is out of reach or every connection is busy.
    pub struct Unavailable;

    impl IntoResponses for Unavailable {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            problems(&[(
                503,
                "The service is busy or the database is out of reach (`unavailable`)",
            )])
        }
    }
}
