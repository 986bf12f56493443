//! The check-in pages of the dashboard: the sessions to pick from, checking in by code with each
//! outcome shown, by search and button, undo, roles and CSRF.

use std::time::Duration;

use diesel::prelude::*;
use mail_parser::{MessageParser, MimeHeaders};
use masterclass::db::schema::{bookings, seats, sessions};
use masterclass::organisers::Role;

use crate::dashboard::signed_in_as;
use crate::helpers::{code_of, expect_json, seat_id, Backend, TestApp};
use crate::mail::{drain, mailer};
use crate::pages::{Browser, Page};
use crate::smtp::{self, SmtpServer};

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn(backend).await
}

fn door(session_id: i64) -> String {
    format!("/organiser/sessions/{session_id}/checkin")
}

/// Sends `code` from the door page of `session_id` and follows the redirect back to it.
async fn enter_code(browser: &mut Browser, session_id: i64, code: &str) -> Page {
    let page = browser.get(&door(session_id)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let sent = browser
        .post(
            &door(session_id),
            &[("csrf", page.csrf().as_str()), ("code", code), ("q", "")],
        )
        .await;
    assert_eq!(sent.location(), door(session_id));
    browser.get(&door(session_id)).await
}

crate::on_both_backends_with!(super::app;
    the_sessions_page_lists_the_sessions_of_published_events,
    a_code_entered_at_the_door_checks_in_once_and_each_refusal_is_shown,
    a_person_found_by_search_is_checked_in_with_a_button_and_can_be_undone,
    the_door_needs_a_signed_in_organiser_and_a_form_token,
    a_certificate_lists_the_sessions_attended_with_their_cpd_hours_and_total,
    a_certificate_is_refused_before_the_event_and_to_someone_never_checked_in,
    a_certificate_is_emailed_to_the_attendee_with_the_pdf_attached,
    a_seat_cancelled_after_its_check_in_is_left_off_the_certificate,
);

async fn the_sessions_page_lists_the_sessions_of_published_events(app: TestApp) {
    let slug = app.published_event("door-pages-list").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    let mut browser = signed_in_as(&app, "door@example.org", "Chris Checkin", Role::Checkin).await;

    let page = browser.get("/organiser/checkin").await;

    assert_eq!(page.status, 200, "{}", page.body);
    page.shows(&[
        "<h1>Check-in</h1>",
        "Benefits mapping",
        &format!("href=\"{}\"", door(session)),
        "href=\"/organiser/checkin\"",
    ]);
}

async fn a_code_entered_at_the_door_checks_in_once_and_each_refusal_is_shown(app: TestApp) {
    let slug = app.published_event("door-pages-codes").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    let other = app.next_day_session(&slug, 10, 0).await;
    let priced = app
        .session_at(
            &slug,
            "Portfolio review",
            10,
            14_500,
            "2027-03-12T09:00:00+00:00",
            "2027-03-12T10:30:00+00:00",
        )
        .await;
    app.booked(&slug, "ada@example.org", &[session, other])
        .await;
    let cancelled = app.booked(&slug, "grace@example.org", &[session]).await;
    let grace_code = code_of(&app, session, "grace@example.org").await;
    let manage = cancelled["manage_token"].as_str().expect("token");
    assert_eq!(app.cancel(manage, None).await.status(), 200);
    app.booked(&slug, "held@example.org", &[priced]).await;
    let ada_code = code_of(&app, session, "ada@example.org").await;
    let ada_other_code = code_of(&app, other, "ada@example.org").await;
    let held_code = code_of(&app, priced, "held@example.org").await;
    let mut browser = signed_in_as(&app, "door@example.org", "Chris Checkin", Role::Checkin).await;

    let before = browser.get(&door(session)).await;
    before.shows(&["<strong>0</strong> checked in of <strong>1</strong> confirmed"]);

    let first = enter_code(&mut browser, session, &ada_code).await;
    first.shows(&[
        "role=\"status\"",
        "Checked in: Ada Lovelace",
        "<strong>1</strong> checked in of <strong>1</strong> confirmed",
    ]);
    let again = enter_code(&mut browser, session, &ada_code).await;
    again.shows(&[
        "role=\"alert\"",
        "Already used: Ada Lovelace is already checked in",
        "by Chris Checkin",
        "<strong>1</strong> checked in of <strong>1</strong> confirmed",
    ]);
    let elsewhere = enter_code(&mut browser, session, &ada_other_code).await;
    elsewhere.shows(&["Another session", "Benefits realisation"]);
    let gone = enter_code(&mut browser, session, &grace_code).await;
    gone.shows(&["Cancelled: Ada Lovelace is not checked in"]);
    let unpaid = enter_code(&mut browser, priced, &held_code).await;
    unpaid.shows(&[
        "Not confirmed: Ada Lovelace is not checked in",
        "not paid for yet",
    ]);
    let unknown = enter_code(&mut browser, session, "1234.56.0123456789ABCDEF").await;
    unknown.shows(&["role=\"alert\"", "Unknown code: not checked in"]);

    let reloaded = browser.get(&door(session)).await;
    reloaded.lacks(&["Unknown code", "role=\"alert\""]);

    let empty = browser
        .post(
            &door(session),
            &[("csrf", reloaded.csrf().as_str()), ("code", " ")],
        )
        .await;
    assert_eq!(empty.status, 422, "{}", empty.body);
    empty.shows(&["Enter the check-in code", "aria-invalid=\"true\""]);
}

async fn a_person_found_by_search_is_checked_in_with_a_button_and_can_be_undone(app: TestApp) {
    let slug = app.published_event("door-pages-search").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    let ada = app.booked(&slug, "ada@example.org", &[session]).await;
    app.booked(&slug, "grace@example.org", &[session]).await;
    let reference = ada["reference"].as_str().expect("reference").to_owned();
    let seat = seat_id(&app, session, "ada@example.org").await;
    let mut browser = signed_in_as(&app, "admin@example.org", "Alex Admin", Role::Admin).await;

    let found = browser
        .get(&format!("{}?q={}", door(session), reference.to_lowercase()))
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    found.shows(&["ada@example.org", &reference, "Not yet"]);
    found.lacks(&["grace@example.org"]);

    let checked = browser
        .post(
            &door(session),
            &[
                ("csrf", found.csrf()),
                ("seat_id", seat.to_string()),
                ("q", reference.to_lowercase()),
            ],
        )
        .await;
    assert_eq!(
        checked.location(),
        format!("{}?q={}", door(session), reference.to_lowercase())
    );
    let after = browser.get(checked.location()).await;
    after.shows(&[
        "Checked in: Ada Lovelace",
        "Yes, at",
        "by Alex Admin",
        "Undo<span class=\"visually-hidden\"> the check-in of Ada Lovelace",
    ]);

    let undone = browser
        .post(
            &format!("{}/{seat}/undo", door(session)),
            &[("csrf", after.csrf()), ("q", String::new())],
        )
        .await;
    assert_eq!(undone.location(), door(session));
    let page = browser.get(&door(session)).await;
    page.shows(&[
        "Check-in undone: Ada Lovelace",
        "<strong>0</strong> checked in of <strong>2</strong> confirmed",
    ]);
}

async fn the_door_needs_a_signed_in_organiser_and_a_form_token(app: TestApp) {
    let slug = app.published_event("door-pages-auth").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;
    let code = code_of(&app, session, "ada@example.org").await;

    let mut stranger = Browser::of(&app);
    for path in ["/organiser/checkin".to_owned(), door(session)] {
        let page = stranger.get(&path).await;
        assert!(
            page.location().starts_with("/organiser/login?next="),
            "{path}"
        );
    }

    let mut browser = signed_in_as(&app, "door@example.org", "Chris Checkin", Role::Checkin).await;
    let page = browser.get(&door(session)).await;
    let forged = browser
        .post(
            &door(session),
            &[("csrf", "not-the-token"), ("code", code.as_str())],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let cross_site = browser
        .post_with(
            &door(session),
            &[("csrf", page.csrf().as_str()), ("code", code.as_str())],
            &[("Sec-Fetch-Site", "cross-site")],
        )
        .await;
    assert_eq!(cross_site.status, 403, "{}", cross_site.body);

    let after = browser.get(&door(session)).await;
    after.shows(&["<strong>0</strong> checked in of <strong>1</strong> confirmed"]);
}

/// An event with three sessions of 1.5, 3 and 2 CPD hours, booked by Ada, who was checked in to
/// the first two; the reference of her booking.
async fn attended(app: &TestApp, slug: &str) -> String {
    let slug = app.published_event(slug).await;
    let first = app.session(&slug, "Benefits mapping", 10, 0).await;
    let second = app.next_day_session(&slug, 10, 0).await;
    let missed = app
        .session_at(
            &slug,
            "Portfolio review",
            10,
            0,
            "2027-03-12T09:00:00+00:00",
            "2027-03-12T10:30:00+00:00",
        )
        .await;
    for (session, tenths) in [(first, 15), (second, 30), (missed, 20)] {
        let changed = expect_json(
            app.admin_patch(
                &format!("/api/v1/admin/sessions/{session}"),
                &serde_json::json!({ "cpd_tenths": tenths }),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(changed["cpd_tenths"], tenths, "{changed}");
    }
    let booked = app
        .booked(&slug, "ada@example.org", &[first, second, missed])
        .await;
    for session in [first, second] {
        let code = code_of(app, session, "ada@example.org").await;
        let answer = expect_json(
            app.admin_post(
                &format!("/api/v1/admin/sessions/{session}/checkin"),
                &serde_json::json!({ "token": code }),
            )
            .await,
            200,
        )
        .await;
        assert_eq!(answer["outcome"], "checked_in", "{answer}");
    }
    booked["reference"].as_str().expect("reference").to_owned()
}

/// Moves the server's clock to after the event's first session.
fn after_the_first_session(app: &TestApp) {
    let first_ends = chrono::DateTime::parse_from_rfc3339("2027-03-10T10:30:00+00:00")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let by = first_ends - app.clock.now() + chrono::Duration::minutes(1);
    assert!(app.clock.advance(by));
}

fn certificate(reference: &str) -> String {
    format!("/organiser/bookings/{reference}/certificate")
}

async fn a_certificate_lists_the_sessions_attended_with_their_cpd_hours_and_total(app: TestApp) {
    let reference = attended(&app, "certificate-content").await;
    after_the_first_session(&app);
    let mut browser = signed_in_as(&app, "admin@example.org", "Alex Admin", Role::Admin).await;

    let page = browser.get(&certificate(&reference)).await;
    let pdf = browser
        .get(&format!("{}.pdf", certificate(&reference)))
        .await;

    assert_eq!(page.status, 200, "{}", page.body);
    page.shows(&[
        "Benefits mapping",
        "Benefits realisation",
        ">1.5<",
        ">3<",
        ">4.5<",
    ]);
    page.lacks(&["Portfolio review"]);
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    let disposition = pdf.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.contains(&format!("certificate-{reference}.pdf")),
        "{disposition}"
    );
    // The PDF's text is written uncompressed, so it reads as text.
    let text = &pdf.body;
    assert!(text.starts_with("%PDF-"));
    for shown in [
        "Certificate of attendance",
        "Ada Lovelace",
        &reference,
        "Benefits mapping",
        "Benefits realisation",
        "1.5 h",
        "3 h",
        "Total CPD hours",
        "4.5 h",
    ] {
        assert!(text.contains(shown), "the certificate shows {shown:?}");
    }
    assert!(
        !text.contains("Portfolio review"),
        "a session missed is not on it"
    );
}

async fn a_certificate_is_refused_before_the_event_and_to_someone_never_checked_in(app: TestApp) {
    let reference = attended(&app, "certificate-refused").await;
    let slug = app.published_event("certificate-absent").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    let absent = app.booked(&slug, "grace@example.org", &[session]).await;
    let absent = absent["reference"].as_str().expect("reference").to_owned();
    let mut browser = signed_in_as(&app, "admin@example.org", "Alex Admin", Role::Admin).await;

    let early = browser.get(&certificate(&reference)).await;
    early.shows(&["No certificate yet", "before the event", "role=\"alert\""]);
    early.lacks(&["Download the PDF"]);
    let early_pdf = browser
        .get(&format!("{}.pdf", certificate(&reference)))
        .await;
    assert_eq!(early_pdf.status, 409, "{}", early_pdf.body);
    let early_mail = browser
        .post(&certificate(&reference), &[("csrf", early.csrf())])
        .await;
    assert_eq!(early_mail.status, 409, "{}", early_mail.body);
    early_mail.shows(&["before the event"]);

    after_the_first_session(&app);
    // Signed in again: the first sign-in has expired by then.
    let mut browser = signed_in_as(&app, "admin2@example.org", "Alex Admin", Role::Admin).await;
    let never = browser.get(&certificate(&absent)).await;
    never.shows(&["No certificate yet", "not checked in to any session"]);
    let never_pdf = browser.get(&format!("{}.pdf", certificate(&absent))).await;
    assert_eq!(never_pdf.status, 409, "{}", never_pdf.body);
    let unknown = browser.get(&certificate("PMO-NOPE00")).await;
    assert_eq!(unknown.status, 404);

    let db = app.db.clone();
    let queued: i64 = tokio::task::spawn_blocking(move || {
        use masterclass::db::schema::email_jobs;
        email_jobs::table
            .filter(email_jobs::template.eq("certificate"))
            .count()
            .get_result(&mut *db.conn().expect("connection"))
            .expect("count")
    })
    .await
    .expect("query task");
    assert_eq!(queued, 0, "nothing was emailed");

    let mut door = signed_in_as(&app, "door@example.org", "Chris Checkin", Role::Checkin).await;
    let refused = door.get(&certificate(&reference)).await;
    assert_eq!(refused.status, 403, "certificates are for admins");
    let mut stranger = Browser::of(&app);
    assert!(stranger
        .get(&format!("{}.pdf", certificate(&reference)))
        .await
        .location()
        .starts_with("/organiser/login"));
}

async fn a_certificate_is_emailed_to_the_attendee_with_the_pdf_attached(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let reference = attended(&app, "certificate-mail").await;
    after_the_first_session(&app);
    let server = SmtpServer::start_on(smtp::free_port());
    let mailer = mailer(&app, server.port, |_| {});
    drain(&app, &mailer).await; // the booking's confirmation
    let before = server.messages().len();
    let mut browser = signed_in_as(&app, "admin@example.org", "Alex Admin", Role::Admin).await;
    let page = browser.get(&certificate(&reference)).await;

    let sent = browser
        .post(&certificate(&reference), &[("csrf", page.csrf())])
        .await;
    assert_eq!(
        sent.location(),
        format!("{}?done=sent", certificate(&reference))
    );
    let after = browser.get(sent.location()).await;
    after.shows(&["The certificate is on its way to ada@example.org."]);
    drain(&app, &mailer).await;

    let messages = server.wait_for(before + 1, Duration::from_secs(5));
    let email = messages
        .iter()
        .filter_map(|m| MessageParser::default().parse(m))
        .find(|m| {
            m.subject()
                .is_some_and(|s| s.starts_with("Your certificate of attendance"))
        })
        .expect("the certificate arrived");
    assert!(email
        .to()
        .and_then(|to| to.first())
        .and_then(|a| a.address())
        .is_some_and(|a| a == "ada@example.org"));
    let text = email.body_text(0).expect("text").into_owned();
    assert!(
        text.contains("certificate of attendance is attached"),
        "{text}"
    );
    let name = format!("certificate-{reference}.pdf");
    let pdf = email
        .attachments()
        .find(|a| a.attachment_name() == Some(name.as_str()))
        .expect("the certificate attached");
    assert!(pdf.contents().starts_with(b"%PDF-"));
    let pdf_text = String::from_utf8_lossy(pdf.contents());
    assert!(pdf_text.contains("4.5 h") && pdf_text.contains("Benefits realisation"));
}

/// Checked in, then the seat cancelled: the session no longer counts towards the certificate.
async fn a_seat_cancelled_after_its_check_in_is_left_off_the_certificate(app: TestApp) {
    let reference = attended(&app, "certificate-cancelled").await;
    let db = app.db.clone();
    let owner = reference.clone();
    let second = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        seats::table
            .inner_join(sessions::table)
            .inner_join(bookings::table)
            .filter(bookings::reference.eq(owner))
            .filter(sessions::title.eq("Benefits realisation"))
            .select(sessions::id)
            .first::<i64>(&mut *conn)
            .expect("the second session's seat")
    })
    .await
    .expect("query task");
    expect_json(
        app.admin_post(
            &format!("/api/v1/admin/bookings/{reference}/cancel"),
            &serde_json::json!({ "session_ids": [second] }),
        )
        .await,
        200,
    )
    .await;
    after_the_first_session(&app);
    let mut browser = signed_in_as(&app, "admin@example.org", "Alex Admin", Role::Admin).await;

    let page = browser.get(&certificate(&reference)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.shows(&["Benefits mapping", ">1.5<"]);
    page.lacks(&["Benefits realisation", ">4.5<"]);
}
