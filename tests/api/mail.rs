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
pub(crate) fn mailer(app: &TestApp, port: u16, adjust: impl FnOnce(&mut Settings)) -> Arc<Mailer> {
    let mut settings = crate::helpers::test_settings(&app.database_url);
    settings.mail.smtp_host = "127.0.0.1".to_owned();
    settings.mail.smtp_port = port;
    settings.mail.smtp_tls = SmtpTls::None;
    adjust(&mut settings);
    let key = TokenKey::from_settings(&settings.secrets).expect("key");
    Arc::new(Mailer::new(&settings, key).expect("mailer"))
}

pub(crate) async fn drain(app: &TestApp, mailer: &Arc<Mailer>) -> Round {
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
        .session(&slug, "Setting up a PMO that lasts", 20, 0)
        .await;
    let second = app.next_day_session(&slug, 20, 0).await;
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

/// The one message received for `recipient`, parsed: (subject, text, calendar file).
fn message_for(
    server: &SmtpServer,
    recipient: &str,
    template_hint: &str,
) -> (String, String, String) {
    let messages = server.messages();
    let parsed: Vec<_> = messages
        .iter()
        .filter_map(|m| MessageParser::default().parse(m))
        .collect();
    let found = parsed
        .iter()
        .find(|m| {
            m.to().and_then(|a| a.first()).and_then(|a| a.address()) == Some(recipient)
                && m.subject()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(template_hint)
        })
        .unwrap_or_else(|| {
            panic!(
                "no {template_hint} email for {recipient} among {} messages",
                parsed.len()
            )
        });
    let calendar = found
        .attachments()
        .find(|a| a.attachment_name() == Some("agenda.ics"))
        .map(|a| String::from_utf8_lossy(a.contents()).into_owned())
        .unwrap_or_default();
    (
        found.subject().unwrap_or_default().to_owned(),
        found
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        calendar,
    )
}

async fn attendees_hear_of_moved_cancelled_and_withdrawn_sessions(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_on(smtp::free_port());
    let mailer = mailer(&app, server.port, |_| {});
    let slug = app.published_event("mail-changes").await;
    let moved = app
        .session(&slug, "PMO reporting and dashboards", 20, 0)
        .await;
    let cancelled = app.next_day_session(&slug, 20, 0).await;
    let withdrawn = app
        .session_at(
            &slug,
            "Agile PMOs",
            20,
            0,
            "2027-03-11T11:00:00+00:00",
            "2027-03-11T12:30:00+00:00",
        )
        .await;
    let booked = expect_json(
        app.book(&slug, "ada@example.org", &[moved, cancelled, withdrawn])
            .await,
        201,
    )
    .await;
    let token = booked["manage_token"].as_str().expect("token").to_owned();
    drain(&app, &mailer).await;

    let patch = app
        .admin_patch(&format!("/api/v1/admin/sessions/{moved}"), &json!({"starts_at": "2027-03-10T14:00:00+00:00", "ends_at": "2027-03-10T15:30:00+00:00", "room": "Main Hall"}))
        .await;
    assert_eq!(patch.status(), 200);
    let patch = app
        .admin_patch(
            &format!("/api/v1/admin/sessions/{cancelled}"),
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(patch.status(), 200);
    let cancel = app
        .cancel(&token, Some(&json!({"session_ids": [withdrawn]})))
        .await;
    assert_eq!(cancel.status(), 200);
    let round = drain(&app, &mailer).await;

    assert_eq!(round.sent, 3, "one email per change");
    server.wait_for(4, Duration::from_secs(5));
    let (_, text, calendar) =
        message_for(&server, "ada@example.org", "pmo reporting and dashboards");
    assert!(
        text.contains("Main Hall") && text.contains("14:00"),
        "the new time and room: {text}"
    );
    assert!(
        calendar.contains("SEQUENCE:1"),
        "calendars update the event: {calendar}"
    );
    let (_, text, calendar) = message_for(&server, "ada@example.org", "session cancelled");
    assert!(text.contains("Benefits realisation"), "{text}");
    assert!(calendar.contains("STATUS:CANCELLED"), "{calendar}");
    let (_, text, calendar) = message_for(&server, "ada@example.org", "cancellation confirmed");
    assert!(text.contains("Agile PMOs"), "{text}");
    assert!(calendar.contains("STATUS:CANCELLED"), "{calendar}");
}

async fn without_an_smtp_server_emails_are_written_as_files(app: TestApp) {
    let outbox = tempfile::tempdir().expect("folder");
    let mut settings = crate::helpers::test_settings(&app.database_url);
    settings.mail.outbox_dir = outbox.path().display().to_string();
    let key = TokenKey::from_settings(&settings.secrets).expect("key");
    let mailer = Arc::new(Mailer::new(&settings, key).expect("mailer"));
    let slug = app.published_event("mail-files").await;
    let session = app.session(&slug, "Resource management", 20, 0).await;
    expect_json(app.book(&slug, "ada@example.org", &[session]).await, 201).await;

    let round = drain(&app, &mailer).await;

    assert_eq!(round.sent, 1);
    let files: Vec<_> = std::fs::read_dir(outbox.path())
        .expect("outbox")
        .filter_map(Result::ok)
        .collect();
    assert_eq!(files.len(), 1);
    let raw = std::fs::read(files[0].path()).expect("file");
    let message = MessageParser::default()
        .parse(&raw)
        .expect("a MIME message");
    assert!(message
        .subject()
        .unwrap_or_default()
        .contains("PMO Masterclasses 2027"));
}

async fn attendees_get_their_agenda_once_a_few_days_before_the_event(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_on(smtp::free_port());
    let mailer = mailer(&app, server.port, |_| {});
    let at = |days: i64, hours: i64| {
        (chrono::Utc::now() + chrono::Duration::days(days) + chrono::Duration::hours(hours))
            .to_rfc3339()
    };
    let soon = app.published_event("starts-soon").await;
    let soon_session = app
        .session_at(
            &soon,
            "Setting up a PMO that lasts",
            20,
            0,
            &at(2, 0),
            &at(2, 2),
        )
        .await;
    let later = app.published_event("starts-later").await;
    let later_session = app
        .session_at(&later, "PMO maturity", 20, 0, &at(30, 0), &at(30, 2))
        .await;
    for email in ["ada@example.org", "grace@example.org"] {
        expect_json(app.book(&soon, email, &[soon_session]).await, 201).await;
    }
    expect_json(
        app.book(&later, "ada@example.org", &[later_session]).await,
        201,
    )
    .await;
    drain(&app, &mailer).await; // the three confirmations
    let remind = |db: masterclass::db::Db| async move {
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn().expect("connection");
            masterclass::mail::reminders::enqueue_due(&mut conn, 3).expect("reminders")
        })
        .await
        .expect("task")
    };

    let first = remind(app.db.clone()).await;
    let again = remind(app.db.clone()).await;
    let round = drain(&app, &mailer).await;

    assert_eq!(first, 2, "both attendees of the event starting in two days");
    assert_eq!(again, 0, "once only");
    assert_eq!(round.sent, 2);
    server.wait_for(5, Duration::from_secs(5));
    let (subject, text, calendar) = message_for(&server, "grace@example.org", "agenda");
    assert!(subject.contains("PMO Masterclasses 2027"), "{subject}");
    assert!(text.contains("Setting up a PMO that lasts"), "{text}");
    assert!(calendar.contains("BEGIN:VEVENT"), "{calendar}");
}

async fn mail_goes_over_starttls_or_implicit_tls_to_a_server_with_a_private_ca(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let (_certs, ca, cert, key) = smtp::localhost_certificate();
    let slug = app.published_event("mail-tls").await;
    let session = app
        .session(&slug, "PMO reporting and dashboards", 20, 0)
        .await;

    for (mode, server_options) in [
        (SmtpTls::Starttls, ["--tlscert", "--tlskey"]),
        (SmtpTls::Tls, ["--smtpscert", "--smtpskey"]),
    ] {
        let options = [
            server_options[0].as_ref(),
            cert.as_os_str(),
            server_options[1].as_ref(),
            key.as_os_str(),
        ];
        let server = SmtpServer::start_with(smtp::free_port(), &options);
        expect_json(
            app.book(
                &slug,
                &format!("{mode:?}@example.org").to_lowercase(),
                &[session],
            )
            .await,
            201,
        )
        .await;
        let untrusting = mailer(&app, server.port, |s| {
            s.mail.smtp_host = "localhost".into();
            s.mail.smtp_tls = mode;
        });
        let refused = drain(&app, &untrusting).await;
        assert_eq!(
            (refused.sent, refused.retrying),
            (0, 1),
            "{mode:?}: an unknown CA is not trusted"
        );

        tokio::time::sleep(Duration::from_millis(2100)).await;
        let trusting = mailer(&app, server.port, |s| {
            s.mail.smtp_host = "localhost".into();
            s.mail.smtp_tls = mode;
            s.mail.smtp_ca_file = ca.display().to_string();
        });
        let round = drain(&app, &trusting).await;
        assert_eq!(round.sent, 1, "{mode:?}: delivered over TLS");
        assert_eq!(server.wait_for(1, Duration::from_secs(5)).len(), 1);
    }
}

async fn mail_logs_in_with_the_configured_credentials(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_with_login(smtp::free_port(), "relay-user", "relay-secret");
    let slug = app.published_event("mail-login").await;
    let session = app.session(&slug, "Resource management", 20, 0).await;
    expect_json(app.book(&slug, "ada@example.org", &[session]).await, 201).await;

    let wrong = mailer(&app, server.port, |s| {
        s.mail.smtp_username = "relay-user".into();
        s.mail.smtp_password = Some("not-the-secret".to_owned().into());
    });
    let refused = drain(&app, &wrong).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let right = mailer(&app, server.port, |s| {
        s.mail.smtp_username = "relay-user".into();
        s.mail.smtp_password = Some("relay-secret".to_owned().into());
    });
    let delivered = drain(&app, &right).await;

    assert_eq!(
        (refused.sent, refused.retrying, refused.dead),
        (0, 1, 0),
        "a wrong password delivers nothing, and the email waits for the setting to be fixed"
    );
    assert_eq!(delivered.sent, 1, "the right one does");
    assert_eq!(server.wait_for(1, Duration::from_secs(5)).len(), 1);
}

/// Writes `n` confirmation jobs straight into the outbox.
async fn enqueue_confirmations(app: &TestApp, n: usize) {
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        for i in 0..n {
            let data = masterclass::mail::MailData {
                event: masterclass::mail::data::EventMail {
                    slug: "crash-test".into(),
                    name: "PMO Masterclasses 2027".into(),
                    venue: "Riverside Conference Centre, London".into(),
                    time_zone: "Europe/London".into(),
                },
                reference: format!("PMO-T{i:05}"),
                attendee_name: format!("Attendee {i}"),
                seats: Vec::new(),
                agenda: Vec::new(),
                total: None,
                change: None,
                hold_until: None,
                moved: false,
                paid: false,
                payment: None,
                refund: None,
                payment_error: None,
                invoice: None,
                waitlist: None,
                account: None,
                account_url: None,
                manage_url: None,
                agenda_url: None,
            };
            masterclass::mail::enqueue(
                &mut conn,
                masterclass::mail::Template::BookingConfirmed,
                &format!("attendee{i}@example.org"),
                None,
                &data,
            )
            .expect("enqueued");
        }
    })
    .await
    .expect("enqueue task");
}

/// A `masterclass worker` process delivering to the SMTP server on `port`.
fn start_worker(app: &TestApp, port: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_masterclass"))
        .arg("worker")
        .env("MASTERCLASS_ENV", "test")
        .env("MASTERCLASS__DATABASE__URL", &app.database_url)
        .env("MASTERCLASS__MAIL__SMTP_HOST", "127.0.0.1")
        .env("MASTERCLASS__MAIL__SMTP_PORT", port.to_string())
        .env("MASTERCLASS__MAIL__SMTP_TLS", "none")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("worker starts")
}

async fn jobs_in(app: &TestApp, state: &str) -> i64 {
    let (db, state) = (app.db.clone(), state.to_owned());
    tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use masterclass::db::schema::email_jobs;
        let mut conn = db.conn().expect("connection");
        email_jobs::table
            .filter(email_jobs::state.eq(state))
            .count()
            .get_result::<i64>(&mut *conn)
            .expect("count")
    })
    .await
    .expect("count task")
}

/// Waits until `n` jobs are sent (or `within` passes).
async fn until_sent(app: &TestApp, n: i64, within: Duration) -> i64 {
    let deadline = std::time::Instant::now() + within;
    loop {
        let sent = jobs_in(app, "sent").await;
        if sent >= n || std::time::Instant::now() > deadline {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (messages received, distinct Message-IDs among them).
fn received(server: &SmtpServer) -> (usize, usize) {
    let messages = server.messages();
    let ids: std::collections::HashSet<String> = messages
        .iter()
        .filter_map(|m| {
            MessageParser::default()
                .parse(m)
                .and_then(|p| p.message_id().map(str::to_owned))
        })
        .collect();
    (messages.len(), ids.len())
}

const JOBS: usize = 400;

/// Jobs still pending but held by a worker's lease.
async fn leased_pending(app: &TestApp) -> i64 {
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        use diesel::prelude::*;
        use masterclass::db::schema::email_jobs;
        let mut conn = db.conn().expect("connection");
        email_jobs::table
            .filter(email_jobs::state.eq("pending"))
            .filter(email_jobs::lease_until.is_not_null())
            .count()
            .get_result::<i64>(&mut *conn)
            .expect("count")
    })
    .await
    .expect("count task")
}

async fn a_worker_told_to_stop_hands_back_what_it_has_not_sent(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_on(smtp::free_port());
    enqueue_confirmations(&app, JOBS).await;
    let mut worker = start_worker(&app, server.port);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.messages().len() < JOBS / 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let pid = worker.id().to_string();
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    let exited = worker.wait().expect("worker exits");

    assert!(signalled.success());
    assert!(exited.success(), "a clean exit on SIGTERM: {exited:?}");
    assert_eq!(
        leased_pending(&app).await,
        0,
        "nothing unsent is left under its lease"
    );
    let sent = jobs_in(&app, "sent").await;
    assert!(sent < JOBS as i64, "it stopped partway ({sent} sent)");
    assert_eq!(
        server.messages().len() as i64,
        sent,
        "what it sent is exactly what it marked sent"
    );
    let mut successor = start_worker(&app, server.port);
    // Nothing is left under a lease (checked above), so the successor can send all the rest.
    let all = until_sent(&app, JOBS as i64, Duration::from_secs(30)).await;
    let _ = successor.kill();
    let _ = successor.wait();
    assert_eq!(all, JOBS as i64);
    let (total, distinct) = received(&server);
    assert_eq!(
        (total, distinct),
        (JOBS, JOBS),
        "each delivered exactly once"
    );
}

async fn two_worker_processes_never_deliver_the_same_job(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_on(smtp::free_port());
    enqueue_confirmations(&app, JOBS).await;

    let mut first = start_worker(&app, server.port);
    let mut second = start_worker(&app, server.port);
    let sent = until_sent(&app, JOBS as i64, Duration::from_secs(60)).await;
    for worker in [&mut first, &mut second] {
        let _ = worker.kill();
        let _ = worker.wait();
    }

    assert_eq!(sent, JOBS as i64, "every job is sent");
    server.wait_for(JOBS, Duration::from_secs(5));
    let (total, distinct) = received(&server);
    assert_eq!(distinct, JOBS, "every email arrived");
    assert_eq!(total, JOBS, "no email was delivered by both workers");
}

async fn a_worker_killed_mid_batch_loses_nothing_and_repeats_at_most_its_batch(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_on(smtp::free_port());
    enqueue_confirmations(&app, JOBS).await;

    let mut doomed = start_worker(&app, server.port);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.messages().len() < JOBS / 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = doomed.kill(); // SIGKILL: no chance to hand anything back
    let _ = doomed.wait();
    let at_kill = server.messages().len();
    let mut successor = start_worker(&app, server.port);
    // The dead worker's claims lapse after the test profile's 5-second lease.
    let sent = until_sent(&app, JOBS as i64, Duration::from_secs(60)).await;
    let _ = successor.kill();
    let _ = successor.wait();

    assert!(
        at_kill < JOBS,
        "the worker was killed mid-run ({at_kill} delivered)"
    );
    assert_eq!(sent, JOBS as i64, "every job is sent in the end");
    server.wait_for(JOBS, Duration::from_secs(5));
    let (total, distinct) = received(&server);
    assert_eq!(distinct, JOBS, "no email was lost");
    let repeated = total - distinct;
    // At most what the killed worker held: one batch per sender thread (test profile: 4 × 20).
    assert!(repeated <= 4 * 20, "{repeated} emails were delivered twice");
    println!(
        "{:?}: killed after {at_kill} deliveries; {repeated} of {JOBS} emails delivered twice",
        app.backend
    );
}

on_both_backends!(
    a_booking_confirmation_arrives_with_both_parts_and_a_calendar_file,
    emails_wait_while_the_smtp_server_is_down_and_arrive_when_it_returns,
    a_job_that_keeps_failing_is_dead_visible_and_can_be_retried,
    the_agenda_downloads_as_a_calendar_file,
    two_worker_processes_never_deliver_the_same_job,
    attendees_hear_of_moved_cancelled_and_withdrawn_sessions,
    without_an_smtp_server_emails_are_written_as_files,
    attendees_get_their_agenda_once_a_few_days_before_the_event,
    a_worker_told_to_stop_hands_back_what_it_has_not_sent,
    mail_goes_over_starttls_or_implicit_tls_to_a_server_with_a_private_ca,
    mail_logs_in_with_the_configured_credentials,
    a_worker_killed_mid_batch_loses_nothing_and_repeats_at_most_its_batch,
);
