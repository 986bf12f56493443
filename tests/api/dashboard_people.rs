//! The People section of the dashboard over HTTP: a session's attendees and waitlist with a
//! search, and what admins do for people there (promote, move, cancel, resend a confirmation).
//! Every action is checked in the API or the database afterwards.

use diesel::prelude::*;
use masterclass::organisers::Role;
use serde_json::{json, Value};

use crate::dashboard::{signed_in, with_db};
use crate::helpers::{expect_json, Backend, TestApp};
use crate::pages::Browser;

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn(backend).await
}

/// Books `session` for `email`; returns the booking's reference.
async fn booked(app: &TestApp, slug: &str, email: &str, session: i64) -> String {
    let booking = app.booked(slug, email, &[session]).await;
    booking["reference"].as_str().expect("reference").to_owned()
}

/// Puts `email` on a full session's waitlist.
async fn waiting(app: &TestApp, slug: &str, session: i64, name: &str, email: &str) {
    expect_json(
        app.post(
            &format!("/api/v1/events/{slug}/sessions/{session}/waitlist"),
            &json!({"name": name, "email": email}),
        )
        .await,
        201,
    )
    .await;
}

/// A session's waitlist as the admin API shows it.
async fn waitlist(app: &TestApp, session: i64) -> Vec<Value> {
    let list = expect_json(
        app.admin_get(&format!("/api/v1/admin/sessions/{session}/waitlist"))
            .await,
        200,
    )
    .await;
    list.as_array().expect("a list").clone()
}

/// Confirmation emails in the outbox for a booking.
async fn confirmations(app: &TestApp, reference: &str) -> i64 {
    let reference = reference.to_owned();
    with_db(app, move |conn| {
        use masterclass::db::schema::{bookings, email_jobs};
        email_jobs::table
            .inner_join(bookings::table)
            .filter(bookings::reference.eq(&reference))
            .filter(email_jobs::template.eq(masterclass::mail::Template::BookingConfirmed.name()))
            .count()
            .get_result(conn)
            .expect("count")
    })
    .await
}

crate::on_both_backends_with!(super::app;
    a_sessions_people_page_lists_attendees_and_the_waitlist_and_searches_them,
    promoting_from_the_waitlist_with_an_added_seat_offers_it_at_once,
    moving_a_seat_refused_keeps_it_and_says_why_by_the_field,
    cancelling_a_seat_asks_first_then_frees_it_for_the_waitlist,
    resending_a_confirmation_writes_it_to_the_outbox_again,
    people_pages_are_for_admins_signed_in_with_a_valid_form,
    booking_search_finds_references_names_emails_and_organisations_in_any_case,
    a_booking_page_shows_seats_invoices_and_emails_and_marks_invoices_paid,
    an_invoice_is_marked_paid_only_from_its_own_booking,
    refunds_are_confirmed_first_and_never_beyond_what_was_paid,
    seats_cancelled_from_the_booking_page_are_confirmed_first,
    the_outbox_shows_undelivered_emails_and_retries_them,
    booking_and_outbox_pages_are_for_admins_signed_in_with_a_valid_form,
);

/// Attendees show with their organisation, reference, seat state and check-in; the waitlist in
/// order with places; the search narrows both.
async fn a_sessions_people_page_lists_attendees_and_the_waitlist_and_searches_them(app: TestApp) {
    let slug = app.published_event("people").await;
    let class = app.session(&slug, "Portfolio triage", 2, 0).await;
    let ada = booked(&app, &slug, "ada@example.org", class).await;
    let grace = booked(&app, &slug, "grace@example.org", class).await;
    waiting(&app, &slug, class, "Bob Waiting", "bob@example.org").await;
    waiting(&app, &slug, class, "Cleo Waiting", "cleo@example.org").await;
    let checked = grace.clone();
    with_db(&app, move |conn| {
        use masterclass::db::schema::{bookings, seats};
        let id: i64 = bookings::table
            .filter(bookings::reference.eq(&checked))
            .select(bookings::id)
            .first(conn)
            .expect("booking");
        diesel::update(seats::table.filter(seats::booking_id.eq(id)))
            .set(seats::checked_in_at.eq(Some(chrono::Utc::now().naive_utc())))
            .execute(conn)
            .expect("checked in");
    })
    .await;

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let page = browser
        .get(&format!("/organiser/sessions/{class}/people"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.shows(&[
        "People: Portfolio triage",
        "ada@example.org",
        "Analytical Engines Ltd",
        &ada,
        "confirmed",
        "Not yet",
        "Checked in",
        "Bob Waiting",
        "Cleo Waiting",
        "waiting",
    ]);
    let bob = page.body.find("Bob Waiting").expect("bob");
    let cleo = page.body.find("Cleo Waiting").expect("cleo");
    assert!(bob < cleo, "the waitlist is in order");

    let found = browser
        .get(&format!("/organiser/sessions/{class}/people?q=GRACE"))
        .await;
    assert_eq!(found.status, 200);
    found.shows(&["grace@example.org", "1 of 2 match"]);
    found.lacks(&["ada@example.org", "Bob Waiting"]);
    let by_reference = browser
        .get(&format!(
            "/organiser/sessions/{class}/people?q={}",
            ada.to_lowercase()
        ))
        .await;
    by_reference.shows(&["ada@example.org"]);
    by_reference.lacks(&["grace@example.org"]);

    let missing = browser.get("/organiser/sessions/999999/people").await;
    assert_eq!(missing.status, 404);
}

/// Promoting with an added seat raises the capacity and offers that person the seat now,
/// ahead of whoever joined first.
async fn promoting_from_the_waitlist_with_an_added_seat_offers_it_at_once(app: TestApp) {
    let slug = app.published_event("promote").await;
    let class = app.session(&slug, "Benefits mapping", 1, 0).await;
    booked(&app, &slug, "ada@example.org", class).await;
    waiting(&app, &slug, class, "Bob Waiting", "bob@example.org").await;
    waiting(&app, &slug, class, "Cleo Waiting", "cleo@example.org").await;
    let cleo = waitlist(&app, class).await[1]["id"]
        .as_i64()
        .expect("entry id");

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let path = format!("/organiser/sessions/{class}/people");
    let page = browser.get(&path).await;
    let done = browser
        .post(
            &format!("{path}/promote"),
            &[
                ("csrf", page.csrf()),
                ("entry", cleo.to_string()),
                ("add_seat", "yes".to_owned()),
            ],
        )
        .await;
    assert_eq!(done.location(), format!("{path}?done=promoted"));
    let list = waitlist(&app, class).await;
    let states: Vec<(&str, &str)> = list
        .iter()
        .map(|e| {
            (
                e["attendee"]["email"].as_str().expect("email"),
                e["state"].as_str().expect("state"),
            )
        })
        .collect();
    assert!(
        states.contains(&("cleo@example.org", "offered")),
        "{states:?}"
    );
    assert!(
        states.contains(&("bob@example.org", "waiting")),
        "{states:?}"
    );
    browser
        .get(&format!("{path}?done=promoted"))
        .await
        .shows(&["Moved to the front of the waitlist"]);

    // Someone no longer waiting cannot be promoted again: said on the page, nothing changed.
    let page = browser.get(&path).await;
    let again = browser
        .post(
            &format!("{path}/promote"),
            &[("csrf", page.csrf()), ("entry", cleo.to_string())],
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    again.shows(&["id=\"entry-", "This waitlist place is offered"]);
    app.assert_no_drift();
}

/// A move to a full session is refused with the reason next to the session chooser, and the
/// old seat is kept; a move to a session with room goes through.
async fn moving_a_seat_refused_keeps_it_and_says_why_by_the_field(app: TestApp) {
    let slug = app.published_event("moves").await;
    let class = app.session(&slug, "Portfolio triage", 5, 0).await;
    let full = app.next_day_session(&slug, 1, 0).await;
    let roomy = app
        .session_at(
            &slug,
            "Resource levelling",
            5,
            0,
            "2027-03-12T09:00:00+00:00",
            "2027-03-12T10:30:00+00:00",
        )
        .await;
    let ada = booked(&app, &slug, "ada@example.org", class).await;
    booked(&app, &slug, "grace@example.org", full).await;

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let path = format!("/organiser/sessions/{class}/people");
    let page = browser.get(&path).await;
    page.shows(&["Benefits realisation", "Resource levelling"]);
    let refused = browser
        .post(
            &format!("{path}/move"),
            &[
                ("csrf", page.csrf()),
                ("reference", ada.clone()),
                ("to", full.to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    refused.shows(&[
        &format!("id=\"to-{ada}-error\""),
        "full",
        "They keep their seat here.",
    ]);
    assert_eq!(app.attendee_emails(class).await, ["ada@example.org"]);
    assert_eq!(app.attendee_emails(full).await, ["grace@example.org"]);

    let page = browser.get(&path).await;
    let unchosen = browser
        .post(
            &format!("{path}/move"),
            &[
                ("csrf", page.csrf()),
                ("reference", ada.clone()),
                ("to", String::new()),
            ],
        )
        .await;
    assert_eq!(unchosen.status, 422);
    unchosen.shows(&["Choose the session to move them to."]);

    let moved = browser
        .post(
            &format!("{path}/move"),
            &[
                ("csrf", page.csrf()),
                ("reference", ada),
                ("to", roomy.to_string()),
            ],
        )
        .await;
    assert_eq!(moved.location(), format!("{path}?done=moved"));
    assert!(app.attendee_emails(class).await.is_empty());
    assert_eq!(app.attendee_emails(roomy).await, ["ada@example.org"]);
    app.assert_no_drift();
}

/// Cancelling shows a confirmation step that says organiser cancellations are refunded in
/// full; confirming frees the seat, which goes to the first person waiting.
async fn cancelling_a_seat_asks_first_then_frees_it_for_the_waitlist(app: TestApp) {
    let slug = app.published_event("cancels").await;
    let class = app.session(&slug, "Portfolio triage", 1, 0).await;
    let ada = booked(&app, &slug, "ada@example.org", class).await;
    waiting(&app, &slug, class, "Bob Waiting", "bob@example.org").await;

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let path = format!("/organiser/sessions/{class}/people");
    let confirm = browser.get(&format!("{path}/cancel?reference={ada}")).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    confirm.shows(&["refunded in full", "ada@example.org", "Cancel the seat"]);
    assert_eq!(app.attendee_emails(class).await, ["ada@example.org"]);

    let done = browser
        .post(
            &format!("{path}/cancel"),
            &[("csrf", confirm.csrf()), ("reference", ada.clone())],
        )
        .await;
    assert_eq!(done.location(), format!("{path}?done=cancelled"));
    assert!(app.attendee_emails(class).await.is_empty());
    assert_eq!(waitlist(&app, class).await[0]["state"], "offered");

    let gone = browser.get(&format!("{path}/cancel?reference={ada}")).await;
    assert_eq!(gone.status, 404);
    app.assert_no_drift();
}

/// Resending writes one more confirmation email for the booking; a booking without a
/// confirmed seat is refused next to the person, with nothing written.
async fn resending_a_confirmation_writes_it_to_the_outbox_again(app: TestApp) {
    let slug = app.published_event("resends").await;
    let class = app.session(&slug, "Portfolio triage", 3, 0).await;
    let paid = app.session(&slug, "Paid triage", 3, 5000).await;
    let ada = booked(&app, &slug, "ada@example.org", class).await;
    let held = booked(&app, &slug, "held@example.org", paid).await;
    assert_eq!(confirmations(&app, &ada).await, 1);

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let path = format!("/organiser/sessions/{class}/people");
    let page = browser.get(&path).await;
    page.shows(&["Resend confirmation"]);
    let done = browser
        .post(
            &format!("{path}/resend"),
            &[("csrf", page.csrf()), ("reference", ada.clone())],
        )
        .await;
    assert_eq!(done.location(), format!("{path}?done=resent"));
    assert_eq!(confirmations(&app, &ada).await, 2);

    let held_path = format!("/organiser/sessions/{paid}/people");
    let page = browser.get(&held_path).await;
    page.lacks(&["Resend confirmation"]);
    let refused = browser
        .post(
            &format!("{held_path}/resend"),
            &[("csrf", page.csrf()), ("reference", held.clone())],
        )
        .await;
    assert_eq!(refused.status, 409);
    refused.shows(&[&format!("id=\"person-{held}-error\""), "no confirmed seat"]);
    assert_eq!(confirmations(&app, &held).await, 0);
}

/// Signed out goes to sign-in; the check-in role gets 403 on pages and actions; a form without
/// its CSRF token changes nothing.
async fn people_pages_are_for_admins_signed_in_with_a_valid_form(app: TestApp) {
    let slug = app.published_event("guarded").await;
    let class = app.session(&slug, "Portfolio triage", 3, 0).await;
    let ada = booked(&app, &slug, "ada@example.org", class).await;
    let path = format!("/organiser/sessions/{class}/people");

    let mut nobody = Browser::of(&app);
    let away = nobody.get(&path).await;
    assert_eq!(
        away.location(),
        format!("/organiser/login?next=/organiser/sessions/{class}/people")
    );

    let mut door = signed_in(&app, "door@example.org", Role::Checkin).await;
    assert_eq!(door.get(&path).await.status, 403);
    assert_eq!(
        door.get(&format!("{path}/cancel?reference={ada}"))
            .await
            .status,
        403
    );
    let home = door.get("/organiser").await;
    let refused = door
        .post(
            &format!("{path}/cancel"),
            &[("csrf", home.csrf()), ("reference", ada.clone())],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.attendee_emails(class).await, ["ada@example.org"]);

    let mut admin = signed_in(&app, "admin@example.org", Role::Admin).await;
    admin.get(&path).await;
    let forged = admin
        .post(
            &format!("{path}/cancel"),
            &[("csrf", "forged"), ("reference", ada.as_str())],
        )
        .await;
    assert_eq!(forged.status, 403);
    forged.shows(&["This form has expired"]);
    assert_eq!(app.attendee_emails(class).await, ["ada@example.org"]);
}

/// An event that takes invoices (prefix `prefix`) with one session at £145; returns (slug,
/// session id).
async fn invoicing_event(app: &TestApp, slug: &str, prefix: &str) -> (String, i64) {
    let body = crate::helpers::merged(
        crate::helpers::event_body(slug),
        json!({"allow_clashes": true, "invoices_allowed": true, "invoice_prefix": prefix}),
    );
    expect_json(app.admin_post("/api/v1/admin/events", &body).await, 201).await;
    let session = app
        .session(slug, "Portfolio prioritisation", 100, 14_500)
        .await;
    (slug.to_owned(), session)
}

/// A booking of `session` paid by invoice; returns (reference, manage token).
async fn invoiced(app: &TestApp, slug: &str, email: &str, session: i64) -> (String, String) {
    let booked = expect_json(app.book(slug, email, &[session]).await, 201).await;
    let token = booked["manage_token"].as_str().expect("token").to_owned();
    expect_json(
        app.post(
            &format!("/api/v1/bookings/{token}/payments/invoice"),
            &json!({
                "company": "Analytical Engines Ltd",
                "billing_address": "1 Babbage Street\nLondon EC1 2AB",
                "po_number": "PO-4471"
            }),
        )
        .await,
        201,
    )
    .await;
    (
        booked["reference"].as_str().expect("reference").to_owned(),
        token,
    )
}

/// The search matches part of a reference, name, email or organisation whatever the case,
/// newest first; a search that matches nothing says so.
async fn booking_search_finds_references_names_emails_and_organisations_in_any_case(app: TestApp) {
    let slug = app.published_event("search").await;
    let class = app.session(&slug, "Portfolio triage", 10, 0).await;
    let ada = booked(&app, &slug, "ada@example.org", class).await;
    let other = expect_json(
        app.post(
            &format!("/api/v1/events/{slug}/bookings"),
            &json!({
                "attendee": {"name": "Grace Hopper", "email": "grace@navy.example", "organisation": "Compilers Inc"},
                "session_ids": [class]
            }),
        )
        .await,
        201,
    )
    .await;
    let grace = other["reference"].as_str().expect("reference").to_owned();

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let empty = browser.get("/organiser/bookings").await;
    assert_eq!(empty.status, 200, "{}", empty.body);
    empty.lacks(&[&ada, &grace]);

    for (q, found, missing) in [
        ("compilers", &grace, &ada),
        ("HOPPER", &grace, &ada),
        ("ADA@EXAMPLE", &ada, &grace),
        ("analytical engines", &ada, &grace),
    ] {
        let page = browser
            .get(&format!("/organiser/bookings?q={}", q.replace(' ', "+")))
            .await;
        assert_eq!(page.status, 200);
        page.shows(&[found.as_str()]);
        page.lacks(&[missing.as_str()]);
    }
    let by_reference = browser
        .get(&format!("/organiser/bookings?q={}", grace.to_lowercase()))
        .await;
    by_reference.shows(&[&grace, "1 booking match"]);
    let both = browser.get("/organiser/bookings?q=example").await;
    let (newer, older) = (
        both.body.find(&grace).expect("grace"),
        both.body.find(&ada).expect("ada"),
    );
    assert!(newer < older, "newest first");
    let none = browser.get("/organiser/bookings?q=%25_nothing").await;
    none.shows(&["No booking matches"]);
}

/// A booking paid by invoice shows its seat, invoice (with its PDF) and confirmation email;
/// marking the invoice paid pays the booking, and doing it twice is refused by the invoice.
/// Overdue invoices of every event are listed and can be marked paid there.
async fn a_booking_page_shows_seats_invoices_and_emails_and_marks_invoices_paid(app: TestApp) {
    let (slug, session) = invoicing_event(&app, "invoiced", "INV").await;
    let (first, first_token) = invoiced(&app, &slug, "fa@example.org", session).await;
    let (second, second_token) = invoiced(&app, &slug, "ga@example.org", session).await;

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let page = browser.get(&format!("/organiser/bookings/{first}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.shows(&[
        "Portfolio prioritisation",
        "£145.00",
        "INV-0001 (PDF)",
        "PO-4471",
        "unpaid",
        "Mark paid",
        "fa@example.org",
        "pending",
    ]);
    let pdf = browser.get("/organiser/invoices/INV-0001/pdf").await;
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));
    assert!(pdf.body.starts_with("%PDF"));
    assert_eq!(
        browser.get("/organiser/invoices/NOPE-1/pdf").await.status,
        404
    );
    assert_eq!(
        browser.get("/organiser/bookings/PMO-NOSUCH").await.status,
        404
    );

    let paid = browser
        .post(
            &format!("/organiser/bookings/{first}/invoices/INV-0001/paid"),
            &[("csrf", page.csrf())],
        )
        .await;
    assert_eq!(
        paid.location(),
        format!("/organiser/bookings/{first}?done=paid")
    );
    assert_eq!(app.booking(&first_token).await["payment_status"], "paid");
    let again = browser
        .post(
            &format!("/organiser/bookings/{first}/invoices/INV-0001/paid"),
            &[("csrf", page.csrf())],
        )
        .await;
    assert_eq!(again.status, 409);
    again.shows(&["id=\"invoice-INV-0001-error\"", "Invoice INV-0001 is paid"]);

    let nothing = browser.get("/organiser/invoices/overdue").await;
    nothing.shows(&["No invoice is overdue."]);
    app.advance(chrono::Duration::days(15)).await;
    // The first sign-in has long ended by then.
    let mut browser = signed_in(&app, "later@example.org", Role::Admin).await;
    let overdue = browser.get("/organiser/invoices/overdue").await;
    overdue.shows(&["INV-0002", &second, "Analytical Engines Ltd"]);
    overdue.lacks(&["INV-0001"]);
    let done = browser
        .post(
            &format!("/organiser/bookings/{second}/invoices/INV-0002/paid"),
            &[("csrf", overdue.csrf()), ("back", "overdue".to_owned())],
        )
        .await;
    assert_eq!(done.location(), "/organiser/invoices/overdue?done=paid");
    assert_eq!(app.booking(&second_token).await["payment_status"], "paid");
    browser
        .get("/organiser/invoices/overdue")
        .await
        .shows(&["No invoice is overdue."]);
}

/// Marking an invoice paid from another booking's page is refused as not found, and leaves the
/// invoice unpaid.
async fn an_invoice_is_marked_paid_only_from_its_own_booking(app: TestApp) {
    let (slug, session) = invoicing_event(&app, "invoiced-elsewhere", "ELS").await;
    let (first, first_token) = invoiced(&app, &slug, "fa@example.org", session).await;
    let (second, second_token) = invoiced(&app, &slug, "ga@example.org", session).await;

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let page = browser.get(&format!("/organiser/bookings/{first}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let wrong = browser
        .post(
            &format!("/organiser/bookings/{first}/invoices/ELS-0002/paid"),
            &[("csrf", page.csrf())],
        )
        .await;
    assert_eq!(wrong.status, 404, "{}", wrong.body);
    let unknown = browser
        .post(
            "/organiser/bookings/PMO-NOSUCH/invoices/ELS-0002/paid",
            &[("csrf", page.csrf())],
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(
        app.booking(&second_token).await["payment_status"],
        "invoiced"
    );

    let right = browser
        .post(
            &format!("/organiser/bookings/{second}/invoices/ELS-0002/paid"),
            &[("csrf", page.csrf())],
        )
        .await;
    assert_eq!(
        right.location(),
        format!("/organiser/bookings/{second}?done=paid")
    );
    assert_eq!(app.booking(&second_token).await["payment_status"], "paid");
    assert_eq!(
        app.booking(&first_token).await["payment_status"],
        "invoiced"
    );
}

/// A card payment of the booking, as the payment provider would have confirmed it.
async fn card_paid(app: &TestApp, reference: &str, amount: i64) {
    let reference = reference.to_owned();
    with_db(app, move |conn| {
        use masterclass::db::schema::{bookings, payments};
        let id: i64 = bookings::table
            .filter(bookings::reference.eq(&reference))
            .select(bookings::id)
            .first(conn)
            .expect("booking");
        let now = chrono::Utc::now().naive_utc();
        diesel::insert_into(payments::table)
            .values((
                payments::booking_id.eq(id),
                payments::provider.eq("stripe"),
                payments::intent_id.eq(Some("pi_dashboard_test")),
                payments::amount_minor.eq(amount),
                payments::currency.eq("GBP"),
                payments::state.eq("succeeded"),
                payments::refunded_minor.eq(0_i64),
                payments::created_at.eq(now),
                payments::updated_at.eq(now),
                payments::succeeded_at.eq(Some(now)),
                payments::checks.eq(0),
            ))
            .execute(conn)
            .expect("payment");
    })
    .await;
}

/// Refunds written for a booking: (amount, reason).
async fn refunds_of(app: &TestApp, reference: &str) -> Vec<(i64, String)> {
    let reference = reference.to_owned();
    with_db(app, move |conn| {
        use masterclass::db::schema::{bookings, refunds};
        refunds::table
            .inner_join(bookings::table.on(bookings::id.eq(refunds::booking_id)))
            .filter(bookings::reference.eq(&reference))
            .select((refunds::amount_minor, refunds::reason))
            .load(conn)
            .expect("refunds")
    })
    .await
}

/// A refund is asked for, confirmed on a second step, and written; an amount that is not one,
/// or more than is left, is refused next to the amount with nothing written.
async fn refunds_are_confirmed_first_and_never_beyond_what_was_paid(app: TestApp) {
    let slug = app.published_event("refunds").await;
    let class = app.session(&slug, "Portfolio triage", 10, 5000).await;
    let ada = booked(&app, &slug, "ada@example.org", class).await;
    card_paid(&app, &ada, 5000).await;

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let path = format!("/organiser/bookings/{ada}");
    let page = browser.get(&path).await;
    page.shows(&["Up to £50.00 can still be refunded", "succeeded"]);
    for (amount, status, message) in [
        ("twelve", 422, "Enter an amount such as 20 or 12.50."),
        ("0", 422, "Enter an amount of more than 0."),
        ("60", 422, "That is more than is left to refund"),
    ] {
        let refused = browser
            .post(
                &format!("{path}/refund"),
                &[
                    ("csrf", page.csrf().as_str()),
                    ("amount", amount),
                    ("note", ""),
                ],
            )
            .await;
        assert_eq!(refused.status, status, "{}", refused.body);
        refused.error_by_field("amount");
        refused.shows(&[message, &format!("value=\"{amount}\"")]);
    }
    let confirm = browser
        .post(
            &format!("{path}/refund"),
            &[
                ("csrf", page.csrf().as_str()),
                ("amount", "20"),
                ("note", "Lunch was not served"),
            ],
        )
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    confirm.shows(&["Refund £20.00", "cannot be taken back"]);
    assert!(
        refunds_of(&app, &ada).await.is_empty(),
        "nothing before confirming"
    );

    let done = browser
        .post(
            &format!("{path}/refund"),
            &[
                ("csrf", confirm.csrf().as_str()),
                ("amount", "20"),
                ("note", "Lunch was not served"),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(done.location(), format!("{path}?done=refunded"));
    assert_eq!(
        refunds_of(&app, &ada).await,
        [(2000, "organiser".to_owned())]
    );
    browser
        .get(&path)
        .await
        .shows(&["£20.00: pending", "Up to £30.00 can still be refunded"]);
}

/// Cancelling from the booking page needs a seat chosen and a confirmation that says
/// organiser cancellations are refunded in full; then the seat is gone.
async fn seats_cancelled_from_the_booking_page_are_confirmed_first(app: TestApp) {
    let slug = app.published_event("booking-cancels").await;
    let class = app.session(&slug, "Portfolio triage", 10, 0).await;
    let later = app.next_day_session(&slug, 10, 0).await;
    let booking = app.booked(&slug, "ada@example.org", &[class, later]).await;
    let ada = booking["reference"].as_str().expect("reference").to_owned();

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let path = format!("/organiser/bookings/{ada}");
    let page = browser.get(&path).await;
    let none = browser
        .post(&format!("{path}/cancel"), &[("csrf", page.csrf())])
        .await;
    assert_eq!(none.status, 422);
    none.shows(&[
        "id=\"session-error\"",
        "Choose at least one seat to cancel.",
    ]);

    let confirm = browser
        .post(
            &format!("{path}/cancel"),
            &[("csrf", page.csrf()), ("session", class.to_string())],
        )
        .await;
    assert_eq!(confirm.status, 200);
    confirm.shows(&["refunded in full", "Portfolio triage"]);
    assert_eq!(app.attendee_emails(class).await, ["ada@example.org"]);

    let done = browser
        .post(
            &format!("{path}/cancel"),
            &[
                ("csrf", confirm.csrf()),
                ("session", class.to_string()),
                ("confirm", "yes".to_owned()),
            ],
        )
        .await;
    assert_eq!(done.location(), format!("{path}?done=cancelled"));
    assert!(app.attendee_emails(class).await.is_empty());
    assert_eq!(app.attendee_emails(later).await, ["ada@example.org"]);
    browser
        .get(&format!("{path}?done=cancelled"))
        .await
        .shows(&["The seats have been cancelled"]);
    app.assert_no_drift();
}

/// An email that gave up shows with its last error; retrying puts it back in line with a
/// fresh count of attempts.
async fn the_outbox_shows_undelivered_emails_and_retries_them(app: TestApp) {
    let slug = app.published_event("outbox").await;
    let class = app.session(&slug, "Portfolio triage", 10, 0).await;
    let ada = booked(&app, &slug, "ada@example.org", class).await;
    let job = with_db(&app, move |conn| {
        use masterclass::db::schema::{bookings, email_jobs};
        let id: i64 = email_jobs::table
            .inner_join(bookings::table)
            .filter(bookings::reference.eq(&ada))
            .select(email_jobs::id)
            .first(conn)
            .expect("job");
        diesel::update(email_jobs::table.find(id))
            .set((
                email_jobs::state.eq("dead"),
                email_jobs::attempts.eq(8),
                email_jobs::last_error.eq(Some("550 mailbox unavailable")),
            ))
            .execute(conn)
            .expect("dead");
        id
    })
    .await;

    let mut browser = signed_in(&app, "admin@example.org", Role::Admin).await;
    let page = browser.get("/organiser/outbox").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.shows(&[
        "Undelivered",
        "ada@example.org",
        "550 mailbox unavailable",
        "Retry",
    ]);
    let done = browser
        .post(
            &format!("/organiser/outbox/{job}/retry"),
            &[("csrf", page.csrf())],
        )
        .await;
    assert_eq!(done.location(), "/organiser/outbox?done=retried");
    let (state, attempts) = with_db(&app, move |conn| {
        use masterclass::db::schema::email_jobs;
        email_jobs::table
            .find(job)
            .select((email_jobs::state, email_jobs::attempts))
            .first::<(String, i32)>(conn)
            .expect("job")
    })
    .await;
    assert_eq!((state.as_str(), attempts), ("pending", 0));
    let missing = browser
        .post("/organiser/outbox/999999/retry", &[("csrf", page.csrf())])
        .await;
    assert_eq!(missing.status, 404);
}

/// Signed out goes to sign-in, the check-in role gets 403, and forms need their CSRF token.
async fn booking_and_outbox_pages_are_for_admins_signed_in_with_a_valid_form(app: TestApp) {
    let slug = app.published_event("guarded-bookings").await;
    let class = app.session(&slug, "Portfolio triage", 10, 0).await;
    let ada = booked(&app, &slug, "ada@example.org", class).await;
    let pages = [
        "/organiser/bookings?q=ada".to_owned(),
        format!("/organiser/bookings/{ada}"),
        "/organiser/invoices/overdue".to_owned(),
        "/organiser/outbox".to_owned(),
    ];
    let mut nobody = Browser::of(&app);
    for page in &pages {
        let away = nobody.get(page).await;
        assert!(
            away.location()
                .starts_with("/organiser/login?next=/organiser/"),
            "{page}"
        );
    }
    let mut door = signed_in(&app, "door@example.org", Role::Checkin).await;
    for page in &pages {
        assert_eq!(door.get(page).await.status, 403, "{page}");
    }
    let home = door.get("/organiser").await;
    let refused = door
        .post(
            &format!("/organiser/bookings/{ada}/cancel"),
            &[
                ("csrf", home.csrf()),
                ("session", class.to_string()),
                ("confirm", "yes".to_owned()),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.attendee_emails(class).await, ["ada@example.org"]);

    let mut admin = signed_in(&app, "admin@example.org", Role::Admin).await;
    admin.get(&format!("/organiser/bookings/{ada}")).await;
    let forged = admin
        .post(
            &format!("/organiser/bookings/{ada}/cancel"),
            &[
                ("csrf", "forged".to_owned()),
                ("session", class.to_string()),
                ("confirm", "yes".to_owned()),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(app.attendee_emails(class).await, ["ada@example.org"]);
}
