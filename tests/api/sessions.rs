//! Sessions: organisers add and change masterclasses; capacity never drops below the seats
//! taken, and a cancelled or draft session takes no bookings.

use serde_json::{json, Value};

use crate::helpers::{expect_invalid, expect_json, expect_problem, merged, session_body, TestApp};
use crate::on_both_backends;

/// Ways a session body can be wrong, with the field the answer must name.
fn invalid_session_fields() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("negative capacity", json!({"capacity": -1}), "capacity"),
        (
            "capacity over 100000",
            json!({"capacity": 100_001}),
            "capacity",
        ),
        (
            "title over 200 characters",
            json!({"title": "t".repeat(201)}),
            "title",
        ),
        ("empty title", json!({"title": "   "}), "title"),
        (
            "negative price",
            json!({"price_minor": -100}),
            "price_minor",
        ),
        (
            "price over a million",
            json!({"price_minor": 100_000_001}),
            "price_minor",
        ),
        (
            "abstract over 10000 characters",
            json!({"abstract": "a".repeat(10_001)}),
            "abstract",
        ),
        (
            "more than 20 speakers",
            json!({"speakers": vec!["Speaker"; 21]}),
            "speakers",
        ),
        (
            "a time without an offset",
            json!({"starts_at": "2027-03-10T09:00:00"}),
            "starts_at",
        ),
        (
            "a time that is not a time",
            json!({"ends_at": "tomorrow"}),
            "ends_at",
        ),
        (
            "ends before it starts",
            json!({"starts_at": "2027-03-10T11:00:00Z", "ends_at": "2027-03-10T10:00:00Z"}),
            "ends_at",
        ),
    ]
}

/// The ids of the sessions in the public programme.
async fn programme_ids(app: &TestApp, slug: &str) -> Vec<i64> {
    app.programme(slug).await["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["id"].as_i64().expect("id"))
        .collect()
}

async fn a_new_session_is_published_and_free_unless_told_otherwise(app: TestApp) {
    let slug = app.published_event("defaults").await;

    let response = app
        .create_session(
            &slug,
            &json!({
                "title": "Benefits realisation",
                "starts_at": "2027-03-10T13:00:00Z",
                "ends_at": "2027-03-10T14:30:00Z",
                "capacity": 25
            }),
        )
        .await;

    let created = expect_json(response, 201).await;
    assert_eq!(created["status"], "published");
    assert_eq!(created["price_minor"], 0);
    assert_eq!(created["seats_left"], 25);
    assert_eq!(created["event"]["slug"], slug);
    let id = created["id"].as_i64().expect("id");
    assert_eq!(programme_ids(&app, &slug).await, [id]);
}

async fn a_new_session_with_an_invalid_field_is_refused_naming_it(app: TestApp) {
    let slug = app.published_event("strict").await;

    for (case, change, field) in invalid_session_fields() {
        let body = merged(session_body("Resource management", 10, 0), change);
        eprintln!("case: {case}");
        expect_invalid(app.create_session(&slug, &body).await, field).await;
    }
    let unknown = merged(
        session_body("Resource management", 10, 0),
        json!({"seats": 10}),
    );
    expect_problem(app.create_session(&slug, &unknown).await, 422, "validation").await;

    assert!(
        programme_ids(&app, &slug).await.is_empty(),
        "no session was created"
    );
}

async fn a_session_for_an_unknown_event_is_not_found(app: TestApp) {
    let response = app
        .create_session("no-such-event", &session_body("Orphan", 10, 0))
        .await;

    expect_problem(response, 404, "not-found").await;
}

async fn an_organiser_can_change_every_field_of_a_session(app: TestApp) {
    let slug = app.published_event("changes").await;
    let id = app
        .created_session(&slug, &session_body("Draft title", 10, 0))
        .await;

    let response = app
        .patch_session(
            id,
            &json!({
                "title": "PMO maturity",
                "abstract": "Assess and grow your PMO.",
                "speakers": ["Grace Hopper", "Alan Turing"],
                "track": null,
                "room": "Severn Room",
                "starts_at": "2027-03-11T14:00:00Z",
                "ends_at": "2027-03-11T16:00:00Z",
                "capacity": 40,
                "price_minor": 12500
            }),
        )
        .await;

    let changed = expect_json(response, 200).await;
    assert_eq!(changed["event"]["slug"], slug);
    let shown = app.public_session(&slug, id).await;
    assert_eq!(shown["title"], "PMO maturity");
    assert_eq!(shown["abstract"], "Assess and grow your PMO.");
    assert_eq!(shown["speakers"], json!(["Grace Hopper", "Alan Turing"]));
    assert_eq!(shown["track"], Value::Null, "null clears the track");
    assert_eq!(shown["room"], "Severn Room");
    assert_eq!(shown["starts_at"], "2027-03-11T14:00:00Z");
    assert_eq!(shown["ends_at"], "2027-03-11T16:00:00Z");
    assert_eq!(shown["capacity"], 40);
    assert_eq!(shown["seats_left"], 40);
    assert_eq!(shown["price_minor"], 12500);
}

async fn invalid_changes_to_a_session_are_refused_and_change_nothing(app: TestApp) {
    let slug = app.published_event("guarded").await;
    let id = app
        .created_session(&slug, &session_body("Steady", 10, 0))
        .await;
    let before = app.public_session(&slug, id).await;

    for (case, change, field) in invalid_session_fields() {
        eprintln!("case: {case}");
        let change = merged(change, json!({"room": "Elsewhere"}));
        expect_invalid(app.patch_session(id, &change).await, field).await;
    }
    let moved_end = app
        .patch_session(id, &json!({"ends_at": "2027-03-10T08:00:00Z"}))
        .await;
    expect_invalid(moved_end, "ends_at").await;
    let unknown = app.patch_session(id, &json!({"seats": 5})).await;
    expect_problem(unknown, 422, "validation").await;

    assert_eq!(app.public_session(&slug, id).await, before);
}

async fn an_unknown_session_cannot_be_changed(app: TestApp) {
    let response = app.patch_session(987_654, &json!({"capacity": 5})).await;

    expect_problem(response, 404, "not-found").await;
}

async fn a_draft_session_is_hidden_from_the_programme_and_cannot_be_booked(app: TestApp) {
    let slug = app.published_event("drafts").await;
    let draft = app
        .created_session(
            &slug,
            &merged(
                session_body("Coming soon", 10, 0),
                json!({"status": "draft"}),
            ),
        )
        .await;

    let refused = app.book(&slug, "ada@example.org", &[draft]).await;

    assert!(
        programme_ids(&app, &slug).await.is_empty(),
        "a draft is not shown"
    );
    expect_invalid(refused, "session_ids").await;
    assert!(
        app.attendee_emails(draft).await.is_empty(),
        "nothing was booked"
    );

    expect_json(
        app.patch_session(draft, &json!({"status": "published"}))
            .await,
        200,
    )
    .await;
    assert_eq!(
        programme_ids(&app, &slug).await,
        [draft],
        "published, it is shown"
    );
    app.booked(&slug, "ada@example.org", &[draft]).await;
}

async fn lowering_capacity_below_the_seats_taken_is_refused_and_changes_nothing(app: TestApp) {
    let slug = app.published_event("shrinking").await;
    let id = app
        .created_session(&slug, &session_body("Popular", 3, 0))
        .await;
    app.booked(&slug, "ada@example.org", &[id]).await;
    app.booked(&slug, "grace@example.org", &[id]).await;

    let response = app
        .patch_session(id, &json!({"capacity": 1, "title": "Renamed"}))
        .await;

    let problem = expect_problem(response, 409, "capacity-below-taken").await;
    assert_eq!(problem["session_id"], id, "names the session: {problem}");
    assert_eq!(problem["session_title"], "Popular");
    let shown = app.public_session(&slug, id).await;
    assert_eq!(shown["capacity"], 3);
    assert_eq!(shown["seats_left"], 1);
    assert_eq!(shown["title"], "Popular", "nothing else changed either");

    let down_to_taken = app.patch_session(id, &json!({"capacity": 2})).await;
    assert_eq!(expect_json(down_to_taken, 200).await["seats_left"], 0);
    app.assert_no_drift();
}

async fn raising_capacity_lets_more_people_book(app: TestApp) {
    let slug = app.published_event("growing").await;
    let id = app
        .created_session(&slug, &session_body("Small room", 1, 0))
        .await;
    app.booked(&slug, "ada@example.org", &[id]).await;
    expect_problem(
        app.book(&slug, "grace@example.org", &[id]).await,
        409,
        "session-full",
    )
    .await;

    let raised = app.patch_session(id, &json!({"capacity": 2})).await;

    assert_eq!(expect_json(raised, 200).await["seats_left"], 1);
    app.booked(&slug, "grace@example.org", &[id]).await;
    assert_eq!(app.seats_left(&slug, id).await, 0);
    app.assert_no_drift();
}

async fn cancelling_a_session_cancels_its_seats_and_frees_them(app: TestApp) {
    let slug = app.published_event("cancelled-class").await;
    let doomed = app
        .created_session(&slug, &session_body("Doomed", 10, 5000))
        .await;
    let kept = app
        .created_session(&slug, &session_body("Kept", 10, 3000))
        .await;
    let both = app.booked(&slug, "ada@example.org", &[doomed, kept]).await;
    let only_doomed = app.booked(&slug, "grace@example.org", &[doomed]).await;

    let response = app
        .patch_session(doomed, &json!({"status": "cancelled"}))
        .await;

    let changed = expect_json(response, 200).await;
    assert_eq!(changed["status"], "cancelled");
    assert_eq!(changed["seats_left"], 10);
    let both = app
        .booking(both["manage_token"].as_str().expect("token"))
        .await;
    let seat_states: Vec<(i64, String)> = both["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| {
            (
                s["session_id"].as_i64().expect("id"),
                s["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seat_states,
        [(doomed, "cancelled".to_owned()), (kept, "held".to_owned())]
    );
    assert_eq!(both["status"], "held");
    assert_eq!(both["total_minor"], 3000, "the total is what is still due");
    let only_doomed = app
        .booking(only_doomed["manage_token"].as_str().expect("token"))
        .await;
    assert_eq!(only_doomed["status"], "cancelled");
    assert_eq!(only_doomed["total_minor"], 0);
    assert_eq!(only_doomed["payment_status"], "not_required");
    let shown = app.public_session(&slug, doomed).await;
    assert_eq!(
        shown["status"], "cancelled",
        "a cancelled session stays visible as cancelled"
    );
    assert_eq!(shown["seats_left"], 10);
    assert_eq!(app.seats_left(&slug, kept).await, 9);
    assert!(app.attendee_emails(doomed).await.is_empty());
    app.assert_no_drift();
}

async fn a_cancelled_session_cannot_be_booked(app: TestApp) {
    let slug = app.published_event("off").await;
    let cancelled = app
        .created_session(&slug, &session_body("Off", 10, 0))
        .await;
    let open = app.created_session(&slug, &session_body("On", 10, 0)).await;
    app.booked(&slug, "grace@example.org", &[cancelled]).await;
    let cancelling = json!({"status": "cancelled"});
    expect_json(app.patch_session(cancelled, &cancelling).await, 200).await;

    let newcomer = app.book(&slug, "ada@example.org", &[open, cancelled]).await;
    let returning = app.book(&slug, "grace@example.org", &[cancelled]).await;

    let problem = expect_problem(newcomer, 409, "session-cancelled").await;
    assert_eq!(
        problem["session_id"], cancelled,
        "names the session: {problem}"
    );
    expect_problem(returning, 409, "session-cancelled").await;
    assert_eq!(app.seats_left(&slug, open).await, 10, "nothing was booked");
    assert_eq!(
        app.admin_bookings(&slug).await.len(),
        1,
        "only the first booking"
    );
    assert!(app.attendee_emails(cancelled).await.is_empty());
    app.assert_no_drift();
}

async fn a_session_that_has_started_cannot_be_booked(app: TestApp) {
    let slug = app.published_event("too-late").await;
    let past = app
        .session_at(
            &slug,
            "Yesterday",
            10,
            0,
            "2026-01-10T09:00:00Z",
            "2026-01-10T10:00:00Z",
        )
        .await;

    let response = app.book(&slug, "ada@example.org", &[past]).await;

    let problem = expect_problem(response, 409, "session-started").await;
    assert_eq!(problem["session_id"], past);
    assert!(app.admin_bookings(&slug).await.is_empty());
}

on_both_backends!(
    a_session_counts_for_the_cpd_hours_it_is_given,
    a_new_session_is_published_and_free_unless_told_otherwise,
    a_new_session_with_an_invalid_field_is_refused_naming_it,
    a_session_for_an_unknown_event_is_not_found,
    an_organiser_can_change_every_field_of_a_session,
    invalid_changes_to_a_session_are_refused_and_change_nothing,
    an_unknown_session_cannot_be_changed,
    a_draft_session_is_hidden_from_the_programme_and_cannot_be_booked,
    lowering_capacity_below_the_seats_taken_is_refused_and_changes_nothing,
    raising_capacity_lets_more_people_book,
    cancelling_a_session_cancels_its_seats_and_frees_them,
    a_cancelled_session_cannot_be_booked,
    a_session_that_has_started_cannot_be_booked,
);

/// CPD hours (tenths) are taken when a session is made, shown, changed, and checked.
async fn a_session_counts_for_the_cpd_hours_it_is_given(app: TestApp) {
    let slug = app.published_event("cpd").await;
    let body = crate::helpers::merged(
        crate::helpers::session_body("Portfolio triage", 10, 0),
        serde_json::json!({"cpd_tenths": 15}),
    );
    let made = expect_json(app.create_session(&slug, &body).await, 201).await;
    assert_eq!(made["cpd_tenths"], 15);
    let plain = expect_json(
        app.create_session(&slug, &crate::helpers::session_body("Plain", 10, 0))
            .await,
        201,
    )
    .await;
    assert_eq!(plain["cpd_tenths"], 0);
    let too_many = crate::helpers::merged(
        crate::helpers::session_body("Marathon", 10, 0),
        serde_json::json!({"cpd_tenths": 1001}),
    );
    crate::helpers::expect_invalid(app.create_session(&slug, &too_many).await, "cpd_tenths").await;
    let id = made["id"].as_i64().expect("id");
    let changed = expect_json(
        app.patch_session(id, &serde_json::json!({"cpd_tenths": 30}))
            .await,
        200,
    )
    .await;
    assert_eq!(changed["cpd_tenths"], 30);
}
