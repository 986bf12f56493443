//! The organisers' dashboard in the browser: accepting an invitation, signing in, the team and
//! API tokens, each page checked with axe-core and photographed.

use masterclass::organisers::Role;

use crate::axe::axe;
use crate::harness::Browser;
use crate::helpers::{code_of, TestApp};
use crate::organisers::{invitation, join};
use crate::screenshots::screenshots;

crate::on_both_backends_with!(crate::harness::spawn;
    an_owner_joins_signs_in_and_invites_a_colleague,
    an_admin_runs_the_day_from_the_dashboard,
);

async fn an_owner_joins_signs_in_and_invites_a_colleague((app, b): (TestApp, Browser)) {
    b.goto(&invitation(&app, "olive@example.org", "Olive", Role::Owner).await)
        .await;
    b.wait_for_text("Join the organisers").await;
    axe(&b, "organiser invitation").await;
    screenshots(&b, "organiser-invitation").await;
    b.fill("Your name", "Olive Owner").await;
    b.fill("New password", "correct horse battery staple").await;
    b.fill("New password again", "correct horse battery staple")
        .await;
    b.click_button("Save and sign in").await;
    b.wait_for_text("Signed in as Olive Owner").await;
    axe(&b, "dashboard").await;
    screenshots(&b, "dashboard").await;

    b.click_link("Team").await;
    b.wait_for_text("Invite a colleague").await;
    b.fill("Name", "Carl Checker").await;
    b.fill("Email address", "carl@example.org").await;
    b.check("Check-in").await;
    b.click_button("Send the invitation").await;
    b.wait_for_text("Carl Checker has been invited as checkin")
        .await;
    axe(&b, "team").await;
    screenshots(&b, "team").await;

    b.click_link("API tokens").await;
    b.fill("What it is for", "export script").await;
    b.click_button("Make a token").await;
    b.wait_for_text("Your new token").await;
    axe(&b, "api tokens").await;
    screenshots(&b, "api-tokens").await;

    b.click_button("Sign out Olive Owner").await;
    b.wait_for_text("You have signed out.").await;
    axe(&b, "organiser sign-in").await;
    screenshots(&b, "organiser-sign-in").await;
    b.click_link("Forgotten your password?").await;
    b.wait_for_text("Forgotten password").await;
    axe(&b, "forgotten password").await;
    screenshots(&b, "forgotten-password").await;
    b.goto(&app.url("/organiser/login")).await;
    b.wait_for_text("Organiser sign-in").await;
    b.fill("Email address", "olive@example.org").await;
    b.fill("Password", "not the password").await;
    b.click_button("Sign in").await;
    b.wait_for_text("The email address or password is not right.")
        .await;
    b.fill("Password", "correct horse battery staple").await;
    b.click_button("Sign in").await;
    b.wait_for_text("Signed in as Olive Owner").await;
}

/// The organiser's day: sign in, build a session, raise its capacity so the first person waiting
/// is offered the seat, check someone in by code, export the attendee list and read it, and
/// download a certificate once the session is over.
async fn an_admin_runs_the_day_from_the_dashboard((app, b): (TestApp, Browser)) {
    let slug = app.published_event("ops-day").await;
    let link = invitation(&app, "olive@example.org", "Olive", Role::Owner).await;
    join(&b, &link, "Olive Owner").await;

    // Build a session of one seat.
    b.goto(&app.url(&format!("/organiser/events/{slug}/sessions/new")))
        .await;
    b.fill("Title", "Portfolio triage").await;
    b.fill("Starts", "2027-03-10T09:00").await;
    b.fill("Ends", "2027-03-10T10:30").await;
    b.fill("Capacity", "1").await;
    b.check("People may join a waitlist when it is full").await;
    b.check("Published").await;
    b.click_button("Add the session").await;
    b.wait_for_text("Portfolio triage").await;
    let programme = app.programme(&slug).await;
    let session = programme["sessions"][0]["id"]
        .as_i64()
        .expect("the session");
    assert_eq!(programme["sessions"][0]["capacity"], 1);

    // Grace takes the seat; Ada waits.
    let grace = app.booked(&slug, "grace@example.org", &[session]).await;
    let joined = app
        .post(
            &format!("/api/v1/events/{slug}/sessions/{session}/waitlist"),
            &serde_json::json!({"name": "Ada Lovelace", "email": "ada@example.org"}),
        )
        .await;
    assert_eq!(joined.status(), 201);
    let ada: serde_json::Value = joined.json().await.expect("json");
    b.goto(&app.url(&format!("/organiser/events/{slug}"))).await;
    b.wait_for_text("Portfolio triage").await;
    axe(&b, "event with a full session").await;

    // One more seat: Ada is offered it at once.
    b.fill("New capacity of Portfolio triage", "2").await;
    b.click_button("Set the capacity of Portfolio triage").await;
    b.wait_until("the offer is shown", async |b: &Browser| {
        b.execute(
            "const c = document.querySelector('.count-offered'); return c ? c.textContent.trim() : '';",
            vec![],
        )
        .await
            == "1"
    })
    .await;
    let place = app
        .get(&format!(
            "/api/v1/waitlist/{}",
            ada["manage_token"].as_str().expect("token")
        ))
        .await
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_eq!(place["state"], "offered");
    // The offer goes out by email, in the same transaction as the capacity change.
    let db = app.db.clone();
    let offers = tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use masterclass::db::schema::email_jobs;
        let mut conn = db.conn().expect("connection");
        email_jobs::table
            .filter(email_jobs::recipient.eq("ada@example.org"))
            .filter(email_jobs::template.eq("waitlist_offer"))
            .count()
            .get_result::<i64>(&mut conn)
            .expect("count")
    })
    .await
    .expect("database task");
    assert_eq!(offers, 1, "Ada's offer email is in the outbox");

    // Grace at the door, by the code on her ticket.
    let seat = grace["seats"][0]["session_id"]
        .as_i64()
        .expect("seat session");
    assert_eq!(seat, session);
    let code = code_of(&app, session, "grace@example.org").await;
    b.goto(&app.url(&format!("/organiser/sessions/{session}/checkin")))
        .await;
    b.fill("Check-in code", &code).await;
    b.click_button("Check in").await;
    b.wait_for_text("Checked in: Ada Lovelace").await;
    axe(&b, "check-in done").await;
    screenshots(&b, "check-in-done").await;

    // The attendee list as a CSV, fetched with the browser's own session, and read back.
    let csv = b
        .execute(
            "return fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text());",
            vec![serde_json::json!(format!(
                "/organiser/sessions/{session}/attendees.csv"
            ))],
        )
        .await;
    let csv = csv.as_str().expect("the CSV as text");
    // (The browser's text decoding drops the byte-order mark the file starts with.)
    let csv = csv.strip_prefix('\u{feff}').unwrap_or(csv);
    let rows: Vec<Vec<&str>> = csv
        .split("\r\n")
        .filter(|line| !line.is_empty())
        .map(|line| line.split(',').collect())
        .collect();
    assert_eq!(rows[0][..3], ["reference", "name", "email"]);
    let grace_row = rows
        .iter()
        .find(|row| row.get(2) == Some(&"grace@example.org"))
        .expect("Grace's row");
    assert_eq!(grace_row[4], "confirmed");
    assert!(!grace_row[7].is_empty(), "checked in: {grace_row:?}");

    // Once the session is over (and the day's sign-in with it), Grace's certificate.
    app.clock.advance(chrono::Duration::days(200));
    let reference = grace["reference"].as_str().expect("reference");
    b.goto(&app.url(&format!("/organiser/bookings/{reference}/certificate")))
        .await;
    b.wait_for_text("Organiser sign-in").await;
    b.fill("Email address", "olive@example.org").await;
    b.fill("Password", "correct horse battery staple").await;
    b.click_button("Sign in").await;
    b.wait_for_text("Portfolio triage").await;
    axe(&b, "certificate").await;
    screenshots(&b, "certificate").await;
    let pdf = b
        .execute(
            "return fetch(arguments[0], {credentials: 'same-origin'})
                 .then(r => r.arrayBuffer().then(b => [r.status, r.headers.get('content-type'),
                     new TextDecoder('latin1').decode(new Uint8Array(b).slice(0, 5)), b.byteLength]));",
            vec![serde_json::json!(format!("/organiser/bookings/{reference}/certificate.pdf"))],
        )
        .await;
    assert_eq!(pdf[0], 200, "{pdf}");
    assert_eq!(pdf[1], "application/pdf", "{pdf}");
    assert_eq!(pdf[2], "%PDF-", "{pdf}");
}
