//! Bookings work from the programme as their process last read it. Whatever an organiser changes
//! through another process must still decide every booking made after the change: prices,
//! titles, cancellations, the registration window and publication.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{
    booking_body, expect_json, expect_problem, session_body, ServeProcess, TestApp,
};
use crate::on_both_backends;

/// Books through the other process.
async fn book_at(
    app: &TestApp,
    server: &ServeProcess,
    slug: &str,
    email: &str,
    ids: &[i64],
) -> reqwest::Response {
    app.client
        .post(format!("{}/api/v1/events/{slug}/bookings", server.address))
        .json(&booking_body(email, ids))
        .send()
        .await
        .expect("booking request")
}

async fn changed(response: reqwest::Response) -> Value {
    expect_json(response, 200).await
}

async fn changes_by_another_process_decide_the_next_booking(app: TestApp) {
    let slug = app.published_event("cached-programme").await;
    let repriced = app
        .created_session(&slug, &session_body("Benefits realisation", 20, 1000))
        .await;
    let doomed = app
        .created_session(&slug, &session_body("Resource capacity planning", 20, 0))
        .await;
    let server = ServeProcess::start(&app.database_url);

    // The other process reads the programme for these bookings and keeps it.
    let first = expect_json(
        book_at(&app, &server, &slug, "ada@example.org", &[repriced]).await,
        201,
    )
    .await;
    assert_eq!(first["total_minor"], 1000);
    expect_json(
        book_at(&app, &server, &slug, "alan@example.org", &[doomed]).await,
        201,
    )
    .await;

    changed(
        app.patch_session(
            repriced,
            &json!({"price_minor": 2500, "title": "Benefits realisation, revised"}),
        )
        .await,
    )
    .await;
    changed(
        app.patch_session(doomed, &json!({"status": "cancelled"}))
            .await,
    )
    .await;

    let second = expect_json(
        book_at(&app, &server, &slug, "grace@example.org", &[repriced]).await,
        201,
    )
    .await;
    assert_eq!(second["total_minor"], 2500, "the new price: {second}");
    assert_eq!(second["seats"][0]["title"], "Benefits realisation, revised");
    expect_problem(
        book_at(&app, &server, &slug, "edsger@example.org", &[doomed]).await,
        409,
        "session-cancelled",
    )
    .await;

    // A session added since is found, not refused as unknown.
    let added = app
        .created_session(&slug, &session_body("Agile PMO", 20, 0))
        .await;
    expect_json(
        book_at(&app, &server, &slug, "barbara@example.org", &[added]).await,
        201,
    )
    .await;

    // Registration closed, then the event unpublished: both seen at once.
    let yesterday = (Utc::now() - Duration::days(1)).to_rfc3339();
    changed(
        app.patch_event(
            &slug,
            &json!({"registration_closes_at": yesterday, "registration_opens_at": null}),
        )
        .await,
    )
    .await;
    expect_problem(
        book_at(&app, &server, &slug, "margaret@example.org", &[repriced]).await,
        409,
        "registration-closed",
    )
    .await;
    changed(
        app.patch_event(&slug, &json!({"registration_closes_at": null}))
            .await,
    )
    .await;
    expect_json(
        book_at(&app, &server, &slug, "margaret@example.org", &[repriced]).await,
        201,
    )
    .await;
    changed(app.patch_event(&slug, &json!({"status": "draft"})).await).await;
    expect_problem(
        book_at(&app, &server, &slug, "donald@example.org", &[repriced]).await,
        404,
        "not-found",
    )
    .await;

    // And the other way round: published again, the cached refusal does not stick.
    changed(
        app.patch_event(&slug, &json!({"status": "published"}))
            .await,
    )
    .await;
    expect_json(
        book_at(&app, &server, &slug, "donald@example.org", &[repriced]).await,
        201,
    )
    .await;
    app.assert_no_drift();
}

async fn a_price_change_racing_bookings_decides_every_booking_begun_after_it(app: TestApp) {
    const OLD: i64 = 1000;
    const NEW: i64 = 3000;
    let slug = app.published_event("price-race").await;
    let session = app
        .created_session(&slug, &session_body("Portfolio governance", 5000, OLD))
        .await;
    let server = ServeProcess::start(&app.database_url);
    let base = server.address.clone();

    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut bookers = tokio::task::JoinSet::new();
    for booker in 0..4 {
        let client = app.client.clone();
        let url = format!("{base}/api/v1/events/{slug}/bookings");
        let (done, stop) = (done.clone(), stop.clone());
        bookers.spawn(async move {
            let mut seen = Vec::new();
            for n in 0..1000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let sent = started.elapsed();
                let response = client
                    .post(&url)
                    .json(&booking_body(
                        &format!("b{booker}-{n}@example.org"),
                        &[session],
                    ))
                    .send()
                    .await
                    .expect("booking request");
                let body = expect_json(response, 201).await;
                seen.push((sent, body["total_minor"].as_i64().expect("total")));
                done.fetch_add(1, Ordering::SeqCst);
            }
            seen
        });
    }
    let settle = |target: usize| {
        let done = done.clone();
        async move {
            while done.load(Ordering::SeqCst) < target {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
    };
    // The other process has read the programme and booked on it before the change...
    settle(40).await;
    changed(
        app.patch_session(session, &json!({"price_minor": NEW}))
            .await,
    )
    .await;
    let changed_at = started.elapsed();
    // ...and goes on booking after it.
    let at_change = done.load(Ordering::SeqCst);
    settle(at_change + 80).await;
    stop.store(true, Ordering::SeqCst);

    let mut before = 0;
    let mut after = 0;
    while let Some(seen) = bookers.join_next().await {
        for (sent, total) in seen.expect("booker") {
            assert!(
                total == OLD || total == NEW,
                "a price that never was: {total}"
            );
            if sent > changed_at {
                assert_eq!(
                    total, NEW,
                    "a booking begun after the change answered used the old price"
                );
                after += 1;
            } else {
                before += 1;
            }
        }
    }
    assert!(
        before >= 40 && after >= 40,
        "{before} bookings before the change, {after} after"
    );
    app.assert_no_drift();
}

on_both_backends!(
    changes_by_another_process_decide_the_next_booking,
    a_price_change_racing_bookings_decides_every_booking_begun_after_it,
);
