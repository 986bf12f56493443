//! Events: the public list and programme, and what organisers may create and change.

use serde_json::{json, Value};

use crate::helpers::{
    event_body, expect_invalid, expect_json, expect_problem, merged, session_body, TestApp,
};
use crate::on_both_backends;

/// Slugs of the events the public list shows.
async fn public_slugs(app: &TestApp) -> Vec<String> {
    let list = expect_json(app.get("/api/v1/events").await, 200).await;
    list.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["slug"].as_str().expect("slug").to_owned())
        .collect()
}

/// An event with `changes` to the usual published one, and one free session with room.
async fn event_with_session(app: &TestApp, slug: &str, changes: Value) -> (String, i64) {
    let slug = app.created_event(&merged(event_body(slug), changes)).await;
    let session = app
        .created_session(&slug, &session_body("PMO set-up", 10, 0))
        .await;
    (slug, session)
}

async fn the_public_list_shows_only_published_events(app: TestApp) {
    app.published_event("open-programme").await;
    let mut draft = event_body("next-year");
    draft.as_object_mut().expect("object").remove("status");
    app.created_event(&draft).await;

    let slugs = public_slugs(&app).await;

    assert_eq!(
        slugs,
        ["open-programme"],
        "an event is a draft unless published"
    );
}

async fn a_draft_event_cannot_be_seen_or_booked_by_the_public(app: TestApp) {
    let (slug, session) =
        event_with_session(&app, "in-preparation", json!({"status": "draft"})).await;

    let shown = app.get(&format!("/api/v1/events/{slug}")).await;
    let booked = app.book(&slug, "ada@example.org", &[session]).await;

    expect_problem(shown, 404, "not-found").await;
    expect_problem(booked, 404, "not-found").await;
    assert!(
        app.admin_bookings(&slug).await.is_empty(),
        "nothing was booked"
    );
}

async fn the_programme_shows_each_session_with_capacity_seats_left_and_price(app: TestApp) {
    let slug = app.published_event("programme").await;
    let priced = app
        .created_session(&slug, &session_body("P3O in practice", 12, 4500))
        .await;
    app.booked(&slug, "ada@example.org", &[priced]).await;

    let programme = app.programme(&slug).await;

    assert_eq!(programme["slug"], slug);
    assert_eq!(programme["name"], "PMO Masterclasses 2027");
    assert_eq!(programme["time_zone"], "Europe/London");
    assert_eq!(programme["currency"], "GBP");
    assert_eq!(programme["registration_open"], true);
    let sessions = programme["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert_eq!(session["id"], priced);
    assert_eq!(session["title"], "P3O in practice");
    assert_eq!(session["room"], "Thames Room");
    assert_eq!(session["speakers"], json!(["Priya Natarajan"]));
    assert_eq!(session["capacity"], 12);
    assert_eq!(session["seats_left"], 11);
    assert_eq!(session["price_minor"], 4500);
    assert_eq!(session["currency"], "GBP");
    assert_eq!(session["starts_at"], "2027-03-10T09:00:00Z");
}

async fn times_are_shown_in_the_event_time_zone_with_their_offset(app: TestApp) {
    let slug = app
        .created_event(&merged(
            event_body("amsterdam"),
            json!({
                "time_zone": "Europe/Amsterdam",
                "currency": "EUR",
                "registration_closes_at": "2027-01-15T12:00:00Z"
            }),
        ))
        .await;
    let winter = app
        .session_at(
            &slug,
            "Winter",
            10,
            0,
            "2027-01-20T08:00:00Z",
            "2027-01-20T09:30:00Z",
        )
        .await;
    let summer = app
        .session_at(
            &slug,
            "Summer",
            10,
            0,
            "2027-06-20T08:00:00Z",
            "2027-06-20T09:30:00Z",
        )
        .await;
    let from_india = app
        .session_at(
            &slug,
            "Remote",
            10,
            0,
            "2027-01-21T14:30:00+05:30",
            "2027-01-21T16:00:00+05:30",
        )
        .await;

    let programme = app.programme(&slug).await;
    let shown = |id: i64| {
        programme["sessions"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == id).cloned())
            .expect("session in programme")
    };

    assert_eq!(
        programme["registration_closes_at"],
        "2027-01-15T13:00:00+01:00"
    );
    assert_eq!(shown(winter)["starts_at"], "2027-01-20T09:00:00+01:00");
    assert_eq!(shown(winter)["ends_at"], "2027-01-20T10:30:00+01:00");
    assert_eq!(shown(summer)["starts_at"], "2027-06-20T10:00:00+02:00");
    assert_eq!(shown(from_india)["starts_at"], "2027-01-21T10:00:00+01:00");
}

async fn changing_the_time_zone_shows_the_programme_in_the_new_zone(app: TestApp) {
    let slug = app.published_event("moving").await;
    let session = app
        .session_at(
            &slug,
            "Moving",
            10,
            0,
            "2027-01-20T09:00:00Z",
            "2027-01-20T10:00:00Z",
        )
        .await;

    let response = app
        .patch_event(&slug, &json!({"time_zone": "Europe/Amsterdam"}))
        .await;

    assert_eq!(
        expect_json(response, 200).await["time_zone"],
        "Europe/Amsterdam"
    );
    let shown = app.public_session(&slug, session).await;
    assert_eq!(
        shown["starts_at"], "2027-01-20T10:00:00+01:00",
        "the same instant, shown in the new zone"
    );
}

async fn a_new_event_with_invalid_fields_is_refused_naming_each_one(app: TestApp) {
    let body = merged(
        event_body("irrelevant"),
        json!({"slug": "Not A Slug!", "time_zone": "Mars/Olympus_Mons", "currency": "EURO", "name": " "}),
    );

    let problem = expect_invalid(app.create_event(&body).await, "slug").await;

    let mut fields = crate::helpers::error_fields(&problem);
    fields.sort();
    assert_eq!(
        fields,
        ["currency", "name", "slug", "time_zone"],
        "{problem}"
    );
    assert!(public_slugs(&app).await.is_empty(), "nothing was created");
}

async fn registration_that_closes_before_it_opens_is_refused(app: TestApp) {
    let window = json!({
        "registration_opens_at": "2027-02-01T09:00:00Z",
        "registration_closes_at": "2027-01-01T09:00:00Z"
    });
    let existing = app.published_event("window").await;

    let created = app
        .create_event(&merged(event_body("backwards"), window.clone()))
        .await;
    let changed = app.patch_event(&existing, &window).await;

    expect_invalid(created, "registration_closes_at").await;
    expect_invalid(changed, "registration_closes_at").await;
    assert_eq!(
        public_slugs(&app).await,
        [existing.as_str()],
        "no event was created"
    );
    let programme = app.programme(&existing).await;
    assert_eq!(
        programme["registration_opens_at"],
        Value::Null,
        "nothing was changed"
    );
    assert_eq!(programme["registration_closes_at"], Value::Null);
}

async fn a_second_event_with_the_same_slug_is_a_conflict(app: TestApp) {
    let slug = app.published_event("taken").await;

    let response = app
        .create_event(&merged(event_body(&slug), json!({"name": "Impostor"})))
        .await;

    expect_problem(response, 409, "conflict").await;
    assert_eq!(app.programme(&slug).await["name"], "PMO Masterclasses 2027");
}

async fn an_organiser_can_change_an_event_and_publish_it(app: TestApp) {
    let slug = app
        .created_event(&merged(event_body("autumn"), json!({"status": "draft"})))
        .await;

    let response = app
        .patch_event(
            &slug,
            &json!({
                "name": "PMO Autumn School",
                "venue": "Corn Exchange, Leeds",
                "currency": "eur",
                "registration_opens_at": "2026-01-01T00:00:00Z",
                "status": "published"
            }),
        )
        .await;

    let changed = expect_json(response, 200).await;
    assert_eq!(changed["status"], "published");
    let programme = app.programme(&slug).await;
    assert_eq!(programme["name"], "PMO Autumn School");
    assert_eq!(programme["venue"], "Corn Exchange, Leeds");
    assert_eq!(programme["currency"], "EUR");
    assert_eq!(programme["registration_opens_at"], "2026-01-01T00:00:00Z");
    assert_eq!(public_slugs(&app).await, [slug.as_str()]);
}

async fn invalid_changes_to_an_event_are_refused_and_change_nothing(app: TestApp) {
    let slug = app.published_event("steady").await;

    let response = app
        .patch_event(
            &slug,
            &json!({"name": "Renamed", "time_zone": "Atlantis/Capital"}),
        )
        .await;

    expect_invalid(response, "time_zone").await;
    let programme = app.programme(&slug).await;
    assert_eq!(programme["name"], "PMO Masterclasses 2027");
    assert_eq!(programme["time_zone"], "Europe/London");
}

async fn bookings_are_refused_once_registration_has_closed(app: TestApp) {
    let (slug, session) = event_with_session(
        &app,
        "closed",
        json!({"registration_closes_at": "2026-01-01T00:00:00Z"}),
    )
    .await;

    let response = app.book(&slug, "ada@example.org", &[session]).await;

    expect_problem(response, 409, "registration-closed").await;
    assert_eq!(app.programme(&slug).await["registration_open"], false);
    assert_eq!(app.seats_left(&slug, session).await, 10);
    assert!(
        app.admin_bookings(&slug).await.is_empty(),
        "nothing was booked"
    );
}

async fn bookings_are_refused_before_registration_opens(app: TestApp) {
    let (slug, session) = event_with_session(
        &app,
        "not-yet",
        json!({"registration_opens_at": "2027-01-01T00:00:00Z"}),
    )
    .await;

    let response = app.book(&slug, "ada@example.org", &[session]).await;

    expect_problem(response, 409, "registration-closed").await;
    assert_eq!(app.seats_left(&slug, session).await, 10);
    assert!(
        app.admin_bookings(&slug).await.is_empty(),
        "nothing was booked"
    );
}

async fn clearing_the_closing_time_with_null_reopens_registration(app: TestApp) {
    let (slug, session) = event_with_session(
        &app,
        "reopened",
        json!({"registration_closes_at": "2026-01-01T00:00:00Z"}),
    )
    .await;

    let response = app
        .patch_event(&slug, &json!({"registration_closes_at": null}))
        .await;

    let changed = expect_json(response, 200).await;
    assert_eq!(changed["registration_closes_at"], Value::Null);
    assert_eq!(changed["registration_open"], true);
    app.booked(&slug, "ada@example.org", &[session]).await;
}

async fn the_currency_cannot_change_once_an_event_has_bookings(app: TestApp) {
    let (slug, session) = event_with_session(&app, "locked", json!({})).await;
    app.booked(&slug, "ada@example.org", &[session]).await;

    let response = app.patch_event(&slug, &json!({"currency": "EUR"})).await;

    expect_problem(response, 409, "conflict").await;
    assert_eq!(app.programme(&slug).await["currency"], "GBP");
}

on_both_backends!(
    the_public_list_shows_only_published_events,
    a_draft_event_cannot_be_seen_or_booked_by_the_public,
    the_programme_shows_each_session_with_capacity_seats_left_and_price,
    times_are_shown_in_the_event_time_zone_with_their_offset,
    changing_the_time_zone_shows_the_programme_in_the_new_zone,
    a_new_event_with_invalid_fields_is_refused_naming_each_one,
    registration_that_closes_before_it_opens_is_refused,
    a_second_event_with_the_same_slug_is_a_conflict,
    an_organiser_can_change_an_event_and_publish_it,
    invalid_changes_to_an_event_are_refused_and_change_nothing,
    bookings_are_refused_once_registration_has_closed,
    bookings_are_refused_before_registration_opens,
    clearing_the_closing_time_with_null_reopens_registration,
    the_currency_cannot_change_once_an_event_has_bookings,
);
