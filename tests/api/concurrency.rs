//! Capacity under pressure: many simultaneous bookings never oversell a session, on one server
//! or on several `serve` processes sharing a PostgreSQL database.

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{fresh_database, Backend, ServeProcess, TestApp};
use crate::on_both_backends;

const CAPACITY: i32 = 50;
const ATTEMPTS: usize = 300;

/// Fires `ATTEMPTS` bookings at once, spread over `addresses`; returns (201s, session-fulls, others).
async fn flash_sale(
    client: &reqwest::Client,
    addresses: &[String],
    slug: &str,
    session: i64,
) -> (usize, usize, Vec<String>) {
    let attempts = (0..ATTEMPTS).map(|n| {
        let url = format!("{}/api/v1/events/{slug}/bookings", addresses[n % addresses.len()]);
        let body = serde_json::json!({
            "attendee": {"name": format!("Attendee {n}"), "email": format!("attendee{n}@example.org")},
            "session_ids": [session]
        });
        let client = client.clone();
        async move {
            let response = client.post(url).json(&body).send().await.expect("request sent");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body["type"].as_str().unwrap_or_default().to_owned())
        }
    });
    let outcomes = join_all(attempts).await;
    let booked = outcomes.iter().filter(|(s, _)| *s == 201).count();
    let full = outcomes
        .iter()
        .filter(|(s, t)| *s == 409 && t == "/problems/session-full")
        .count();
    let others = outcomes
        .iter()
        .filter(|(s, t)| *s != 201 && !(*s == 409 && t == "/problems/session-full"))
        .map(|(s, t)| format!("{s} {t}"))
        .collect();
    (booked, full, others)
}

async fn three_hundred_simultaneous_bookings_fill_fifty_seats_exactly(app: TestApp) {
    let slug = app.published_event("flash-sale").await;
    let session = app
        .session(&slug, "PMO reporting and dashboards", CAPACITY, 9500)
        .await;

    let (booked, full, others) = flash_sale(
        &app.client,
        std::slice::from_ref(&app.address),
        &slug,
        session,
    )
    .await;

    assert_eq!(booked, CAPACITY as usize, "exactly the capacity is booked");
    assert_eq!(
        full,
        ATTEMPTS - CAPACITY as usize,
        "everyone else is told the session is full"
    );
    assert!(others.is_empty(), "no other answers: {others:?}");
    assert_eq!(app.public_session(&slug, session).await["seats_left"], 0);
    let (code, output) = app.check();
    assert_eq!(code, 0, "check finds no drift: {output}");
}

async fn bookings_racing_a_session_cancellation_never_leave_a_seat_in_it(app: TestApp) {
    let slug = app.published_event("cancel-race").await;
    let session = app.session(&slug, "Agile PMOs", 500, 0).await;

    let bookings = (0..150).map(|n| {
        let url = app.url(&format!("/api/v1/events/{slug}/bookings"));
        let body = serde_json::json!({
            "attendee": {"name": format!("Attendee {n}"), "email": format!("racer{n}@example.org")},
            "session_ids": [session]
        });
        let client = app.client.clone();
        async move {
            let response = client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("request sent");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    });
    let cancel = async {
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        app.admin_patch(
            &format!("/api/v1/admin/sessions/{session}"),
            &serde_json::json!({"status": "cancelled"}),
        )
        .await
        .status()
        .as_u16()
    };
    let (outcomes, cancelled) = tokio::join!(join_all(bookings), cancel);

    assert_eq!(cancelled, 200);
    for (status, body) in &outcomes {
        match status {
            201 => {
                let token = body["manage_token"].as_str().expect("token");
                let booking = app
                    .get(&format!("/api/v1/bookings/{token}"))
                    .await
                    .json::<Value>()
                    .await
                    .expect("json");
                assert_eq!(
                    booking["seats"][0]["state"], "cancelled",
                    "a seat booked before the cancellation was cancelled with it"
                );
                assert_eq!(booking["status"], "cancelled");
            }
            409 => assert_eq!(body["type"], "/problems/session-cancelled", "{body}"),
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    let attendees: Value = app
        .admin_get(&format!("/api/v1/admin/sessions/{session}/attendees"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        attendees["attendees"].as_array().map(Vec::len),
        Some(0),
        "nobody holds a seat in a cancelled session"
    );
    assert_eq!(app.public_session(&slug, session).await["seats_left"], 500);
    let (code, output) = app.check();
    assert_eq!(code, 0, "check finds no drift: {output}");
}

on_both_backends!(
    three_hundred_simultaneous_bookings_fill_fifty_seats_exactly,
    bookings_racing_a_session_cancellation_never_leave_a_seat_in_it,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_sharing_postgres_never_oversell() {
    // The organiser setup goes through an in-process app; the sale goes through two processes.
    let Some(setup) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let slug = setup.published_event("two-processes").await;
    let session = setup
        .session(&slug, "Portfolio prioritisation", CAPACITY, 14500)
        .await;
    let first = ServeProcess::start(&setup.database_url);
    let second = ServeProcess::start(&setup.database_url);

    let (booked, full, others) = flash_sale(
        &setup.client,
        &[first.address.clone(), second.address.clone()],
        &slug,
        session,
    )
    .await;

    assert_eq!(
        booked, CAPACITY as usize,
        "exactly the capacity is booked across both processes"
    );
    assert_eq!(full, ATTEMPTS - CAPACITY as usize);
    assert!(others.is_empty(), "no other answers: {others:?}");
    assert_eq!(setup.public_session(&slug, session).await["seats_left"], 0);
    let (code, output) = setup.check();
    assert_eq!(code, 0, "check finds no drift: {output}");
}

#[test]
fn check_reports_drift_with_exit_code_one() {
    // A counter that disagrees with its seat rows must be caught, on either backend.
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some((url, _scratch)) = fresh_database(backend) else {
            continue;
        };
        let settings = crate::helpers::test_settings(&url);
        let db = masterclass::db::Db::connect(&settings.database).expect("connect");
        db.migrate().expect("migrate");
        let mut conn = db.conn().expect("conn");
        use diesel::RunQueryDsl;
        diesel::sql_query(
            "INSERT INTO events (slug, name, venue, time_zone, currency, status, created_at, updated_at) \
             VALUES ('drift', 'Drift', 'Hall', 'UTC', 'EUR', 'published', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        )
        .execute(&mut *conn)
        .expect("event");
        diesel::sql_query(
            "INSERT INTO sessions (event_id, title, abstract_text, speakers, starts_at, ends_at, capacity, taken, price_minor, status, created_at, updated_at) \
             SELECT id, 'Drifting', '', '[]', '2027-01-01 09:00:00', '2027-01-01 10:00:00', 10, 3, 0, 'published', '2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM events",
        )
        .execute(&mut *conn)
        .expect("session");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_masterclass"))
            .arg("check")
            .env("MASTERCLASS_ENV", "test")
            .env("MASTERCLASS__DATABASE__URL", &url)
            .output()
            .expect("check runs");
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{backend:?}: drift gives exit code 1: {text}"
        );
        assert!(
            text.contains("DRIFT session") && text.contains("counter 3 but 0 seats and offers"),
            "{text}"
        );
    }
}

#[test]
fn check_reports_a_free_seat_nobody_waiting_was_offered() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some((url, _scratch)) = fresh_database(backend) else {
            continue;
        };
        let settings = crate::helpers::test_settings(&url);
        let db = masterclass::db::Db::connect(&settings.database).expect("connect");
        db.migrate().expect("migrate");
        let mut conn = db.conn().expect("conn");
        use diesel::RunQueryDsl;
        for statement in [
            "INSERT INTO events (slug, name, venue, time_zone, currency, status, created_at, updated_at) \
             VALUES ('stuck', 'Stuck', 'Hall', 'UTC', 'EUR', 'published', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            // One free seat of two (counter and rows agree: no drift) ...
            "INSERT INTO sessions (event_id, title, abstract_text, speakers, starts_at, ends_at, capacity, taken, price_minor, status, created_at, updated_at) \
             SELECT id, 'Stuck', '', '[]', '2027-01-01 09:00:00', '2027-01-01 10:00:00', 2, 1, 0, 'published', '2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM events",
            "INSERT INTO waitlist_entries (session_id, reference, manage_token_hash, attendee_name, attendee_email, email_key, state, queue_key, offered_at, offer_expires_at, created_at, updated_at) \
             SELECT id, 'WL-OFFER1', 'h1', 'Offered', 'o@example.org', 'o@example.org', 'offered', 0, '2026-01-01 00:00:00', '2027-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM sessions",
            // ... while someone waits.
            "INSERT INTO waitlist_entries (session_id, reference, manage_token_hash, attendee_name, attendee_email, email_key, state, queue_key, created_at, updated_at) \
             SELECT id, 'WL-WAIT01', 'h2', 'Waiting', 'w@example.org', 'w@example.org', 'waiting', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00' FROM sessions",
        ] {
            diesel::sql_query(statement).execute(&mut *conn).expect(statement);
        }
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_masterclass"))
            .arg("check")
            .env("MASTERCLASS_ENV", "test")
            .env("MASTERCLASS__DATABASE__URL", &url)
            .output()
            .expect("check runs");
        let text = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{backend:?}: {text}");
        assert!(
            text.contains("STUCK session")
                && text.contains("1 of 2 seats taken while 1 people wait")
                && !text.contains("DRIFT"),
            "{backend:?}: the offer counts as taken, the free seat is reported: {text}"
        );
    }
}
