//! Exports for organisers: a session's attendees, an event's bookings and invoices as CSV files
//! that open cleanly in a spreadsheet, and a session's printable sign-in sheet.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use masterclass::organisers::Role;
use serde_json::{json, Value};

use crate::helpers::{event_body, expect_json, expect_problem, merged, TestApp};
use crate::on_both_backends;

/// When the programme is booked: 08:30 the next morning in Tokyo, the event's time zone.
const BOOKED_AT: &str = "2027-01-15T23:30:00Z";

const HOSTILE_NAME: &str = "=HYPERLINK(\"http://x\",\"y\")";
/// Stored as it is (names typed into the forms cannot hold a line break, but stored data may).
const TRICKY_NAME: &str = "Smith, Jo \"JJ\"\nJunior";
const TRICKY_ORGANISATION: &str = "Zoë 中文 🎉";

/// A small programme: an event in Tokyo taking invoices, a free session and two priced ones,
/// free, invoiced (partly credited, then paid) and held bookings, a checked-in attendee, and
/// attendees with hostile and awkward names.
struct Programme {
    slug: String,
    free: i64,
    priced: i64,
    later: i64,
    /// Booking references: Ada (free, checked in), Bo (invoiced), Eve (hostile name), Jo
    /// (awkward name), Cy (held).
    ada: String,
    bo: String,
    eve: String,
    jo: String,
    cy: String,
}

async fn book_as(
    app: &TestApp,
    slug: &str,
    attendee: Value,
    sessions: &[i64],
    invoice: Option<Value>,
) -> String {
    let mut body = json!({"attendee": attendee, "session_ids": sessions});
    if let Some(invoice) = invoice {
        body = merged(body, json!({"invoice": invoice}));
    }
    let booked = expect_json(
        app.post(&format!("/api/v1/events/{slug}/bookings"), &body)
            .await,
        201,
    )
    .await;
    booked["reference"].as_str().expect("reference").to_owned()
}

fn set_clock(app: &TestApp, at: &str) {
    let at: DateTime<Utc> = at.parse().expect("a time");
    assert!(app.clock.advance(at - app.clock.now()), "a test clock");
}

/// Runs `change` on a connection of the app's database.
async fn in_database(
    app: &TestApp,
    change: impl FnOnce(&mut masterclass::db::DbConn) + Send + 'static,
) {
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        change(&mut conn);
    })
    .await
    .expect("database task");
}

async fn programme(app: &TestApp) -> Programme {
    set_clock(app, BOOKED_AT);
    let slug = app
        .created_event(&merged(
            event_body("exports-2027"),
            json!({
                "time_zone": "Asia/Tokyo", "currency": "EUR", "allow_clashes": true,
                "vat_rate_bp": 2000, "invoices_allowed": true, "invoice_prefix": "EXP"
            }),
        ))
        .await;
    let free = app
        .session_at(
            &slug,
            "Free PMO clinic",
            50,
            0,
            "2027-03-10T09:00:00+00:00",
            "2027-03-10T10:30:00+00:00",
        )
        .await;
    let priced = app
        .session_at(
            &slug,
            "Portfolio prioritisation, \"advanced\"",
            50,
            14_500,
            "2027-03-11T09:00:00+00:00",
            "2027-03-11T10:30:00+00:00",
        )
        .await;
    let later = app
        .session_at(
            &slug,
            "Benefits realisation",
            50,
            10_000,
            "2027-03-12T09:00:00+00:00",
            "2027-03-12T10:30:00+00:00",
        )
        .await;
    let ada = book_as(
        app,
        &slug,
        json!({"name": "Ada Lovelace", "email": "ada@example.org", "organisation": "Analytical Engines Ltd"}),
        &[free],
        None,
    )
    .await;
    let bo = book_as(
        app,
        &slug,
        json!({"name": "Bo Buyer", "email": "bo@example.org", "organisation": "Babbage & Co"}),
        &[priced, later],
        Some(json!({
            "company": "Babbage & Co",
            "billing_address": "1 Difference Street\nLondon EC1 2AB",
            "vat_number": "GB123456789",
            "po_number": "PO-4471"
        })),
    )
    .await;
    let eve = book_as(
        app,
        &slug,
        json!({"name": HOSTILE_NAME, "email": "eve@example.org", "organisation": "+1"}),
        &[free],
        None,
    )
    .await;
    let jo = book_as(
        app,
        &slug,
        json!({"name": "Smith, Jo \"JJ\"", "email": "jo@example.org", "organisation": TRICKY_ORGANISATION}),
        &[free],
        None,
    )
    .await;
    let (ada_ref, jo_ref) = (ada.clone(), jo.clone());
    in_database(app, move |conn| {
        use masterclass::db::schema::{bookings, seats};
        diesel::update(bookings::table.filter(bookings::reference.eq(&jo_ref)))
            .set(bookings::attendee_name.eq(TRICKY_NAME))
            .execute(conn)
            .expect("name changed");
        let ada_id: i64 = bookings::table
            .filter(bookings::reference.eq(&ada_ref))
            .select(bookings::id)
            .first(conn)
            .expect("Ada's booking");
        let arrived: DateTime<Utc> = "2027-03-10T08:55:00Z".parse().expect("a time");
        diesel::update(seats::table.filter(seats::booking_id.eq(ada_id)))
            .set(seats::checked_in_at.eq(Some(arrived.naive_utc())))
            .execute(conn)
            .expect("checked in");
    })
    .await;
    // A day later an organiser cancels Bo's second place (credited in full) and the rest of the
    // invoice is paid; Cy books and has not paid yet.
    app.advance(Duration::days(1)).await;
    expect_json(
        app.admin_post(
            &format!("/api/v1/admin/bookings/{bo}/cancel"),
            &json!({"session_ids": [later]}),
        )
        .await,
        200,
    )
    .await;
    expect_json(
        app.admin_post("/api/v1/admin/invoices/EXP-0001/paid", &json!({}))
            .await,
        200,
    )
    .await;
    let cy = book_as(
        app,
        &slug,
        json!({"name": "Cy Holder", "email": "cy@example.org"}),
        &[priced],
        None,
    )
    .await;
    Programme {
        slug,
        free,
        priced,
        later,
        ada,
        bo,
        eve,
        jo,
        cy,
    }
}

/// Reads a CSV file as this service writes it (RFC 4180 with a byte-order mark and CRLF after
/// every row), failing on anything else.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let body = text
        .strip_prefix('\u{feff}')
        .expect("the file starts with a byte-order mark");
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = body.chars().peekable();
    // Inside a quoted field; just after a quoted field's closing quote.
    let (mut quoted, mut closed) = (false, false);
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => (quoted, closed) = (false, true),
                c => field.push(c),
            }
            continue;
        }
        match c {
            ',' => {
                row.push(std::mem::take(&mut field));
                closed = false;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "rows end in CRLF");
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                closed = false;
            }
            '\n' => panic!("a line feed outside quotes ends no row: {text:?}"),
            '"' if field.is_empty() && !closed => quoted = true,
            c => {
                assert!(!closed && c != '"', "stray character {c:?} in {text:?}");
                field.push(c);
            }
        }
    }
    assert!(
        !quoted && row.is_empty() && field.is_empty(),
        "the last row ends in CRLF: {text:?}"
    );
    rows
}

/// An export's answer after checking it is a CSV attachment named `file`: its rows, header
/// first.
async fn csv(app: &TestApp, path: &str, file: &str) -> Vec<Vec<String>> {
    let response = app.admin_get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"{file}\"")
    );
    assert_eq!(header("cache-control"), "no-store");
    let text = response.text().await.expect("body");
    parse_csv(&text)
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

/// The day the exports run, in Tokyo.
const EXPORTED_ON: &str = "2027-01-17";

async fn the_attendee_list_has_every_seat_holder_with_payment_and_check_in(app: TestApp) {
    let p = programme(&app).await;

    let free = csv(
        &app,
        &format!("/api/v1/admin/sessions/{}/attendees.csv", p.free),
        &format!(
            "exports-2027-session-{}-attendees-{EXPORTED_ON}.csv",
            p.free
        ),
    )
    .await;
    let priced = csv(
        &app,
        &format!("/api/v1/admin/sessions/{}/attendees.csv", p.priced),
        &format!(
            "exports-2027-session-{}-attendees-{EXPORTED_ON}.csv",
            p.priced
        ),
    )
    .await;
    let later = csv(
        &app,
        &format!("/api/v1/admin/sessions/{}/attendees.csv", p.later),
        &format!(
            "exports-2027-session-{}-attendees-{EXPORTED_ON}.csv",
            p.later
        ),
    )
    .await;

    let header = strings(&[
        "reference",
        "name",
        "email",
        "organisation",
        "seat_state",
        "booked_at",
        "payment_status",
        "checked_in_at",
    ]);
    let booked = "2027-01-16 08:30";
    assert_eq!(
        free,
        vec![
            header.clone(),
            strings(&[
                &p.ada,
                "Ada Lovelace",
                "ada@example.org",
                "Analytical Engines Ltd",
                "confirmed",
                booked,
                "not_required",
                "2027-03-10 17:55"
            ]),
            strings(&[
                &p.eve,
                &format!("'{HOSTILE_NAME}"),
                "eve@example.org",
                "'+1",
                "confirmed",
                booked,
                "not_required",
                ""
            ]),
            strings(&[
                &p.jo,
                TRICKY_NAME,
                "jo@example.org",
                TRICKY_ORGANISATION,
                "confirmed",
                booked,
                "not_required",
                ""
            ]),
        ]
    );
    assert_eq!(
        priced,
        vec![
            header.clone(),
            strings(&[
                &p.bo,
                "Bo Buyer",
                "bo@example.org",
                "Babbage & Co",
                "confirmed",
                booked,
                "paid",
                ""
            ]),
            strings(&[
                &p.cy,
                "Cy Holder",
                "cy@example.org",
                "",
                "held",
                "2027-01-17 08:30",
                "unpaid",
                ""
            ]),
        ]
    );
    assert_eq!(later, vec![header], "a cancelled seat is no attendee");
}

async fn formula_payloads_typed_by_attendees_come_out_neutralised(app: TestApp) {
    let p = programme(&app).await;

    let response = app
        .admin_get(&format!("/api/v1/admin/sessions/{}/attendees.csv", p.free))
        .await;
    let text = response.text().await.expect("body");

    let line = format!(
        "{},\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",eve@example.org,'+1,confirmed,2027-01-16 08:30,not_required,\r\n",
        p.eve
    );
    assert!(text.contains(&line), "{text:?}");
    assert!(!text.contains(",=") && !text.contains(",\"=") && !text.contains(",+"));
    let bookings = app
        .admin_get(&format!("/api/v1/admin/events/{}/bookings.csv", p.slug))
        .await
        .text()
        .await
        .expect("body");
    let eve = parse_csv(&bookings)
        .into_iter()
        .find(|row| row[0] == p.eve)
        .expect("Eve's booking");
    assert_eq!(
        (eve[4].as_str(), eve[6].as_str()),
        (&*format!("'{HOSTILE_NAME}"), "'+1")
    );
}

async fn a_name_with_a_comma_a_quote_and_a_line_break_round_trips(app: TestApp) {
    let p = programme(&app).await;

    let response = app
        .admin_get(&format!("/api/v1/admin/sessions/{}/attendees.csv", p.free))
        .await;
    let bytes = response.bytes().await.expect("body");

    let expected = format!(
        "{},\"Smith, Jo \"\"JJ\"\"\nJunior\",jo@example.org,Zoë 中文 🎉,confirmed,2027-01-16 08:30,not_required,\r\n",
        p.jo
    );
    let text = std::str::from_utf8(&bytes).expect("UTF-8");
    assert!(text.contains(&expected), "{text:?}");
    assert!(
        bytes.windows(4).any(|w| w == "🎉".as_bytes()),
        "emoji as UTF-8"
    );
    let jo = parse_csv(text)
        .into_iter()
        .find(|row| row[0] == p.jo)
        .expect("Jo's row");
    assert_eq!(
        (jo[1].as_str(), jo[3].as_str()),
        (TRICKY_NAME, TRICKY_ORGANISATION)
    );
}

async fn the_bookings_export_has_payment_state_sessions_and_invoice_numbers(app: TestApp) {
    let p = programme(&app).await;

    let rows = csv(
        &app,
        &format!("/api/v1/admin/events/{}/bookings.csv", p.slug),
        &format!("exports-2027-bookings-{EXPORTED_ON}.csv"),
    )
    .await;

    let booked = "2027-01-16 08:30";
    let priced = "Portfolio prioritisation, \"advanced\"";
    assert_eq!(
        rows,
        vec![
            strings(&[
                "reference",
                "created_at",
                "status",
                "payment_status",
                "name",
                "email",
                "organisation",
                "sessions",
                "total",
                "paid",
                "refunded",
                "currency",
                "invoices"
            ]),
            strings(&[
                &p.ada,
                booked,
                "confirmed",
                "not_required",
                "Ada Lovelace",
                "ada@example.org",
                "Analytical Engines Ltd",
                "Free PMO clinic",
                "0.00",
                "0.00",
                "0.00",
                "EUR",
                ""
            ]),
            strings(&[
                &p.bo,
                booked,
                "confirmed",
                "paid",
                "Bo Buyer",
                "bo@example.org",
                "Babbage & Co",
                &format!("{priced}; Benefits realisation (cancelled)"),
                "145.00",
                "145.00",
                "0.00",
                "EUR",
                "EXP-0001; EXP-0002"
            ]),
            strings(&[
                &p.eve,
                booked,
                "confirmed",
                "not_required",
                &format!("'{HOSTILE_NAME}"),
                "eve@example.org",
                "'+1",
                "Free PMO clinic",
                "0.00",
                "0.00",
                "0.00",
                "EUR",
                ""
            ]),
            strings(&[
                &p.jo,
                booked,
                "confirmed",
                "not_required",
                TRICKY_NAME,
                "jo@example.org",
                TRICKY_ORGANISATION,
                "Free PMO clinic",
                "0.00",
                "0.00",
                "0.00",
                "EUR",
                ""
            ]),
            strings(&[
                &p.cy,
                "2027-01-17 08:30",
                "held",
                "unpaid",
                "Cy Holder",
                "cy@example.org",
                "",
                priced,
                "145.00",
                "0.00",
                "0.00",
                "EUR",
                ""
            ]),
        ]
    );
}

async fn the_invoices_export_lists_invoices_and_credit_notes_for_accounting(app: TestApp) {
    let p = programme(&app).await;

    let response = app
        .admin_get(&format!("/api/v1/admin/events/{}/invoices.csv", p.slug))
        .await;
    let text = response.text().await.expect("body");
    let rows = parse_csv(&text);

    assert_eq!(
        rows,
        vec![
            strings(&[
                "number",
                "kind",
                "credits",
                "issued_at",
                "due_at",
                "state",
                "company",
                "vat_number",
                "po_number",
                "net",
                "vat",
                "gross",
                "currency",
                "booking_reference"
            ]),
            strings(&[
                "EXP-0001",
                "invoice",
                "",
                "2027-01-16 08:30",
                "2027-01-30 08:30",
                "paid",
                "Babbage & Co",
                "GB123456789",
                "PO-4471",
                "204.17",
                "40.83",
                "245.00",
                "EUR",
                &p.bo
            ]),
            strings(&[
                "EXP-0002",
                "credit_note",
                "EXP-0001",
                "2027-01-17 08:30",
                "",
                "issued",
                "Babbage & Co",
                "GB123456789",
                "PO-4471",
                "-83.33",
                "-16.67",
                "-100.00",
                "EUR",
                &p.bo
            ]),
        ]
    );
    // Negative amounts are numbers, not neutralised text.
    assert!(text.contains(",-83.33,-16.67,-100.00,EUR,"), "{text:?}");
    let file = csv(
        &app,
        &format!("/api/v1/admin/events/{}/invoices.csv", p.slug),
        &format!("exports-2027-invoices-{EXPORTED_ON}.csv"),
    )
    .await;
    assert_eq!(file, rows);
}

async fn every_export_is_utf8_with_a_bom_and_crlf_line_ends(app: TestApp) {
    let p = programme(&app).await;
    let empty = app.published_event("nothing-booked").await;

    for path in [
        format!("/api/v1/admin/sessions/{}/attendees.csv", p.free),
        format!("/api/v1/admin/events/{}/bookings.csv", p.slug),
        format!("/api/v1/admin/events/{}/invoices.csv", p.slug),
        format!("/api/v1/admin/events/{empty}/bookings.csv"),
        format!("/api/v1/admin/events/{empty}/invoices.csv"),
    ] {
        let response = app.admin_get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        let bytes = response.bytes().await.expect("body");

        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "{path}: BOM");
        assert!(bytes.ends_with(b"\r\n"), "{path}: ends in CRLF");
        let text = std::str::from_utf8(&bytes).expect("UTF-8");
        // parse_csv refuses a row ended by anything but CRLF.
        let rows = parse_csv(text);
        assert!(
            rows.iter().all(|row| row.len() == rows[0].len()),
            "{path}: every row has every column"
        );
    }
    let header_only = app
        .admin_get(&format!("/api/v1/admin/events/{empty}/invoices.csv"))
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(
        header_only,
        "\u{feff}number,kind,credits,issued_at,due_at,state,company,vat_number,po_number,net,vat,gross,currency,booking_reference\r\n"
    );
}

async fn the_sign_in_sheet_lists_confirmed_attendees_alphabetically_for_printing(app: TestApp) {
    let p = programme(&app).await;
    let door = app.organiser_token("door@example.org", Role::Checkin).await;

    let response = app
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/admin/sessions/{}/sign-in-sheet", p.free),
        )
        .bearer_auth(&door)
        .send()
        .await
        .expect("request sent");

    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(
        header("content-disposition"),
        format!(
            "inline; filename=\"exports-2027-session-{}-sign-in-sheet-{EXPORTED_ON}.html\"",
            p.free
        )
    );
    let policy = header("content-security-policy");
    let html = response.text().await.expect("body");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<h1>Free PMO clinic</h1>"));
    assert!(
        html.contains("Wednesday 10 March 2027 · 18:00–19:30"),
        "the time in Tokyo: {html}"
    );
    assert!(html.contains("Room: Thames Room"));
    assert!(html.contains("<th scope=\"col\" class=\"signature\">Signature</th>"));
    assert!(html.contains("<td class=\"signature\"></td>"));
    // Alphabetical by name; markup in a name is shown, not run.
    let eve = html
        .find("=HYPERLINK(&quot;http://x&quot;,&quot;y&quot;)")
        .expect("Eve, escaped");
    let ada = html.find("Ada Lovelace").expect("Ada");
    let jo = html.find("Smith, Jo &quot;JJ&quot;").expect("Jo");
    assert!(eve < ada && ada < jo, "alphabetical: {html}");
    assert!(html.contains("3 confirmed"));
    // No inline styles or scripts: the strict policy holds, and the look comes from the
    // site's stylesheet, which has the print rules.
    assert!(!html.contains("<style") && !html.contains("style=") && !html.contains("<script"));
    let href = html
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a stylesheet link");
    assert!(policy.contains(&format!("style-src {href};")), "{policy}");
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    let path = &href[href.find("/static/").expect("a static file")..];
    let css = app.get(path).await.text().await.expect("stylesheet");
    assert!(css.contains(".sign-in-sheet") && css.contains("@media print"));

    let paid = app
        .admin_get(&format!(
            "/api/v1/admin/sessions/{}/sign-in-sheet",
            p.priced
        ))
        .await
        .text()
        .await
        .expect("body");
    assert!(paid.contains("Bo Buyer"));
    assert!(!paid.contains("Cy Holder"), "a held seat is not confirmed");
    assert!(paid.contains("Portfolio prioritisation, &quot;advanced&quot;"));
}

async fn exports_need_a_token_and_the_admin_role(app: TestApp) {
    let p = programme(&app).await;
    let door = app.organiser_token("door@example.org", Role::Checkin).await;
    let admin = app.organiser_token("admin@example.org", Role::Admin).await;
    let csv_paths = [
        format!("/api/v1/admin/sessions/{}/attendees.csv", p.free),
        format!("/api/v1/admin/events/{}/bookings.csv", p.slug),
        format!("/api/v1/admin/events/{}/invoices.csv", p.slug),
    ];
    let sheet = format!("/api/v1/admin/sessions/{}/sign-in-sheet", p.free);
    let with = |token: &str, path: &str| {
        app.request(reqwest::Method::GET, path)
            .bearer_auth(token)
            .send()
    };

    for path in csv_paths.iter().chain([&sheet]) {
        expect_problem(app.get(path).await, 401, "unauthorized").await;
        expect_problem(
            with("not-a-token", path).await.expect("sent"),
            401,
            "unauthorized",
        )
        .await;
        assert_eq!(
            with(&admin, path).await.expect("sent").status(),
            200,
            "{path}"
        );
    }
    for path in &csv_paths {
        expect_problem(with(&door, path).await.expect("sent"), 403, "forbidden").await;
    }
    assert_eq!(with(&door, &sheet).await.expect("sent").status(), 200);
}

async fn unknown_sessions_and_events_are_not_found(app: TestApp) {
    programme(&app).await;

    for path in [
        "/api/v1/admin/sessions/999999/attendees.csv",
        "/api/v1/admin/sessions/999999/sign-in-sheet",
        "/api/v1/admin/sessions/not-a-number/attendees.csv",
        "/api/v1/admin/sessions/-1/sign-in-sheet",
        "/api/v1/admin/events/no-such-event/bookings.csv",
        "/api/v1/admin/events/no-such-event/invoices.csv",
        "/api/v1/admin/events/NOT%20A%20SLUG/invoices.csv",
    ] {
        expect_problem(app.admin_get(path).await, 404, "not-found").await;
    }
}

on_both_backends!(
    the_attendee_list_has_every_seat_holder_with_payment_and_check_in,
    formula_payloads_typed_by_attendees_come_out_neutralised,
    a_name_with_a_comma_a_quote_and_a_line_break_round_trips,
    the_bookings_export_has_payment_state_sessions_and_invoice_numbers,
    the_invoices_export_lists_invoices_and_credit_notes_for_accounting,
    every_export_is_utf8_with_a_bom_and_crlf_line_ends,
    the_sign_in_sheet_lists_confirmed_attendees_alphabetically_for_printing,
    exports_need_a_token_and_the_admin_role,
    unknown_sessions_and_events_are_not_found,
);
