//! The booking lifecycle: holds that expire or are paid, waitlists with automatic offers that are
//! claimed, declined or lapse, organiser promotions. Time is the server's test clock, moved by
//! hand; each move runs one sweep, as the sweeper thread would.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{expect_json, expect_problem, TestApp};
use crate::on_both_backends;

fn token(body: &Value) -> &str {
    body["manage_token"].as_str().expect("manage token")
}

fn at(body: &Value, field: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(body[field].as_str().expect(field))
        .expect("a time")
        .with_timezone(&Utc)
}

async fn join(app: &TestApp, slug: &str, session: i64, email: &str) -> reqwest::Response {
    app.post(
        &format!("/api/v1/events/{slug}/sessions/{session}/waitlist"),
        &json!({"name": "Someone Waiting", "email": email, "organisation": null}),
    )
    .await
}

async fn joined(app: &TestApp, slug: &str, session: i64, email: &str) -> Value {
    expect_json(join(app, slug, session, email).await, 201).await
}

async fn entry(app: &TestApp, entry_token: &str) -> Value {
    expect_json(
        app.get(&format!("/api/v1/waitlist/{entry_token}")).await,
        200,
    )
    .await
}

async fn act(app: &TestApp, entry_token: &str, action: &str) -> reqwest::Response {
    app.post(
        &format!("/api/v1/waitlist/{entry_token}/{action}"),
        &json!({}),
    )
    .await
}

/// The templates of every email written so far, oldest first.
fn outbox(app: &TestApp) -> Vec<String> {
    use diesel::prelude::*;
    use masterclass::db::schema::email_jobs;
    let mut conn = app.db.conn().expect("conn");
    email_jobs::table
        .order(email_jobs::id.asc())
        .select(email_jobs::template)
        .load(&mut *conn)
        .expect("jobs")
}

async fn a_priced_booking_is_held_until_its_hold_runs_out(app: TestApp) {
    let slug = app.published_event("holds").await;
    let priced = app
        .session(&slug, "Portfolio prioritisation", 5, 14500)
        .await;
    let booked = app.booked(&slug, "ada@example.org", &[priced]).await;
    assert_eq!(booked["status"], "held");
    assert_eq!(booked["seats"][0]["state"], "held");
    let until = at(&booked, "hold_expires_at");
    assert_eq!(until, app.clock.now() + Duration::minutes(15));
    assert_eq!(app.seats_left(&slug, priced).await, 4);

    let swept = app.advance(Duration::minutes(14)).await;
    assert_eq!(swept.holds_expired, 0, "not yet due");
    assert_eq!(app.booking(token(&booked)).await["status"], "held");

    let swept = app.advance(Duration::minutes(2)).await;
    assert_eq!(swept.holds_expired, 1);
    let after = app.booking(token(&booked)).await;
    assert_eq!(after["status"], "expired");
    assert_eq!(after["seats"][0]["state"], "expired");
    assert!(after["hold_expires_at"].is_null());
    assert_eq!(app.seats_left(&slug, priced).await, 5);
    assert_eq!(outbox(&app), ["booking_held", "hold_expired"]);
    // A second sweep finds nothing more to do.
    assert_eq!(app.advance(Duration::minutes(1)).await.holds_expired, 0);
    app.assert_no_drift();
}

async fn payment_confirms_a_held_booking_once(app: TestApp) {
    let slug = app.published_event("paid").await;
    let priced = app.session(&slug, "Benefits realisation", 5, 9900).await;
    let free = app
        .session_at(
            &slug,
            "PMO forum",
            50,
            0,
            "2027-03-11T09:00:00+00:00",
            "2027-03-11T10:00:00+00:00",
        )
        .await;
    let booked = app.booked(&slug, "ada@example.org", &[priced, free]).await;
    assert_eq!(
        booked["status"], "held",
        "a priced session holds the whole booking"
    );
    let id = booking_id(&app, booked["reference"].as_str().expect("reference"));

    let (db, now) = (app.db.clone(), app.clock.now());
    let confirmed = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("conn");
        let first = masterclass::bookings::confirm_payment(&mut conn, id, now).map(|b| b.status);
        let again = masterclass::bookings::confirm_payment(&mut conn, id, now).map(|b| b.status);
        (first, again)
    })
    .await
    .expect("task");
    assert!(matches!(
        confirmed.0,
        Ok(masterclass::bookings::BookingStatus::Confirmed)
    ));
    assert!(
        matches!(
            confirmed.1,
            Err(masterclass::bookings::BookingError::NotHeld { .. })
        ),
        "a second payment confirms nothing: {:?}",
        confirmed.1
    );
    let after = app.booking(token(&booked)).await;
    assert_eq!(after["status"], "confirmed");
    assert_eq!(after["payment_status"], "paid");
    assert!(after["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .all(|s| s["state"] == "confirmed"));
    // Paid: the hold's deadline no longer applies.
    assert_eq!(app.advance(Duration::hours(1)).await.holds_expired, 0);
    assert_eq!(app.booking(token(&booked)).await["status"], "confirmed");
    assert_eq!(outbox(&app), ["booking_held", "booking_confirmed"]);
    app.assert_no_drift();
}

fn booking_id(app: &TestApp, reference: &str) -> i64 {
    use diesel::prelude::*;
    use masterclass::db::schema::bookings;
    let mut conn = app.db.conn().expect("conn");
    bookings::table
        .filter(bookings::reference.eq(reference))
        .select(bookings::id)
        .first(&mut *conn)
        .expect("booking")
}

async fn a_freed_seat_is_offered_to_the_first_person_waiting_never_the_public(app: TestApp) {
    let slug = app.published_event("waitlist").await;
    let class = app.session(&slug, "Resource capacity planning", 1, 0).await;
    let ada = app.booked(&slug, "ada@example.org", &[class]).await;

    let full = expect_problem(
        app.book(&slug, "bob@example.org", &[class]).await,
        409,
        "session-full",
    )
    .await;
    let path = full["waitlist"].as_str().expect("the waitlist to join");
    assert_eq!(
        path,
        format!("/api/v1/events/{slug}/sessions/{class}/waitlist")
    );

    let bob = joined(&app, &slug, class, "bob@example.org").await;
    assert_eq!(
        (bob["state"].as_str(), bob["position"].as_i64()),
        (Some("waiting"), Some(1))
    );
    let cyd = joined(&app, &slug, class, "cyd@example.org").await;
    assert_eq!(cyd["position"], 2);

    expect_json(app.cancel(token(&ada), None).await, 200).await;
    let offered = entry(&app, token(&bob)).await;
    assert_eq!(offered["state"], "offered");
    assert_eq!(
        at(&offered, "offer_expires_at"),
        app.clock.now() + Duration::hours(24)
    );
    assert_eq!(
        app.seats_left(&slug, class).await,
        0,
        "the offer holds the seat"
    );
    expect_problem(
        app.book(&slug, "dan@example.org", &[class]).await,
        409,
        "session-full",
    )
    .await;
    assert_eq!(entry(&app, token(&cyd)).await["position"], 1);

    let claimed = expect_json(act(&app, token(&bob), "claim").await, 201).await;
    assert_eq!(claimed["status"], "confirmed");
    assert_eq!(claimed["attendee"]["email"], "bob@example.org");
    assert_eq!(entry(&app, token(&bob)).await["state"], "claimed");
    assert_eq!(app.attendee_emails(class).await, ["bob@example.org"]);
    assert_eq!(
        outbox(&app),
        [
            "booking_confirmed",
            "waitlist_joined",
            "waitlist_joined",
            // Both written by the cancellation's transaction.
            "waitlist_offer",
            "booking_cancelled",
            "booking_confirmed"
        ]
    );
    app.assert_no_drift();
}

async fn a_declined_or_lapsed_offer_passes_to_the_next_person_at_once(app: TestApp) {
    let slug = app.published_event("offers").await;
    let class = app.session(&slug, "Agile PMO", 1, 0).await;
    let ada = app.booked(&slug, "ada@example.org", &[class]).await;
    let bob = joined(&app, &slug, class, "bob@example.org").await;
    let cyd = joined(&app, &slug, class, "cyd@example.org").await;
    expect_json(app.cancel(token(&ada), None).await, 200).await;

    let declined = expect_json(act(&app, token(&bob), "decline").await, 200).await;
    assert_eq!(declined["state"], "declined");
    assert_eq!(entry(&app, token(&cyd)).await["state"], "offered");
    app.assert_no_drift();

    // Not claimed in time: the seat goes back on sale, as nobody else waits.
    let swept = app.advance(Duration::hours(25)).await;
    assert_eq!(swept.offers_lapsed, 1);
    assert_eq!(entry(&app, token(&cyd)).await["state"], "expired");
    assert_eq!(app.seats_left(&slug, class).await, 1);
    expect_problem(act(&app, token(&cyd), "claim").await, 409, "conflict").await;
    app.assert_no_drift();
}

async fn a_claim_after_the_deadline_is_refused_and_passes_the_seat_on(app: TestApp) {
    let slug = app.published_event("late-claim").await;
    let class = app.session(&slug, "Governance", 1, 0).await;
    let ada = app.booked(&slug, "ada@example.org", &[class]).await;
    let bob = joined(&app, &slug, class, "bob@example.org").await;
    let cyd = joined(&app, &slug, class, "cyd@example.org").await;
    expect_json(app.cancel(token(&ada), None).await, 200).await;
    // Past the deadline, before any sweep has seen it.
    app.clock.advance(Duration::hours(24));
    expect_problem(act(&app, token(&bob), "claim").await, 409, "offer-expired").await;
    assert_eq!(entry(&app, token(&bob)).await["state"], "expired");
    assert_eq!(entry(&app, token(&cyd)).await["state"], "offered");
    app.assert_no_drift();
}

async fn an_expired_hold_and_a_raised_capacity_go_to_the_waitlist_first(app: TestApp) {
    let slug = app.published_event("freed").await;
    let class = app.session(&slug, "Portfolio governance", 1, 12000).await;
    app.booked(&slug, "ada@example.org", &[class]).await;
    let bob = joined(&app, &slug, class, "bob@example.org").await;
    let cyd = joined(&app, &slug, class, "cyd@example.org").await;
    let dan = joined(&app, &slug, class, "dan@example.org").await;

    assert_eq!(app.advance(Duration::minutes(16)).await.holds_expired, 1);
    assert_eq!(entry(&app, token(&bob)).await["state"], "offered");
    // Claiming a priced offer holds the seat for payment.
    let claimed = expect_json(act(&app, token(&bob), "claim").await, 201).await;
    assert_eq!(claimed["status"], "held");

    let raised = app.patch_session(class, &json!({"capacity": 3})).await;
    assert_eq!(expect_json(raised, 200).await["seats_left"], 0);
    assert_eq!(entry(&app, token(&cyd)).await["state"], "offered");
    assert_eq!(entry(&app, token(&dan)).await["state"], "offered");
    app.assert_no_drift();
}

async fn joining_is_refused_with_seats_left_twice_or_when_booked_or_switched_off(app: TestApp) {
    let slug = app.published_event("join-rules").await;
    let roomy = app.session(&slug, "Benefits", 5, 0).await;
    expect_problem(
        join(&app, &slug, roomy, "bob@example.org").await,
        409,
        "seats-available",
    )
    .await;

    let tight = app.session(&slug, "Reporting", 1, 0).await;
    app.booked(&slug, "ada@example.org", &[tight]).await;
    expect_problem(
        join(&app, &slug, tight, "ADA@example.org").await,
        409,
        "already-booked",
    )
    .await;
    joined(&app, &slug, tight, "bob@example.org").await;
    expect_problem(
        join(&app, &slug, tight, "Bob@Example.org").await,
        409,
        "already-waiting",
    )
    .await;
    expect_json(
        app.patch_session(tight, &json!({"waitlist_enabled": false}))
            .await,
        200,
    )
    .await;
    expect_problem(
        join(&app, &slug, tight, "cyd@example.org").await,
        409,
        "waitlist-closed",
    )
    .await;
    let full = expect_problem(
        app.book(&slug, "cyd@example.org", &[tight]).await,
        409,
        "session-full",
    )
    .await;
    assert!(
        full.get("waitlist").is_none(),
        "no waitlist to point at: {full}"
    );
    expect_problem(
        join(&app, &slug, 9999, "cyd@example.org").await,
        404,
        "not-found",
    )
    .await;
    let invalid = join(&app, &slug, tight, "not an email").await;
    crate::helpers::expect_invalid(invalid, "email").await;

    // Leaving: the place is gone, and leaving twice is refused.
    let cyd_free = app.session(&slug, "Forum", 1, 0).await;
    app.booked(&slug, "eve@example.org", &[cyd_free]).await;
    let cyd = joined(&app, &slug, cyd_free, "cyd@example.org").await;
    assert_eq!(
        expect_json(act(&app, token(&cyd), "leave").await, 200).await["state"],
        "withdrawn"
    );
    expect_problem(act(&app, token(&cyd), "leave").await, 409, "conflict").await;
    expect_problem(
        app.get("/api/v1/waitlist/not-a-token").await,
        404,
        "not-found",
    )
    .await;
    app.assert_no_drift();
}

async fn organisers_see_the_waitlist_in_order_and_promote_someone(app: TestApp) {
    let slug = app.published_event("promote").await;
    let class = app.session(&slug, "Leadership", 1, 0).await;
    app.booked(&slug, "ada@example.org", &[class]).await;
    let bob = joined(&app, &slug, class, "bob@example.org").await;
    joined(&app, &slug, class, "cyd@example.org").await;
    let list = expect_json(
        app.admin_get(&format!("/api/v1/admin/sessions/{class}/waitlist"))
            .await,
        200,
    )
    .await;
    let emails: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["attendee"]["email"].as_str().expect("email"))
        .collect();
    assert_eq!(emails, ["bob@example.org", "cyd@example.org"]);
    let cyd_id = list[1]["id"].as_i64().expect("id");

    let moved = expect_json(
        app.admin_post(
            &format!("/api/v1/admin/sessions/{class}/waitlist/{cyd_id}/promote"),
            &json!({}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(moved["position"], 1);
    assert_eq!(entry(&app, token(&bob)).await["position"], 2);

    // With a seat added for them, they are offered it now, ahead of everyone.
    let offered = expect_json(
        app.admin_post(
            &format!("/api/v1/admin/sessions/{class}/waitlist/{cyd_id}/promote"),
            &json!({"add_seat": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(offered["state"], "offered");
    assert_eq!(offered["session"]["capacity"], 2);
    assert_eq!(entry(&app, token(&bob)).await["state"], "waiting");
    expect_problem(
        app.admin_post(
            &format!("/api/v1/admin/sessions/{class}/waitlist/{cyd_id}/promote"),
            &json!({}),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    // Someone not on this session's list is not found.
    for path in [
        format!(
            "/api/v1/admin/sessions/{class}/waitlist/{}/promote",
            i64::MIN
        ),
        format!(
            "/api/v1/admin/sessions/{}/waitlist/{cyd_id}/promote",
            class + 1000
        ),
    ] {
        expect_problem(
            app.admin_post(&path, &json!({"add_seat": true})).await,
            404,
            "not-found",
        )
        .await;
    }
    app.assert_no_drift();
}

async fn overlapping_sessions_are_refused_unless_the_event_allows_it(app: TestApp) {
    let slug = app.strict_event("clashes").await;
    let morning = app
        .session_at(
            &slug,
            "Morning strategy",
            10,
            0,
            "2027-03-10T09:00:00+00:00",
            "2027-03-10T10:30:00+00:00",
        )
        .await;
    let overlap = app
        .session_at(
            &slug,
            "Late-morning risk",
            10,
            0,
            "2027-03-10T10:00:00+00:00",
            "2027-03-10T11:00:00+00:00",
        )
        .await;
    let after = app
        .session_at(
            &slug,
            "Straight after",
            10,
            0,
            "2027-03-10T10:30:00+00:00",
            "2027-03-10T11:30:00+00:00",
        )
        .await;

    // Within one booking.
    let both = expect_problem(
        app.book(&slug, "ada@example.org", &[morning, overlap])
            .await,
        409,
        "timetable-clash",
    )
    .await;
    assert_eq!(
        (
            both["session_id"].as_i64(),
            both["other_session_id"].as_i64()
        ),
        (Some(overlap), Some(morning))
    );
    assert!(both["detail"]
        .as_str()
        .expect("detail")
        .contains("Morning strategy"));
    // Against a seat already held; back to back is not a clash.
    app.booked(&slug, "ada@example.org", &[morning]).await;
    let later = expect_problem(
        app.book(&slug, "ADA@example.org", &[overlap]).await,
        409,
        "timetable-clash",
    )
    .await;
    assert_eq!(
        (
            later["session_id"].as_i64(),
            later["other_session_id"].as_i64()
        ),
        (Some(overlap), Some(morning))
    );
    app.booked(&slug, "ada@example.org", &[after]).await;
    assert_eq!(
        app.seats_left(&slug, overlap).await,
        10,
        "nothing taken by the refusals"
    );
    // Another person is not affected.
    app.booked(&slug, "bob@example.org", &[overlap]).await;

    // The organiser allows clashes: the same request goes through.
    expect_json(
        app.patch_event(&slug, &json!({"allow_clashes": true}))
            .await,
        200,
    )
    .await;
    app.booked(&slug, "ada@example.org", &[overlap]).await;
    app.assert_no_drift();
}

async fn a_claim_that_clashes_is_refused_and_the_offer_stands(app: TestApp) {
    let slug = app.strict_event("claim-clash").await;
    let full = app
        .session_at(
            &slug,
            "Popular",
            1,
            0,
            "2027-03-10T09:00:00+00:00",
            "2027-03-10T10:30:00+00:00",
        )
        .await;
    let parallel = app
        .session_at(
            &slug,
            "Parallel",
            10,
            0,
            "2027-03-10T09:30:00+00:00",
            "2027-03-10T10:00:00+00:00",
        )
        .await;
    let ada = app.booked(&slug, "ada@example.org", &[full]).await;
    let bob = joined(&app, &slug, full, "bob@example.org").await;
    let bob_parallel = app.booked(&slug, "bob@example.org", &[parallel]).await;
    expect_json(app.cancel(token(&ada), None).await, 200).await;
    assert_eq!(entry(&app, token(&bob)).await["state"], "offered");

    expect_problem(
        act(&app, token(&bob), "claim").await,
        409,
        "timetable-clash",
    )
    .await;
    assert_eq!(
        entry(&app, token(&bob)).await["state"],
        "offered",
        "the offer stands"
    );
    expect_json(app.cancel(token(&bob_parallel), None).await, 200).await;
    assert_eq!(
        expect_json(act(&app, token(&bob), "claim").await, 201).await["status"],
        "confirmed"
    );
    app.assert_no_drift();
}

async fn cancelling_a_session_ends_its_waitlist_and_tells_everyone_on_it(app: TestApp) {
    let slug = app.published_event("cancelled-waitlist").await;
    let class = app.session(&slug, "Doomed", 1, 0).await;
    let ada = app.booked(&slug, "ada@example.org", &[class]).await;
    let bob = joined(&app, &slug, class, "bob@example.org").await;
    let cyd = joined(&app, &slug, class, "cyd@example.org").await;
    expect_json(app.cancel(token(&ada), None).await, 200).await;
    assert_eq!(entry(&app, token(&bob)).await["state"], "offered");

    expect_json(
        app.patch_session(class, &json!({"status": "cancelled"}))
            .await,
        200,
    )
    .await;
    assert_eq!(entry(&app, token(&bob)).await["state"], "expired");
    assert_eq!(entry(&app, token(&cyd)).await["state"], "withdrawn");
    let emails = outbox(&app);
    assert_eq!(
        emails.iter().filter(|t| *t == "waitlist_left").count(),
        2,
        "{emails:?}"
    );
    app.assert_no_drift();
}

async fn a_claim_racing_a_decline_or_a_lapse_has_one_winner(app: TestApp) {
    let slug = app.published_event("offer-races").await;
    for round in 0..12 {
        let class = app.session(&slug, &format!("Race {round}"), 1, 0).await;
        let holder = app
            .booked(&slug, &format!("h{round}@example.org"), &[class])
            .await;
        let waiter = joined(&app, &slug, class, &format!("w{round}@example.org")).await;
        joined(&app, &slug, class, &format!("next{round}@example.org")).await;
        expect_json(app.cancel(token(&holder), None).await, 200).await;
        let entry_token = token(&waiter).to_owned();
        let other = if round % 2 == 0 { "decline" } else { "leave" };
        let (claimed, ended) = tokio::join!(
            act(&app, &entry_token, "claim"),
            act(&app, &entry_token, other)
        );
        let outcome = (claimed.status().as_u16(), ended.status().as_u16());
        assert!(
            outcome == (201, 409) || outcome == (409, 200),
            "round {round}: exactly one of claim and {other} wins, got {outcome:?}"
        );
        app.assert_no_drift();
    }
}

on_both_backends!(
    the_worker_command_expires_holds_that_are_due,
    a_claim_racing_a_decline_or_a_lapse_has_one_winner,
    cancelling_a_session_ends_its_waitlist_and_tells_everyone_on_it,
    organisers_cancel_for_someone_and_move_them_atomically,
    overlapping_sessions_are_refused_unless_the_event_allows_it,
    a_claim_that_clashes_is_refused_and_the_offer_stands,
    a_priced_booking_is_held_until_its_hold_runs_out,
    payment_confirms_a_held_booking_once,
    a_freed_seat_is_offered_to_the_first_person_waiting_never_the_public,
    a_declined_or_lapsed_offer_passes_to_the_next_person_at_once,
    a_claim_after_the_deadline_is_refused_and_passes_the_seat_on,
    an_expired_hold_and_a_raised_capacity_go_to_the_waitlist_first,
    joining_is_refused_with_seats_left_twice_or_when_booked_or_switched_off,
    organisers_see_the_waitlist_in_order_and_promote_someone,
);

mod idempotency {
    use super::*;
    use crate::helpers::booking_body;

    async fn send(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::Response {
        app.client
            .post(app.url(path))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    async fn a_retried_booking_gets_the_first_answer_and_books_once(app: TestApp) {
        let slug = app.published_event("idem").await;
        let class = app.session(&slug, "Benefits", 10, 0).await;
        let path = format!("/api/v1/events/{slug}/bookings");
        let body = booking_body("ada@example.org", &[class]);

        let first = send(&app, &path, "k-1", &body).await;
        assert!(first.headers().get("idempotent-replayed").is_none());
        let first = expect_json(first, 201).await;
        let again = send(&app, &path, "k-1", &body).await;
        assert_eq!(
            again
                .headers()
                .get("idempotent-replayed")
                .map(|v| v.as_bytes()),
            Some(&b"true"[..])
        );
        let again = expect_json(again, 201).await;
        assert_eq!(again["reference"], first["reference"]);
        assert_eq!(
            again["manage_token"], first["manage_token"],
            "the token is derived again"
        );
        assert_eq!(again["seats"], first["seats"]);
        assert_eq!(app.admin_bookings(&slug).await.len(), 1);
        assert_eq!(app.seats_left(&slug, class).await, 9);

        // The same key for another body is refused and changes nothing.
        let other = booking_body("bob@example.org", &[class]);
        expect_problem(
            send(&app, &path, "k-1", &other).await,
            422,
            "idempotency-key-reused",
        )
        .await;
        // A key that is not one.
        crate::helpers::expect_invalid(send(&app, &path, "", &other).await, "Idempotency-Key")
            .await;
        assert_eq!(app.admin_bookings(&slug).await.len(), 1);

        // A refusal is an answer too: repeated as it was, even once things change.
        let full = app.session(&slug, "Tiny", 1, 0).await;
        app.booked(&slug, "cyd@example.org", &[full]).await;
        let refused = booking_body("dan@example.org", &[full]);
        expect_problem(
            send(&app, &path, "k-2", &refused).await,
            409,
            "session-full",
        )
        .await;
        let cyd_booking = app.admin_bookings(&slug).await;
        assert_eq!(cyd_booking.len(), 2);
        expect_problem(
            send(&app, &path, "k-2", &refused).await,
            409,
            "session-full",
        )
        .await;

        // After 24 hours the key is forgotten: the same request is a new one.
        app.advance(Duration::hours(25)).await;
        expect_problem(send(&app, &path, "k-1", &body).await, 409, "already-booked").await;
        app.assert_no_drift();
    }

    async fn simultaneous_retries_wait_for_the_first_and_book_once(app: TestApp) {
        let slug = app.published_event("idem-race").await;
        let class = app.session(&slug, "Governance", 10, 4500).await;
        let path = format!("/api/v1/events/{slug}/bookings");
        let body = booking_body("ada@example.org", &[class]);
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let (client, url, body) = (app.client.clone(), app.url(&path), body.clone());
            requests.spawn(async move {
                let response = client
                    .post(url)
                    .header("Idempotency-Key", "same-click")
                    .json(&body)
                    .send()
                    .await
                    .expect("request");
                (
                    response.status().as_u16(),
                    response.json::<Value>().await.expect("json"),
                )
            });
        }
        let mut references = Vec::new();
        while let Some(done) = requests.join_next().await {
            let (status, body) = done.expect("task");
            assert_eq!(status, 201, "{body}");
            references.push(body["reference"].as_str().expect("reference").to_owned());
        }
        references.dedup();
        assert_eq!(references.len(), 1, "one booking for all: {references:?}");
        assert_eq!(app.admin_bookings(&slug).await.len(), 1);
        assert_eq!(app.seats_left(&slug, class).await, 9);
        app.assert_no_drift();
    }

    async fn waitlist_joins_and_claims_take_keys_too(app: TestApp) {
        let slug = app.published_event("idem-wait").await;
        let class = app.session(&slug, "Popular", 1, 0).await;
        let ada = app.booked(&slug, "ada@example.org", &[class]).await;
        let path = format!("/api/v1/events/{slug}/sessions/{class}/waitlist");
        let who = json!({"name": "Bob", "email": "bob@example.org"});
        let first = expect_json(send(&app, &path, "join-1", &who).await, 201).await;
        let again = expect_json(send(&app, &path, "join-1", &who).await, 201).await;
        assert_eq!(again["reference"], first["reference"]);
        assert_eq!(again["manage_token"], first["manage_token"]);
        expect_json(app.cancel(token(&ada), None).await, 200).await;

        let claim = format!("/api/v1/waitlist/{}/claim", token(&first));
        let booked = expect_json(send(&app, &claim, "claim-1", &json!(null)).await, 201).await;
        let replayed = expect_json(send(&app, &claim, "claim-1", &json!(null)).await, 201).await;
        assert_eq!(replayed["reference"], booked["reference"]);
        assert_eq!(replayed["manage_token"], booked["manage_token"]);
        assert_eq!(app.attendee_emails(class).await, ["bob@example.org"]);
        app.assert_no_drift();
    }

    async fn a_holder_whose_lease_lapsed_cannot_record_over_its_successor(app: TestApp) {
        use masterclass::idempotency::{claim, complete, Claim, Key};
        let (db, clock) = (app.db.clone(), app.clock.clone());
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn().expect("conn");
            let mut first = Key::new("POST /x".into(), "k".into(), b"{}");
            let mut second = first.clone();
            let Claim::Fresh { lease } = claim(&mut conn, &first, clock.now()).expect("claim")
            else {
                panic!("a new key is fresh");
            };
            first.lease = Some(lease);
            assert_eq!(
                claim(&mut conn, &second, clock.now()).expect("claim"),
                Claim::Running
            );
            // The first holder stalls past its lease; a retry takes the key over.
            clock.advance(masterclass::idempotency::LEASE + Duration::seconds(1));
            let Claim::Fresh { lease } = claim(&mut conn, &second, clock.now()).expect("claim")
            else {
                panic!("a lapsed lease is taken over");
            };
            second.lease = Some(lease);
            assert!(
                complete(&mut conn, &first, 201, "{\"from\": 1}").is_err(),
                "the first may no longer record"
            );
            complete(&mut conn, &second, 201, "{\"from\": 2}").expect("the holder records");
            assert_eq!(
                claim(&mut conn, &second, clock.now()).expect("claim"),
                Claim::Answered {
                    status: 201,
                    body: "{\"from\": 2}".into()
                }
            );
        })
        .await
        .expect("task");
    }

    on_both_backends!(
        a_holder_whose_lease_lapsed_cannot_record_over_its_successor,
        a_retried_booking_gets_the_first_answer_and_books_once,
        simultaneous_retries_wait_for_the_first_and_book_once,
        waitlist_joins_and_claims_take_keys_too,
    );
}

async fn organisers_cancel_for_someone_and_move_them_atomically(app: TestApp) {
    let slug = app.strict_event("moves").await;
    let from = app
        .session_at(
            &slug,
            "Morning",
            5,
            0,
            "2027-03-10T09:00:00+00:00",
            "2027-03-10T10:00:00+00:00",
        )
        .await;
    let to = app
        .session_at(
            &slug,
            "Afternoon",
            1,
            0,
            "2027-03-10T14:00:00+00:00",
            "2027-03-10T15:00:00+00:00",
        )
        .await;
    let clash = app
        .session_at(
            &slug,
            "Late morning",
            5,
            0,
            "2027-03-10T10:30:00+00:00",
            "2027-03-10T11:30:00+00:00",
        )
        .await;
    let ada = app.booked(&slug, "ada@example.org", &[from]).await;
    let reference = ada["reference"].as_str().expect("reference");
    let path = format!("/api/v1/admin/bookings/{reference}/move");

    let moved = expect_json(
        app.admin_post(
            &path,
            &json!({"from_session_id": from, "to_session_id": to}),
        )
        .await,
        200,
    )
    .await;
    let states: Vec<(i64, String)> = moved["seats"]
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
    assert!(
        states.contains(&(from, "cancelled".to_owned()))
            && states.contains(&(to, "confirmed".to_owned())),
        "{states:?}"
    );
    assert_eq!(
        (
            app.seats_left(&slug, from).await,
            app.seats_left(&slug, to).await
        ),
        (5, 0)
    );

    // The target is full now: moving Bob there is refused and his seat is kept.
    let bob = app.booked(&slug, "bob@example.org", &[from]).await;
    let bob_path = format!(
        "/api/v1/admin/bookings/{}/move",
        bob["reference"].as_str().expect("reference")
    );
    expect_problem(
        app.admin_post(
            &bob_path,
            &json!({"from_session_id": from, "to_session_id": to}),
        )
        .await,
        409,
        "session-full",
    )
    .await;
    // A session that overlaps another of his seats is refused, and his seat is kept.
    let dan = app.booked(&slug, "dan@example.org", &[from]).await;
    let dan_path = format!(
        "/api/v1/admin/bookings/{}/move",
        dan["reference"].as_str().expect("reference")
    );
    app.booked(&slug, "dan@example.org", &[clash]).await;
    let other = app
        .session_at(
            &slug,
            "Overlapping both",
            5,
            0,
            "2027-03-10T10:15:00+00:00",
            "2027-03-10T11:00:00+00:00",
        )
        .await;
    expect_problem(
        app.admin_post(
            &dan_path,
            &json!({"from_session_id": from, "to_session_id": other}),
        )
        .await,
        409,
        "timetable-clash",
    )
    .await;
    assert_eq!(
        app.booking(token(&dan)).await["seats"][0]["state"],
        "confirmed"
    );
    assert_eq!(
        app.booking(token(&bob)).await["seats"][0]["state"],
        "confirmed"
    );
    assert_eq!(app.seats_left(&slug, from).await, 3);
    expect_problem(
        app.admin_post(
            &bob_path,
            &json!({"from_session_id": to, "to_session_id": from}),
        )
        .await,
        422,
        "validation",
    )
    .await;

    // Cancelled for him by an organiser: his seat goes to the person waiting.
    let cyd = joined(&app, &slug, to, "cyd@example.org").await;
    let cancel = format!("/api/v1/admin/bookings/{reference}/cancel");
    let cancelled = expect_json(
        app.admin_post(&cancel, &json!({"session_ids": [to]})).await,
        200,
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(entry(&app, token(&cyd)).await["state"], "offered");
    expect_problem(
        app.admin_post("/api/v1/admin/bookings/PMO-NOPE00/cancel", &json!({}))
            .await,
        404,
        "not-found",
    )
    .await;
    app.assert_no_drift();
}

/// `masterclass worker` sweeps too: a hold past its deadline is expired by `worker --once`,
/// on the system clock, with no server running the sweeper.
async fn the_worker_command_expires_holds_that_are_due(app: TestApp) {
    use diesel::prelude::*;
    use masterclass::db::schema::bookings;
    let slug = app.published_event("worker-sweeps").await;
    let priced = app.session(&slug, "Paid class", 3, 9900).await;
    let booked = app.booked(&slug, "ada@example.org", &[priced]).await;
    let reference = booked["reference"].as_str().expect("reference").to_owned();
    {
        // Its hold ran out an hour ago, by the real clock the worker reads.
        let mut conn = app.db.conn().expect("conn");
        let past = (chrono::Utc::now() - Duration::hours(1)).naive_utc();
        diesel::update(bookings::table.filter(bookings::reference.eq(&reference)))
            .set(bookings::hold_expires_at.eq(Some(past)))
            .execute(&mut *conn)
            .expect("backdate the hold");
    }
    let outbox = tempfile::tempdir().expect("outbox folder");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_masterclass"))
        .args(["worker", "--once"])
        .env("MASTERCLASS_ENV", "test")
        .env("MASTERCLASS__DATABASE__URL", &app.database_url)
        .env("MASTERCLASS__MAIL__OUTBOX_DIR", outbox.path())
        .output()
        .expect("worker runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("holds expired 1"), "{text}");
    assert_eq!(app.booking(token(&booked)).await["status"], "expired");
    assert_eq!(app.seats_left(&slug, priced).await, 3);
    app.assert_no_drift();
}
