//! The organisers' dashboard in the browser: accepting an invitation, signing in, the team and
//! API tokens, each page checked with axe-core and photographed.

use masterclass::organisers::{self, accounts, NewOrganiser, Role};

use crate::axe::axe;
use crate::harness::Browser;
use crate::helpers::TestApp;
use crate::screenshots::screenshots;

/// An owner's invitation link, as its email gives it.
async fn invitation(app: &TestApp) -> String {
    let (db, key, now) = (app.db.clone(), app.issuer.key.clone(), app.clock.now());
    let path = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        let new = NewOrganiser::parse("olive@example.org", "Olive", Role::Owner).expect("valid");
        let owner = organisers::insert(&mut conn, &new).expect("organiser");
        let link =
            accounts::invite_link(&mut conn, &key, &owner, "PMO Masterclasses", now).expect("link");
        format!("/organiser/password/{}", accounts::link_token(&key, link))
    })
    .await
    .expect("database task");
    app.url(&path)
}

crate::on_both_backends_with!(crate::harness::spawn; an_owner_joins_signs_in_and_invites_a_colleague);

async fn an_owner_joins_signs_in_and_invites_a_colleague((app, b): (TestApp, Browser)) {
    b.goto(&invitation(&app).await).await;
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
    b.fill("Email address", "olive@example.org").await;
    b.fill("Password", "not the password").await;
    b.click_button("Sign in").await;
    b.wait_for_text("The email address or password is not right.")
        .await;
    b.fill("Password", "correct horse battery staple").await;
    b.click_button("Sign in").await;
    b.wait_for_text("Signed in as Olive Owner").await;
}
