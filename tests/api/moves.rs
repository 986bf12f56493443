//! An organiser moves a seat to another session: what the seat costs afterwards. A confirmed
//! seat was paid or invoiced at its price and keeps it; a dearer session needs the difference
//! waived (in the API and on the dashboard); a held seat is not paid yet and takes the new
//! session's price. A held booking left with nothing to pay is confirmed, not left to expire.

use masterclass::organisers::Role;
use serde_json::{json, Value};

use crate::dashboard::{outbox, signed_in};
use crate::helpers::{expect_invalid, expect_json, merged, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_confirmed_seat_moves_to_a_dearer_session_only_with_the_difference_waived,
    a_confirmed_seat_keeps_its_price_in_a_cheaper_session,
    a_held_seat_takes_the_new_price_and_is_paid_at_the_new_total,
    a_held_seat_moved_to_a_free_session_is_confirmed,
    the_dashboard_offers_to_waive_the_difference_when_a_move_costs_more,
    a_held_booking_whose_priced_places_are_cancelled_is_confirmed,
);

/// An event taking invoices with sessions at £145, £195 and £95 (at one time: clashes allowed).
async fn priced_event(app: &TestApp, slug: &str) -> (String, [i64; 3]) {
    let body = merged(
        crate::helpers::event_body(slug),
        json!({"invoices_allowed": true, "invoice_prefix": "MV", "allow_clashes": true}),
    );
    expect_json(app.admin_post("/api/v1/admin/events", &body).await, 201).await;
    let standard = app.session(slug, "Standard", 10, 14_500).await;
    let premium = app.session(slug, "Premium", 10, 19_500).await;
    let basic = app.session(slug, "Basic", 10, 9_500).await;
    (slug.to_owned(), [standard, premium, basic])
}

fn buyer() -> Value {
    json!({
        "company": "Analytical Engines Ltd",
        "billing_address": "1 Babbage Street\nLondon EC1 2AB"
    })
}

/// Pays a held booking by invoice; returns the invoice.
async fn pay_by_invoice(app: &TestApp, token: &str) -> Value {
    expect_json(
        app.post(
            &format!("/api/v1/bookings/{token}/payments/invoice"),
            &buyer(),
        )
        .await,
        201,
    )
    .await
}

/// A booking of `session` confirmed by invoice; returns (reference, manage token).
async fn invoiced(app: &TestApp, slug: &str, email: &str, session: i64) -> (String, String) {
    let booked = expect_json(app.book(slug, email, &[session]).await, 201).await;
    let token = booked["manage_token"].as_str().expect("token").to_owned();
    let issued = pay_by_invoice(app, &token).await;
    assert_eq!(issued["gross_minor"], 14_500);
    let reference = booked["reference"].as_str().expect("reference").to_owned();
    (reference, token)
}

async fn move_seat(app: &TestApp, reference: &str, body: Value) -> reqwest::Response {
    app.admin_post(&format!("/api/v1/admin/bookings/{reference}/move"), &body)
        .await
}

/// Moves a seat, which must go through; returns the booking after the move.
async fn move_went_through(app: &TestApp, reference: &str, body: Value) -> Value {
    expect_json(move_seat(app, reference, body).await, 200).await
}

/// (session id, state, price) of each seat.
fn seats(booking: &Value) -> Vec<(i64, String, i64)> {
    booking["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| {
            (
                s["session_id"].as_i64().expect("session"),
                s["state"].as_str().expect("state").to_owned(),
                s["price_minor"].as_i64().expect("price"),
            )
        })
        .collect()
}

async fn a_confirmed_seat_moves_to_a_dearer_session_only_with_the_difference_waived(app: TestApp) {
    let (slug, [standard, premium, _]) = priced_event(&app, "dearer").await;
    let (reference, token) = invoiced(&app, &slug, "ada@example.org", standard).await;

    let refused = expect_invalid(
        move_seat(
            &app,
            &reference,
            json!({"from_session_id": standard, "to_session_id": premium}),
        )
        .await,
        "waive_difference",
    )
    .await;
    let said = refused.to_string();
    assert!(said.contains("£50.00"), "{said}");
    let kept = app.booking(&token).await;
    assert_eq!(
        seats(&kept),
        vec![(standard, "confirmed".to_owned(), 14_500)],
        "a refused move changes nothing"
    );
    assert_eq!(app.seats_left(&slug, premium).await, 10);

    let moved = move_went_through(
        &app,
        &reference,
        json!({"from_session_id": standard, "to_session_id": premium, "waive_difference": true}),
    )
    .await;
    assert!(
        seats(&moved).contains(&(premium, "confirmed".to_owned(), 14_500)),
        "the seat keeps the price it was invoiced at: {:?}",
        seats(&moved)
    );
    assert_eq!(moved["total_minor"], 14_500);
    assert_eq!(moved["status"], "confirmed");
    assert_eq!(
        (
            app.seats_left(&slug, standard).await,
            app.seats_left(&slug, premium).await
        ),
        (10, 9)
    );
    let invoices = expect_json(
        app.admin_get(&format!("/api/v1/admin/invoices?event={slug}&state=all"))
            .await,
        200,
    )
    .await;
    let grosses: Vec<i64> = invoices
        .as_array()
        .expect("invoices")
        .iter()
        .filter_map(|i| i["gross_minor"].as_i64())
        .collect();
    assert_eq!(grosses, vec![14_500], "the invoice stands as issued");
}

async fn a_confirmed_seat_keeps_its_price_in_a_cheaper_session(app: TestApp) {
    let (slug, [standard, _, basic]) = priced_event(&app, "cheaper").await;
    let (reference, _) = invoiced(&app, &slug, "ada@example.org", standard).await;
    let moved = move_went_through(
        &app,
        &reference,
        json!({"from_session_id": standard, "to_session_id": basic}),
    )
    .await;
    assert!(
        seats(&moved).contains(&(basic, "confirmed".to_owned(), 14_500)),
        "{:?}",
        seats(&moved)
    );
    assert_eq!(moved["total_minor"], 14_500);
}

async fn a_held_seat_takes_the_new_price_and_is_paid_at_the_new_total(app: TestApp) {
    let (slug, [standard, premium, _]) = priced_event(&app, "held-move").await;
    let booked = expect_json(app.book(&slug, "ada@example.org", &[standard]).await, 201).await;
    assert_eq!(booked["status"], "held");
    let reference = booked["reference"].as_str().expect("reference");
    let token = booked["manage_token"].as_str().expect("token");

    let moved = move_went_through(
        &app,
        reference,
        json!({"from_session_id": standard, "to_session_id": premium}),
    )
    .await;
    assert!(
        seats(&moved).contains(&(premium, "held".to_owned(), 19_500)),
        "{:?}",
        seats(&moved)
    );
    assert_eq!(moved["total_minor"], 19_500);
    assert_eq!(
        (
            outbox(&app, "ada@example.org", "booking_held").await,
            outbox(&app, "ada@example.org", "booking_confirmed").await
        ),
        (2, 0),
        "told again what is held and what is due, not that it is confirmed"
    );
    let newest_held: String = crate::dashboard::with_db(&app, |conn| {
        use diesel::prelude::*;
        use masterclass::db::schema::email_jobs;
        email_jobs::table
            .filter(email_jobs::template.eq("booking_held"))
            .order(email_jobs::id.desc())
            .select(email_jobs::data)
            .first::<String>(conn)
            .expect("the held email")
    })
    .await;
    let data: Value = serde_json::from_str(&newest_held).expect("json");
    assert_eq!(
        (data["moved"].as_bool(), data["total"].as_str()),
        (Some(true), Some("£195.00")),
        "it says the booking changed, with the new total"
    );

    let issued = pay_by_invoice(&app, token).await;
    assert_eq!(issued["gross_minor"], 19_500);
    assert_eq!(app.booking(token).await["status"], "confirmed");
}

async fn the_dashboard_offers_to_waive_the_difference_when_a_move_costs_more(app: TestApp) {
    let (slug, [standard, premium, _]) = priced_event(&app, "dashboard-dearer").await;
    let (reference, token) = invoiced(&app, &slug, "ada@example.org", standard).await;
    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let path = format!("/organiser/sessions/{standard}/people");
    let page = browser.get(&path).await;
    page.lacks(&["name=\"waive_difference\""]);

    let refused = browser
        .post(
            &format!("{path}/move"),
            &[
                ("csrf", page.csrf()),
                ("reference", reference.clone()),
                ("to", premium.to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.shows(&[
        &format!("id=\"to-{reference}-error\""),
        "costs £50.00 more than this seat was booked for",
        "They keep their seat here.",
        "name=\"waive_difference\"",
        &format!("<option value=\"{premium}\" selected>"),
    ]);
    assert_eq!(
        seats(&app.booking(&token).await),
        vec![(standard, "confirmed".to_owned(), 14_500)]
    );

    let moved = browser
        .post(
            &format!("{path}/move"),
            &[
                ("csrf", refused.csrf()),
                ("reference", reference.clone()),
                ("to", premium.to_string()),
                ("waive_difference", "yes".to_owned()),
            ],
        )
        .await;
    assert_eq!(moved.status, 303, "{}", moved.body);
    let booking = app.booking(&token).await;
    assert!(
        seats(&booking).contains(&(premium, "confirmed".to_owned(), 14_500)),
        "{:?}",
        seats(&booking)
    );
    assert_eq!(booking["total_minor"], 14_500);
    app.assert_no_drift();
}

async fn a_held_seat_moved_to_a_free_session_is_confirmed(app: TestApp) {
    let (slug, [standard, _, _]) = priced_event(&app, "held-to-free").await;
    let free = app.next_day_session(&slug, 10, 0).await;
    let booked = expect_json(app.book(&slug, "ada@example.org", &[standard]).await, 201).await;
    let reference = booked["reference"].as_str().expect("reference");
    let token = booked["manage_token"].as_str().expect("token");

    let moved = move_went_through(
        &app,
        reference,
        json!({"from_session_id": standard, "to_session_id": free}),
    )
    .await;
    assert_eq!(
        (
            moved["status"].as_str(),
            moved["payment_status"].as_str(),
            moved["total_minor"].as_i64()
        ),
        (Some("confirmed"), Some("not_required"), Some(0)),
        "nothing is left to pay: {moved}"
    );
    assert!(seats(&moved).contains(&(free, "confirmed".to_owned(), 0)));
    // The hold's deadline no longer applies: the sweeper leaves the seat alone.
    app.advance(chrono::Duration::hours(2)).await;
    assert_eq!(app.booking(token).await["status"], "confirmed");
    app.assert_no_drift();
}

async fn a_held_booking_whose_priced_places_are_cancelled_is_confirmed(app: TestApp) {
    let (slug, [standard, _, _]) = priced_event(&app, "priced-cancelled").await;
    let free = app.next_day_session(&slug, 10, 0).await;
    let booked = expect_json(
        app.book(&slug, "ada@example.org", &[standard, free]).await,
        201,
    )
    .await;
    assert_eq!(booked["status"], "held");
    let token = booked["manage_token"].as_str().expect("token");

    let after = expect_json(
        app.cancel(token, Some(&json!({"session_ids": [standard]})))
            .await,
        200,
    )
    .await;
    assert_eq!(
        (after["status"].as_str(), after["total_minor"].as_i64()),
        (Some("confirmed"), Some(0)),
        "{after}"
    );
    assert!(seats(&after).contains(&(free, "confirmed".to_owned(), 0)));
    assert_eq!(
        outbox(&app, "ada@example.org", "booking_confirmed").await,
        1
    );
    app.advance(chrono::Duration::hours(2)).await;
    assert_eq!(app.booking(token).await["status"], "confirmed");
    app.assert_no_drift();
}
