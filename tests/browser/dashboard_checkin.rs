//! The check-in pages in the browser: picking a session, checking a person in by code and from
//! the search, each page checked with axe-core and photographed.

use masterclass::checkin::token;
use masterclass::organisers::{self, accounts, NewOrganiser, Role};

use crate::axe::axe;
use crate::harness::Browser;
use crate::helpers::TestApp;
use crate::screenshots::screenshots;

/// A door keeper's invitation link, as its email gives it.
async fn invitation(app: &TestApp) -> String {
    let (db, key, now) = (app.db.clone(), app.issuer.key.clone(), app.clock.now());
    let path = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        let new = NewOrganiser::parse("carl@example.org", "Carl", Role::Checkin).expect("valid");
        let door = organisers::insert(&mut conn, &new).expect("organiser");
        let link =
            accounts::invite_link(&mut conn, &key, &door, "PMO Masterclasses", now).expect("link");
        format!("/organiser/password/{}", accounts::link_token(&key, link))
    })
    .await
    .expect("database task");
    app.url(&path)
}

/// The check-in code of the first seat in `session_id`.
async fn code(app: &TestApp, session_id: i64) -> String {
    use diesel::prelude::*;
    use masterclass::db::schema::seats;
    let db = app.db.clone();
    let seat = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        seats::table
            .filter(seats::session_id.eq(session_id))
            .order(seats::id.asc())
            .select(seats::id)
            .first::<i64>(&mut *conn)
            .expect("a seat")
    })
    .await
    .expect("query task");
    token::code(&app.issuer.key, seat, session_id)
}

crate::on_both_backends_with!(crate::harness::spawn; a_door_keeper_checks_people_in_by_code_and_by_name);

async fn a_door_keeper_checks_people_in_by_code_and_by_name((app, b): (TestApp, Browser)) {
    let slug = app.published_event("door-browser").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;
    app.booked(&slug, "grace@example.org", &[session]).await;
    let ada = code(&app, session).await;

    b.goto(&invitation(&app).await).await;
    b.wait_for_text("Join the organisers").await;
    b.fill("Your name", "Carl Checker").await;
    b.fill("New password", "correct horse battery staple").await;
    b.fill("New password again", "correct horse battery staple")
        .await;
    b.click_button("Save and sign in").await;
    b.wait_for_text("Signed in as Carl Checker").await;

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
