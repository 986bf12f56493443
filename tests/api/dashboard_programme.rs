//! The programme section of the dashboard over HTTP: events and sessions created and changed
//! through the forms, the places of each session at a glance, refused capacity, cancelling with a
//! confirmation step, and who may do it.

use diesel::prelude::*;
use masterclass::organisers::Role;
use serde_json::json;

use crate::dashboard::{signed_in, with_db};
use crate::helpers::{expect_json, Backend, TestApp};
use crate::pages::{Browser, Page};

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn(backend).await
}

/// Posts `fields` with the CSRF token of the page at `form_path`.
async fn submit(
    browser: &mut Browser,
    form_path: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> Page {
    let form = browser.get(form_path).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let csrf = form.csrf();
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    browser.post(action, &all).await
}

const EVENT_FIELDS: &[(&str, &str)] = &[
    ("slug", "pmo-2028"),
    ("name", "PMO Masterclasses 2028"),
    ("venue", "Riverside Conference Centre, London"),
    ("time_zone", "Europe/London"),
    ("currency", "GBP"),
    ("vat_rate", "20"),
    ("registration_opens_at", "2027-01-05T09:00"),
    ("registration_closes_at", "2028-05-01T17:00"),
    ("refund_days_1", "14"),
    ("refund_percent_1", "100"),
    ("refund_days_2", "7"),
    ("refund_percent_2", "50"),
    ("invoices_allowed", "yes"),
    ("invoice_prefix", "PMO28"),
    ("invoice_due_days", "21"),
];

fn session_fields<'a>(title: &'a str, capacity: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("title", title),
        ("abstract", "Hands-on."),
        ("speakers", "Priya Natarajan\nSam Okafor"),
        ("track", "Foundations"),
        ("room", "Thames Room"),
        ("starts_at", "2028-05-10T09:30"),
        ("ends_at", "2028-05-10T11:00"),
        ("capacity", capacity),
        ("price", "120.50"),
        ("waitlist_enabled", "yes"),
        ("published", "yes"),
    ]
}

/// The id of the newest session of the app.
async fn newest_session(app: &TestApp) -> i64 {
    with_db(app, |conn| {
        use masterclass::db::schema::sessions;
        sessions::table
            .select(sessions::id)
            .order(sessions::id.desc())
            .first::<i64>(conn)
            .expect("a session")
    })
    .await
}

crate::on_both_backends_with!(super::app;
    an_event_is_created_edited_and_published_through_the_forms,
    sessions_are_created_edited_and_duplicated_through_the_forms,
    a_capacity_below_the_seats_taken_is_refused_next_to_the_field,
    each_session_shows_its_confirmed_held_offered_and_waiting_places,
    cancelling_a_session_says_what_it_touches_then_cancels_and_emails,
    the_programme_pages_are_for_admins_signed_in_with_a_form_token,
);

/// A new event is a draft the public cannot see; saved with other details it keeps them;
/// published, its programme is public.
async fn an_event_is_created_edited_and_published_through_the_forms(app: TestApp) {
    let mut browser = signed_in(&app, "ada@example.org", Role::Admin).await;

    let mut bad = EVENT_FIELDS.to_vec();
    bad.retain(|(n, _)| *n != "time_zone" && *n != "vat_rate");
    bad.push(("time_zone", "Mars/Olympus"));
    bad.push(("vat_rate", "lots"));
    let refused = submit(&mut browser, "/organiser/events", "/organiser/events", &bad).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.error_by_field("time_zone");
    refused.error_by_field("vat_rate");
    refused.shows(&["value=\"PMO Masterclasses 2028\""]);

    let created = submit(
        &mut browser,
        "/organiser/events",
        "/organiser/events",
        EVENT_FIELDS,
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(
        created.location(),
        "/organiser/events/pmo-2028?done=created"
    );
    let page = browser.get(created.location()).await;
    page.shows(&[
        "The event has been created.",
        "Draft",
        "value=\"2027-01-05T09:00\"",
        "value=\"2028-05-01T17:00\"",
        "value=\"PMO28\"",
        "value=\"21\"",
        "name=\"refund_percent_2\" type=\"text\" inputmode=\"numeric\" value=\"50\"",
    ]);
    assert_eq!(app.get("/events/pmo-2028").await.status(), 404);
    let list = browser.get("/organiser/events").await;
    list.shows(&["PMO Masterclasses 2028", "Draft"]);

    // The registration window is stored in UTC: 09:00 in London in January is 09:00 UTC.
    let api: serde_json::Value = expect_json(
        app.admin_patch("/api/v1/admin/events/pmo-2028", &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(api["registration_opens_at"], "2027-01-05T09:00:00Z");
    assert_eq!(api["registration_closes_at"], "2028-05-01T17:00:00+01:00");
    assert_eq!(api["vat_rate_bp"], 2000);

    let mut edited = EVENT_FIELDS.to_vec();
    edited.retain(|(n, _)| !matches!(*n, "name" | "vat_rate" | "registration_opens_at"));
    edited.push(("name", "PMO Masterclasses 2028 (London)"));
    edited.push(("vat_rate", "5.5"));
    edited.push(("registration_opens_at", ""));
    let saved = submit(
        &mut browser,
        "/organiser/events/pmo-2028",
        "/organiser/events/pmo-2028",
        &edited,
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let page = browser.get(saved.location()).await;
    page.shows(&[
        "The event has been saved.",
        "PMO Masterclasses 2028 (London)",
        "value=\"5.5\"",
    ]);

    let published = submit(
        &mut browser,
        "/organiser/events/pmo-2028",
        "/organiser/events/pmo-2028/status",
        &[("status", "published")],
    )
    .await;
    assert_eq!(published.status, 303, "{}", published.body);
    browser
        .get(published.location())
        .await
        .shows(&["The event is published", "Unpublish"]);
    let public = app.get("/events/pmo-2028").await;
    assert_eq!(public.status(), 200);
    assert!(public
        .text()
        .await
        .expect("body")
        .contains("PMO Masterclasses 2028 (London)"));
}

/// A session added through the form is in the event's table; edited, it changes; duplicated,
/// its copy is a draft.
async fn sessions_are_created_edited_and_duplicated_through_the_forms(app: TestApp) {
    let slug = app.published_event("pmo-forms").await;
    let mut browser = signed_in(&app, "ada@example.org", Role::Admin).await;
    let new_form = format!("/organiser/events/{slug}/sessions/new");
    let action = format!("/organiser/events/{slug}/sessions");

    let mut bad = session_fields("Portfolio triage", "30");
    bad.retain(|(n, _)| *n != "ends_at");
    bad.push(("ends_at", "2028-05-10T08:00"));
    let refused = submit(&mut browser, &new_form, &action, &bad).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.error_by_field("ends_at");

    let created = submit(
        &mut browser,
        &new_form,
        &action,
        &session_fields("Portfolio triage", "30"),
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let id = newest_session(&app).await;
    let public = app.public_session(&slug, id).await;
    assert_eq!(public["starts_at"], "2028-05-10T09:30:00+01:00");
    assert_eq!(public["price_minor"], 12050);
    assert_eq!(public["speakers"], json!(["Priya Natarajan", "Sam Okafor"]));
    browser
        .get(created.location())
        .await
        .shows(&["The session has been added.", "Portfolio triage"]);

    let path = format!("/organiser/sessions/{id}");
    let mut changed = session_fields("Portfolio triage, advanced", "40");
    changed.retain(|(n, _)| *n != "waitlist_enabled");
    let saved = submit(&mut browser, &path, &path, &changed).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let public = app.public_session(&slug, id).await;
    assert_eq!(public["title"], "Portfolio triage, advanced");
    assert_eq!(public["capacity"], 40);
    assert_eq!(public["waitlist_enabled"], false);

    let copied = submit(
        &mut browser,
        &format!("/organiser/events/{slug}"),
        &format!("/organiser/sessions/{id}/duplicate"),
        &[],
    )
    .await;
    assert_eq!(copied.status, 303, "{}", copied.body);
    let copy = newest_session(&app).await;
    assert_ne!(copy, id);
    let page = browser.get(copied.location()).await;
    page.shows(&["A copy of the session has been made as a draft."]);
    let copy_page = browser.get(&format!("/organiser/sessions/{copy}")).await;
    copy_page.shows(&["value=\"Portfolio triage, advanced\"", "value=\"40\""]);
    copy_page.lacks(&["name=\"published\" value=\"yes\" checked"]);
    let programme = app.programme(&slug).await;
    let ids: Vec<i64> = programme["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![id], "the copy is a draft");
}

/// Capacity cannot go below the seats taken: the message is next to the field and nothing
/// changes.
async fn a_capacity_below_the_seats_taken_is_refused_next_to_the_field(app: TestApp) {
    let slug = app.published_event("pmo-capacity").await;
    let session = app.session(&slug, "Capacity planning", 5, 0).await;
    for who in ["a@example.org", "b@example.org", "c@example.org"] {
        app.booked(&slug, who, &[session]).await;
    }
    let mut browser = signed_in(&app, "ada@example.org", Role::Admin).await;
    let path = format!("/organiser/sessions/{session}");
    let mut fields = session_fields("Renamed meanwhile", "2");
    fields.retain(|(n, _)| *n != "price");
    fields.push(("price", "0"));
    let refused = submit(&mut browser, &path, &path, &fields).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.error_by_field("capacity");
    refused.shows(&["Cannot be below the 3 seats taken", "value=\"2\""]);
    let public = app.public_session(&slug, session).await;
    assert_eq!(public["capacity"], 5);
    assert_eq!(public["title"], "Capacity planning");

    // The same from the event page's table.
    let event_page = format!("/organiser/events/{slug}");
    let action = format!("/organiser/sessions/{session}/capacity");
    let refused = submit(&mut browser, &event_page, &action, &[("capacity", "2")]).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.shows(&[
        &format!("id=\"capacity-{session}-error\""),
        "Capacity of Capacity planning: cannot be below the 3 seats taken",
        &format!("id=\"capacity-{session}\" name=\"capacity\" type=\"text\" inputmode=\"numeric\" value=\"2\""),
    ]);
    let words = submit(&mut browser, &event_page, &action, &[("capacity", "many")]).await;
    assert_eq!(words.status, 422, "{}", words.body);
    words.shows(&["Capacity of Capacity planning: must be a whole number."]);
    assert_eq!(app.public_session(&slug, session).await["capacity"], 5);

    let raised = submit(&mut browser, &event_page, &action, &[("capacity", "8")]).await;
    assert_eq!(raised.status, 303, "{}", raised.body);
    assert_eq!(app.public_session(&slug, session).await["capacity"], 8);
    browser
        .get(raised.location())
        .await
        .shows(&["The capacity has been changed."]);
}

/// The event page counts each session's places by state.
async fn each_session_shows_its_confirmed_held_offered_and_waiting_places(app: TestApp) {
    let slug = app.published_event("pmo-counts").await;
    let free = app.session(&slug, "Free and full", 3, 0).await;
    let paid = app.next_day_session(&slug, 5, 9900).await;
    let first = app.booked(&slug, "a@example.org", &[free]).await;
    app.booked(&slug, "b@example.org", &[free]).await;
    app.booked(&slug, "c@example.org", &[free]).await;
    app.booked(&slug, "d@example.org", &[paid]).await;
    for who in ["w1@example.org", "w2@example.org"] {
        let joined = app
            .post(
                &format!("/api/v1/events/{slug}/sessions/{free}/waitlist"),
                &json!({"name": "Someone Waiting", "email": who, "organisation": null}),
            )
            .await;
        assert_eq!(joined.status(), 201);
    }
    let token = first["manage_token"].as_str().expect("manage token");
    assert_eq!(app.cancel(token, None).await.status(), 200);

    let mut browser = signed_in(&app, "ada@example.org", Role::Admin).await;
    let page = browser.get(&format!("/organiser/events/{slug}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let row = |id: i64| {
        let start = page
            .body
            .find(&format!("id=\"session-{id}\""))
            .expect("the session's row");
        let end = page.body[start..].find("</tr>").expect("row end") + start;
        page.body[start..end].to_owned()
    };
    let counts = |row: &str| -> Vec<String> {
        [
            "confirmed",
            "held",
            "offered",
            "waiting",
            "capacity",
            "left",
        ]
        .iter()
        .map(|c| {
            let marker = format!("class=\"count-{c}\">");
            let at = row.find(&marker).expect("count cell") + marker.len();
            row[at..at + row[at..].find('<').expect("cell end")]
                .trim()
                .to_owned()
        })
        .collect()
    };
    assert_eq!(counts(&row(free)), ["2", "0", "1", "1", "3", "0"]);
    assert_eq!(counts(&row(paid)), ["0", "1", "0", "0", "5", "4"]);
}

/// Cancelling asks first, saying how many seats and people it touches; confirmed, the seats
/// are cancelled and everyone is emailed.
async fn cancelling_a_session_says_what_it_touches_then_cancels_and_emails(app: TestApp) {
    let slug = app.published_event("pmo-cancel").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "a@example.org", &[session]).await;
    app.booked(&slug, "b@example.org", &[session]).await;
    let mut browser = signed_in(&app, "ada@example.org", Role::Admin).await;

    let confirm_path = format!("/organiser/sessions/{session}/cancel");
    let confirm = browser.get(&confirm_path).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    confirm.shows(&[
        "<strong>2</strong> seats held or confirmed, by <strong>2</strong> people",
        "<strong>0</strong> paid seats",
        "Cancel the session",
    ]);
    assert_eq!(
        app.public_session(&slug, session).await["status"],
        "published"
    );

    let done = browser
        .post(&confirm_path, &[("csrf", confirm.csrf())])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    browser
        .get(done.location())
        .await
        .shows(&["The session is cancelled"]);
    assert_eq!(
        app.public_session(&slug, session).await["status"],
        "cancelled"
    );
    let (active, emailed) = with_db(&app, move |conn| {
        use masterclass::db::schema::{email_jobs, seats};
        let active: i64 = seats::table
            .filter(seats::session_id.eq(session))
            .filter(seats::state.ne("cancelled"))
            .count()
            .get_result(conn)
            .expect("count");
        let emailed: Vec<String> = email_jobs::table
            .filter(email_jobs::template.eq("session_cancelled"))
            .select(email_jobs::recipient)
            .order(email_jobs::recipient.asc())
            .load(conn)
            .expect("jobs");
        (active, emailed)
    })
    .await;
    assert_eq!(active, 0);
    assert_eq!(emailed, ["a@example.org", "b@example.org"]);
    app.assert_no_drift();
}

/// Check-in organisers get a 403, nobody signed in goes to sign in, and a post without the
/// form token changes nothing.
async fn the_programme_pages_are_for_admins_signed_in_with_a_form_token(app: TestApp) {
    let slug = app.published_event("pmo-roles").await;
    let session = app.session(&slug, "Guarded", 10, 0).await;

    let mut nobody = Browser::of(&app);
    for path in [
        "/organiser/events".to_owned(),
        format!("/organiser/events/{slug}"),
        format!("/organiser/sessions/{session}"),
        format!("/organiser/sessions/{session}/cancel"),
    ] {
        let away = nobody.get(&path).await;
        assert_eq!(away.status, 303, "{path}");
        assert!(
            away.location().starts_with("/organiser/login?next="),
            "{path}"
        );
    }

    let mut door = signed_in(&app, "door@example.org", Role::Checkin).await;
    let refused = door.get("/organiser/events").await;
    assert_eq!(refused.status, 403);
    let token = door.get("/organiser").await.csrf();
    let post = door
        .post(
            &format!("/organiser/sessions/{session}/cancel"),
            &[("csrf", token.as_str())],
        )
        .await;
    assert_eq!(post.status, 403);
    door.get("/organiser").await.lacks(&["/organiser/events"]);

    let mut admin = signed_in(&app, "ada@example.org", Role::Admin).await;
    admin.get("/organiser").await.shows(&["/organiser/events"]);
    let forged = admin
        .post(
            &format!("/organiser/sessions/{session}/cancel"),
            &[("csrf", "not-the-token")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let forged = admin.post("/organiser/events", EVENT_FIELDS).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(
        app.public_session(&slug, session).await["status"],
        "published"
    );
    assert_eq!(app.get("/events/pmo-2028").await.status(), 404);
}
