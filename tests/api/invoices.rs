//! Paying by invoice: confirmation, gap-free numbers per event (also under concurrent requests),
//! the PDF, the email with the PDF attached, and the organiser's lists and "paid".

use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{json, Value};

use crate::helpers::{expect_invalid, expect_json, expect_problem, merged, TestApp};
use crate::mail::{drain, mailer};
use crate::on_both_backends;
use crate::smtp::{self, SmtpServer};

/// An event that takes invoices (prefix `prefix`, 20 % VAT) with one priced session; returns
/// (slug, session id).
async fn invoicing_event(app: &TestApp, slug: &str, prefix: &str) -> (String, i64) {
    let body = merged(
        crate::helpers::event_body(slug),
        json!({
            "allow_clashes": true, "vat_rate_bp": 2000,
            "invoices_allowed": true, "invoice_prefix": prefix
        }),
    );
    expect_json(app.admin_post("/api/v1/admin/events", &body).await, 201).await;
    let session = app
        .session(slug, "Portfolio prioritisation", 100, 14_500)
        .await;
    (slug.to_owned(), session)
}

fn buyer() -> Value {
    json!({
        "company": "Analytical Engines Ltd",
        "billing_address": "1 Babbage Street\nLondon EC1 2AB",
        "vat_number": "GB123456789",
        "po_number": "PO-4471"
    })
}

async fn held(app: &TestApp, slug: &str, email: &str, session: i64) -> String {
    let booked = expect_json(app.book(slug, email, &[session]).await, 201).await;
    assert_eq!(booked["status"], "held");
    booked["manage_token"].as_str().expect("token").to_owned()
}

async fn invoice(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.post(&format!("/api/v1/bookings/{token}/payments/invoice"), body)
        .await
}

async fn paying_by_invoice_confirms_the_booking_with_the_next_number(app: TestApp) {
    let (slug, session) = invoicing_event(&app, "by-invoice", "PMO27").await;
    let (other, other_session) = invoicing_event(&app, "by-invoice-two", "OTH").await;
    let token = held(&app, &slug, "ada@example.org", session).await;
    let options = expect_json(
        app.get(&format!("/api/v1/bookings/{token}/payments")).await,
        200,
    )
    .await;
    assert_eq!(
        options["methods"],
        json!(["invoice"]),
        "no cards set up here"
    );

    let issued = expect_json(invoice(&app, &token, &buyer()).await, 201).await;

    assert_eq!(issued["number"], "PMO27-0001");
    assert_eq!(issued["kind"], "invoice");
    assert_eq!(issued["state"], "unpaid");
    assert_eq!(
        (
            issued["gross_minor"].as_i64(),
            issued["net_minor"].as_i64(),
            issued["vat_minor"].as_i64()
        ),
        (Some(14_500), Some(12_083), Some(2_417))
    );
    assert_eq!(issued["po_number"], "PO-4471");
    let issued_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(issued["issued_at"].clone()).expect("issued_at");
    let due: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(issued["due_at"].clone()).expect("due_at");
    assert_eq!(due - issued_at, chrono::Duration::days(14));
    let booking = app.booking(&token).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["payment_status"], "invoiced");
    assert_eq!(booking["seats"][0]["state"], "confirmed");
    assert!(booking["hold_expires_at"].is_null());
    // The held place is not released when the hold would have run out.
    app.advance(chrono::Duration::minutes(30)).await;
    assert_eq!(app.booking(&token).await["status"], "confirmed");

    let second = held(&app, &slug, "bo@example.org", session).await;
    let next = expect_json(invoice(&app, &second, &buyer()).await, 201).await;
    assert_eq!(next["number"], "PMO27-0002");
    let elsewhere = held(&app, &other, "cy@example.org", other_session).await;
    let first_there = expect_json(invoice(&app, &elsewhere, &buyer()).await, 201).await;
    assert_eq!(
        first_there["number"], "OTH-0001",
        "each event counts on its own"
    );

    let pdf = app.get(issued["pdf"].as_str().expect("pdf link")).await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(
        pdf.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    let bytes = pdf.bytes().await.expect("pdf");
    assert!(bytes.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("PMO27-0001") && text.contains("Analytical Engines Ltd"));
    assert!(text.contains("PO-4471") && text.contains("GB123456789"));
    // Another booking's manage token does not open this invoice.
    let foreign = app
        .get(&format!("/api/v1/bookings/{second}/invoices/PMO27-0001"))
        .await;
    assert_eq!(foreign.status(), 404);
    // Paid by invoice once: nothing more to pay.
    expect_problem(invoice(&app, &token, &buyer()).await, 409, "not-payable").await;
    app.assert_no_drift();
}

async fn an_invoice_is_refused_when_it_cannot_be_issued(app: TestApp) {
    let slug = app.published_event("no-invoices").await;
    let session = app.session(&slug, "PMO maturity", 10, 9_000).await;
    let token = held(&app, &slug, "di@example.org", session).await;
    expect_problem(invoice(&app, &token, &buyer()).await, 409, "not-payable").await;

    let (slug, session) = invoicing_event(&app, "strict-invoices", "STR").await;
    let token = held(&app, &slug, "ed@example.org", session).await;
    expect_invalid(
        invoice(
            &app,
            &token,
            &json!({"company": " ", "billing_address": "x"}),
        )
        .await,
        "invoice.company",
    )
    .await;
    expect_invalid(
        invoice(
            &app,
            &token,
            &json!({"company": "ACME", "billing_address": "x".repeat(501)}),
        )
        .await,
        "invoice.billing_address",
    )
    .await;
    expect_problem(
        invoice(&app, &token, &json!({"company": "ACME"})).await,
        422,
        "validation",
    )
    .await;
    expect_problem(
        invoice(&app, "mt_nosuchtoken00000000000000000000000000", &buyer()).await,
        404,
        "not-found",
    )
    .await;
    app.clock.advance(chrono::Duration::minutes(16));
    expect_problem(invoice(&app, &token, &buyer()).await, 409, "hold-expired").await;
    // Nothing was numbered: the next invoice of the event is still the first.
    app.clock.advance(-chrono::Duration::minutes(16));
    let issued = expect_json(invoice(&app, &token, &buyer()).await, 201).await;
    assert_eq!(issued["number"], "STR-0001");
}

/// Conversions racing each other (and repeats of the same one) use every number exactly once.
async fn numbers_have_no_gaps_under_concurrent_requests(app: TestApp) {
    let (slug, session) = invoicing_event(&app, "race-invoices", "RACE").await;
    let mut tokens = Vec::new();
    for i in 0..16 {
        tokens.push(held(&app, &slug, &format!("p{i}@example.org"), session).await);
    }
    let app = &app;
    let body = buyer();
    let body = &body;
    let mut attempts = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        attempts.push(invoice(app, token, body));
        if i % 4 == 0 {
            // The same booking twice at once: one invoice.
            attempts.push(invoice(app, token, body));
        }
    }
    let answers = futures_util::future::join_all(attempts).await;

    let mut numbers = Vec::new();
    for answer in answers {
        match answer.status().as_u16() {
            201 => numbers.push(
                answer.json::<Value>().await.expect("json")["number"]
                    .as_str()
                    .expect("number")
                    .to_owned(),
            ),
            409 => {}
            other => panic!(
                "unexpected {other}: {}",
                answer.text().await.unwrap_or_default()
            ),
        }
    }
    numbers.sort();
    let expected: Vec<String> = (1..=16).map(|n| format!("RACE-{n:04}")).collect();
    assert_eq!(numbers, expected);
}

async fn organisers_see_unpaid_and_overdue_invoices_and_mark_them_paid(app: TestApp) {
    let (slug, session) = invoicing_event(&app, "invoice-lists", "LST").await;
    let first = held(&app, &slug, "fa@example.org", session).await;
    let second = held(&app, &slug, "ga@example.org", session).await;
    expect_json(invoice(&app, &first, &buyer()).await, 201).await;
    expect_json(invoice(&app, &second, &buyer()).await, 201).await;
    let list = |state: &'static str| {
        let app = &app;
        let slug = slug.clone();
        async move {
            expect_json(
                app.admin_get(&format!(
                    "/api/v1/admin/invoices?event={slug}&state={state}"
                ))
                .await,
                200,
            )
            .await
        }
    };
    assert_eq!(list("unpaid").await.as_array().map(Vec::len), Some(2));
    assert_eq!(list("overdue").await.as_array().map(Vec::len), Some(0));

    let swept = app.advance(chrono::Duration::days(15)).await;
    assert_eq!(swept.invoices_reminded, 2, "each overdue invoice is chased");
    assert_eq!(
        app.advance(chrono::Duration::days(1))
            .await
            .invoices_reminded,
        0
    );
    let overdue = list("overdue").await;
    assert_eq!(overdue.as_array().map(Vec::len), Some(2));
    assert_eq!(overdue[0]["overdue"], true);
    let paid = expect_json(
        app.admin_post("/api/v1/admin/invoices/LST-0001/paid", &json!({}))
            .await,
        200,
    )
    .await;

    assert_eq!(paid["state"], "paid");
    assert_eq!(paid["overdue"], false);
    let booking = app.booking(&first).await;
    assert_eq!(booking["payment_status"], "paid");
    assert_eq!(booking["paid_minor"], 14_500);
    assert_eq!(list("overdue").await.as_array().map(Vec::len), Some(1));
    assert_eq!(list("paid").await[0]["number"], "LST-0001");
    assert_eq!(list("all").await.as_array().map(Vec::len), Some(2));
    // A week after the first reminder, only the invoice still unpaid is chased again.
    assert_eq!(
        app.advance(chrono::Duration::days(6))
            .await
            .invoices_reminded,
        1
    );
    let reminders = expect_json(app.admin_get("/api/v1/admin/emails").await, 200)
        .await
        .as_array()
        .expect("list")
        .iter()
        .filter(|j| j["template"] == "invoice_reminder")
        .count();
    assert_eq!(reminders, 3);
    expect_problem(
        app.admin_post("/api/v1/admin/invoices/LST-0001/paid", &json!({}))
            .await,
        409,
        "conflict",
    )
    .await;
    expect_problem(
        app.admin_post("/api/v1/admin/invoices/LST-9999/paid", &json!({}))
            .await,
        404,
        "not-found",
    )
    .await;
    let pdf = app.admin_get("/api/v1/admin/invoices/LST-0002").await;
    assert_eq!(pdf.status(), 200);
    assert!(pdf.bytes().await.expect("pdf").starts_with(b"%PDF-"));
    let anonymous = app.get("/api/v1/admin/invoices/LST-0002").await;
    assert_eq!(anonymous.status(), 401);
}

async fn the_invoice_is_never_due_after_the_event_starts(app: TestApp) {
    let (slug, _) = invoicing_event(&app, "invoice-soon", "SOON").await;
    let starts = (app.clock.now() + chrono::Duration::days(5)).format("%Y-%m-%dT09:00:00+00:00");
    let ends = (app.clock.now() + chrono::Duration::days(5)).format("%Y-%m-%dT10:00:00+00:00");
    let soon = app
        .session_at(
            &slug,
            "Soon",
            10,
            5_000,
            &starts.to_string(),
            &ends.to_string(),
        )
        .await;
    let token = held(&app, &slug, "ha@example.org", soon).await;

    let issued = expect_json(invoice(&app, &token, &buyer()).await, 201).await;

    let due: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(issued["due_at"].clone()).expect("due_at");
    assert_eq!(
        due.to_rfc3339(),
        chrono::DateTime::parse_from_rfc3339(&starts.to_string())
            .expect("time")
            .to_rfc3339()
    );
}

async fn the_invoice_arrives_as_a_pdf_with_the_confirmation(app: TestApp) {
    if !smtp::available() {
        return;
    }
    let (slug, session) = invoicing_event(&app, "invoice-mail", "MAIL").await;
    let token = held(&app, &slug, "ia@example.org", session).await;
    expect_json(invoice(&app, &token, &buyer()).await, 201).await;
    let server = SmtpServer::start_on(smtp::free_port());

    drain(&app, &mailer(&app, server.port, |_| {})).await;

    let messages = server.wait_for(2, Duration::from_secs(5));
    let confirmation = messages
        .iter()
        .filter_map(|m| MessageParser::default().parse(m))
        .find(|m| {
            m.subject()
                .is_some_and(|s| s.starts_with("Booking confirmed"))
        })
        .expect("the confirmation arrived");
    let text = confirmation.body_text(0).expect("text").into_owned();
    assert!(text.contains("Invoice MAIL-0001 for £145.00"), "{text}");
    assert!(text.contains("Please pay it by"), "{text}");
    let pdf = confirmation
        .attachments()
        .find(|a| a.attachment_name() == Some("MAIL-0001.pdf"))
        .expect("the invoice attached");
    assert!(pdf.contents().starts_with(b"%PDF-"));
    assert!(confirmation
        .attachments()
        .any(|a| a.attachment_name() == Some("agenda.ics")));
}

async fn a_booking_can_ask_for_an_invoice_at_once(app: TestApp) {
    let (slug, session) = invoicing_event(&app, "invoice-at-once", "NOW").await;
    let body = merged(
        crate::helpers::booking_body("la@example.org", &[session]),
        json!({"invoice": buyer()}),
    );

    let booked = expect_json(
        app.post(&format!("/api/v1/events/{slug}/bookings"), &body)
            .await,
        201,
    )
    .await;

    assert_eq!(booked["status"], "confirmed");
    assert_eq!(booked["payment_status"], "invoiced");
    let token = booked["manage_token"].as_str().expect("token");
    let options = expect_json(
        app.get(&format!("/api/v1/bookings/{token}/payments")).await,
        200,
    )
    .await;
    assert_eq!(options["invoices"][0]["number"], "NOW-0001");
    assert_eq!(options["methods"], json!([]));
    let sent: Vec<String> = expect_json(app.admin_get("/api/v1/admin/emails").await, 200)
        .await
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|j| j["template"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        sent,
        vec!["booking_confirmed".to_owned()],
        "one email, with the invoice"
    );

    // Refused as a whole: nothing booked, nothing numbered.
    let plain = app.published_event("no-invoice-at-once").await;
    let plain_session = app.session(&plain, "PMO maturity", 10, 9_000).await;
    let refused = merged(
        crate::helpers::booking_body("ma@example.org", &[plain_session]),
        json!({"invoice": buyer()}),
    );
    expect_problem(
        app.post(&format!("/api/v1/events/{plain}/bookings"), &refused)
            .await,
        409,
        "not-payable",
    )
    .await;
    assert_eq!(app.seats_left(&plain, plain_session).await, 10);
    let bad = merged(
        crate::helpers::booking_body("na@example.org", &[session]),
        json!({"invoice": {"company": "", "billing_address": "1 Street"}}),
    );
    expect_invalid(
        app.post(&format!("/api/v1/events/{slug}/bookings"), &bad)
            .await,
        "invoice.company",
    )
    .await;
    let next = held(&app, &slug, "oa@example.org", session).await;
    let issued = expect_json(invoice(&app, &next, &buyer()).await, 201).await;
    assert_eq!(issued["number"], "NOW-0002");
    app.assert_no_drift();
}

async fn invoice_numbers_are_unique_across_events(app: TestApp) {
    let (slug, session) = invoicing_event(&app, "prefix-one", "ONE").await;
    let clash = merged(
        crate::helpers::event_body("prefix-two"),
        json!({"invoices_allowed": true, "invoice_prefix": "ONE"}),
    );
    expect_problem(
        app.admin_post("/api/v1/admin/events", &clash).await,
        409,
        "conflict",
    )
    .await;
    let reserved = merged(
        crate::helpers::event_body("prefix-three"),
        json!({"invoices_allowed": true, "invoice_prefix": "EV7"}),
    );
    expect_invalid(
        app.admin_post("/api/v1/admin/events", &reserved).await,
        "invoice_prefix",
    )
    .await;
    // Without a prefix an event gets its own, EV and its id.
    let plain = merged(
        crate::helpers::event_body("prefix-four"),
        json!({"invoices_allowed": true, "allow_clashes": true}),
    );
    let created = expect_json(app.admin_post("/api/v1/admin/events", &plain).await, 201).await;
    let own = created["invoice_prefix"]
        .as_str()
        .expect("prefix")
        .to_owned();
    assert!(own.starts_with("EV"), "{own}");
    let other_session = app.session("prefix-four", "PMO maturity", 10, 5_000).await;
    let token = held(&app, "prefix-four", "pa@example.org", other_session).await;
    let issued = expect_json(invoice(&app, &token, &buyer()).await, 201).await;
    assert_eq!(issued["number"], format!("{own}-0001"));
    // Once numbers are issued the prefix stays.
    let first = held(&app, &slug, "qa@example.org", session).await;
    expect_json(invoice(&app, &first, &buyer()).await, 201).await;
    expect_problem(
        app.admin_patch(
            "/api/v1/admin/events/prefix-one",
            &json!({"invoice_prefix": "UNO"}),
        )
        .await,
        409,
        "conflict",
    )
    .await;
    // Text the invoice's fonts cannot print is refused, naming the field.
    let second = held(&app, &slug, "ra@example.org", session).await;
    expect_invalid(
        invoice(
            &app,
            &second,
            &json!({"company": "\u{141}\u{f3}d\u{17a} Sp. z o.o.", "billing_address": "ul. Piotrkowska 1"}),
        )
        .await,
        "invoice.company",
    )
    .await;
}

/// Paid after part of it was credited: the booking is paid what was left to pay.
async fn a_partly_credited_invoice_pays_what_is_left(app: TestApp) {
    let (slug, first) = invoicing_event(&app, "part-credit", "PRT").await;
    let second = app.next_day_session(&slug, 10, 10_000).await;
    let booked = expect_json(
        app.book(&slug, "sa@example.org", &[first, second]).await,
        201,
    )
    .await;
    let token = booked["manage_token"].as_str().expect("token").to_owned();
    expect_json(invoice(&app, &token, &buyer()).await, 201).await;
    // An organiser cancels the second place for the attendee: credited in full.
    let reference = booked["reference"].as_str().expect("reference");
    expect_json(
        app.admin_post(
            &format!("/api/v1/admin/bookings/{reference}/cancel"),
            &json!({"session_ids": [second]}),
        )
        .await,
        200,
    )
    .await;
    expect_json(
        app.admin_post("/api/v1/admin/invoices/PRT-0001/paid", &json!({}))
            .await,
        200,
    )
    .await;
    let booking = app.booking(&token).await;
    assert_eq!(
        booking["paid_minor"], 14_500,
        "the credited 10,000 was never owed"
    );
    assert_eq!(booking["payment_status"], "paid");
}

async fn all_invoices(app: &TestApp) -> Value {
    expect_json(
        app.admin_get("/api/v1/admin/invoices?event=credit-notes&state=all")
            .await,
        200,
    )
    .await
}

async fn cancelled_places_are_credited_with_numbers_from_the_same_sequence(app: TestApp) {
    let (slug, first) = invoicing_event(&app, "credit-notes", "CRN").await;
    expect_json(
        app.admin_patch(
            "/api/v1/admin/events/credit-notes",
            &json!({"refund_policy": [{"days_before": 14, "percent": 100}, {"days_before": 7, "percent": 50}]}),
        )
        .await,
        200,
    )
    .await;
    let second = app.next_day_session(&slug, 10, 10_000).await;
    let booked = expect_json(
        app.book(&slug, "ja@example.org", &[first, second]).await,
        201,
    )
    .await;
    let token = booked["manage_token"].as_str().expect("token").to_owned();
    let issued = expect_json(invoice(&app, &token, &buyer()).await, 201).await;
    assert_eq!(issued["number"], "CRN-0001");
    assert_eq!(issued["gross_minor"], 24_500);

    // Far ahead: the whole price of the first place is credited.
    expect_json(
        app.cancel(&token, Some(&json!({"session_ids": [first]})))
            .await,
        200,
    )
    .await;
    let invoices = all_invoices(&app).await;
    assert_eq!(
        invoices.as_array().map(Vec::len),
        Some(1),
        "credit notes are not invoices"
    );
    assert_eq!(invoices[0]["state"], "unpaid");
    let reference = app.booking(&token).await["reference"]
        .as_str()
        .expect("reference")
        .to_owned();
    let pdf = app.admin_get("/api/v1/admin/invoices/CRN-0002").await;
    assert_eq!(pdf.status(), 200, "the credit note has the next number");
    let text = String::from_utf8_lossy(&pdf.bytes().await.expect("pdf")).into_owned();
    assert!(text.contains("Credit note") && text.contains(&reference));

    // Ten days before the second place: half of it is credited, half is still owed.
    let start = chrono::DateTime::parse_from_rfc3339("2027-03-11T09:00:00+00:00")
        .expect("time")
        .with_timezone(&chrono::Utc);
    app.clock
        .advance(start - chrono::Duration::days(10) - app.clock.now());
    expect_json(
        app.cancel(&token, Some(&json!({"session_ids": [second]})))
            .await,
        200,
    )
    .await;
    let pdf = app.admin_get("/api/v1/admin/invoices/CRN-0003").await;
    assert_eq!(pdf.status(), 200);
    let text = String::from_utf8_lossy(&pdf.bytes().await.expect("pdf")).into_owned();
    assert!(text.contains("50 % under the refund policy"), "{text}");
    let invoices = all_invoices(&app).await;
    assert_eq!(invoices[0]["state"], "unpaid", "5,000 of it is still owed");
    let sent: Vec<String> = expect_json(app.admin_get("/api/v1/admin/emails").await, 200)
        .await
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|j| j["template"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        sent.iter().filter(|t| *t == "credit_note").count(),
        2,
        "{sent:?}"
    );

    // An organiser cancelling a session credits in full, and a fully credited invoice is
    // cancelled. Numbers go on from the same sequence.
    let other = held(&app, &slug, "ka@example.org", first).await;
    let second_invoice = expect_json(invoice(&app, &other, &buyer()).await, 201).await;
    assert_eq!(second_invoice["number"], "CRN-0004");
    expect_json(
        app.admin_patch(
            &format!("/api/v1/admin/sessions/{first}"),
            &json!({"status": "cancelled"}),
        )
        .await,
        200,
    )
    .await;
    let invoices = all_invoices(&app).await;
    let cancelled = invoices
        .as_array()
        .expect("list")
        .iter()
        .find(|i| i["number"] == "CRN-0004")
        .expect("the second invoice");
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(
        app.admin_get("/api/v1/admin/invoices/CRN-0005")
            .await
            .status(),
        200
    );
}

on_both_backends!(
    paying_by_invoice_confirms_the_booking_with_the_next_number,
    an_invoice_is_refused_when_it_cannot_be_issued,
    numbers_have_no_gaps_under_concurrent_requests,
    organisers_see_unpaid_and_overdue_invoices_and_mark_them_paid,
    the_invoice_is_never_due_after_the_event_starts,
    the_invoice_arrives_as_a_pdf_with_the_confirmation,
    cancelled_places_are_credited_with_numbers_from_the_same_sequence,
    a_booking_can_ask_for_an_invoice_at_once,
    invoice_numbers_are_unique_across_events,
    a_partly_credited_invoice_pays_what_is_left,
);
