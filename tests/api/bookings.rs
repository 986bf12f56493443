//! Bookings: attendees book one or more sessions at once (all or nothing), read and cancel their
//! booking with its manage token; organisers list bookings and attendees.

use masterclass::organisers::Role;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    expect_invalid, expect_json, expect_problem, is_reference, session_body, TestApp,
};
use crate::on_both_backends;

/// A published event with a priced and a free session, ten seats each.
struct Programme {
    slug: String,
    priced: i64,
    free: i64,
}

async fn programme(app: &TestApp) -> Programme {
    let slug = app.published_event("pmo-2027").await;
    let priced = app
        .created_session(&slug, &session_body("Portfolio prioritisation", 10, 4500))
        .await;
    let free = app
        .created_session(&slug, &session_body("PMO reporting and dashboards", 10, 0))
        .await;
    Programme { slug, priced, free }
}

fn manage_token(booking: &Value) -> &str {
    booking["manage_token"].as_str().expect("manage token")
}

/// Each seat of a booking as (session id, state).
fn seat_states(booking: &Value) -> Vec<(i64, String)> {
    booking["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| {
            (
                s["session_id"].as_i64().expect("session id"),
                s["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

fn seats(list: &[(i64, &str)]) -> Vec<(i64, String)> {
    list.iter().map(|(id, s)| (*id, (*s).to_owned())).collect()
}

/// The attendee emails of an event's bookings, as organisers see them (newest first).
async fn booked_emails(app: &TestApp, slug: &str) -> Vec<String> {
    app.admin_bookings(slug)
        .await
        .iter()
        .map(|b| b["attendee"]["email"].as_str().expect("email").to_owned())
        .collect()
}

/// An organiser request: method, path and raw JSON body, if any.
type Route = (Method, String, Option<String>);

/// Every organiser route, with a body that would be accepted.
fn admin_routes(p: &Programme) -> Vec<Route> {
    vec![
        (
            Method::POST,
            "/api/v1/admin/events".to_owned(),
            Some(crate::helpers::event_body("another-event").to_string()),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/events/{}", p.slug),
            Some(json!({"name": "Hijacked"}).to_string()),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/events/{}/sessions", p.slug),
            Some(session_body("Injected", 5, 0).to_string()),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/sessions/{}", p.free),
            Some(json!({"title": "Hijacked"}).to_string()),
        ),
        (
            Method::GET,
            format!("/api/v1/admin/sessions/{}/attendees", p.free),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/admin/events/{}/bookings", p.slug),
            None,
        ),
    ]
}

/// Every organiser route, then those that take a body again with a broken one: who may not use
/// a route learns nothing about what it accepts.
fn admin_routes_and_broken_bodies(p: &Programme) -> Vec<Route> {
    let routes = admin_routes(p);
    let broken = routes
        .iter()
        .filter(|(_, _, body)| body.is_some())
        .map(|(method, path, _)| {
            (
                method.clone(),
                path.clone(),
                Some("{\"broken\": ".to_owned()),
            )
        })
        .collect::<Vec<_>>();
    routes.into_iter().chain(broken).collect()
}

/// Sends an organiser request with the given `Authorization` header (or none).
async fn send_as(
    app: &TestApp,
    (method, path, body): &Route,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut request = app.request(method.clone(), path);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.clone());
    }
    request.send().await.expect("request sent")
}

/// What a refused organiser request must not have changed.
async fn assert_programme_untouched(app: &TestApp, p: &Programme) {
    let programme = app.programme(&p.slug).await;
    assert_eq!(programme["name"], "PMO Masterclasses 2027");
    assert_eq!(programme["sessions"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        app.public_session(&p.slug, p.free).await["title"],
        "PMO reporting and dashboards"
    );
    let listed = expect_json(app.get("/api/v1/events").await, 200).await;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "no event was added"
    );
}

async fn a_booking_is_confirmed_with_a_reference_and_a_manage_token(app: TestApp) {
    let p = programme(&app).await;

    let booking = app.booked(&p.slug, "ada@example.org", &[p.free]).await;

    let reference = booking["reference"].as_str().expect("reference");
    assert!(is_reference(reference), "{reference} reads like PMO-7K3F9Q");
    assert!(
        manage_token(&booking).len() >= 32,
        "a long secret manage token"
    );
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(seat_states(&booking), seats(&[(p.free, "confirmed")]));
    assert_eq!(booking["seats"][0]["title"], "PMO reporting and dashboards");
    assert_eq!(booking["seats"][0]["starts_at"], "2027-03-10T09:00:00Z");
    assert_eq!(booking["attendee"]["name"], "Ada Lovelace");
    assert_eq!(booking["attendee"]["email"], "ada@example.org");
    assert_eq!(
        booking["attendee"]["organisation"],
        "Analytical Engines Ltd"
    );
    assert_eq!(booking["event"]["slug"], p.slug);
}

async fn a_priced_booking_is_unpaid_and_totals_its_sessions(app: TestApp) {
    let p = programme(&app).await;
    let second_priced = app
        .created_session(&p.slug, &session_body("Benefits realisation", 10, 3000))
        .await;

    let booking = app
        .booked(
            &p.slug,
            "ada@example.org",
            &[p.priced, p.free, second_priced],
        )
        .await;

    assert_eq!(booking["payment_status"], "unpaid");
    assert_eq!(booking["total_minor"], 7500);
    assert_eq!(booking["currency"], "GBP");
}

async fn a_free_booking_needs_no_payment(app: TestApp) {
    let p = programme(&app).await;

    let booking = app.booked(&p.slug, "ada@example.org", &[p.free]).await;

    assert_eq!(booking["payment_status"], "not_required");
    assert_eq!(booking["total_minor"], 0);
}

async fn a_booking_takes_one_seat_in_each_of_its_sessions(app: TestApp) {
    let p = programme(&app).await;
    let untouched = app
        .created_session(&p.slug, &session_body("Resource management", 10, 0))
        .await;

    app.booked(&p.slug, "ada@example.org", &[p.priced, p.free])
        .await;

    assert_eq!(app.seats_left(&p.slug, p.priced).await, 9);
    assert_eq!(app.seats_left(&p.slug, p.free).await, 9);
    assert_eq!(app.seats_left(&p.slug, untouched).await, 10);
    app.assert_no_drift();
}

async fn a_booking_for_several_sessions_is_all_or_nothing(app: TestApp) {
    let p = programme(&app).await;
    let full = app
        .created_session(&p.slug, &session_body("One seat only", 1, 0))
        .await;
    app.booked(&p.slug, "grace@example.org", &[full]).await;

    let response = app
        .book(&p.slug, "ada@example.org", &[p.priced, full])
        .await;

    let problem = expect_problem(response, 409, "session-full").await;
    assert_eq!(
        problem["session_id"], full,
        "names the full session: {problem}"
    );
    assert_eq!(problem["session_title"], "One seat only");
    assert_eq!(
        app.seats_left(&p.slug, p.priced).await,
        10,
        "no seat was kept"
    );
    assert_eq!(booked_emails(&app, &p.slug).await, ["grace@example.org"]);
    assert!(app.attendee_emails(p.priced).await.is_empty());
    app.assert_no_drift();
}

async fn the_same_person_cannot_book_a_session_twice_whatever_the_case_of_their_email(
    app: TestApp,
) {
    let p = programme(&app).await;
    app.booked(&p.slug, "ada@example.org", &[p.priced]).await;

    let again = app.book(&p.slug, "ADA@Example.ORG", &[p.priced]).await;
    let with_another = app
        .book(&p.slug, "Ada@example.org", &[p.free, p.priced])
        .await;

    let problem = expect_problem(again, 409, "already-booked").await;
    assert_eq!(
        problem["session_id"], p.priced,
        "names the session: {problem}"
    );
    expect_problem(with_another, 409, "already-booked").await;
    assert_eq!(app.seats_left(&p.slug, p.priced).await, 9);
    assert_eq!(app.seats_left(&p.slug, p.free).await, 10, "all or nothing");
    assert_eq!(booked_emails(&app, &p.slug).await.len(), 1);
}

async fn someone_already_booked_in_a_full_session_is_told_they_have_a_seat(app: TestApp) {
    let slug = app.published_event("already-in").await;
    let session = app.session(&slug, "Benefits realisation", 1, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;

    let again = app.book(&slug, "ada@example.org", &[session]).await;
    let stranger = app.book(&slug, "grace@example.org", &[session]).await;

    let problem = expect_problem(again, 409, "already-booked").await;
    assert_eq!(problem["session_id"], session);
    expect_problem(stranger, 409, "session-full").await;
}

async fn the_same_person_can_book_a_different_session(app: TestApp) {
    let p = programme(&app).await;
    app.booked(&p.slug, "ada@example.org", &[p.priced]).await;

    let second = app.book(&p.slug, "ada@example.org", &[p.free]).await;

    assert_eq!(expect_json(second, 201).await["status"], "confirmed");
    assert_eq!(app.attendee_emails(p.free).await, ["ada@example.org"]);
    assert_eq!(app.attendee_emails(p.priced).await, ["ada@example.org"]);
}

async fn a_session_of_another_event_cannot_be_booked_through_this_one(app: TestApp) {
    let p = programme(&app).await;
    let other = app.published_event("other-event").await;
    let foreign = app
        .created_session(&other, &session_body("Elsewhere", 10, 0))
        .await;

    let response = app
        .book(&p.slug, "ada@example.org", &[p.free, foreign])
        .await;

    expect_invalid(response, "session_ids").await;
    assert_eq!(app.seats_left(&other, foreign).await, 10);
    assert_eq!(app.seats_left(&p.slug, p.free).await, 10);
}

async fn a_booking_can_be_read_with_its_manage_token(app: TestApp) {
    let p = programme(&app).await;
    let booked = app
        .booked(&p.slug, "ada@example.org", &[p.priced, p.free])
        .await;

    let read = app.booking(manage_token(&booked)).await;

    assert_eq!(read["reference"], booked["reference"]);
    assert_eq!(read["total_minor"], 4500);
    assert_eq!(seat_states(&read), seat_states(&booked));
    assert!(
        read.get("manage_token").is_none(),
        "the token is shown only once"
    );
}

async fn a_wrong_manage_token_finds_no_booking(app: TestApp) {
    let p = programme(&app).await;
    app.booked(&p.slug, "ada@example.org", &[p.free]).await;

    let guessed = app
        .get("/api/v1/bookings/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd")
        .await;
    let short = app.get("/api/v1/bookings/abc").await;
    let cancel = app
        .cancel("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd", None)
        .await;

    expect_problem(guessed, 404, "not-found").await;
    expect_problem(short, 404, "not-found").await;
    expect_problem(cancel, 404, "not-found").await;
    assert_eq!(app.seats_left(&p.slug, p.free).await, 9);
}

async fn cancelling_without_a_body_cancels_every_seat_and_frees_them(app: TestApp) {
    let p = programme(&app).await;
    let booked = app
        .booked(&p.slug, "ada@example.org", &[p.priced, p.free])
        .await;

    let response = app.cancel(manage_token(&booked), None).await;

    let cancelled = expect_json(response, 200).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        seat_states(&cancelled),
        seats(&[(p.priced, "cancelled"), (p.free, "cancelled")])
    );
    assert_eq!(cancelled["total_minor"], 0);
    assert_eq!(cancelled["payment_status"], "not_required");
    assert_eq!(app.seats_left(&p.slug, p.priced).await, 10);
    assert_eq!(app.seats_left(&p.slug, p.free).await, 10);
    assert_eq!(
        app.booking(manage_token(&booked)).await["status"],
        "cancelled"
    );
    app.assert_no_drift();
}

async fn cancelling_some_sessions_keeps_the_rest_and_recomputes_the_total(app: TestApp) {
    let p = programme(&app).await;
    let second_priced = app
        .created_session(&p.slug, &session_body("Benefits realisation", 10, 3000))
        .await;
    let booked = app
        .booked(&p.slug, "ada@example.org", &[p.priced, second_priced])
        .await;

    let response = app
        .cancel(
            manage_token(&booked),
            Some(&json!({"session_ids": [p.priced]})),
        )
        .await;

    let changed = expect_json(response, 200).await;
    // Priced seats are held until paid; the one left is still held.
    assert_eq!(changed["status"], "held");
    assert_eq!(
        seat_states(&changed),
        seats(&[(p.priced, "cancelled"), (second_priced, "held")])
    );
    assert_eq!(changed["total_minor"], 3000);
    assert_eq!(changed["payment_status"], "unpaid");
    assert_eq!(app.seats_left(&p.slug, p.priced).await, 10);
    assert_eq!(app.seats_left(&p.slug, second_priced).await, 9);
    app.assert_no_drift();
}

async fn cancelling_sessions_that_are_not_in_the_booking_is_refused(app: TestApp) {
    let p = programme(&app).await;
    let booked = app.booked(&p.slug, "ada@example.org", &[p.priced]).await;

    let foreign = app
        .cancel(
            manage_token(&booked),
            Some(&json!({"session_ids": [p.priced, p.free]})),
        )
        .await;
    let empty = app
        .cancel(manage_token(&booked), Some(&json!({"session_ids": []})))
        .await;

    expect_invalid(foreign, "session_ids").await;
    expect_invalid(empty, "session_ids").await;
    let unchanged = app.booking(manage_token(&booked)).await;
    assert_eq!(seat_states(&unchanged), seats(&[(p.priced, "held")]));
    assert_eq!(app.seats_left(&p.slug, p.priced).await, 9);
}

async fn a_cancelled_seat_can_be_booked_again_by_the_same_person(app: TestApp) {
    let p = programme(&app).await;
    let first = app.booked(&p.slug, "ada@example.org", &[p.priced]).await;
    expect_json(app.cancel(manage_token(&first), None).await, 200).await;

    let again = app.book(&p.slug, "ada@example.org", &[p.priced]).await;

    assert_eq!(expect_json(again, 201).await["status"], "held");
    assert_eq!(app.seats_left(&p.slug, p.priced).await, 9);
    assert_eq!(app.attendee_emails(p.priced).await, ["ada@example.org"]);
    app.assert_no_drift();
}

async fn organiser_routes_need_a_valid_token(app: TestApp) {
    let p = programme(&app).await;
    let unknown = "Bearer mct_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd";

    for route in admin_routes_and_broken_bodies(&p) {
        for authorization in [
            None,
            Some(unknown),
            Some("Basic b3duZXI6c2VjcmV0"),
            Some("Bearer "),
        ] {
            let response = send_as(&app, &route, authorization).await;
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{} {} {:?} with {authorization:?}",
                route.0,
                route.1,
                route.2
            );
            expect_problem(response, 401, "unauthorized").await;
        }
    }

    assert_programme_untouched(&app, &p).await;
}

async fn a_checkin_organiser_is_forbidden_from_admin_routes(app: TestApp) {
    let p = programme(&app).await;
    let token = app.organiser_token("door@example.org", Role::Checkin).await;
    let authorization = format!("Bearer {token}");

    for route in admin_routes_and_broken_bodies(&p) {
        let response = send_as(&app, &route, Some(&authorization)).await;
        let problem = expect_problem(response, 403, "forbidden").await;
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains("checkin")),
            "{} {}: {problem}",
            route.0,
            route.1
        );
    }

    assert_programme_untouched(&app, &p).await;
}

async fn the_bookings_list_shows_each_booking_without_its_manage_token(app: TestApp) {
    let p = programme(&app).await;
    let ada = app.booked(&p.slug, "ada@example.org", &[p.priced]).await;
    let grace = app
        .booked(&p.slug, "grace@example.org", &[p.priced, p.free])
        .await;

    let response = app
        .admin_get(&format!("/api/v1/admin/events/{}/bookings", p.slug))
        .await;

    let text = response.text().await.expect("body");
    for secret in [manage_token(&ada), manage_token(&grace)] {
        assert!(!text.contains(secret), "a manage token leaked: {text}");
    }
    assert!(!text.contains("manage_token"), "{text}");
    let list: Vec<Value> = serde_json::from_str(&text).expect("a list");
    let summary: Vec<(Value, Value, usize)> = list
        .iter()
        .map(|b| {
            (
                b["reference"].clone(),
                b["total_minor"].clone(),
                b["seats"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (grace["reference"].clone(), json!(4500), 2),
            (ada["reference"].clone(), json!(4500), 1)
        ],
        "newest first"
    );
}

async fn the_attendee_list_shows_who_holds_a_seat(app: TestApp) {
    let p = programme(&app).await;
    let ada = app.booked(&p.slug, "ada@example.org", &[p.priced]).await;
    let grace = app
        .booked(&p.slug, "Grace@Example.org", &[p.priced, p.free])
        .await;
    app.booked(&p.slug, "alan@example.org", &[p.free]).await;
    expect_json(app.cancel(manage_token(&ada), None).await, 200).await;

    let response = app
        .admin_get(&format!("/api/v1/admin/sessions/{}/attendees", p.priced))
        .await;

    let text = response.text().await.expect("body");
    assert!(
        !text.contains(manage_token(&grace)),
        "a manage token leaked"
    );
    let list: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(list["session"]["id"], p.priced);
    assert_eq!(list["session"]["seats_left"], 9);
    let attendees = list["attendees"].as_array().expect("attendees");
    assert_eq!(attendees.len(), 1, "only people holding a seat: {list}");
    assert_eq!(attendees[0]["email"], "Grace@Example.org");
    assert_eq!(attendees[0]["reference"], grace["reference"]);
    assert_eq!(attendees[0]["state"], "held");
    assert_eq!(
        app.attendee_emails(p.free).await,
        ["Grace@Example.org", "alan@example.org"],
        "in booking order"
    );
}

on_both_backends!(
    a_booking_is_confirmed_with_a_reference_and_a_manage_token,
    a_priced_booking_is_unpaid_and_totals_its_sessions,
    a_free_booking_needs_no_payment,
    a_booking_takes_one_seat_in_each_of_its_sessions,
    a_booking_for_several_sessions_is_all_or_nothing,
    the_same_person_cannot_book_a_session_twice_whatever_the_case_of_their_email,
    someone_already_booked_in_a_full_session_is_told_they_have_a_seat,
    the_same_person_can_book_a_different_session,
    a_session_of_another_event_cannot_be_booked_through_this_one,
    a_booking_can_be_read_with_its_manage_token,
    a_wrong_manage_token_finds_no_booking,
    cancelling_without_a_body_cancels_every_seat_and_frees_them,
    cancelling_some_sessions_keeps_the_rest_and_recomputes_the_total,
    cancelling_sessions_that_are_not_in_the_booking_is_refused,
    a_cancelled_seat_can_be_booked_again_by_the_same_person,
    organiser_routes_need_a_valid_token,
    a_checkin_organiser_is_forbidden_from_admin_routes,
    the_bookings_list_shows_each_booking_without_its_manage_token,
    the_attendee_list_shows_who_holds_a_seat,
);
