//! Organisers for the dashboard tests: an invitation link as its email gives it, and accepting
//! one in the browser.

use masterclass::organisers::{self, accounts, NewOrganiser, Role};

use crate::harness::Browser;
use crate::helpers::TestApp;

/// The pass phrase the invited organisers choose.
pub const PASSWORD: &str = "correct horse battery staple";

/// An invitation link for a new organiser `email` (called `name`) with `role`, as its email
/// gives it.
pub async fn invitation(app: &TestApp, email: &str, name: &str, role: Role) -> String {
    let (db, key, now) = (app.db.clone(), app.issuer.key.clone(), app.clock.now());
    let (email, name) = (email.to_owned(), name.to_owned());
    let path = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        let new = NewOrganiser::parse(&email, &name, role).expect("valid");
        let organiser = organisers::insert(&mut conn, &new).expect("organiser");
        let link = accounts::invite_link(&mut conn, &key, &organiser, "PMO Masterclasses", now)
            .expect("link");
        format!("/organiser/password/{}", accounts::link_token(&key, link))
    })
    .await
    .expect("database task");
    app.url(&path)
}

/// Opens the invitation `link`, gives the name `full_name` and [`PASSWORD`], and waits until
/// the dashboard greets them signed in.
pub async fn join(b: &Browser, link: &str, full_name: &str) {
    b.goto(link).await;
    b.wait_for_text("Join the organisers").await;
    b.fill("Your name", full_name).await;
    b.fill("New password", PASSWORD).await;
    b.fill("New password again", PASSWORD).await;
    b.click_button("Save and sign in").await;
    b.wait_for_text(&format!("Signed in as {full_name}")).await;
}
