//! The statistics page: for a small programme, the fill rate, bookings per day, revenue after a
//! refund and waitlist demand, each as a table and as a well-formed SVG chart with one bar per
//! figure.

use chrono::{Duration, NaiveDate};
use diesel::prelude::*;
use masterclass::db::schema::{bookings, payments, refunds};
use masterclass::organisers::Role;
use serde_json::json;

use crate::dashboard::signed_in_as;
use crate::helpers::{expect_json, merged, TestApp};

crate::on_both_backends!(
    statistics_show_fill_rate_bookings_per_day_revenue_and_waitlists,
    with_no_event_chosen_the_newest_published_one_is_shown,
    paid_invoices_count_what_was_left_after_credit_notes,
);

/// The SVG chart inside the element with `id` on the page, checked to be one whole `<svg>`
/// element with a title, a description and an accessible name.
fn chart<'a>(body: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\">");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id}: {body}"))
        + marker.len();
    let rest = &body[start..];
    assert!(rest.starts_with("<svg"), "{id} holds an svg: {rest}");
    let end = rest.find("</svg>").expect("svg closed") + "</svg>".len();
    let svg = &rest[..end];
    assert_eq!(svg.matches("<svg").count(), 1, "one svg element");
    assert!(svg.contains("role=\"img\""));
    assert!(svg.contains("aria-label=\""));
    assert!(svg.contains("<title>") && svg.contains("<desc>"));
    assert!(!svg.contains("style="), "no inline styles");
    // Every opened element is closed or self-closing.
    let opened = svg.matches('<').count() - svg.matches("</").count();
    let closed = svg.matches("</").count() + svg.matches("/>").count();
    assert_eq!(opened, closed, "well-formed: {svg}");
    svg
}

fn bars(svg: &str) -> usize {
    svg.matches("<rect class=\"bar\"").count()
}

async fn statistics_show_fill_rate_bookings_per_day_revenue_and_waitlists(app: TestApp) {
    let slug = app.published_event("stats-2027").await;
    let small = app.session(&slug, "Portfolio prioritisation", 2, 0).await;
    let large = app.next_day_session(&slug, 4, 0).await;
    let first = app.booked(&slug, "ann@example.org", &[small]).await;
    app.booked(&slug, "bob@example.org", &[small]).await;
    let paying = app.booked(&slug, "cat@example.org", &[large]).await;
    for email in ["dan@example.org", "eve@example.org"] {
        expect_json(
            app.post(
                &format!("/api/v1/events/{slug}/sessions/{small}/waitlist"),
                &json!({"name": "Someone Waiting", "email": email, "organisation": null}),
            )
            .await,
            201,
        )
        .await;
    }
    // Ann cancels: her seat is offered to the first person waiting, and still counts as taken.
    let token = first["manage_token"].as_str().expect("manage token");
    assert_eq!(app.cancel(token, None).await.status(), 200);

    // Ann booked two days before the others; Cat paid 50.00 by card and got 20.00 back.
    let ann = first["reference"].as_str().expect("ref").to_owned();
    let cat = paying["reference"].as_str().expect("ref").to_owned();
    let db = app.db.clone();
    let today = tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        let made: chrono::NaiveDateTime = bookings::table
            .filter(bookings::reference.eq(&cat))
            .select(bookings::created_at)
            .first(&mut conn)
            .expect("booking");
        diesel::update(bookings::table.filter(bookings::reference.eq(&ann)))
            .set(bookings::created_at.eq(made - Duration::days(2)))
            .execute(&mut conn)
            .expect("backdated");
        let booking: i64 = bookings::table
            .filter(bookings::reference.eq(&cat))
            .select(bookings::id)
            .first(&mut conn)
            .expect("booking");
        let paid_at = NaiveDate::from_ymd_opt(2027, 1, 5)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .expect("time");
        let payment: i64 = diesel::insert_into(payments::table)
            .values((
                payments::booking_id.eq(booking),
                payments::provider.eq("stripe"),
                payments::amount_minor.eq(5_000_i64),
                payments::currency.eq("GBP"),
                payments::state.eq("succeeded"),
                payments::created_at.eq(paid_at),
                payments::updated_at.eq(paid_at),
                payments::succeeded_at.eq(Some(paid_at)),
            ))
            .returning(payments::id)
            .get_result(&mut conn)
            .expect("payment");
        let refunded_at = paid_at + Duration::days(3);
        diesel::insert_into(refunds::table)
            .values((
                refunds::booking_id.eq(booking),
                refunds::payment_id.eq(payment),
                refunds::amount_minor.eq(2_000_i64),
                refunds::currency.eq("GBP"),
                refunds::reason.eq("organiser"),
                refunds::state.eq("succeeded"),
                refunds::next_attempt_at.eq(refunded_at),
                refunds::created_at.eq(refunded_at),
                refunds::updated_at.eq(refunded_at),
            ))
            .execute(&mut conn)
            .expect("refund");
        made.and_utc()
            .with_timezone(&chrono_tz::Europe::London)
            .date_naive()
    })
    .await
    .expect("database task");

    let mut admin = signed_in_as(&app, "ada@example.org", "Ada Admin", Role::Admin).await;
    let page = admin.get(&format!("/organiser/stats?event={slug}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.lacks(&["style="]);

    // Fill rate: the small session is full (one confirmed, one offered), the large one a quarter.
    page.shows(&[
        "<th scope=\"row\">Portfolio prioritisation</th><td data-label=\"Taken\">2</td><td data-label=\"Capacity\">2</td><td data-label=\"Fill rate\">100 %</td>",
        "<th scope=\"row\">Benefits realisation</th><td data-label=\"Taken\">1</td><td data-label=\"Capacity\">4</td><td data-label=\"Fill rate\">25 %</td>",
    ]);
    assert_eq!(bars(chart(&page.body, "fill-chart")), 2);

    // Bookings per day: three days, the middle one empty.
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let (first_day, middle) = (today - Duration::days(2), today - Duration::days(1));
    page.shows(&[
        &format!(
            "<th scope=\"row\">{}</th><td data-label=\"Bookings\">1</td>",
            day(first_day)
        ),
        &format!(
            "<th scope=\"row\">{}</th><td data-label=\"Bookings\">0</td>",
            day(middle)
        ),
        &format!(
            "<th scope=\"row\">{}</th><td data-label=\"Bookings\">2</td>",
            day(today)
        ),
    ]);
    assert_eq!(bars(chart(&page.body, "days-chart")), 3);

    // Revenue: 50.00 in, 20.00 back, 30.00 kept; two days with two series each.
    page.shows(&[
        "<dt>Received</dt><dd>£50.00</dd>",
        "<dt>Refunded</dt><dd>£20.00</dd>",
        "<dt>Net (received minus refunded)</dt><dd>£30.00</dd>",
        "<dt>Invoiced</dt><dd>£0.00</dd>",
        "<th scope=\"row\">2027-01-05</th><td data-label=\"Received\">£50.00</td><td data-label=\"Refunded\">£0.00</td>",
        "<th scope=\"row\">2027-01-08</th><td data-label=\"Received\">£0.00</td><td data-label=\"Refunded\">£20.00</td>",
    ]);
    assert_eq!(bars(chart(&page.body, "revenue-chart")), 4);

    // Waitlist: one still waiting and one offered for the small session, nobody for the large.
    page.shows(&[
        "<th scope=\"row\">Portfolio prioritisation</th><td data-label=\"Waiting\">1</td><td data-label=\"Offered\">1</td>",
        "<th scope=\"row\">Benefits realisation</th><td data-label=\"Waiting\">0</td><td data-label=\"Offered\">0</td>",
    ]);
    assert_eq!(bars(chart(&page.body, "waitlist-chart")), 4);

    let unknown = admin.get("/organiser/stats?event=no-such-event").await;
    assert_eq!(unknown.status, 404);
    unknown.shows(&["Choose an event from the list"]);
}

async fn with_no_event_chosen_the_newest_published_one_is_shown(app: TestApp) {
    app.published_event("older-2026").await;
    app.published_event("newer-2027").await;
    expect_json(
        app.admin_post(
            "/api/v1/admin/events",
            &json!({"slug": "draft-2028", "name": "Draft 2028", "venue": "Somewhere",
                    "time_zone": "Europe/London", "currency": "GBP"}),
        )
        .await,
        201,
    )
    .await;
    let mut admin = signed_in_as(&app, "ada@example.org", "Ada Admin", Role::Admin).await;
    let page = admin.get("/organiser/stats").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.shows(&["<option value=\"newer-2027\" selected>"]);
    page.lacks(&["<option value=\"older-2026\" selected>"]);
}

/// An invoice for two places (240.00), one cancelled and credited (145.00), then paid: the
/// statistics count the 95.00 the booking was paid, not the invoice's gross.
async fn paid_invoices_count_what_was_left_after_credit_notes(app: TestApp) {
    let slug = "stats-credited";
    let body = merged(
        crate::helpers::event_body(slug),
        json!({
            "allow_clashes": true, "vat_rate_bp": 2000,
            "invoices_allowed": true, "invoice_prefix": "STC"
        }),
    );
    expect_json(app.admin_post("/api/v1/admin/events", &body).await, 201).await;
    let kept = app
        .session(slug, "Portfolio prioritisation", 10, 9_500)
        .await;
    let cancelled = app.next_day_session(slug, 10, 14_500).await;
    let booked = expect_json(
        app.book(slug, "sa@example.org", &[kept, cancelled]).await,
        201,
    )
    .await;
    let token = booked["manage_token"].as_str().expect("token").to_owned();
    let reference = booked["reference"].as_str().expect("reference").to_owned();
    expect_json(
        app.post(
            &format!("/api/v1/bookings/{token}/payments/invoice"),
            &json!({
                "company": "Analytical Engines Ltd",
                "billing_address": "1 Babbage Street\nLondon EC1 2AB",
                "vat_number": null,
                "po_number": null
            }),
        )
        .await,
        201,
    )
    .await;
    expect_json(
        app.admin_post(
            &format!("/api/v1/admin/bookings/{reference}/cancel"),
            &json!({"session_ids": [cancelled]}),
        )
        .await,
        200,
    )
    .await;
    expect_json(
        app.admin_post("/api/v1/admin/invoices/STC-0001/paid", &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(app.booking(&token).await["paid_minor"], 9_500);

    let mut admin = signed_in_as(&app, "ada@example.org", "Ada Admin", Role::Admin).await;
    let page = admin.get(&format!("/organiser/stats?event={slug}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.shows(&[
        "<dt>Received</dt><dd>£95.00</dd>",
        "<dt>Net (received minus refunded)</dt><dd>£95.00</dd>",
        "<dt>Invoiced</dt><dd>£95.00</dd>",
        "<dt>Invoices paid</dt><dd>£95.00</dd>",
        "<td data-label=\"Received\">£95.00</td>",
    ]);
    page.lacks(&["£240.00"]);
    // The chart's axis is labelled in money, not in pence.
    let svg = chart(&page.body, "revenue-chart");
    assert!(svg.contains(">£95.00</text>"), "{svg}");
    assert!(!svg.contains(">9500</text>"), "{svg}");
}
