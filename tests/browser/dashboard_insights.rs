//! The statistics and audit pages in the browser, with a small programme: each checked with
//! axe-core and photographed.

use masterclass::organisers::{self, accounts, NewOrganiser, Role};
use serde_json::json;

use crate::axe::axe;
use crate::harness::Browser;
use crate::helpers::TestApp;
use crate::screenshots::screenshots;

crate::on_both_backends_with!(crate::harness::spawn; an_admin_reads_the_statistics_and_the_audit_trail);

async fn an_admin_reads_the_statistics_and_the_audit_trail((app, b): (TestApp, Browser)) {
    let slug = app.published_event("insights-2027").await;
    let small = app.session(&slug, "Portfolio prioritisation", 2, 0).await;
    let large = app.next_day_session(&slug, 4, 0).await;
    app.book(&slug, "ann@example.org", &[small]).await;
    app.book(&slug, "bob@example.org", &[small, large]).await;
    app.post(
        &format!("/api/v1/events/{slug}/sessions/{small}/waitlist"),
        &json!({"name": "Dan Waiting", "email": "dan@example.org", "organisation": null}),
    )
    .await;
    app.admin_patch(
        &format!("/api/v1/admin/events/{slug}"),
        &json!({"venue": "Guildhall, York"}),
    )
    .await;

    let (db, key, now) = (app.db.clone(), app.issuer.key.clone(), app.clock.now());
    let path = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        let new = NewOrganiser::parse("ada@example.org", "Ada", Role::Admin).expect("valid");
        let admin = organisers::insert(&mut conn, &new).expect("organiser");
        let link =
            accounts::invite_link(&mut conn, &key, &admin, "PMO Masterclasses", now).expect("link");
        format!("/organiser/password/{}", accounts::link_token(&key, link))
    })
    .await
    .expect("database task");
    b.goto(&app.url(&path)).await;
    b.wait_for_text("Join the organisers").await;
    b.fill("Your name", "Ada Admin").await;
    b.fill("New password", "correct horse battery staple").await;
    b.fill("New password again", "correct horse battery staple")
        .await;
    b.click_button("Save and sign in").await;
    b.wait_for_text("Signed in as Ada Admin").await;

    b.click_link("Statistics").await;
    b.wait_for_text("Fill rate per session").await;
    b.wait_for_text("Waitlist demand per session").await;
    axe(&b, "statistics").await;
    screenshots(&b, "statistics").await;

    b.click_link("Audit trail").await;
    b.wait_for_text("event.update").await;
    axe(&b, "audit trail").await;
    screenshots(&b, "audit-trail").await;
}
