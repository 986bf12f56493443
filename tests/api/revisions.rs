//! Changes made against an old read are refused instead of undoing someone else's: the API's
//! `ETag` and `If-Match` on events and sessions, and the dashboard's edit and capacity forms,
//! which carry the revision they were filled in against.

use masterclass::organisers::Role;
use serde_json::json;

use crate::dashboard::signed_in;
use crate::helpers::{expect_json, expect_problem, TestApp};
use crate::on_both_backends;
use crate::pages::Page;

on_both_backends!(
    a_session_patch_against_an_old_revision_is_refused,
    an_event_patch_against_an_old_revision_is_refused,
    a_session_form_overtaken_by_another_change_keeps_the_entries_and_says_what_changed,
    an_event_form_overtaken_by_another_change_saves_nothing,
    a_capacity_form_overtaken_by_another_change_saves_nothing,
);

/// The value of the input named `name` on `page`.
fn input(page: &Page, name: &str) -> String {
    let at = page
        .body
        .find(&format!("name=\"{name}\""))
        .unwrap_or_else(|| panic!("no {name} input: {}", page.body));
    let rest = &page.body[at..];
    let start = rest.find("value=\"").expect("a value") + "value=\"".len();
    let end = rest[start..].find('"').expect("closing quote");
    rest[start..start + end].to_owned()
}

async fn patch_if_match(
    app: &TestApp,
    path: &str,
    if_match: &str,
    body: &serde_json::Value,
) -> reqwest::Response {
    app.request(reqwest::Method::PATCH, path)
        .bearer_auth(&app.admin_token)
        .header("If-Match", if_match)
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn a_session_patch_against_an_old_revision_is_refused(app: TestApp) {
    let slug = app.published_event("revisions").await;
    let id = app.session(&slug, "Portfolio triage", 10, 0).await;
    let path = format!("/api/v1/admin/sessions/{id}");

    let first = app.patch_session(id, &json!({"room": "Thames"})).await;
    assert_eq!(first.status(), 200);
    let etag = first
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_owned();
    let body: serde_json::Value = first.json().await.expect("json");
    assert_eq!(etag, format!("\"{}\"", body["revision"]));

    // Someone else renames it; a change sent against the revision read before is refused.
    let renamed = expect_json(
        patch_if_match(&app, &path, &etag, &json!({"title": "Portfolio triage II"})).await,
        200,
    )
    .await;
    let stale = expect_problem(
        patch_if_match(&app, &path, &etag, &json!({"capacity": 12})).await,
        412,
        "changed-since-read",
    )
    .await;
    assert!(
        stale["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("has changed"),
        "{stale}"
    );
    let programme = app.public_session(&slug, id).await;
    assert_eq!(
        (programme["capacity"].as_i64(), programme["title"].as_str()),
        (Some(10), Some("Portfolio triage II")),
        "nothing of the refused change was saved"
    );

    // Against the current revision, or with `*`, it goes through.
    let current = format!("\"{}\"", renamed["revision"]);
    expect_json(
        patch_if_match(&app, &path, &current, &json!({"capacity": 12})).await,
        200,
    )
    .await;
    expect_json(
        patch_if_match(&app, &path, "*", &json!({"capacity": 14})).await,
        200,
    )
    .await;
    // A header that names no revision is refused as such; a weak tag never matches.
    let bad = patch_if_match(&app, &path, "\"soon\"", &json!({"capacity": 16})).await;
    assert_eq!(bad.status(), 422);
    let now = format!("\"{}\"", app.public_session(&slug, id).await["revision"]);
    expect_problem(
        patch_if_match(&app, &path, &format!("W/{now}"), &json!({"capacity": 16})).await,
        412,
        "changed-since-read",
    )
    .await;
    assert_eq!(app.public_session(&slug, id).await["capacity"], 14);
}

async fn an_event_patch_against_an_old_revision_is_refused(app: TestApp) {
    let slug = app.published_event("event-revisions").await;
    let path = format!("/api/v1/admin/events/{slug}");
    let read = expect_json(
        app.patch_event(&slug, &json!({"venue": "Hall A"})).await,
        200,
    )
    .await;
    let etag = format!("\"{}\"", read["revision"]);
    expect_json(
        patch_if_match(&app, &path, &etag, &json!({"name": "Renamed"})).await,
        200,
    )
    .await;
    expect_problem(
        patch_if_match(&app, &path, &etag, &json!({"venue": "Hall B"})).await,
        412,
        "changed-since-read",
    )
    .await;
    let event = app.programme(&slug).await;
    assert_eq!(
        (event["name"].as_str(), event["venue"].as_str()),
        (Some("Renamed"), Some("Hall A"))
    );
}

async fn a_session_form_overtaken_by_another_change_keeps_the_entries_and_says_what_changed(
    app: TestApp,
) {
    let slug = app.published_event("overtaken").await;
    let id = app.session(&slug, "Portfolio triage", 10, 0).await;
    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let path = format!("/organiser/sessions/{id}");
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let revision = form.field("revision");

    // While the form is open, a colleague renames the session.
    expect_json(
        app.patch_session(id, &json!({"title": "Portfolio triage (advanced)"}))
            .await,
        200,
    )
    .await;

    let mut fields: Vec<(&str, String)> = vec![
        ("csrf", form.csrf()),
        ("revision", revision.clone()),
        ("title", "Portfolio triage".to_owned()),
        ("abstract", "Hands-on.".to_owned()),
        ("speakers", String::new()),
        ("track", input(&form, "track")),
        ("room", input(&form, "room")),
        ("starts_at", input(&form, "starts_at")),
        ("ends_at", input(&form, "ends_at")),
        ("capacity", "25".to_owned()),
        ("price", input(&form, "price")),
        ("cpd_hours", input(&form, "cpd_hours")),
        ("waitlist_enabled", "yes".to_owned()),
        ("published", "yes".to_owned()),
    ];
    // A revision that cannot be read is refused, not taken as "no check".
    let mut unreadable = fields.clone();
    unreadable[1].1 = "seven".to_owned();
    let page = browser.post(&path, &unreadable).await;
    assert_eq!(page.status, 400, "{}", page.body);

    let refused = browser.post(&path, &fields).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    refused.shows(&[
        "Someone else saved a change while you were editing, so nothing was saved.",
        "Title is now saved as “Portfolio triage (advanced)”",
        "Capacity is now saved as “10”",
        "value=\"25\"",
    ]);
    let newer = refused.field("revision");
    assert_ne!(newer, revision, "the form now carries the current revision");
    let session = app.public_session(&slug, id).await;
    assert_eq!(
        (session["title"].as_str(), session["capacity"].as_i64()),
        (Some("Portfolio triage (advanced)"), Some(10)),
        "nothing of the overtaken form was saved"
    );

    // Saved again from that page, knowingly, it goes through.
    fields[0].1 = refused.csrf();
    fields[1].1 = newer;
    let saved = browser.post(&path, &fields).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let session = app.public_session(&slug, id).await;
    assert_eq!(
        (session["title"].as_str(), session["capacity"].as_i64()),
        (Some("Portfolio triage"), Some(25))
    );
}

async fn an_event_form_overtaken_by_another_change_saves_nothing(app: TestApp) {
    let slug = app.published_event("event-overtaken").await;
    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let path = format!("/organiser/events/{slug}");
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    expect_json(
        app.patch_event(&slug, &json!({"venue": "Hall B"})).await,
        200,
    )
    .await;

    let fields: Vec<(&str, String)> = vec![
        ("csrf", form.csrf()),
        ("revision", form.field("revision")),
        ("name", "A new name".to_owned()),
        ("venue", input(&form, "venue")),
        ("time_zone", input(&form, "time_zone")),
        ("currency", input(&form, "currency")),
        ("vat_rate", input(&form, "vat_rate")),
        ("invoice_due_days", input(&form, "invoice_due_days")),
        ("published", "yes".to_owned()),
    ];
    let refused = browser.post(&path, &fields).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    refused.shows(&[
        "Someone else saved a change while you were editing",
        "Venue is now saved as “Hall B”",
    ]);
    let event = app.programme(&slug).await;
    assert_eq!(
        (
            event["venue"].as_str(),
            event["name"].as_str() != Some("A new name")
        ),
        (Some("Hall B"), true)
    );
}

async fn a_capacity_form_overtaken_by_another_change_saves_nothing(app: TestApp) {
    let slug = app.published_event("capacity-overtaken").await;
    let id = app.session(&slug, "Portfolio triage", 10, 0).await;
    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let page = browser.get(&format!("/organiser/events/{slug}")).await;
    let marker = format!("/organiser/sessions/{id}/capacity");
    let at = page.body.find(&marker).expect("the capacity form");
    let revision = {
        let rest = &page.body[at..];
        let start = rest.find("name=\"revision\" value=\"").expect("revision") + 23;
        let end = rest[start..].find('"').expect("quote");
        rest[start..start + end].to_owned()
    };
    expect_json(app.patch_session(id, &json!({"capacity": 30})).await, 200).await;

    let refused = browser
        .post(
            &marker,
            &[
                ("csrf", page.csrf()),
                ("revision", revision),
                ("capacity", "12".to_owned()),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.shows(&[
        "its capacity is now 30",
        "Set it again if you still want 12",
    ]);
    assert_eq!(app.public_session(&slug, id).await["capacity"], 30);
}
