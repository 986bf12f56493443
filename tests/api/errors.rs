//! Refused requests: every one gets a 4xx `application/problem+json` answer with a stable `type`
//! and a useful detail, never a 500, and leaves nothing behind.

use std::io::{Read, Write};
use std::net::TcpStream;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    booking_body, event_body, expect_invalid, expect_json, expect_problem, merged, problem_type,
    session_body, TestApp,
};
use crate::on_both_backends;

const CAPACITY: i64 = 10;

/// An event open for booking with one priced session.
struct Open {
    slug: String,
    session: i64,
}

impl Open {
    async fn new(app: &TestApp) -> Open {
        let slug = app.published_event("refusals").await;
        let session = app
            .created_session(
                &slug,
                &session_body("P3O in practice", CAPACITY as i32, 4500),
            )
            .await;
        Open { slug, session }
    }

    fn bookings_path(&self) -> String {
        format!("/api/v1/events/{}/bookings", self.slug)
    }

    /// A booking request with `body` sent as raw bytes and `content_type`, if any.
    async fn post_raw(
        &self,
        app: &TestApp,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = app.request(Method::POST, &self.bookings_path()).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("request sent")
    }

    /// A booking request for the session with the usual attendee changed by `attendee`.
    fn body_with_attendee(&self, attendee: Value) -> Value {
        let mut body = booking_body("ada@example.org", &[self.session]);
        body["attendee"] = merged(body["attendee"].take(), attendee);
        body
    }

    /// The refused requests left no booking and no seat taken.
    async fn assert_nothing_booked(&self, app: &TestApp) {
        assert!(
            app.admin_bookings(&self.slug).await.is_empty(),
            "a refused request wrote a booking"
        );
        assert_eq!(app.seats_left(&self.slug, self.session).await, CAPACITY);
        app.assert_no_drift();
    }
}

/// Sends a JSON POST with a chunked body, so the server learns its size only while reading it.
/// Returns the status and content type of the answer.
fn post_chunked(address: &str, path: &str, body: &[u8]) -> (u16, String) {
    let host = address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut request = head.into_bytes();
    for chunk in body.chunks(8 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading it all; the answer is what counts.
    let _ = stream.write_all(&request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let content_type = answer
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_default();
    (status, content_type)
}

async fn malformed_json_is_a_bad_request_and_books_nothing(app: TestApp) {
    let open = Open::new(&app).await;
    let bodies = [
        "{\"attendee\": ".to_owned(),
        "not json at all".to_owned(),
        format!(
            "{} trailing",
            booking_body("ada@example.org", &[open.session])
        ),
        "{\"session_ids\": [1,]}".to_owned(),
        String::new(),
    ];

    for body in bodies {
        let response = open
            .post_raw(&app, Some("application/json"), body.clone())
            .await;
        eprintln!("body: {body:?}");
        expect_problem(response, 400, "malformed-json").await;
    }

    let event = app
        .request(Method::POST, "/api/v1/admin/events")
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{\"slug\": \"half\", ")
        .send()
        .await
        .expect("request sent");
    expect_problem(event, 400, "malformed-json").await;
    let listed = expect_json(app.get("/api/v1/events").await, 200).await;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "no event was created"
    );
    open.assert_nothing_booked(&app).await;
}

async fn wrong_types_are_refused_naming_the_field(app: TestApp) {
    let open = Open::new(&app).await;
    let cases = [
        (
            json!({"attendee": {"name": "Ada", "email": "ada@example.org"}, "session_ids": "all"}),
            "session_ids",
        ),
        (
            json!({"attendee": {"name": "Ada", "email": "ada@example.org"}, "session_ids": ["one"]}),
            "session_ids[0]",
        ),
        (
            json!({"attendee": {"name": "Ada", "email": "ada@example.org"}, "session_ids": [1.5]}),
            "session_ids[0]",
        ),
        (
            json!({"attendee": {"name": 42, "email": "ada@example.org"}, "session_ids": [open.session]}),
            "attendee.name",
        ),
        (
            json!({"attendee": "Ada Lovelace", "session_ids": [open.session]}),
            "attendee",
        ),
        (json!("Ada Lovelace, session 1"), "body"),
    ];

    for (body, field) in cases {
        expect_invalid(app.post(&open.bookings_path(), &body).await, field).await;
    }
    let capacity = merged(session_body("Typed", 10, 0), json!({"capacity": "ten"}));
    expect_invalid(app.create_session(&open.slug, &capacity).await, "capacity").await;

    assert_eq!(
        app.programme(&open.slug).await["sessions"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "no session was created"
    );
    open.assert_nothing_booked(&app).await;
}

async fn a_missing_field_is_refused_with_its_name(app: TestApp) {
    let open = Open::new(&app).await;

    let response = app
        .post(
            &open.bookings_path(),
            &json!({"attendee": {"name": "Ada", "email": "ada@example.org"}}),
        )
        .await;

    let problem = expect_problem(response, 422, "validation").await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("session_ids")),
        "{problem}"
    );
    open.assert_nothing_booked(&app).await;
}

async fn unknown_fields_are_refused(app: TestApp) {
    let open = Open::new(&app).await;
    let top_level = merged(
        booking_body("ada@example.org", &[open.session]),
        json!({"coupon": "FREE"}),
    );
    let nested = open.body_with_attendee(json!({"phone": "+44 20 7946 0000"}));

    for (body, name) in [(top_level, "coupon"), (nested, "phone")] {
        let problem = expect_problem(
            app.post(&open.bookings_path(), &body).await,
            422,
            "validation",
        )
        .await;
        assert!(
            problem["detail"].as_str().is_some_and(|d| d.contains(name)),
            "the answer names {name}: {problem}"
        );
    }
    let event = app
        .create_event(&merged(event_body("extra-field"), json!({"capacity": 10})))
        .await;
    expect_problem(event, 422, "validation").await;

    open.assert_nothing_booked(&app).await;
}

async fn a_body_that_is_not_declared_as_json_is_unsupported(app: TestApp) {
    let open = Open::new(&app).await;
    let body = booking_body("ada@example.org", &[open.session]).to_string();

    let missing = open.post_raw(&app, None, body.clone()).await;
    let text = open.post_raw(&app, Some("text/plain"), body.clone()).await;
    let form = open
        .post_raw(
            &app,
            Some("application/x-www-form-urlencoded"),
            body.clone(),
        )
        .await;

    for response in [missing, text, form] {
        expect_problem(response, 415, "unsupported-media-type").await;
    }
    open.assert_nothing_booked(&app).await;
    let with_charset = open
        .post_raw(&app, Some("application/json; charset=utf-8"), body)
        .await;
    expect_json(with_charset, 201).await;
}

async fn a_body_larger_than_the_limit_is_refused(app: TestApp) {
    let open = Open::new(&app).await;
    let oversized = open
        .body_with_attendee(json!({"name": "A".repeat(70 * 1024)}))
        .to_string();

    let declared = open
        .post_raw(&app, Some("application/json"), oversized.clone())
        .await;
    let address = app.address.clone();
    let path = open.bookings_path();
    let (chunked_status, chunked_type) =
        tokio::task::spawn_blocking(move || post_chunked(&address, &path, oversized.as_bytes()))
            .await
            .expect("chunked request");

    let problem = expect_problem(declared, 413, "payload-too-large").await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("65536")),
        "the answer says the limit: {problem}"
    );
    assert_eq!(
        (chunked_status, chunked_type.as_str()),
        (413, "application/problem+json"),
        "a chunked body is measured as it arrives"
    );
    open.assert_nothing_booked(&app).await;
}

async fn over_long_strings_are_refused_naming_the_field(app: TestApp) {
    let open = Open::new(&app).await;
    let cases = [
        (json!({"name": "A".repeat(10_000)}), "attendee.name"),
        (
            json!({"organisation": "O".repeat(10_000)}),
            "attendee.organisation",
        ),
        (
            json!({"email": format!("{}@example.org", "a".repeat(300))}),
            "attendee.email",
        ),
        (json!({"name": "Ada\u{0}Lovelace"}), "attendee.name"),
    ];

    for (attendee, field) in cases {
        let response = app
            .post(&open.bookings_path(), &open.body_with_attendee(attendee))
            .await;
        expect_invalid(response, field).await;
    }
    let long_event = merged(event_body("long-name"), json!({"name": "N".repeat(10_000)}));
    expect_invalid(app.create_event(&long_event).await, "name").await;

    open.assert_nothing_booked(&app).await;
}

async fn a_bad_email_is_refused_naming_it(app: TestApp) {
    let open = Open::new(&app).await;

    for email in [
        "not-an-email",
        "ada@localhost",
        "Ada <ada@example.org>",
        "ada @example.org",
        "",
    ] {
        let response = app
            .post(
                &open.bookings_path(),
                &open.body_with_attendee(json!({"email": email})),
            )
            .await;
        expect_invalid(response, "attendee.email").await;
    }

    open.assert_nothing_booked(&app).await;
}

async fn every_field_at_fault_is_named_in_one_answer(app: TestApp) {
    let open = Open::new(&app).await;
    let body = open.body_with_attendee(json!({"name": " ", "email": "nobody"}));

    let problem = expect_problem(
        app.post(&open.bookings_path(), &body).await,
        422,
        "validation",
    )
    .await;

    let mut fields = crate::helpers::error_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["attendee.email", "attendee.name"], "{problem}");
    open.assert_nothing_booked(&app).await;
}

async fn session_lists_that_make_no_sense_are_refused(app: TestApp) {
    let open = Open::new(&app).await;
    let too_many: Vec<i64> = (1..=21).collect();
    let lists: [&[i64]; 4] = [&[], &[open.session, open.session], &too_many, &[987_654]];

    for ids in lists {
        expect_invalid(
            app.book(&open.slug, "ada@example.org", ids).await,
            "session_ids",
        )
        .await;
    }

    open.assert_nothing_booked(&app).await;
}

async fn an_unknown_event_is_not_found(app: TestApp) {
    let open = Open::new(&app).await;
    let requests = [
        app.get("/api/v1/events/no-such-event").await,
        app.book("no-such-event", "ada@example.org", &[open.session])
            .await,
        app.patch_event("no-such-event", &json!({"name": "Ghost"}))
            .await,
        app.create_session("no-such-event", &session_body("Ghost", 10, 0))
            .await,
        app.admin_get("/api/v1/admin/events/no-such-event/bookings")
            .await,
    ];

    for response in requests {
        expect_problem(response, 404, "not-found").await;
    }

    open.assert_nothing_booked(&app).await;
}

async fn a_session_id_that_is_not_a_number_is_not_found(app: TestApp) {
    let open = Open::new(&app).await;
    let requests = [
        patch_session_path(&app, "abc").await,
        patch_session_path(&app, "99999999999999999999").await,
        patch_session_path(&app, "987654").await,
        app.admin_get("/api/v1/admin/sessions/abc/attendees").await,
        app.admin_get("/api/v1/admin/sessions/987654/attendees")
            .await,
    ];

    for response in requests {
        expect_problem(response, 404, "not-found").await;
    }

    assert_eq!(
        app.public_session(&open.slug, open.session).await["title"],
        "P3O in practice"
    );
}

/// Under `/api/` an unknown address is a problem document; elsewhere it is the 404 page.
async fn an_unknown_address_is_a_problem_not_found(app: TestApp) {
    let page = app.get("/nothing-here").await;
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html"),
        "{:?}",
        page.headers()
    );
    assert!(page.text().await.expect("body").contains("Page not found"));

    let requests = [
        app.get("/api/v1/nothing-here").await,
        app.request(Method::DELETE, "/api/v1/events")
            .send()
            .await
            .expect("sent"),
    ];

    for response in requests {
        let (status, kind, body) = problem_type(response).await;
        assert!(
            matches!(
                (status, kind.as_str()),
                (404, "not-found") | (405, "method-not-allowed")
            ),
            "{status} {kind}: {body}"
        );
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
    }
}

async fn health_and_readiness_answer_ok(app: TestApp) {
    for path in ["/healthz", "/readyz"] {
        let health = expect_json(app.get(path).await, 200).await;
        assert_eq!(health, json!({"status": "ok"}), "{path}");
    }
}

/// `PATCH /api/v1/admin/sessions/{id}` with any text as the id and a valid body.
async fn patch_session_path(app: &TestApp, id: &str) -> reqwest::Response {
    app.admin_patch(
        &format!("/api/v1/admin/sessions/{id}"),
        &json!({"capacity": 5}),
    )
    .await
}

async fn a_slug_with_bytes_no_slug_can_have_is_not_found(app: TestApp) {
    let slug = app.published_event("real-event").await;
    let session = app.session(&slug, "Portfolio prioritisation", 10, 0).await;

    for odd in ["%00", "a%00b", "%F0%9F%98%80", "UPPER"] {
        expect_problem(
            app.get(&format!("/api/v1/events/{odd}")).await,
            404,
            "not-found",
        )
        .await;
        let booking = app
            .post(
                &format!("/api/v1/events/{odd}/bookings"),
                &booking_body("ada@example.org", &[session]),
            )
            .await;
        expect_problem(booking, 404, "not-found").await;
        let patch = app
            .admin_patch(
                &format!("/api/v1/admin/events/{odd}"),
                &json!({"name": "X"}),
            )
            .await;
        expect_problem(patch, 404, "not-found").await;
        let list = app
            .admin_get(&format!("/api/v1/admin/events/{odd}/bookings"))
            .await;
        expect_problem(list, 404, "not-found").await;
    }
    assert_eq!(
        app.seats_left(&slug, session).await,
        10,
        "nothing was booked"
    );
}

async fn times_outside_2000_to_2199_are_refused_naming_the_field(app: TestApp) {
    let slug = app.published_event("far-future").await;

    let far = merged(
        session_body("Far away", 10, 0),
        json!({"starts_at": "9999-12-31T23:59:59-14:00"}),
    );
    let refused = app
        .admin_post(&format!("/api/v1/admin/events/{slug}/sessions"), &far)
        .await;
    expect_invalid(refused, "starts_at").await;
    let early = merged(
        event_body("too-early"),
        json!({"registration_opens_at": "1970-01-01T00:00:00Z"}),
    );
    expect_invalid(
        app.admin_post("/api/v1/admin/events", &early).await,
        "registration_opens_at",
    )
    .await;
    let session = app.session(&slug, "Near", 10, 0).await;
    let patch = app
        .admin_patch(
            &format!("/api/v1/admin/sessions/{session}"),
            &json!({"ends_at": "2300-01-01T00:00:00Z"}),
        )
        .await;
    expect_invalid(patch, "ends_at").await;
    assert_eq!(
        app.programme(&slug).await["sessions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

on_both_backends!(
    malformed_json_is_a_bad_request_and_books_nothing,
    wrong_types_are_refused_naming_the_field,
    a_missing_field_is_refused_with_its_name,
    unknown_fields_are_refused,
    a_body_that_is_not_declared_as_json_is_unsupported,
    a_body_larger_than_the_limit_is_refused,
    over_long_strings_are_refused_naming_the_field,
    a_bad_email_is_refused_naming_it,
    every_field_at_fault_is_named_in_one_answer,
    session_lists_that_make_no_sense_are_refused,
    an_unknown_event_is_not_found,
    a_session_id_that_is_not_a_number_is_not_found,
    an_unknown_address_is_a_problem_not_found,
    health_and_readiness_answer_ok,
    a_slug_with_bytes_no_slug_can_have_is_not_found,
    times_outside_2000_to_2199_are_refused_naming_the_field,
);
