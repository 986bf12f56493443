//! The statistics and audit pages in the browser, with a small programme: each checked with
//! axe-core and photographed.

use masterclass::organisers::Role;
use serde_json::json;

use crate::axe::axe;
use crate::harness::Browser;
use crate::helpers::TestApp;
use crate::organisers::{invitation, join};
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

    let link = invitation(&app, "ada@example.org", "Ada", Role::Admin).await;
    join(&b, &link, "Ada Admin").await;

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
