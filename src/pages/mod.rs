//! The attendee web pages: the programme, booking, card payment, the manage-booking page behind
//! the secret link, and waitlist places. Server-rendered HTML from templates in
//! `src/pages/templates/` (minijinja, as the emails), one stylesheet and two small scripts of
//! our own under `src/pages/static/`, all embedded in the binary. Every form works without
//! JavaScript except the card form, which is Stripe's.
//!
//! Pages call the same domain functions as the JSON API; they differ only in how they read input
//! (HTML forms, with a CSRF token) and answer (a page, a redirect, or a page with the entered
//! values and a message next to each field at fault).

mod assets;
mod booking;
mod csrf;
mod dashboard;
mod errors;
mod limit;
mod manage;
mod programme;
mod templates;
mod waitlist;

use std::sync::Arc;

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;
use serde::Serialize;

use crate::config::Settings;
use crate::tokens::TokenKey;
pub use assets::url as static_url;
pub use errors::PageError;
/// Text for HTML, as every page escapes it.
pub use templates::escape as escape_html;
use templates::Templates;

/// What the pages share: templates, the form rate limit, the CSRF key, security headers and the
/// programme pages kept in memory.
pub struct Pages {
    templates: Templates,
    limiter: limit::Limiter,
    /// Organiser sign-in, reset and password forms per client address, in this process's memory
    /// on purpose: each may cost an argon2 hash, and what it guards is this process's CPU. Failed
    /// sign-ins and reset requests are limited across every instance by the database
    /// (`organisers::sign_in_limits`).
    sign_in_limiter: limit::Limiter,
    key: TokenKey,
    site_name: String,
    /// `Content-Security-Policy` of every page but the card payment page: this site only.
    csp: HeaderValue,
    /// The card payment page's: this site and Stripe.
    csp_with_stripe: HeaderValue,
    hsts: Option<HeaderValue>,
    stripe_js_url: String,
    /// Cookies get `Secure` when the public address is HTTPS.
    secure_cookies: bool,
    /// The origin of `server.public_base_url`, which form posts may come from.
    public_origin: Option<String>,
    programmes: programme::PageCache,
}

impl Pages {
    pub fn new(settings: &Settings, key: TokenKey) -> anyhow::Result<Self> {
        let pages = &settings.pages;
        let stripe_js = origin_of(&pages.stripe_js_url).ok_or_else(|| {
            anyhow::anyhow!(
                "pages.stripe_js_url must be an http(s) address, not {:?}",
                pages.stripe_js_url
            )
        })?;
        // Stripe.js talks to Stripe's API (stripe_api_base; a test double's in tests) and runs
        // its card form in frames from its own origin; Stripe's own copy also loads parts from
        // its subdomains and runs 3-D Secure from hooks.stripe.com.
        let api = origin_of(&settings.payments.stripe_api_base)
            .filter(|api| *api != stripe_js)
            .unwrap_or_default();
        let mut scripts = vec![stripe_js.clone()];
        let mut frames = vec![stripe_js.clone()];
        if stripe_js == "https://js.stripe.com" {
            scripts.push("https://*.js.stripe.com".to_owned());
            frames.push("https://*.js.stripe.com".to_owned());
            frames.push("https://hooks.stripe.com".to_owned());
        }
        let strict = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        let with_stripe = format!(
            "default-src 'none'; script-src 'self' {scripts}; style-src 'self'; img-src 'self' data: {stripe_js}; \
             connect-src 'self' {api} {stripe_js}; frame-src {frames}; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
            scripts = scripts.join(" "),
            frames = frames.join(" ")
        );
        let hsts = (pages.hsts_seconds > 0).then(|| {
            HeaderValue::from_str(&format!("max-age={}", pages.hsts_seconds))
                .unwrap_or_else(|_| HeaderValue::from_static("max-age=31536000"))
        });
        Ok(Self {
            templates: Templates::new(&pages.site_name)?,
            limiter: limit::Limiter::new(pages.submissions_per_minute, pages.trust_forwarded_for),
            sign_in_limiter: limit::Limiter::new(
                std::num::NonZeroU32::new(20).unwrap_or(std::num::NonZeroU32::MIN),
                pages.trust_forwarded_for,
            ),
            key,
            site_name: pages.site_name.clone(),
            csp: HeaderValue::from_static(strict),
            csp_with_stripe: HeaderValue::from_str(&with_stripe)?,
            hsts,
            stripe_js_url: pages.stripe_js_url.clone(),
            secure_cookies: settings.server.public_base_url.starts_with("https://"),
            public_origin: origin_of(&settings.server.public_base_url),
            programmes: programme::PageCache::new(std::time::Duration::from_millis(u64::from(
                pages.programme_cache_ms,
            ))),
        })
    }

    /// A page: `template` rendered with `context` (which the layout reads `title` from).
    pub fn render(&self, template: &str, context: impl Serialize) -> Result<String, PageError> {
        self.templates.render(template, context)
    }
}

/// A form (or query string) as sent: names may repeat (`session=1&session=2`).
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name` without surrounding blanks, empty when it was not sent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_owned()
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A rendered page, never stored by caches (it may show a booking), with the CSRF cookie when
/// the browser gets its first one.
pub fn html_page(
    status: actix_web::http::StatusCode,
    html: String,
    cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    let mut answer = HttpResponse::build(status);
    answer.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(cookie) = cookie {
        answer.cookie(cookie);
    }
    answer.content_type("text/html; charset=utf-8").body(html)
}

/// After a form has done its work: see the result at `to` (303, so reloading does not send the
/// form again).
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// The idempotency key of one form (its hidden `form_id`, made when the page was shown) sent
/// with `body` to `scope`: the same form sent twice with the same content (a double click, a
/// retry after a lost answer) has one effect; sent again changed, it is a new request.
pub fn form_key(
    scope: String,
    form_id: &str,
    body: &impl Serialize,
) -> Option<crate::idempotency::Key> {
    use sha2::{Digest, Sha256};
    if !(1..=64).contains(&form_id.len())
        || !form_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    let canonical = serde_json::to_vec(body).ok()?;
    let digest = hex::encode(&Sha256::digest(&canonical)[..12]);
    Some(crate::idempotency::Key::new(
        scope,
        format!("{form_id}.{digest}"),
        &canonical,
    ))
}

/// The JSON of a kept successful answer, or the refusal it was.
pub async fn kept_answer(answer: HttpResponse) -> Result<serde_json::Value, crate::api::Problem> {
    use crate::api::{Kind, Problem};
    let status = answer.status();
    let body = actix_web::body::to_bytes(answer.into_body())
        .await
        .map_err(|_| Problem::new(Kind::Internal, "a kept answer could not be read"))?;
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| Problem::internal(&e))?;
    if status.is_success() {
        Ok(json)
    } else {
        let detail = json["detail"].as_str().unwrap_or("It was refused.");
        Err(Problem::new(Kind::Conflict, detail))
    }
}

/// `scheme://host[:port]` of an http(s) address.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// Every page route. Mounted outside `/api/v1`; the JSON API stays as it is.
pub fn routes(cfg: &mut ServiceConfig) {
    assets::routes(cfg);
    programme::routes(cfg);
    dashboard::routes(cfg);
    booking::routes(cfg);
    manage::routes(cfg);
    waitlist::routes(cfg);
}

/// A route for GET, and HEAD (the same answer without its body).
pub(crate) fn get() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Whether a path is a page's (not the API's or the health checks').
pub fn is_page_path(path: &str) -> bool {
    !(path.starts_with("/api/") || matches!(path, "/healthz" | "/readyz"))
}

/// Security headers on every page answer, and errors turned into pages.
pub fn finish_response(
    res: ServiceResponse,
    pages: &Pages,
) -> Result<ServiceResponse, actix_web::Error> {
    let status = res.status();
    let res = match res.response().error() {
        Some(err) => {
            let page = err
                .as_error::<PageError>()
                .cloned()
                .unwrap_or_else(|| PageError::from_status(err.as_response_error().status_code()));
            let (req, _) = res.into_parts();
            let page = if req.path().starts_with("/organiser") {
                page.for_organisers()
            } else {
                page
            };
            let response = errors::render(pages, &page);
            ServiceResponse::new(req, response)
        }
        // A route that takes other methods only.
        None if status == actix_web::http::StatusCode::METHOD_NOT_ALLOWED => {
            let (req, _) = res.into_parts();
            let response = errors::render(pages, &PageError::from_status(status));
            ServiceResponse::new(req, response)
        }
        None => res,
    };
    Ok(with_security_headers(res, pages))
}

fn with_security_headers(mut res: ServiceResponse, pages: &Pages) -> ServiceResponse {
    let headers = res.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, pages.csp.clone());
    }
    // Manage links carry their token in the path: no page sends its address anywhere.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if let Some(hsts) = &pages.hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    res
}

/// The pages of the application serving `req`.
pub fn of(req: &ServiceRequest) -> Option<Arc<Pages>> {
    req.app_data::<web::Data<crate::api::AppState>>()
        .map(|state| state.pages.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_keep_scheme_host_and_port_only() {
        assert_eq!(
            origin_of("https://js.stripe.com/v3/").as_deref(),
            Some("https://js.stripe.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:4242/js.stripe.com/v3/").as_deref(),
            Some("http://127.0.0.1:4242")
        );
        assert_eq!(origin_of("javascript:alert(1)"), None);
        assert_eq!(origin_of("https://"), None);
    }

    fn key() -> TokenKey {
        TokenKey::new("a key for the page tests, long enough").expect("key")
    }

    #[test]
    fn only_the_payment_page_may_load_stripe() {
        let settings =
            Settings::load_from(std::path::Path::new("config"), None).expect("default settings");
        let pages = Pages::new(&settings, key()).expect("pages");
        let strict = pages.csp.to_str().expect("ascii");
        assert!(!strict.contains("stripe"), "{strict}");
        assert!(strict.contains("frame-ancestors 'none'"), "{strict}");
        let stripe = pages.csp_with_stripe.to_str().expect("ascii");
        for part in [
            "script-src 'self' https://js.stripe.com https://*.js.stripe.com;",
            "frame-src https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com;",
            "connect-src 'self' https://api.stripe.com https://js.stripe.com;",
        ] {
            assert!(stripe.contains(part), "{part} in {stripe}");
        }
        assert!(pages.hsts.is_none());
    }

    #[test]
    fn a_stripe_test_double_is_allowed_by_its_own_origin() {
        let mut settings =
            Settings::load_from(std::path::Path::new("config"), None).expect("default settings");
        settings.pages.stripe_js_url = "http://127.0.0.1:4242/js.stripe.com/v3/".to_owned();
        settings.payments.stripe_api_base = "http://127.0.0.1:4242".to_owned();
        settings.pages.hsts_seconds = 600;
        let pages = Pages::new(&settings, key()).expect("pages");
        let stripe = pages.csp_with_stripe.to_str().expect("ascii");
        assert!(
            stripe.contains("script-src 'self' http://127.0.0.1:4242;"),
            "{stripe}"
        );
        assert!(
            stripe.contains("frame-src http://127.0.0.1:4242;"),
            "{stripe}"
        );
        assert!(!stripe.contains("hooks.stripe.com"), "{stripe}");
        assert_eq!(
            pages.hsts.as_ref().and_then(|h| h.to_str().ok()),
            Some("max-age=600")
        );
        settings.pages.stripe_js_url = "javascript:alert(1)".to_owned();
        assert!(Pages::new(&settings, key()).is_err());
    }
}
