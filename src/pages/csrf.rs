//! Cross-site request forgery protection for every form that changes something.
//!
//! A browser gets a random value in an HttpOnly, SameSite=Lax cookie the first time a page with
//! a form is shown; each form carries an HMAC of that value under the server's key. A post is
//! accepted only when the form's token is the HMAC of the cookie it came with (another site can
//! neither read the cookie nor compute the HMAC), and, when the browser says where the post
//! comes from (`Origin`, `Sec-Fetch-Site`), only from this site.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::HttpRequest;

use super::{PageError, Pages};

pub const COOKIE: &str = "mc_csrf";
/// The hidden form field.
pub const FIELD: &str = "csrf";
const PURPOSE: &[u8] = b"masterclass form";

/// The token to put in a page's forms, and the cookie to set when the browser has none yet.
pub struct FormToken {
    pub token: String,
    pub set_cookie: Option<Cookie<'static>>,
}

/// The form token for the browser behind `req`, making its cookie when needed.
pub fn form_token(req: &HttpRequest, pages: &Pages) -> FormToken {
    if let Some(value) = cookie_value(req) {
        return FormToken {
            token: pages.key.sign(PURPOSE, &value),
            set_cookie: None,
        };
    }
    let value = crate::tokens::random_token("");
    let token = pages.key.sign(PURPOSE, &value);
    let cookie = Cookie::build(COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(pages.secure_cookies)
        .finish();
    FormToken {
        token,
        set_cookie: Some(cookie),
    }
}

/// Refuses a post whose form token does not match its cookie, or that comes from elsewhere.
pub fn check(req: &HttpRequest, pages: &Pages, sent: Option<&str>) -> Result<(), PageError> {
    if from_elsewhere(req, pages.public_origin.as_deref()) {
        tracing::warn!("form post from another site refused");
        return Err(PageError::form_expired());
    }
    let (Some(value), Some(sent)) = (cookie_value(req), sent) else {
        return Err(PageError::form_expired());
    };
    let expected = pages.key.sign(PURPOSE, &value);
    if constant_time_eq(expected.as_bytes(), sent.as_bytes()) {
        Ok(())
    } else {
        Err(PageError::form_expired())
    }
}

fn cookie_value(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| crate::tokens::plausible(v))
}

/// Whether the browser says the post comes from another site: an `Origin` that is neither the
/// public address (`server.public_base_url`) nor the host the request was sent to.
fn from_elsewhere(req: &HttpRequest, public_origin: Option<&str>) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return true;
        }
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        // Browsers send "null" for some privacy-sensitive contexts; the token still decides.
        None | Some("null") => false,
        Some(origin) if Some(origin) == public_origin => false,
        Some(origin) => {
            let host = req.connection_info().host().to_owned();
            let bare = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or(origin);
            bare != host
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_is() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
