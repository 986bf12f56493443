//! The check-in pages in the browser: picking a session, checking a person in by code and from
//! the search, each page checked with axe-core and photographed.

use masterclass::organisers::Role;

use crate::axe::axe;
use crate::harness::Browser;
use crate::helpers::{code_of, TestApp};
use crate::organisers::{invitation, join};
use crate::screenshots::screenshots;

crate::on_both_backends_with!(crate::harness::spawn; a_door_keeper_checks_people_in_by_code_and_by_name);

async fn a_door_keeper_checks_people_in_by_code_and_by_name((app, b): (TestApp, Browser)) {
    let slug = app.published_event("door-browser").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;
    app.booked(&slug, "grace@example.org", &[session]).await;
    let ada = code_of(&app, session, "ada@example.org").await;

    let link = invitation(&app, "carl@example.org", "Carl", Role::Checkin).await;
    join(&b, &link, "Carl Checker").await;

    b.click_link("Check-in").await;
    b.wait_for_text("Choose the session whose door you are at.")
        .await;
    axe(&b, "check-in sessions").await;
    screenshots(&b, "checkin-sessions").await;

    b.click_link("Benefits mapping").await;
    b.wait_for_text("Check in by code").await;
    b.fill("Check-in code", &ada).await;
    b.click_button("Check in").await;
    b.wait_for_text("Checked in: Ada Lovelace").await;
    axe(&b, "check-in door").await;
    screenshots(&b, "checkin-door").await;

    b.fill("Name, email address or booking reference", "grace")
        .await;
    b.click_button("Search").await;
    b.wait_for_text("People matching").await;
    b.click_button("Check in Ada Lovelace").await;
    b.wait_for_text("2 checked in of 2 confirmed").await;
}
