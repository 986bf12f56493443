//! The programme section of the dashboard in the browser: creating an event, its page with a
//! session, the session form and the cancel confirmation, each checked with axe-core and
//! photographed.

use masterclass::organisers::Role;

use crate::axe::axe;
use crate::harness::Browser;
use crate::helpers::TestApp;
use crate::organisers::{invitation, join};
use crate::screenshots::screenshots;

crate::on_both_backends_with!(crate::harness::spawn; an_admin_creates_an_event_and_manages_its_sessions);

async fn an_admin_creates_an_event_and_manages_its_sessions((app, b): (TestApp, Browser)) {
    let link = invitation(&app, "ada@example.org", "Ada", Role::Admin).await;
    join(&b, &link, "Ada Admin").await;

    b.click_link("Events").await;
    b.wait_for_text("Create an event").await;
    b.click_button("Create the event").await;
    b.wait_for_text("There is a problem").await;
    axe(&b, "events with errors").await;
    screenshots(&b, "organiser-events-errors").await;
    b.fill("Web address name (slug)", "pmo-2028").await;
    b.fill("Name", "PMO Masterclasses 2028").await;
    b.fill("Venue", "Riverside Conference Centre, London").await;
    b.fill("refund_days_1", "14").await;
    b.fill("refund_percent_1", "100").await;
    b.click_button("Create the event").await;
    b.wait_for_text("The event has been created.").await;
    axe(&b, "event").await;
    screenshots(&b, "organiser-event").await;

    let session = app.session("pmo-2028", "Portfolio triage", 20, 9900).await;
    b.click_link("Add a session").await;
    b.wait_for_text("New session").await;
    axe(&b, "new session").await;
    screenshots(&b, "organiser-new-session").await;

    b.goto(&app.url(&format!("/organiser/sessions/{session}")))
        .await;
    b.wait_for_text("Save the session").await;
    axe(&b, "session form").await;
    screenshots(&b, "organiser-session").await;
    // A colleague renames the session while the form is open: saving is refused, the entries
    // are kept, and the page says what changed; saving again applies them.
    let renamed = app
        .patch_session(
            session,
            &serde_json::json!({"title": "Portfolio triage (advanced)"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    b.fill("Capacity", "25").await;
    b.click_button("Save the session").await;
    b.wait_for_text("Someone else saved a change while you were editing")
        .await;
    b.wait_for_text("Title is now saved as “Portfolio triage (advanced)”")
        .await;
    axe(&b, "session form overtaken").await;
    screenshots(&b, "organiser-session-overtaken").await;
    b.click_button("Save the session").await;
    b.wait_for_text("The session has been saved.").await;
    axe(&b, "event with a session").await;
    screenshots(&b, "organiser-event-sessions").await;
    b.fill("New capacity of Portfolio triage", "many").await;
    b.click_button("Set the capacity of Portfolio triage").await;
    b.wait_for_text("must be a whole number").await;
    axe(&b, "event with a refused capacity").await;
    screenshots(&b, "organiser-event-capacity-refused").await;
    b.fill("New capacity of Portfolio triage", "30").await;
    b.click_button("Set the capacity of Portfolio triage").await;
    b.wait_for_text("The capacity has been changed.").await;

    b.click_link("Cancel Portfolio triage").await;
    b.wait_for_text("This cannot be undone.").await;
    axe(&b, "cancel a session").await;
    screenshots(&b, "organiser-cancel-session").await;
    b.click_button("Cancel the session").await;
    b.wait_for_text("The session is cancelled").await;

    b.click_button("Publish").await;
    b.wait_for_text("The event is published").await;
}
