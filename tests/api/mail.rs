//! Email delivery through the outbox, against a real SMTP server: what arrives, retries while
//! the server is down, dead jobs and the organiser's view of them.

use std::sync::Arc;
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use masterclass::config::{Settings, SmtpTls};
use masterclass::mail::worker::Round;
use masterclass::mail::Mailer;
use masterclass::tokens::TokenKey;
use serde_json::{json, Value};

use crate::helpers::{expect_json, TestApp};
use crate::on_both_backends;
use crate::smtp::{self, SmtpServer};

/// A mailer of this test's app that delivers to `port` on loopback.
fn mailer(app: &TestApp, port: u16, adjust: impl FnOnce(&mut Settings)) -> Arc<Mailer> {
    let mut settings = crate::helpers::test_settings(&app.database_url);
    settings.mail.smtp_host = "127.0.0.1".to_owned();
    settings.mail.smtp_port = port;
    settings.mail.smtp_tls = SmtpTls::None;
    adjust(&mut settings);
    let key = TokenKey::from_settings(&settings.secrets).expect("key");
    Arc::new(Mailer::new(&settings, key).expect("mailer"))
}

async fn drain(app: &TestApp, mailer: &Arc<Mailer>) -> Round {
    let (db, mailer) = (app.db.clone(), mailer.clone());
    tokio::task::spawn_blocking(move || mailer.drain(&db))
        .await
        .expect("drain task")
        .expect("drain")
}

async fn a_booking_confirmation_arrives_with_both_parts_and_a_calendar_file(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_on(smtp::free_port());
    let slug = app.published_event("mail-confirmed").await;
    let first = app
        .session(&slug, "Setting up a PMO that lasts", 20, 14500)
        .await;
    let second = app
        .session_at(
            &slug,
            "Benefits realisation",
            20,
            0,
            "2027-03-11T09:00:00+00:00",
            "2027-03-11T10:30:00+00:00",
        )
        .await;
    let booked = expect_json(
        app.book(&slug, "ada@example.org", &[first, second]).await,
        201,
    )
    .await;
    let reference = booked["reference"].as_str().expect("reference");

    let round = drain(&app, &mailer(&app, server.port, |_| {})).await;

    assert_eq!((round.sent, round.retrying, round.dead), (1, 0, 0));
    let messages = server.wait_for(1, Duration::from_secs(5));
    assert_eq!(messages.len(), 1, "one confirmation");
    let message = MessageParser::default()
        .parse(&messages[0])
        .expect("a MIME message");
    let subject = message.subject().unwrap_or_default();
    assert!(
        subject.contains(reference),
        "subject names the booking: {subject}"
    );
    assert_eq!(
        message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("ada@example.org")
    );
    let message_id = message.message_id().unwrap_or_default();
    assert!(
        message_id.ends_with("@masterclasses.example.org"),
        "{message_id}"
    );
    let text = message.body_text(0).expect("a plain-text part");
    let html = message.body_html(0).expect("an HTML part");
    for part in [&text, &html] {
        assert!(
            part.contains("Setting up a PMO that lasts") && part.contains("Benefits realisation")
        );
        assert!(part.contains(reference));
    }
    let token = booked["manage_token"].as_str().expect("token");
    assert!(
        text.contains(&format!("/api/v1/bookings/{token}")),
        "the manage link: {text}"
    );
    let calendar = message
        .attachments()
        .find(|a| a.attachment_name() == Some("agenda.ics"))
        .expect("agenda.ics attached");
    let ics = String::from_utf8_lossy(calendar.contents()).into_owned();
    assert_eq!(ics.matches("BEGIN:VEVENT").count(), 2, "{ics}");
    assert!(ics.contains("METHOD:PUBLISH"));

    let sent = expect_json(app.admin_get("/api/v1/admin/emails?state=sent").await, 200).await;
    assert_eq!(sent.as_array().map(Vec::len), Some(1));
    assert_eq!(sent[0]["template"], "booking_confirmed");
}

async fn emails_wait_while_the_smtp_server_is_down_and_arrive_when_it_returns(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let port = smtp::free_port();
    let slug = app.published_event("mail-down").await;
    let session = app.session(&slug, "Resource management", 50, 0).await;
    for n in 0..5 {
        expect_json(
            app.book(&slug, &format!("person{n}@example.org"), &[session])
                .await,
            201,
        )
        .await;
    }
    let mailer = mailer(&app, port, |_| {});

    let while_down = drain(&app, &mailer).await;
    assert_eq!(
        (while_down.sent, while_down.retrying, while_down.dead),
        (0, 5, 0)
    );
    let pending = expect_json(
        app.admin_get("/api/v1/admin/emails?state=pending").await,
        200,
    )
    .await;
    assert!(pending.as_array().is_some_and(|jobs| jobs
        .iter()
        .all(|j| j["last_error"].is_string() && j["attempts"] == 1)));

    let server = SmtpServer::start_on(port);
    // The test profile retries after one to two seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = drain(&app, &mailer).await;

    assert_eq!(
        after.sent, 5,
        "every email is delivered once the server is back"
    );
    assert_eq!(server.wait_for(5, Duration::from_secs(5)).len(), 5);
    let pending = expect_json(
        app.admin_get("/api/v1/admin/emails?state=pending").await,
        200,
    )
    .await;
    assert_eq!(pending, json!([]));
}

async fn a_job_that_keeps_failing_is_dead_visible_and_can_be_retried(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let port = smtp::free_port();
    let slug = app.published_event("mail-dead").await;
    let session = app.session(&slug, "PMO maturity", 50, 0).await;
    expect_json(app.book(&slug, "grace@example.org", &[session]).await, 201).await;
    let mailer = mailer(&app, port, |s| s.mail.max_attempts = 1);

    let round = drain(&app, &mailer).await;

    assert_eq!(round.dead, 1);
    let dead: Value =
        expect_json(app.admin_get("/api/v1/admin/emails?state=dead").await, 200).await;
    assert_eq!(dead.as_array().map(Vec::len), Some(1));
    assert!(
        dead[0]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{dead}"
    );
    let id = dead[0]["id"].as_i64().expect("id");

    let retried = expect_json(
        app.admin_post(&format!("/api/v1/admin/emails/{id}/retry"), &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(retried["state"], "pending");
    let server = SmtpServer::start_on(port);
    let round = drain(&app, &mailer).await;
    assert_eq!(round.sent, 1);
    assert_eq!(server.wait_for(1, Duration::from_secs(5)).len(), 1);
    let missing = app
        .admin_post("/api/v1/admin/emails/999999/retry", &json!({}))
        .await;
    assert_eq!(missing.status(), 404);
}

async fn the_agenda_downloads_as_a_calendar_file(app: TestApp) {
    let slug = app.published_event("agenda-file").await;
    let session = app.session(&slug, "Portfolio prioritisation", 50, 0).await;
    let booked = expect_json(app.book(&slug, "ada@example.org", &[session]).await, 201).await;
    let token = booked["manage_token"].as_str().expect("token");

    let response = app
        .get(&format!("/api/v1/bookings/{token}/agenda.ics"))
        .await;

    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/calendar")));
    let ics = response.text().await.expect("body");
    assert!(
        ics.contains("BEGIN:VCALENDAR") && ics.contains("Portfolio prioritisation"),
        "{ics}"
    );
    assert_eq!(
        app.get("/api/v1/bookings/not-a-real-token-at-all/agenda.ics")
            .await
            .status(),
        404
    );
}

on_both_backends!(
    a_booking_confirmation_arrives_with_both_parts_and_a_calendar_file,
    emails_wait_while_the_smtp_server_is_down_and_arrive_when_it_returns,
    a_job_that_keeps_failing_is_dead_visible_and_can_be_retried,
    the_agenda_downloads_as_a_calendar_file,
);
