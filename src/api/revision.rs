//! Revisions over HTTP: an event's or session's revision goes out as its `ETag` (`"7"`) and
//! comes back in `If-Match`, so a change made against an old read is refused instead of
//! silently undoing someone else's.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest};

use super::problem::Problem;
use crate::validation::ValidationError;

/// The revision a request's `If-Match` names: `None` without the header or with `*`.
#[derive(Debug, Clone, Copy, Default)]
pub struct IfMatch(pub Option<i32>);

impl FromRequest for IfMatch {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req.headers().get(header::IF_MATCH)).map(IfMatch))
    }
}

fn parse(value: Option<&HeaderValue>) -> Result<Option<i32>, Problem> {
    let Some(value) = value else {
        return Ok(None);
    };
    let refused = || {
        Problem::from(ValidationError::single(
            "If-Match",
            "must be one ETag as given, e.g. \"7\", or *",
        ))
    };
    let text = value.to_str().map_err(|_| refused())?.trim();
    if text == "*" {
        return Ok(None);
    }
    if text.starts_with("W/") {
        // If-Match compares strongly, and a weak tag never matches (RFC 9110, 13.1.1).
        return Err(Problem::new(
            super::Kind::Changed,
            "A weak ETag never matches If-Match; send the ETag as it was given, e.g. \"7\"",
        ));
    }
    let tag = text;
    let inner = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag);
    inner
        .parse::<i32>()
        .ok()
        .filter(|r| *r >= 0)
        .map(Some)
        .ok_or_else(refused)
}

/// The `ETag` header for `revision`.
pub fn etag(revision: i32) -> (header::HeaderName, String) {
    (header::ETAG, format!("\"{revision}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Option<i32>, Problem> {
        parse(Some(&HeaderValue::from_str(text).expect("header")))
    }

    #[test]
    fn if_match_names_a_revision_or_any() {
        assert_eq!(parse(None).ok(), Some(None));
        assert_eq!(read("*").ok(), Some(None));
        assert_eq!(read("\"7\"").ok(), Some(Some(7)));
        assert_eq!(
            read("W/\"7\"").err().map(|p| p.status().as_u16()),
            Some(412),
            "a weak tag never matches"
        );
        assert_eq!(read("12").ok(), Some(Some(12)));
        for bad in ["\"seven\"", "\"-1\"", "\"7\", \"8\"", ""] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
