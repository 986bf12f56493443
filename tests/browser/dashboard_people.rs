//! The People section in the browser: a session's attendees and waitlist, a refused move, the
//! cancel confirmation, the booking search and page, overdue invoices and the outbox, each page
//! checked with axe-core and photographed.

use masterclass::organisers::Role;
use serde_json::json;

use crate::axe::axe;
use crate::harness::Browser;
use crate::helpers::TestApp;
use crate::organisers::{invitation, join};
use crate::screenshots::screenshots;

crate::on_both_backends_with!(crate::harness::spawn; an_admin_looks_after_the_people_of_a_session);

async fn an_admin_looks_after_the_people_of_a_session((app, b): (TestApp, Browser)) {
    let slug = app.published_event("people-browser").await;
    let session = app.session(&slug, "Benefits mapping", 1, 0).await;
    let full = app.next_day_session(&slug, 1, 0).await;
    let booking = app.booked(&slug, "ada@example.org", &[session]).await;
    let reference = booking["reference"].as_str().expect("reference").to_owned();
    app.booked(&slug, "grace@example.org", &[full]).await;
    let joined = app
        .post(
            &format!("/api/v1/events/{slug}/sessions/{session}/waitlist"),
            &json!({"name": "Bob Waiting", "email": "bob@example.org"}),
        )
        .await;
    assert_eq!(joined.status(), 201);

    let link = invitation(&app, "ada.admin@example.org", "Ada", Role::Admin).await;
    join(&b, &link, "Ada Admin").await;

    b.goto(&app.url(&format!("/organiser/sessions/{session}/people")))
        .await;
    b.wait_for_text("People: Benefits mapping").await;
    b.wait_for_text("Bob Waiting").await;
    axe(&b, "session people").await;
    screenshots(&b, "session-people").await;

    b.fill(
        "Move Ada Lovelace to",
        "Benefits realisation (Thu 11 Mar 2027, 09:00)",
    )
    .await;
    b.click_button("Move Ada Lovelace").await;
    b.wait_for_text("There is a problem").await;
    axe(&b, "session people with a refused move").await;
    screenshots(&b, "session-people-refused").await;

    b.click_link("Cancel seat of Ada Lovelace").await;
    b.wait_for_text("Cancellations by organisers are refunded in full")
        .await;
    axe(&b, "cancel a seat").await;
    screenshots(&b, "cancel-a-seat").await;

    b.click_link("Bookings").await;
    b.fill("Find a booking", "lovelace").await;
    b.click_button("Search").await;
    b.wait_for_text(&reference).await;
    axe(&b, "booking search").await;
    screenshots(&b, "booking-search").await;

    b.click_link(&reference).await;
    b.wait_for_text(&format!("Booking {reference}")).await;
    axe(&b, "booking").await;
    screenshots(&b, "booking").await;

    b.goto(&app.url("/organiser/invoices/overdue")).await;
    b.wait_for_text("No invoice is overdue.").await;
    axe(&b, "overdue invoices").await;
    screenshots(&b, "overdue-invoices").await;

    b.goto(&app.url("/organiser/outbox")).await;
    b.wait_for_text("Waiting to be sent").await;
    axe(&b, "outbox").await;
    screenshots(&b, "outbox").await;
}
