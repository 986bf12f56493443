//! Check-in at the door: codes and their forgeries, once-only check-in under concurrency,
//! refusals with their reasons, the door list, undo, roles, and the codes on the manage page and
//! in the confirmation email.

use std::time::Duration;

use futures_util::future::join_all;
use mail_parser::{MessageParser, MimeHeaders};
use masterclass::checkin::token;
use masterclass::organisers::Role;
use serde_json::{json, Value};

use crate::helpers::{code_of, expect_invalid, expect_json, expect_problem, seat_id, TestApp};
use crate::mail::{drain, mailer};
use crate::on_both_backends;
use crate::smtp::{self, SmtpServer};

fn checkin_path(session_id: i64) -> String {
    format!("/api/v1/admin/sessions/{session_id}/checkin")
}

/// Presents `body` at the door of `session_id` with the organiser token `bearer`.
async fn present_as(
    app: &TestApp,
    bearer: &str,
    session_id: i64,
    body: &Value,
) -> reqwest::Response {
    app.request(reqwest::Method::POST, &checkin_path(session_id))
        .bearer_auth(bearer)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

async fn present(app: &TestApp, session_id: i64, code: &str) -> reqwest::Response {
    present_as(app, &app.admin_token, session_id, &json!({ "token": code })).await
}

async fn door_list(app: &TestApp, session_id: i64, query: &str) -> Value {
    expect_json(
        app.admin_get(&format!("{}{query}", checkin_path(session_id)))
            .await,
        200,
    )
    .await
}

/// Books `session_ids` for a person called `name`; returns the 201 body.
async fn book_as(app: &TestApp, slug: &str, name: &str, email: &str, session_ids: &[i64]) -> Value {
    expect_json(
        app.post(
            &format!("/api/v1/events/{slug}/bookings"),
            &json!({"attendee": {"name": name, "email": email}, "session_ids": session_ids}),
        )
        .await,
        201,
    )
    .await
}

async fn a_code_checks_its_holder_in_once_then_says_when_and_by_whom(app: TestApp) {
    let slug = app.published_event("door-once").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;
    app.booked(&slug, "grace@example.org", &[session]).await;
    let code = code_of(&app, session, "ada@example.org").await;
    let door = app.organiser_token("door@example.org", Role::Checkin).await;

    let first = expect_json(
        present_as(&app, &door, session, &json!({"token": code})).await,
        200,
    )
    .await;
    let second = expect_json(present(&app, session, &code).await, 200).await;

    assert_eq!(first["outcome"], "checked_in", "{first}");
    assert_eq!(first["attendee"]["name"], "Ada Lovelace");
    assert_eq!(first["attendee"]["state"], "confirmed");
    assert_eq!(first["session"]["id"], session);
    assert_eq!(first["attendee"]["checked_in_by"]["name"], "Chris Checkin");
    let at = first["attendee"]["checked_in_at"].as_str().expect("a time");
    assert_eq!(second["outcome"], "already_checked_in", "{second}");
    assert_eq!(
        second["attendee"]["checked_in_at"], at,
        "the first time stands"
    );
    assert_eq!(second["attendee"]["checked_in_by"]["name"], "Chris Checkin");
    let message = second["message"].as_str().expect("a message");
    assert!(
        message.contains("already checked in") && message.contains("by Chris Checkin"),
        "{message}"
    );
    let list = door_list(&app, session, "").await;
    assert_eq!(
        (list["confirmed"].as_i64(), list["checked_in"].as_i64()),
        (Some(2), Some(1))
    );
}

async fn an_altered_or_forged_code_is_refused_and_changes_nothing(app: TestApp) {
    let slug = app.published_event("door-forged").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;
    app.booked(&slug, "grace@example.org", &[session]).await;
    let ada_seat = seat_id(&app, session, "ada@example.org").await;
    let grace_seat = seat_id(&app, session, "grace@example.org").await;
    let code = token::code(&app.issuer.key, ada_seat, session);
    let tag = code.rsplit('.').next().expect("tag").to_owned();
    let last = tag.chars().last().expect("a digit");
    let changed_digit = format!(
        "{}{}",
        &code[..code.len() - 1],
        if last == '7' { '8' } else { '7' }
    );

    for forged in [
        changed_digit,
        // Ada's signature on Grace's seat.
        format!("{grace_seat}.{session}.{tag}"),
        format!("{ada_seat}.{}.{tag}", session + 1),
        "not a code".to_owned(),
        ada_seat.to_string(),
    ] {
        let refused = expect_problem(present(&app, session, &forged).await, 404, "not-found").await;
        assert!(
            refused["detail"]
                .as_str()
                .is_some_and(|d| d.contains("not a valid check-in code")),
            "{refused}"
        );
    }
    assert_eq!(door_list(&app, session, "").await["checked_in"], 0);
    let genuine = expect_json(
        present(&app, session, &code.to_ascii_lowercase()).await,
        200,
    )
    .await;
    assert_eq!(
        genuine["outcome"], "checked_in",
        "lower case is the same code"
    );
}

async fn a_code_for_another_session_is_refused_with_that_sessions_title(app: TestApp) {
    let slug = app.published_event("door-other").await;
    let here = app.session(&slug, "Benefits mapping", 10, 0).await;
    let there = app.next_day_session(&slug, 10, 0).await;
    app.booked(&slug, "ada@example.org", &[here, there]).await;
    let for_there = code_of(&app, there, "ada@example.org").await;

    let answer = expect_json(present(&app, here, &for_there).await, 200).await;

    assert_eq!(answer["outcome"], "other_session", "{answer}");
    assert_eq!(answer["other_session"]["id"], there);
    assert_eq!(answer["other_session"]["title"], "Benefits realisation");
    assert!(answer["attendee"]["checked_in_at"].is_null());
    for session in [here, there] {
        assert_eq!(door_list(&app, session, "").await["checked_in"], 0);
    }
}

async fn a_cancelled_seat_is_refused_as_cancelled(app: TestApp) {
    let slug = app.published_event("door-cancelled").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    let booked = app.booked(&slug, "ada@example.org", &[session]).await;
    let code = code_of(&app, session, "ada@example.org").await;
    let manage = booked["manage_token"].as_str().expect("token");
    assert_eq!(app.cancel(manage, None).await.status(), 200);

    let answer = expect_json(present(&app, session, &code).await, 200).await;

    assert_eq!(answer["outcome"], "cancelled", "{answer}");
    assert_eq!(answer["attendee"]["state"], "cancelled");
    assert!(answer["attendee"]["checked_in_at"].is_null());
    assert!(answer["message"]
        .as_str()
        .is_some_and(|m| m.contains("cancelled")));
}

async fn a_seat_held_for_payment_is_refused_as_not_confirmed(app: TestApp) {
    let slug = app.published_event("door-held").await;
    let session = app.session(&slug, "Benefits mapping", 10, 14_500).await;
    let booked = app.booked(&slug, "ada@example.org", &[session]).await;
    assert_eq!(booked["status"], "held");
    let code = code_of(&app, session, "ada@example.org").await;
    let seat = seat_id(&app, session, "ada@example.org").await;

    let by_code = expect_json(present(&app, session, &code).await, 200).await;
    let by_seat = expect_json(
        present_as(&app, &app.admin_token, session, &json!({"seat_id": seat})).await,
        200,
    )
    .await;

    for answer in [&by_code, &by_seat] {
        assert_eq!(answer["outcome"], "not_confirmed", "{answer}");
        assert_eq!(answer["attendee"]["state"], "held");
        assert!(answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("not paid")));
    }
    let list = door_list(&app, session, "").await;
    assert_eq!(
        (list["confirmed"].as_i64(), list["checked_in"].as_i64()),
        (Some(0), Some(0))
    );
}

async fn twenty_scanners_reading_one_code_at_once_check_it_in_once(app: TestApp) {
    let slug = app.published_event("door-race").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;
    let code = code_of(&app, session, "ada@example.org").await;

    let scans = (0..20).map(|_| present(&app, session, &code));
    let answers = join_all(scans).await;

    let mut outcomes = Vec::new();
    for answer in answers {
        outcomes.push(expect_json(answer, 200).await["outcome"].clone());
    }
    let checked_in = outcomes.iter().filter(|o| *o == "checked_in").count();
    let already = outcomes
        .iter()
        .filter(|o| *o == "already_checked_in")
        .count();
    assert_eq!((checked_in, already), (1, 19), "{outcomes:?}");
    assert_eq!(door_list(&app, session, "").await["checked_in"], 1);
}

async fn the_door_list_finds_people_by_name_email_or_reference(app: TestApp) {
    let slug = app.published_event("door-search").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    let other = app.next_day_session(&slug, 10, 0).await;
    book_as(&app, &slug, "Ada Lovelace", "ada@example.org", &[session]).await;
    let grace = book_as(
        &app,
        &slug,
        "Grace Hopper",
        "grace@navy.example",
        &[session],
    )
    .await;
    book_as(
        &app,
        &slug,
        "Alan Turing",
        "alan@example.org",
        &[session, other],
    )
    .await;
    book_as(&app, &slug, "Katherine Johnson", "kj@example.org", &[other]).await;
    let reference = grace["reference"].as_str().expect("reference");
    let seat = seat_id(&app, session, "ada@example.org").await;
    expect_json(
        present_as(&app, &app.admin_token, session, &json!({"seat_id": seat})).await,
        200,
    )
    .await;

    let everyone = door_list(&app, session, "").await;
    let names = |list: &Value| -> Vec<String> {
        list["attendees"]
            .as_array()
            .expect("attendees")
            .iter()
            .map(|a| a["name"].as_str().expect("name").to_owned())
            .collect()
    };

    assert_eq!(
        names(&everyone),
        ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    );
    assert_eq!(
        (
            everyone["confirmed"].as_i64(),
            everyone["checked_in"].as_i64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(everyone["more"], false);
    assert_eq!(everyone["session"]["title"], "Benefits mapping");
    let ada = &everyone["attendees"][0];
    assert_eq!(ada["seat_id"], seat);
    assert!(ada["checked_in_at"].is_string());
    assert_eq!(ada["checked_in_by"]["name"], "Olive Owner");
    assert!(everyone["attendees"][1]["checked_in_at"].is_null());
    assert_eq!(
        names(&door_list(&app, session, "?q=LOVE").await),
        ["Ada Lovelace"]
    );
    assert_eq!(
        names(&door_list(&app, session, "?q=navy.example").await),
        ["Grace Hopper"]
    );
    let by_reference = door_list(&app, session, &format!("?q={}", reference.to_lowercase())).await;
    assert_eq!(names(&by_reference), ["Grace Hopper"]);
    assert_eq!(
        by_reference["confirmed"], 3,
        "counts are the session's, whatever the search"
    );
    assert_eq!(names(&door_list(&app, session, "?q=a").await).len(), 3);
    assert!(
        names(&door_list(&app, session, "?q=Katherine").await).is_empty(),
        "another session's"
    );
    assert!(
        names(&door_list(&app, session, "?q=%25").await).is_empty(),
        "% is literal"
    );
    assert!(
        names(&door_list(&app, session, "?q=_").await).is_empty(),
        "_ is literal"
    );
    expect_invalid(
        app.admin_get(&format!("{}?q={}", checkin_path(session), "x".repeat(101)))
            .await,
        "q",
    )
    .await;
    expect_problem(
        app.admin_get(&checkin_path(999_999)).await,
        404,
        "not-found",
    )
    .await;
}

async fn a_seat_picked_from_the_list_checks_in_and_a_mistake_can_be_undone(app: TestApp) {
    let slug = app.published_event("door-undo").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    let other = app.next_day_session(&slug, 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session, other])
        .await;
    let seat = seat_id(&app, session, "ada@example.org").await;
    let elsewhere = seat_id(&app, other, "ada@example.org").await;
    let undo_path = |session: i64, seat: i64| format!("{}/{seat}", checkin_path(session));
    let door = app.organiser_token("door@example.org", Role::Checkin).await;
    let undo = |path: String| {
        app.request(reqwest::Method::DELETE, &path)
            .bearer_auth(&door)
            .send()
    };

    let checked = expect_json(
        present_as(&app, &door, session, &json!({"seat_id": seat})).await,
        200,
    )
    .await;
    assert_eq!(checked["outcome"], "checked_in");

    let undone = expect_json(undo(undo_path(session, seat)).await.expect("sent"), 200).await;
    assert_eq!(undone["undone"], true, "{undone}");
    assert!(undone["attendee"]["checked_in_at"].is_null());
    assert!(undone["attendee"]["checked_in_by"].is_null());
    assert_eq!(door_list(&app, session, "").await["checked_in"], 0);

    let again = expect_json(undo(undo_path(session, seat)).await.expect("sent"), 200).await;
    assert_eq!(again["undone"], false, "nothing to undo, nothing changed");
    let rechecked = expect_json(
        present(
            &app,
            session,
            &code_of(&app, session, "ada@example.org").await,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        rechecked["outcome"], "checked_in",
        "checked in again after the undo"
    );

    // A seat of another session, no such seat, no such session.
    for path in [
        undo_path(session, elsewhere),
        undo_path(session, 999_999),
        undo_path(999_999, seat),
    ] {
        expect_problem(undo(path).await.expect("sent"), 404, "not-found").await;
    }
    let picked_elsewhere = expect_json(
        present_as(&app, &door, session, &json!({"seat_id": elsewhere})).await,
        200,
    )
    .await;
    assert_eq!(picked_elsewhere["outcome"], "other_session");
    assert_eq!(door_list(&app, other, "").await["checked_in"], 0);
}

async fn checking_in_needs_an_organiser_token(app: TestApp) {
    let slug = app.published_event("door-roles").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;
    let code = code_of(&app, session, "ada@example.org").await;
    let seat = seat_id(&app, session, "ada@example.org").await;

    let anonymous = [
        app.request(reqwest::Method::POST, &checkin_path(session))
            .json(&json!({"token": code})),
        app.request(
            reqwest::Method::GET,
            &format!("{}?q=ada", checkin_path(session)),
        ),
        app.request(
            reqwest::Method::DELETE,
            &format!("{}/{seat}", checkin_path(session)),
        ),
        app.request(reqwest::Method::POST, &checkin_path(session))
            .bearer_auth("mct_not_a_real_token_at_all_000000000000")
            .json(&json!({"token": code})),
        // A bad body or query is not looked at before the token.
        app.request(reqwest::Method::POST, &checkin_path(session))
            .header("content-type", "application/json")
            .body("{not json"),
        app.request(
            reqwest::Method::GET,
            &format!("{}?nope=1", checkin_path(session)),
        ),
    ];
    for request in anonymous {
        let answer = request.send().await.expect("sent");
        expect_problem(answer, 401, "unauthorized").await;
    }
    assert_eq!(door_list(&app, session, "").await["checked_in"], 0);

    let door = app.organiser_token("door@example.org", Role::Checkin).await;
    let answer = expect_json(
        present_as(&app, &door, session, &json!({"token": code})).await,
        200,
    )
    .await;
    assert_eq!(answer["outcome"], "checked_in");
    let list = app
        .request(reqwest::Method::GET, &checkin_path(session))
        .bearer_auth(&door)
        .send()
        .await
        .expect("sent");
    assert_eq!(expect_json(list, 200).await["checked_in"], 1);
}

async fn a_body_naming_no_seat_or_two_is_refused_and_changes_nothing(app: TestApp) {
    let slug = app.published_event("door-bodies").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;
    let code = code_of(&app, session, "ada@example.org").await;
    let seat = seat_id(&app, session, "ada@example.org").await;
    let admin = &app;
    let post = move |body: Value| async move {
        present_as(admin, &admin.admin_token, session, &body).await
    };

    expect_invalid(post(json!({"token": code, "seat_id": seat})).await, "body").await;
    expect_invalid(post(json!({})).await, "body").await;
    expect_invalid(post(json!({"token": "   "})).await, "token").await;
    let extra = expect_problem(
        post(json!({"token": code, "extra": 1})).await,
        422,
        "validation",
    )
    .await;
    assert!(
        extra["detail"]
            .as_str()
            .is_some_and(|d| d.contains("extra")),
        "{extra}"
    );
    expect_invalid(post(json!({"seat_id": "seven"})).await, "seat_id").await;
    expect_problem(post(json!({"seat_id": 999_999})).await, 404, "not-found").await;
    expect_problem(present(&app, 999_999, &code).await, 404, "not-found").await;
    assert_eq!(door_list(&app, session, "").await["checked_in"], 0);
}

async fn the_manage_page_shows_a_check_in_code_for_each_confirmed_seat(app: TestApp) {
    let slug = app.published_event("door-page").await;
    let free = app.session(&slug, "Benefits mapping", 10, 0).await;
    let other = app.next_day_session(&slug, 10, 0).await;
    let priced = app.session(&slug, "Portfolio reviews", 10, 9_500).await;
    let booked = app.booked(&slug, "ada@example.org", &[free, other]).await;
    let held = app.booked(&slug, "grace@example.org", &[priced]).await;

    let page = app
        .get(&format!(
            "/bookings/{}",
            booked["manage_token"].as_str().expect("token")
        ))
        .await;
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let html = page.text().await.expect("html");
    let held_page = app
        .get(&format!(
            "/bookings/{}",
            held["manage_token"].as_str().expect("token")
        ))
        .await
        .text()
        .await
        .expect("html");

    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(html.contains("Your check-in codes</h2>"), "{html}");
    assert_eq!(
        html.matches("<svg ").count(),
        2,
        "one code per confirmed seat"
    );
    assert!(html.contains(
        r#"role="img" aria-label="Check-in code for Benefits mapping, Wednesday 10 March 2027""#
    ));
    assert!(html.contains(
        r#"aria-label="Check-in code for Benefits realisation, Thursday 11 March 2027""#
    ));
    let svg = html.split("<svg ").nth(1).expect("an svg");
    let svg = svg.split("</svg>").next().expect("its end");
    assert!(
        !svg.contains("style="),
        "no inline styles under the page's CSP"
    );
    assert!(!svg.contains("href"), "nothing fetched");
    assert!(
        !held_page.contains("<svg "),
        "a seat held for payment has no code yet"
    );
    assert!(!held_page.contains("check-in code"));
}

async fn the_confirmation_email_carries_each_code_as_a_picture_that_checks_in(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_on(smtp::free_port());
    let slug = app.published_event("door-mail").await;
    let first = app.session(&slug, "Benefits mapping", 10, 0).await;
    let second = app.next_day_session(&slug, 10, 0).await;
    let booked = app.booked(&slug, "ada@example.org", &[first, second]).await;
    let reference = booked["reference"].as_str().expect("reference");

    let round = drain(&app, &mailer(&app, server.port, |_| {})).await;

    assert_eq!(round.sent, 1);
    let messages = server.wait_for(1, Duration::from_secs(5));
    let message = MessageParser::default()
        .parse(&messages[0])
        .expect("a MIME message");
    let html = message.body_html(0).expect("an HTML part");
    let text = message.body_text(0).expect("a text part");
    assert!(text.contains("YOUR CHECK-IN CODES"), "{text}");
    assert!(text.contains(&format!("your booking reference, {reference}")));
    let pictures: Vec<_> = message
        .parts
        .iter()
        .filter(|part| {
            part.content_type()
                .is_some_and(|t| t.ctype() == "image" && t.subtype() == Some("png"))
        })
        .collect();
    assert_eq!(pictures.len(), 2, "one picture per seat");
    let mut checked = Vec::new();
    for picture in pictures {
        let cid = picture.content_id().expect("a Content-ID");
        assert!(
            html.contains(&format!("src=\"cid:{cid}\"")),
            "{cid} shown in {html}"
        );
        let code = read_qr(picture.contents());
        let session = code
            .split('.')
            .nth(1)
            .and_then(|s| s.parse::<i64>().ok())
            .expect("the session in the code");
        let answer = expect_json(present(&app, session, &code).await, 200).await;
        assert_eq!(answer["outcome"], "checked_in", "{answer}");
        checked.push(session);
    }
    checked.sort_unstable();
    assert_eq!(checked, [first, second]);
}

async fn the_agenda_email_carries_a_code_for_each_confirmed_seat_only(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let server = SmtpServer::start_on(smtp::free_port());
    let mailer = mailer(&app, server.port, |_| {});
    let at = |hours: i64| (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339();
    let slug = app.published_event("door-agenda").await;
    let free = app
        .session_at(&slug, "Benefits mapping", 10, 0, &at(48), &at(50))
        .await;
    let priced = app
        .session_at(&slug, "Portfolio reviews", 10, 9_500, &at(51), &at(53))
        .await;
    app.booked(&slug, "ada@example.org", &[free]).await;
    let held = app.booked(&slug, "ada@example.org", &[priced]).await;
    assert_eq!(held["status"], "held");
    drain(&app, &mailer).await; // the confirmation and the held booking's email
    let db = app.db.clone();
    let reminded = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        masterclass::mail::reminders::enqueue_due(&mut conn, 3).expect("reminders")
    })
    .await
    .expect("task");
    assert_eq!(reminded, 1);

    drain(&app, &mailer).await;

    let messages = server.wait_for(3, Duration::from_secs(5));
    let agenda = messages
        .iter()
        .filter_map(|raw| MessageParser::default().parse(raw))
        .find(|m| m.subject().is_some_and(|s| s.contains("Your agenda")))
        .expect("the agenda email");
    let text = agenda.body_text(0).expect("a text part");
    assert!(
        text.contains("Portfolio reviews") && text.contains("(awaiting payment)"),
        "{text}"
    );
    assert!(text.contains("YOUR CHECK-IN CODE\n"), "one code: {text}");
    let pictures: Vec<_> = agenda
        .parts
        .iter()
        .filter(|part| {
            part.content_type()
                .is_some_and(|t| t.ctype() == "image" && t.subtype() == Some("png"))
        })
        .collect();
    assert_eq!(pictures.len(), 1, "the held seat has no code");
    let code = read_qr(pictures[0].contents());
    let answer = expect_json(present(&app, free, &code).await, 200).await;
    assert_eq!(answer["outcome"], "checked_in", "{answer}");
}

/// What the QR code in a PNG says, as a scanner reads it.
fn read_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buffer).expect("a frame");
    assert_eq!(info.bit_depth, png::BitDepth::One);
    let width = info.width as usize;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, info.height as usize, |x, y| {
            let byte = buffer[y * info.line_size + x / 8];
            if byte & (0x80 >> (x % 8)) == 0 {
                0
            } else {
                255
            }
        });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the picture");
    grids[0].decode().expect("a readable code").1
}

on_both_backends!(
    a_code_checks_its_holder_in_once_then_says_when_and_by_whom,
    an_altered_or_forged_code_is_refused_and_changes_nothing,
    a_code_for_another_session_is_refused_with_that_sessions_title,
    a_cancelled_seat_is_refused_as_cancelled,
    a_seat_held_for_payment_is_refused_as_not_confirmed,
    twenty_scanners_reading_one_code_at_once_check_it_in_once,
    the_door_list_finds_people_by_name_email_or_reference,
    a_seat_picked_from_the_list_checks_in_and_a_mistake_can_be_undone,
    checking_in_needs_an_organiser_token,
    a_body_naming_no_seat_or_two_is_refused_and_changes_nothing,
    the_manage_page_shows_a_check_in_code_for_each_confirmed_seat,
    the_confirmation_email_carries_each_code_as_a_picture_that_checks_in,
    the_agenda_email_carries_a_code_for_each_confirmed_seat_only,
);
