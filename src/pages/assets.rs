//! The stylesheet and scripts of the pages, embedded in the binary and served under `/static/`
//! with an address that changes with their content, so browsers may keep them for a year.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::web::{self, ServiceConfig};
use actix_web::HttpResponse;
use sha2::{Digest, Sha256};

use super::PageError;

/// Name, media type, content.
const FILES: &[(&str, &str, &str)] = &[
    (
        "site.css",
        "text/css; charset=utf-8",
        include_str!("static/site.css"),
    ),
    (
        "programme.js",
        "text/javascript; charset=utf-8",
        include_str!("static/programme.js"),
    ),
    (
        "pay.js",
        "text/javascript; charset=utf-8",
        include_str!("static/pay.js"),
    ),
    (
        "checkin.js",
        "text/javascript; charset=utf-8",
        include_str!("static/checkin.js"),
    ),
];

/// The first hex digits of each file's SHA-256, by name.
static VERSIONS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, _, body)| (*name, hex::encode(&Sha256::digest(body.as_bytes())[..6])))
        .collect()
});

/// The address of a static file, with its version.
pub fn url(name: &str) -> String {
    let version = VERSIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("0");
    format!("/static/{version}/{name}")
}

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/static/{version}/{name}", super::get().to(serve));
}

async fn serve(path: web::Path<(String, String)>) -> Result<HttpResponse, PageError> {
    let (version, name) = path.into_inner();
    let Some((_, media_type, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return Err(PageError::not_found());
    };
    let current = VERSIONS.iter().any(|(n, v)| *n == name && *v == version);
    let mut answer = HttpResponse::Ok();
    answer.insert_header((header::CONTENT_TYPE, *media_type));
    if current {
        answer.insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"));
    } else {
        // An old page asking for an old version gets today's file, not kept for long.
        answer.insert_header((header::CACHE_CONTROL, "public, max-age=300"));
    }
    Ok(answer.body(*body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_carry_the_content_version() {
        let css = url("site.css");
        assert!(
            css.starts_with("/static/") && css.ends_with("/site.css"),
            "{css}"
        );
        assert_eq!(css.len(), "/static//site.css".len() + 12);
    }
}
