//! Randomised simulations of the booking lifecycle against the real service: thousands of mixed
//! operations (book, cancel, join, claim, decline, leave, pay, raise and lower capacity, move the
//! clock so holds and offers expire), checking after every step that every session satisfies
//! `confirmed + held + offered <= capacity` with its counter in agreement, that no free seat is
//! left while someone waits, and that offers go strictly in waiting order. A concurrent version
//! runs many clients at once while a checker reads consistent snapshots throughout.
//!
//! `MASTERCLASS_SIM_SEED` replays a run; `MASTERCLASS_SIM_STEPS` changes its length.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Duration;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::on_both_backends;

fn seed() -> u64 {
    std::env::var("MASTERCLASS_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random())
}

fn steps(default: usize) -> usize {
    std::env::var("MASTERCLASS_SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// What one check found wrong, if anything.
fn violations(app: &TestApp) -> Vec<String> {
    use masterclass::db::schema::waitlist_entries as w;
    let mut conn = app.db.conn().expect("conn");
    let mut found = Vec::new();
    for c in masterclass::bookings::check::recount(&mut conn).expect("recount") {
        if c.drifted() {
            found.push(format!(
                "session {}: counter {} but {} seats and offers, capacity {}",
                c.session_id, c.taken, c.counted, c.capacity
            ));
        }
        if c.stuck() {
            found.push(format!(
                "session {}: {} of {} taken while {} wait",
                c.session_id, c.taken, c.capacity, c.waiting
            ));
        }
    }
    // Offers in waiting order: nobody still waiting joined before anyone who has been offered.
    let rows: Vec<(i64, i64, String, Option<chrono::NaiveDateTime>)> = w::table
        .select((w::session_id, w::id, w::state, w::offered_at))
        .load(&mut *conn)
        .expect("entries");
    let mut by_session: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (session, id, state, offered_at) in rows {
        let (last_offered, first_waiting) =
            by_session.entry(session).or_insert((i64::MIN, i64::MAX));
        if offered_at.is_some() {
            *last_offered = (*last_offered).max(id);
        }
        if state == "waiting" {
            *first_waiting = (*first_waiting).min(id);
        }
    }
    for (session, (last_offered, first_waiting)) in by_session {
        if last_offered > first_waiting {
            found.push(format!(
                "session {session}: entry {last_offered} was offered a seat while entry {first_waiting}, ahead of it, still waits"
            ));
        }
    }
    found
}

/// The tokens the simulated people hold.
#[derive(Default)]
struct People {
    bookings: Vec<(String, i64)>,
    entries: Vec<String>,
}

struct Sim {
    slug: String,
    sessions: Vec<i64>,
    people: usize,
}

async fn programme(app: &TestApp, slug: &str) -> Sim {
    let slug = app.published_event(slug).await;
    let mut sessions = Vec::new();
    for (i, (capacity, price)) in [(1, 0), (2, 4500), (3, 0), (2, 0)].into_iter().enumerate() {
        sessions.push(
            app.session(&slug, &format!("Class {i}"), capacity, price)
                .await,
        );
    }
    Sim {
        slug,
        sessions,
        people: 14,
    }
}

fn ok_status(status: u16, what: &str, body: &str) {
    assert!(
        matches!(status, 200 | 201 | 409),
        "{what} answered {status}: {body}"
    );
}

/// One random operation; returns its name for the tally.
async fn step(app: &TestApp, sim: &Sim, people: &mut People, rng: &mut StdRng) -> &'static str {
    let session = sim.sessions[rng.random_range(0..sim.sessions.len())];
    let person = format!("p{}@example.org", rng.random_range(0..sim.people));
    match rng.random_range(0..100) {
        0..=29 => {
            let response = app.book(&sim.slug, &person, &[session]).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            ok_status(status, "book", &body.to_string());
            if status == 201 {
                let token = body["manage_token"].as_str().expect("token");
                people.bookings.push((token.to_owned(), session));
            }
            "book"
        }
        30..=41 => {
            if people.bookings.is_empty() {
                return "idle";
            }
            let (token, _) = people
                .bookings
                .swap_remove(rng.random_range(0..people.bookings.len()));
            let response = app.cancel(&token, None).await;
            let status = response.status().as_u16();
            ok_status(status, "cancel", &response.text().await.unwrap_or_default());
            "cancel"
        }
        42..=59 => {
            let response = app
                .post(
                    &format!("/api/v1/events/{}/sessions/{session}/waitlist", sim.slug),
                    &json!({"name": "Sim", "email": person}),
                )
                .await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            ok_status(status, "join", &body.to_string());
            if status == 201 {
                people
                    .entries
                    .push(body["manage_token"].as_str().expect("token").to_owned());
            }
            "join"
        }
        60..=79 => {
            if people.entries.is_empty() {
                return "idle";
            }
            let token = people.entries[rng.random_range(0..people.entries.len())].clone();
            let action = ["claim", "claim", "decline", "leave"][rng.random_range(0..4)];
            let response = app
                .post(&format!("/api/v1/waitlist/{token}/{action}"), &json!({}))
                .await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            ok_status(status, action, &body.to_string());
            if action == "claim" && status == 201 {
                people.bookings.push((
                    body["manage_token"].as_str().expect("token").to_owned(),
                    session,
                ));
            }
            action
        }
        80..=85 => {
            // Payment arrives for some held booking.
            let (db, now) = (app.db.clone(), app.clock.now());
            tokio::task::spawn_blocking(move || {
                use masterclass::db::schema::bookings as b;
                let mut conn = db.conn().expect("conn");
                let held: Option<i64> = b::table
                    .filter(b::status.eq("held"))
                    .select(b::id)
                    .first(&mut *conn)
                    .optional()
                    .expect("held");
                if let Some(id) = held {
                    let _ = masterclass::bookings::confirm_payment(&mut conn, id, now);
                }
            })
            .await
            .expect("pay");
            "pay"
        }
        86..=91 => {
            let capacity = rng.random_range(0..=4);
            let response = app
                .patch_session(session, &json!({"capacity": capacity}))
                .await;
            let status = response.status().as_u16();
            ok_status(
                status,
                "capacity",
                &response.text().await.unwrap_or_default(),
            );
            "capacity"
        }
        _ => {
            let minutes = [1, 10, 20, 60 * 6, 60 * 25][rng.random_range(0..5)];
            app.advance(Duration::minutes(minutes)).await;
            "clock"
        }
    }
}

async fn thousands_of_mixed_operations_keep_every_invariant(app: TestApp) {
    let seed = seed();
    let total = steps(1500);
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = programme(&app, "simulation").await;
    let mut people = People::default();
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for n in 0..total {
        let op = step(&app, &sim, &mut people, &mut rng).await;
        *tally.entry(op).or_default() += 1;
        let wrong = violations(&app);
        assert!(wrong.is_empty(), "seed {seed}, step {n} ({op}): {wrong:?}");
    }
    println!(
        "simulation on {:?}: seed {seed}, {total} steps, {tally:?}",
        app.backend
    );
    app.assert_no_drift();
}

async fn many_clients_at_once_keep_every_invariant_at_every_instant(app: TestApp) {
    let seed = seed();
    let per_client = steps(1500) / 10;
    let sim = Arc::new(programme(&app, "simulation-race").await);
    let app = Arc::new(app);
    let done = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicUsize::new(0));
    let checker = {
        let (app, done, checks) = (app.clone(), done.clone(), checks.clone());
        tokio::spawn(async move {
            let mut found = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let app = app.clone();
                let wrong = tokio::task::spawn_blocking(move || violations(&app))
                    .await
                    .expect("check");
                checks.fetch_add(1, Ordering::SeqCst);
                found.extend(wrong);
            }
            found
        })
    };
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..10u64 {
        let (app, sim) = (app.clone(), sim.clone());
        clients.spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(client));
            let mut people = People::default();
            for _ in 0..per_client {
                step(&app, &sim, &mut people, &mut rng).await;
            }
        });
    }
    while let Some(finished) = clients.join_next().await {
        finished.expect("client");
    }
    done.store(true, Ordering::SeqCst);
    let found = checker.await.expect("checker");
    assert!(found.is_empty(), "seed {seed}: {found:?}");
    assert!(violations(&app).is_empty());
    println!(
        "concurrent simulation on {:?}: seed {seed}, 10 clients x {per_client} steps, {} snapshot checks",
        app.backend,
        checks.load(Ordering::SeqCst)
    );
    app.assert_no_drift();
}

on_both_backends!(
    thousands_of_mixed_operations_keep_every_invariant,
    many_clients_at_once_keep_every_invariant_at_every_instant,
);

/// Cancellations, claims and declines through two `serve` processes on one PostgreSQL database,
/// with a checker reading snapshots throughout: the waitlist invariants hold across processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_hand_freed_seats_to_the_waitlist_in_order() {
    use crate::helpers::{Backend, ServeProcess};
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let slug = app.published_event("two-process-waitlist").await;
    let class = app.session(&slug, "Sought after", 6, 0).await;
    let mut holders = Vec::new();
    for n in 0..6 {
        let booked = app
            .booked(&slug, &format!("h{n}@example.org"), &[class])
            .await;
        holders.push(booked["manage_token"].as_str().expect("token").to_owned());
    }
    let mut waiting = Vec::new();
    for n in 0..24 {
        let joined: Value = app
            .post(
                &format!("/api/v1/events/{slug}/sessions/{class}/waitlist"),
                &json!({"name": "W", "email": format!("w{n}@example.org")}),
            )
            .await
            .json()
            .await
            .expect("json");
        waiting.push(joined["manage_token"].as_str().expect("token").to_owned());
    }
    let servers = Arc::new([
        ServeProcess::start(&app.database_url),
        ServeProcess::start(&app.database_url),
    ]);
    let app = Arc::new(app);
    let done = Arc::new(AtomicBool::new(false));
    let checker = {
        let (app, done) = (app.clone(), done.clone());
        tokio::spawn(async move {
            let mut found = Vec::new();
            let mut checks = 0;
            while !done.load(Ordering::SeqCst) {
                let app = app.clone();
                found.extend(
                    tokio::task::spawn_blocking(move || violations(&app))
                        .await
                        .expect("check"),
                );
                checks += 1;
            }
            (found, checks)
        })
    };
    let mut clients = tokio::task::JoinSet::new();
    for (n, token) in holders.into_iter().enumerate() {
        let (client, servers) = (app.client.clone(), servers.clone());
        clients.spawn(async move {
            let base = &servers[n % 2].address;
            let response = client
                .post(format!("{base}/api/v1/bookings/{token}/cancel"))
                .send()
                .await
                .expect("cancel");
            assert_eq!(response.status(), 200);
        });
    }
    for (n, token) in waiting.into_iter().enumerate() {
        let (client, servers) = (app.client.clone(), servers.clone());
        clients.spawn(async move {
            // Each person checks their place through either process until the seats run out,
            // claiming an offer (or, one in four, declining it).
            for round in 0..200 {
                let base = &servers[(n + round) % 2].address;
                let entry: Value = client
                    .get(format!("{base}/api/v1/waitlist/{token}"))
                    .send()
                    .await
                    .expect("entry")
                    .json()
                    .await
                    .expect("json");
                match entry["state"].as_str() {
                    Some("offered") => {
                        let action = if n % 4 == 3 { "decline" } else { "claim" };
                        let response = client
                            .post(format!("{base}/api/v1/waitlist/{token}/{action}"))
                            .send()
                            .await
                            .expect("act");
                        assert!(
                            response.status().is_success(),
                            "{action}: {}",
                            response.status()
                        );
                        return;
                    }
                    Some("waiting") => {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await
                    }
                    _ => return,
                }
            }
        });
    }
    while let Some(finished) = clients.join_next().await {
        finished.expect("client");
    }
    done.store(true, Ordering::SeqCst);
    let (found, checks) = checker.await.expect("checker");
    assert!(found.is_empty(), "{found:?}");
    assert!(checks > 0);
    let session = app.public_session(&slug, class).await;
    assert_eq!(
        session["seats_left"], 0,
        "every freed seat went to someone waiting"
    );
    assert!(violations(&app).is_empty());
    app.assert_no_drift();
}
