//! What a page shows when something cannot be done: a sentence saying what happened and where
//! to go next, with the fitting status. Domain refusals arrive as the API's [`Problem`], whose
//! sentences are written for people already.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use super::Pages;
use crate::api::{Kind, Problem};

/// A page that says something could not be done.
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
    /// A link onwards: label and address (boxed: most errors have none, and errors stay small).
    pub next: Option<Box<(String, String)>>,
    /// For 429 and 503: when to try again, in seconds.
    pub retry_after: Option<u64>,
    /// Where to send the browser instead of showing a page (a 303), e.g. to sign in first.
    pub location: Option<String>,
}

impl PageError {
    pub fn new(status: StatusCode, title: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.to_owned(),
            message: message.into(),
            next: None,
            retry_after: None,
            location: None,
        }
    }

    /// Sends the browser to `to` (a path of this site) instead of showing a page: a 303.
    pub fn see_other(to: impl Into<String>) -> Self {
        let mut page = Self::new(
            StatusCode::SEE_OTHER,
            "See other",
            "Please follow the link.",
        );
        page.location = Some(to.into());
        page
    }

    pub fn with_next(mut self, label: &str, href: impl Into<String>) -> Self {
        self.next = Some(Box::new((label.to_owned(), href.into())));
        self
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Page not found",
            "There is no page at this address. It may have moved, or the address may be mistyped.",
        )
        .with_next("See the programme", "/")
    }

    /// A manage or waitlist link whose token matches nothing.
    pub fn link_not_valid() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "This link is not valid",
            "This link does not lead to a booking or a waitlist place. Please open it again from \
             the email we sent you, in full; a link copied by hand may have lost some characters.",
        )
        .with_next("See the programme", "/")
    }

    /// A form posted without a valid CSRF token: nothing was done.
    pub fn form_expired() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Nothing was changed. Please go back, reload the page and send the form again. \
             (The page may have been open for a long time, or cookies may be blocked for this site.)",
        )
    }

    pub fn too_many(retry_after: u64) -> Self {
        let mut page = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            format!(
                "This connection has sent a lot of forms in a short time, so we have paused it. \
                 Nothing was changed by the last one. Please wait {retry_after} seconds and try again."
            ),
        );
        page.retry_after = Some(retry_after);
        page
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Something went wrong on our side and your request could not be completed. If you \
             were booking, nothing was booked and no money was taken unless you receive a \
             confirmation email. Please try again in a moment.",
        )
        .with_next("Back to the programme", "/")
    }

    pub fn unavailable() -> Self {
        let mut page = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "We are very busy",
            "The service is busy right now and could not complete your request; nothing was \
             changed. Please try again in a few seconds.",
        );
        page.retry_after = Some(5);
        page
    }

    /// The same failure as the organisers' dashboard says it: without the attendees' advice
    /// about bookings, and leading back to the dashboard rather than the programme.
    pub fn for_organisers(mut self) -> Self {
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            self.message = "Something went wrong on our side, and this page could not be \
                shown. Please check on the page you came from whether the change was made before \
                trying again; if it keeps happening, the server's log says what failed."
                .to_owned();
        }
        if self.next.as_ref().is_some_and(|next| next.1 == "/") {
            self = self.with_next("Back to the dashboard", "/organiser");
        }
        self
    }

    /// The page for an error that is not one of ours (a body too large, a malformed form).
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            404 => Self::not_found(),
            405 => Self::new(
                status,
                "This page does not take that",
                "This address cannot be used that way. Please go back and use the page's own links and buttons.",
            )
            .with_next("See the programme", "/"),
            413 => Self::new(
                status,
                "Too much data",
                "The form sent more than this site accepts. Please shorten what you entered and try again.",
            ),
            400..=499 => Self::new(
                status,
                "The request was not understood",
                "The form could not be read. Please go back, reload the page and try again.",
            ),
            503 => Self::unavailable(),
            _ => Self::internal(),
        }
    }
}

impl From<Problem> for PageError {
    fn from(problem: Problem) -> Self {
        let status = problem.status();
        let title = problem.document().title;
        match problem.kind() {
            Kind::Unavailable => Self::unavailable(),
            Kind::Internal => Self::internal(),
            Kind::NotFound | Kind::RegistrationClosed => {
                Self::new(status, title, problem.detail()).with_next("See the programme", "/")
            }
            _ => Self::new(status, title, problem.detail()),
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.title)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    /// A bare answer; [`super::finish_response`] replaces it with the page.
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{}. {}", self.title, self.message))
    }
}

#[derive(Serialize)]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    status: u16,
    next: Option<Link<'a>>,
}

#[derive(Serialize)]
struct Link<'a> {
    label: &'a str,
    href: &'a str,
}

/// The page for `error`.
pub fn render(pages: &Pages, error: &PageError) -> HttpResponse {
    if let Some(to) = &error.location {
        return super::redirect(to);
    }
    let context = ErrorPage {
        title: &error.title,
        message: &error.message,
        status: error.status.as_u16(),
        next: error.next.as_ref().map(|next| Link {
            label: &next.0,
            href: &next.1,
        }),
    };
    let mut builder = HttpResponse::build(error.status);
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(seconds) = error.retry_after {
        builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    match pages.render("error.html", context) {
        Ok(html) => builder.content_type("text/html; charset=utf-8").body(html),
        Err(_) => builder
            .content_type("text/plain; charset=utf-8")
            .body(format!("{}. {}", error.title, error.message)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages() -> Pages {
        let settings = crate::config::Settings::load_from(std::path::Path::new("config"), None)
            .expect("default settings");
        let key =
            crate::tokens::TokenKey::new("a key for the page tests, long enough").expect("key");
        Pages::new(&settings, key).expect("pages")
    }

    async fn body(answer: HttpResponse) -> String {
        let bytes = actix_web::body::to_bytes(answer.into_body())
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[actix_web::test]
    async fn failures_are_pages_that_say_what_happened_and_when_to_try_again() {
        let pages = pages();
        for (error, status) in [
            (PageError::internal(), 500),
            (PageError::from_status(StatusCode::BAD_GATEWAY), 500),
            (PageError::unavailable(), 503),
            (PageError::too_many(12), 429),
            (PageError::form_expired(), 403),
            (PageError::link_not_valid(), 404),
        ] {
            let answer = render(&pages, &error);
            assert_eq!(answer.status().as_u16(), status, "{error}");
            assert_eq!(
                answer
                    .headers()
                    .get(header::CACHE_CONTROL)
                    .map(|v| v.as_bytes()),
                Some(&b"no-store"[..])
            );
            let retry = answer
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            assert_eq!(retry, error.retry_after.map(|s| s.to_string()), "{error}");
            let html = body(answer).await;
            assert!(
                html.contains(&format!("<h1>{}</h1>", error.title)),
                "{html}"
            );
            assert!(
                html.contains(&error.message.replace('\'', "&#39;")),
                "{html}"
            );
        }
    }
}
