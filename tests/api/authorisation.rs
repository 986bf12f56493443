//! One authorisation matrix over every route that needs an organiser: the admin JSON API (as its
//! OpenAPI document lists it) and the dashboard pages. Each route answers a missing or too-small
//! credential before anything else (a dashboard form without its token is refused as that first),
//! and such a refused request changes nothing.

use diesel::prelude::*;
use masterclass::organisers::Role;
use serde_json::{json, Value};

use crate::helpers::{expect_json, merged, problem_type, TestApp};
use crate::on_both_backends;
use crate::pages::{Browser, Page};

/// The smallest role each admin operation of the API accepts, as (method, path template, role).
const API: &[(&str, &str, Role)] = &[
    ("post", "/api/v1/admin/events", Role::Admin),
    ("patch", "/api/v1/admin/events/{slug}", Role::Admin),
    ("post", "/api/v1/admin/events/{slug}/sessions", Role::Admin),
    ("patch", "/api/v1/admin/sessions/{id}", Role::Admin),
    ("get", "/api/v1/admin/sessions/{id}/attendees", Role::Admin),
    ("get", "/api/v1/admin/events/{slug}/bookings", Role::Admin),
    ("get", "/api/v1/admin/emails", Role::Admin),
    ("post", "/api/v1/admin/emails/{id}/retry", Role::Admin),
    ("get", "/api/v1/admin/sessions/{id}/waitlist", Role::Admin),
    (
        "post",
        "/api/v1/admin/sessions/{id}/waitlist/{entry_id}/promote",
        Role::Admin,
    ),
    (
        "post",
        "/api/v1/admin/bookings/{reference}/cancel",
        Role::Admin,
    ),
    (
        "post",
        "/api/v1/admin/bookings/{reference}/move",
        Role::Admin,
    ),
    (
        "post",
        "/api/v1/admin/bookings/{reference}/refund",
        Role::Admin,
    ),
    ("get", "/api/v1/admin/invoices", Role::Admin),
    ("post", "/api/v1/admin/invoices/{number}/paid", Role::Admin),
    ("get", "/api/v1/admin/invoices/{number}", Role::Admin),
    (
        "get",
        "/api/v1/admin/sessions/{id}/attendees.csv",
        Role::Admin,
    ),
    (
        "get",
        "/api/v1/admin/sessions/{id}/sign-in-sheet",
        Role::Checkin,
    ),
    (
        "get",
        "/api/v1/admin/events/{slug}/bookings.csv",
        Role::Admin,
    ),
    (
        "get",
        "/api/v1/admin/events/{slug}/invoices.csv",
        Role::Admin,
    ),
    ("post", "/api/v1/admin/sessions/{id}/checkin", Role::Checkin),
    ("get", "/api/v1/admin/sessions/{id}/checkin", Role::Checkin),
    (
        "delete",
        "/api/v1/admin/sessions/{id}/checkin/{seat_id}",
        Role::Checkin,
    ),
];

/// Who may use a dashboard route: anyone, or an organiser with at least a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Anyone,
    At(Role),
}

use crate::dashboard::signed_in;
use Needs::{Anyone, At};

/// Every dashboard route, as (method, path template, who may use it), from the `routes`
/// functions of `src/pages/dashboard` and the role each handler asks for.
const DASHBOARD: &[(&str, &str, Needs)] = &[
    // account
    ("GET", "/organiser", At(Role::Checkin)),
    ("GET", "/organiser/login", Anyone),
    ("POST", "/organiser/login", Anyone),
    ("POST", "/organiser/logout", Anyone),
    ("GET", "/organiser/forgot", Anyone),
    ("POST", "/organiser/forgot", Anyone),
    ("GET", "/organiser/password/{token}", Anyone),
    ("POST", "/organiser/password/{token}", Anyone),
    ("GET", "/organiser/team", At(Role::Owner)),
    ("POST", "/organiser/team", At(Role::Owner)),
    ("GET", "/organiser/tokens", At(Role::Checkin)),
    ("POST", "/organiser/tokens", At(Role::Checkin)),
    ("POST", "/organiser/tokens/{id}/revoke", At(Role::Checkin)),
    // programme
    ("GET", "/organiser/events", At(Role::Admin)),
    ("POST", "/organiser/events", At(Role::Admin)),
    ("GET", "/organiser/events/{slug}", At(Role::Admin)),
    ("POST", "/organiser/events/{slug}", At(Role::Admin)),
    ("POST", "/organiser/events/{slug}/status", At(Role::Admin)),
    (
        "GET",
        "/organiser/events/{slug}/sessions/new",
        At(Role::Admin),
    ),
    ("POST", "/organiser/events/{slug}/sessions", At(Role::Admin)),
    ("GET", "/organiser/sessions/{id}", At(Role::Admin)),
    ("POST", "/organiser/sessions/{id}", At(Role::Admin)),
    ("POST", "/organiser/sessions/{id}/capacity", At(Role::Admin)),
    (
        "POST",
        "/organiser/sessions/{id}/duplicate",
        At(Role::Admin),
    ),
    ("GET", "/organiser/sessions/{id}/cancel", At(Role::Admin)),
    ("POST", "/organiser/sessions/{id}/cancel", At(Role::Admin)),
    // check-in
    ("GET", "/organiser/checkin", At(Role::Checkin)),
    ("GET", "/organiser/sessions/{id}/checkin", At(Role::Checkin)),
    (
        "POST",
        "/organiser/sessions/{id}/checkin",
        At(Role::Checkin),
    ),
    (
        "POST",
        "/organiser/sessions/{id}/checkin/{seat}/undo",
        At(Role::Checkin),
    ),
    // certificates
    (
        "GET",
        "/organiser/bookings/{reference}/certificate",
        At(Role::Admin),
    ),
    (
        "POST",
        "/organiser/bookings/{reference}/certificate",
        At(Role::Admin),
    ),
    (
        "GET",
        "/organiser/bookings/{reference}/certificate.pdf",
        At(Role::Admin),
    ),
    // exports
    (
        "GET",
        "/organiser/sessions/{id}/attendees.csv",
        At(Role::Admin),
    ),
    (
        "GET",
        "/organiser/sessions/{id}/sign-in-sheet",
        At(Role::Checkin),
    ),
    (
        "GET",
        "/organiser/events/{slug}/bookings.csv",
        At(Role::Admin),
    ),
    (
        "GET",
        "/organiser/events/{slug}/invoices.csv",
        At(Role::Admin),
    ),
    // insights
    ("GET", "/organiser/audit", At(Role::Admin)),
    ("GET", "/organiser/stats", At(Role::Admin)),
    // people: bookings and outbox
    ("GET", "/organiser/bookings", At(Role::Admin)),
    ("GET", "/organiser/bookings/{reference}", At(Role::Admin)),
    (
        "POST",
        "/organiser/bookings/{reference}/refund",
        At(Role::Admin),
    ),
    (
        "POST",
        "/organiser/bookings/{reference}/cancel",
        At(Role::Admin),
    ),
    (
        "POST",
        "/organiser/bookings/{reference}/invoices/{number}/paid",
        At(Role::Admin),
    ),
    ("GET", "/organiser/invoices/overdue", At(Role::Admin)),
    ("GET", "/organiser/invoices/{number}/pdf", At(Role::Admin)),
    ("GET", "/organiser/outbox", At(Role::Admin)),
    ("POST", "/organiser/outbox/{id}/retry", At(Role::Admin)),
    // people of a session
    ("GET", "/organiser/sessions/{id}/people", At(Role::Admin)),
    (
        "POST",
        "/organiser/sessions/{id}/people/promote",
        At(Role::Admin),
    ),
    (
        "POST",
        "/organiser/sessions/{id}/people/move",
        At(Role::Admin),
    ),
    (
        "GET",
        "/organiser/sessions/{id}/people/cancel",
        At(Role::Admin),
    ),
    (
        "POST",
        "/organiser/sessions/{id}/people/cancel",
        At(Role::Admin),
    ),
    (
        "POST",
        "/organiser/sessions/{id}/people/resend",
        At(Role::Admin),
    ),
];

/// A small programme to aim the requests at: an invoicing event with two sessions, one booking
/// paid by invoice (so it has a reference, an invoice number and a seat).
struct Programme {
    slug: String,
    session: i64,
    reference: String,
    number: String,
    seat: i64,
    email_job: i64,
}

impl Programme {
    async fn create(app: &TestApp) -> Programme {
        let slug = "authorisation".to_owned();
        let body = merged(
            crate::helpers::event_body(&slug),
            json!({
                "allow_clashes": true, "vat_rate_bp": 2000,
                "invoices_allowed": true, "invoice_prefix": "AUTH"
            }),
        );
        expect_json(app.admin_post("/api/v1/admin/events", &body).await, 201).await;
        let session = app.session(&slug, "Portfolio governance", 10, 14_500).await;
        app.next_day_session(&slug, 10, 0).await;
        let booked = app.booked(&slug, "ada@example.org", &[session]).await;
        let reference = booked["reference"].as_str().expect("reference").to_owned();
        let token = booked["manage_token"].as_str().expect("token").to_owned();
        let invoice = expect_json(
            app.post(
                &format!("/api/v1/bookings/{token}/payments/invoice"),
                &json!({
                    "company": "Analytical Engines Ltd",
                    "billing_address": "1 Babbage Street\nLondon EC1 2AB"
                }),
            )
            .await,
            201,
        )
        .await;
        let number = invoice["number"].as_str().expect("number").to_owned();
        let db = app.db.clone();
        let (seat, email_job) = tokio::task::spawn_blocking(move || {
            use masterclass::db::schema::{email_jobs, seats};
            let mut conn = db.conn().expect("connection");
            let seat = seats::table
                .filter(seats::session_id.eq(session))
                .select(seats::id)
                .first::<i64>(&mut *conn)
                .expect("a seat");
            let job = email_jobs::table
                .select(email_jobs::id)
                .first::<i64>(&mut *conn)
                .optional()
                .expect("email jobs")
                .unwrap_or(1);
            (seat, job)
        })
        .await
        .expect("query task");
        Programme {
            slug,
            session,
            reference,
            number,
            seat,
            email_job,
        }
    }

    /// `template` with its parameters filled from this programme.
    fn fill(&self, template: &str) -> String {
        template
            .replace("{slug}", &self.slug)
            .replace("{id}", &self.session.to_string())
            .replace("{entry_id}", "1")
            .replace("{reference}", &self.reference)
            .replace("{number}", &self.number)
            .replace("{seat_id}", &self.seat.to_string())
            .replace("{seat}", &self.seat.to_string())
            .replace("{token}", "mcl_0000000000000000000000000000")
    }

    /// What the refused requests must leave alone, as the owner reads it.
    async fn snapshot(&self, app: &TestApp) -> Value {
        let event = app.programme(&self.slug).await;
        let bookings = app.admin_bookings(&self.slug).await;
        let invoices = expect_json(
            app.admin_get(&format!("/api/v1/admin/invoices?event={}", self.slug))
                .await,
            200,
        )
        .await;
        let attendees = expect_json(
            app.admin_get(&format!("/api/v1/admin/sessions/{}/checkin", self.session))
                .await,
            200,
        )
        .await;
        json!({"event": event, "bookings": bookings, "invoices": invoices, "checkin": attendees})
    }
}

on_both_backends!(
    every_admin_api_operation_refuses_a_missing_token_and_a_checkin_role,
    every_dashboard_route_refuses_the_signed_out_and_too_small_roles,
);

/// The admin operations the OpenAPI document lists: (method, path template).
fn admin_operations(doc: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else {
                continue;
            };
            let secured = op["security"]
                .as_array()
                .is_some_and(|schemes| schemes.iter().any(|s| s.get("organiser_token").is_some()));
            if secured || path.starts_with("/api/v1/admin") {
                found.push((method.to_owned(), path.clone()));
            }
        }
    }
    found.sort();
    found
}

async fn every_admin_api_operation_refuses_a_missing_token_and_a_checkin_role(app: TestApp) {
    let programme = Programme::create(&app).await;
    let checkin = app.organiser_token("door@example.org", Role::Checkin).await;
    let doc = expect_json(app.get("/api/v1/openapi.json").await, 200).await;
    let documented = admin_operations(&doc);
    let mut known: Vec<(String, String)> = API
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    known.sort();
    assert_eq!(
        documented, known,
        "every admin operation of the document has an expected answer here"
    );
    let before = programme.snapshot(&app).await;

    let mut wrong = Vec::new();
    for (method, template, role) in API {
        let path = programme.fill(template);
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("verb");
        for token in [None, Some(checkin.as_str())] {
            let mut request = app.request(method.clone(), &path);
            if method != reqwest::Method::GET {
                request = request.json(&json!({}));
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("request sent");
            let status = response.status().as_u16();
            let expected = match (token, role) {
                (None, _) => Some(401),
                (Some(_), Role::Checkin) => None,
                (Some(_), _) => Some(403),
            };
            match expected {
                Some(expected) if status != expected => {
                    let body = response.text().await.unwrap_or_default();
                    wrong.push(format!(
                        "{method} {template} with {}: {status}, expected {expected}: {body}",
                        token.map_or("no token", |_| "a checkin token")
                    ));
                }
                Some(_) => {
                    let (_, kind, _) = problem_type(response).await;
                    let wanted = if status == 401 {
                        "unauthorized"
                    } else {
                        "forbidden"
                    };
                    if kind != wanted {
                        wrong.push(format!("{method} {template}: problem {kind}"));
                    }
                }
                None if matches!(status, 401 | 403) => {
                    wrong.push(format!(
                        "{method} {template} refuses the checkin role: {status}"
                    ));
                }
                None => {}
            }
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    assert_eq!(
        programme.snapshot(&app).await,
        before,
        "refused requests changed nothing"
    );
    let retried = format!("/api/v1/admin/emails/{}/retry", programme.email_job);
    let refused = app
        .request(reqwest::Method::POST, &retried)
        .bearer_auth(&checkin)
        .json(&json!({}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(
        refused.status(),
        403,
        "an existing email job is no different"
    );
}

/// The dashboard routes as the `routes` functions of `src/pages/dashboard` mount them: each
/// path literal after `route(` with the method named before the next route.
fn mounted_dashboard_routes() -> Vec<(String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pages/dashboard");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("programme")] {
        for entry in std::fs::read_dir(dir).expect("dashboard sources") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        let pieces: Vec<&str> = text.split("route(").skip(1).collect();
        for piece in pieces {
            let Some(rest) = piece.trim_start().strip_prefix('"') else {
                continue;
            };
            let path = rest.split('"').next().expect("path literal");
            if !path.starts_with("/organiser") {
                continue;
            }
            let method = if piece.contains("post()") {
                "POST"
            } else {
                "GET"
            };
            found.push((method.to_owned(), path.to_owned()));
        }
    }
    found.sort();
    found
}

/// Sends `method` to `path`; a post carries only the form token.
async fn visit(browser: &mut Browser, method: &str, path: &str, csrf: &str) -> Page {
    match method {
        "GET" => browser.get(path).await,
        _ => browser.post(path, &[("csrf", csrf)]).await,
    }
}

fn to_sign_in(page: &Page) -> bool {
    page.status == 303
        && page
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|l| l.starts_with("/organiser/login?next="))
}

async fn every_dashboard_route_refuses_the_signed_out_and_too_small_roles(app: TestApp) {
    let mut known: Vec<(String, String)> = DASHBOARD
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    known.sort();
    assert_eq!(
        mounted_dashboard_routes(),
        known,
        "every mounted dashboard route has an entry here"
    );
    let programme = Programme::create(&app).await;
    let mut stranger = Browser::of(&app);
    let stranger_csrf = stranger.get("/organiser/login").await.csrf();
    let mut door = signed_in(&app, "door@example.org", Role::Checkin).await;
    let door_csrf = door.get("/organiser").await.csrf();
    let mut admin = signed_in(&app, "ada.admin@example.org", Role::Admin).await;
    let admin_csrf = admin.get("/organiser").await.csrf();
    let before = programme.snapshot(&app).await;

    let mut wrong = Vec::new();
    let mut checked = 0;
    for (method, template, needs) in DASHBOARD {
        let At(role) = needs else {
            if *method == "GET" {
                let page = stranger.get(&programme.fill(template)).await;
                if to_sign_in(&page) || page.status == 403 {
                    wrong.push(format!(
                        "{method} {template} is for anyone: {}",
                        page.status
                    ));
                }
                checked += 1;
            }
            continue;
        };
        checked += 1;
        let path = programme.fill(template);

        // A post carries a valid form token, so signing in is what it is sent to.
        let page = visit(&mut stranger, method, &path, &stranger_csrf).await;
        if !to_sign_in(&page) {
            wrong.push(format!(
                "{method} {template} signed out: {} {:?}",
                page.status,
                page.headers.get("location")
            ));
        }
        // A post without a valid form token is refused as that first, whoever sends it: the
        // same answer every time, before the sign-in or the role is looked at.
        if *method == "POST" {
            for (who, browser) in [("signed out", &mut stranger), ("checkin", &mut door)] {
                let page = visit(browser, method, &path, "not-the-token").await;
                if page.status != 403 || !page.body.contains("This form has expired") {
                    wrong.push(format!(
                        "{method} {template} {who} with a stale form: {} (not the expired-form page)",
                        page.status
                    ));
                }
            }
        }
        for (who, browser, csrf, held) in [
            ("checkin", &mut door, &door_csrf, Role::Checkin),
            ("admin", &mut admin, &admin_csrf, Role::Admin),
        ] {
            let allowed = held.allows(*role);
            if allowed && *method == "POST" {
                // An allowed post would act; the refusals are what this test is about.
                continue;
            }
            let page = visit(browser, method, &path, csrf).await;
            let refused = page.status == 403 || to_sign_in(&page);
            if allowed == refused {
                wrong.push(format!(
                    "{method} {template} as {who}: {} (allowed: {allowed})",
                    page.status
                ));
            }
            if !allowed && page.status == 403 && !page.body.contains("Not for your role") {
                wrong.push(format!(
                    "{method} {template} as {who}: 403 without the role page (CSRF?)"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    let public_posts = DASHBOARD
        .iter()
        .filter(|(method, _, needs)| *method == "POST" && *needs == Anyone)
        .count();
    assert_eq!(
        checked,
        DASHBOARD.len() - public_posts,
        "every route but the public posts"
    );
    assert_eq!(
        programme.snapshot(&app).await,
        before,
        "refused requests changed nothing"
    );
    let team = admin.get("/organiser/team").await;
    assert_eq!(team.status, 403, "the team is for owners");
}
