//! The audit trail: organiser actions through the admin API write a row with the subject before
//! and after, in the transaction of the change (a change whose row cannot be written does not
//! happen); `/organiser/audit` lists them newest first, filters them, and is for admins and
//! owners only.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use masterclass::db::schema::{
    audit_log, bookings, email_jobs, organisers, seats, sessions, waitlist_entries,
};
use masterclass::organisers::Role;
use serde_json::{json, Value};

use crate::dashboard::{signed_in_as as signed_in, with_db};
use crate::helpers::{expect_json, expect_problem, seat_id, Backend, TestApp};

crate::on_both_backends!(
    an_event_update_through_the_api_is_audited_with_before_and_after,
    the_audit_page_lists_changes_and_filters_them,
    the_audit_and_statistics_pages_refuse_the_checkin_role,
    dashboard_capacity_duplicate_and_door_actions_are_audited,
    an_api_change_whose_audit_row_cannot_be_written_changes_nothing,
    a_dashboard_form_whose_audit_row_cannot_be_written_changes_nothing,
);

type Row = (Option<i64>, String, String, Option<String>, Option<String>);

/// Every audit row, oldest first.
async fn audit_rows(app: &TestApp) -> Vec<Row> {
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        audit_log::table
            .order(audit_log::id.asc())
            .select((
                audit_log::organiser_id,
                audit_log::action,
                audit_log::subject,
                audit_log::before,
                audit_log::after,
            ))
            .load::<Row>(&mut conn)
            .expect("audit rows")
    })
    .await
    .expect("database task")
}

/// The id of the owner the tests' API token belongs to.
async fn owner_id(app: &TestApp) -> i64 {
    organiser_id(app, "owner@example.org").await
}

/// The id of the organiser with `email`.
async fn organiser_id(app: &TestApp, email: &str) -> i64 {
    let db = app.db.clone();
    let email = email.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        organisers::table
            .filter(organisers::email.eq(email))
            .select(organisers::id)
            .first::<i64>(&mut conn)
            .expect("organiser")
    })
    .await
    .expect("database task")
}

/// The JSON of an audit row's before or after.
fn json_of(raw: &Option<String>) -> Value {
    serde_json::from_str(raw.as_deref().expect("a value")).expect("json")
}

async fn an_event_update_through_the_api_is_audited_with_before_and_after(app: TestApp) {
    let slug = app.published_event("audit-2027").await;

    expect_json(
        app.admin_patch(
            &format!("/api/v1/admin/events/{slug}"),
            &json!({"name": "PMO Masterclasses 2027 (spring)"}),
        )
        .await,
        200,
    )
    .await;

    let rows = audit_rows(&app).await;
    let owner = owner_id(&app).await;
    let created = rows
        .iter()
        .find(|r| r.1 == "event.create")
        .expect("creation audited");
    assert_eq!(created.0, Some(owner));
    let (who, _, subject, before, after) = rows
        .iter()
        .find(|r| r.1 == "event.update")
        .expect("update audited");
    assert_eq!(*who, Some(owner));
    assert_eq!(subject, "event:audit-2027");
    let before: Value = serde_json::from_str(before.as_deref().expect("before")).expect("json");
    let after: Value = serde_json::from_str(after.as_deref().expect("after")).expect("json");
    assert_eq!(before["name"], "PMO Masterclasses 2027");
    assert_eq!(after["name"], "PMO Masterclasses 2027 (spring)");
    assert_eq!(before["venue"], after["venue"]);
}

async fn the_audit_page_lists_changes_and_filters_them(app: TestApp) {
    let slug = app.published_event("audit-page").await;
    let session = app.session(&slug, "Portfolio prioritisation", 10, 0).await;
    expect_json(
        app.admin_patch(
            &format!("/api/v1/admin/events/{slug}"),
            &json!({"venue": "Guildhall, York"}),
        )
        .await,
        200,
    )
    .await;
    let mut admin = signed_in(&app, "ada@example.org", "Ada Admin", Role::Admin).await;

    let all = admin.get("/organiser/audit").await;
    assert_eq!(all.status, 200, "{}", all.body);
    all.shows(&[
        "Olive Owner",
        "event.update",
        "event:audit-page",
        "session.create",
        &format!("session:{session}"),
        "<strong>venue</strong>: Riverside Conference Centre, London → Guildhall, York",
        "UTC",
    ]);
    // Newest first: the update comes before the creation.
    let update = all.body.find("event.update").expect("update row");
    let create = all.body.find("event.create").expect("create row");
    assert!(update < create, "newest first");

    let events_only = admin.get("/organiser/audit?action=event.").await;
    events_only.shows(&["event.update", "event.create"]);
    events_only.lacks(&["session.create"]);

    let by_subject = admin
        .get(&format!("/organiser/audit?subject=session:{session}"))
        .await;
    by_subject.shows(&["session.create"]);
    by_subject.lacks(&["event.update"]);

    let owner = owner_id(&app).await;
    // Setting a password through the invitation link is a dashboard action on record too.
    admin
        .get("/organiser/audit?action=organiser.")
        .await
        .shows(&["organiser.password", "Ada Admin"]);

    let by_owner = admin
        .get(&format!("/organiser/audit?organiser={owner}"))
        .await;
    by_owner.shows(&["event.update"]);
    let nobody = admin.get("/organiser/audit?organiser=999999").await;
    nobody.shows(&["No changes match."]);
    let bad = admin.get("/organiser/audit?organiser=someone").await;
    bad.shows(&["Choose an organiser from the list"]);
}

async fn the_audit_and_statistics_pages_refuse_the_checkin_role(app: TestApp) {
    let mut door = signed_in(&app, "carl@example.org", "Carl Checkin", Role::Checkin).await;
    assert_eq!(door.get("/organiser/audit").await.status, 403);
    assert_eq!(door.get("/organiser/stats").await.status, 403);
    door.get("/organiser").await.lacks(&["/organiser/audit"]);

    let mut nobody = crate::pages::Browser::of(&app);
    let answer = nobody.get("/organiser/audit").await;
    assert!(answer.location().starts_with("/organiser/login"));
}

async fn dashboard_capacity_duplicate_and_door_actions_are_audited(app: TestApp) {
    let slug = app.published_event("audit-dashboard").await;
    let session = app.session(&slug, "Benefits mapping", 10, 0).await;
    app.booked(&slug, "ada@example.org", &[session]).await;
    let seat = seat_id(&app, session, "ada@example.org").await;
    let mut admin = signed_in(&app, "alex@example.org", "Alex Admin", Role::Admin).await;
    let alex = organiser_id(&app, "alex@example.org").await;

    let event_page = admin.get(&format!("/organiser/events/{slug}")).await;
    assert_eq!(event_page.status, 200, "{}", event_page.body);
    let raised = admin
        .post(
            &format!("/organiser/sessions/{session}/capacity"),
            &[("csrf", event_page.csrf()), ("capacity", "14".to_owned())],
        )
        .await;
    assert_eq!(raised.status, 303, "{}", raised.body);

    let event_page = admin.get(&format!("/organiser/events/{slug}")).await;
    let copied = admin
        .post(
            &format!("/organiser/sessions/{session}/duplicate"),
            &[("csrf", event_page.csrf())],
        )
        .await;
    assert_eq!(copied.status, 303, "{}", copied.body);

    let door = format!("/organiser/sessions/{session}/checkin");
    let door_page = admin.get(&door).await;
    assert_eq!(door_page.status, 200, "{}", door_page.body);
    let checked = admin
        .post(
            &door,
            &[
                ("csrf", door_page.csrf()),
                ("seat_id", seat.to_string()),
                ("q", String::new()),
            ],
        )
        .await;
    assert_eq!(checked.location(), door);
    // The same seat again checks nobody in, so it writes no row.
    let door_page = admin.get(&door).await;
    admin
        .post(
            &door,
            &[
                ("csrf", door_page.csrf()),
                ("seat_id", seat.to_string()),
                ("q", String::new()),
            ],
        )
        .await;

    let door_page = admin.get(&door).await;
    let undone = admin
        .post(
            &format!("{door}/{seat}/undo"),
            &[("csrf", door_page.csrf()), ("q", String::new())],
        )
        .await;
    assert_eq!(undone.location(), door);

    let rows = audit_rows(&app).await;
    let (who, _, subject, before, after) = rows
        .iter()
        .find(|r| r.1 == "session.capacity")
        .expect("capacity change audited");
    assert_eq!(*who, Some(alex));
    assert_eq!(subject, &format!("session:{session}"));
    assert_eq!(json_of(before)["capacity"], 10);
    assert_eq!(json_of(after)["capacity"], 14);

    let (who, _, subject, before, after) = rows
        .iter()
        .find(|r| r.1 == "session.duplicate")
        .expect("duplicate audited");
    assert_eq!(*who, Some(alex));
    assert_ne!(subject, &format!("session:{session}"));
    assert!(subject.starts_with("session:"), "{subject}");
    assert_eq!(json_of(before)["from"], format!("session:{session}"));
    let copy = json_of(after);
    assert_eq!(copy["title"], "Benefits mapping");
    assert_eq!(copy["capacity"], 14);
    assert_eq!(copy["status"], "draft");

    let arrivals: Vec<&Row> = rows.iter().filter(|r| r.1 == "checkin.arrive").collect();
    assert_eq!(arrivals.len(), 1, "only the first arrival checks in");
    let (who, _, subject, before, after) = arrivals[0];
    assert_eq!(*who, Some(alex));
    assert_eq!(subject, &format!("seat:{seat}"));
    assert_eq!(json_of(before)["checked_in"], false);
    assert_eq!(json_of(after)["checked_in"], true);
    assert_eq!(json_of(after)["session"], session);

    let (who, _, subject, _, after) = rows
        .iter()
        .find(|r| r.1 == "checkin.undo")
        .expect("undo audited");
    assert_eq!(*who, Some(alex));
    assert_eq!(subject, &format!("seat:{seat}"));
    assert_eq!(json_of(after)["checked_in"], false);
}

/// Makes every insert into the audit trail fail, as a full disk or a dropped connection would at
/// that moment.
async fn refuse_audit_rows(app: &TestApp) {
    let sql = match app.backend {
        Backend::Sqlite => {
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END;"
        }
        Backend::Postgres => {
            "CREATE FUNCTION no_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$; \
             CREATE TRIGGER no_audit BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION no_audit();"
        }
    };
    with_db(app, move |conn| {
        conn.batch_execute(sql).expect("trigger created")
    })
    .await;
}

/// Lets audit rows be written again.
async fn allow_audit_rows(app: &TestApp) {
    let sql = match app.backend {
        Backend::Sqlite => "DROP TRIGGER no_audit;",
        Backend::Postgres => "DROP TRIGGER no_audit ON audit_log; DROP FUNCTION no_audit();",
    };
    with_db(app, move |conn| {
        conn.batch_execute(sql).expect("trigger dropped")
    })
    .await;
}

/// What a change to a session and its seats can touch, to compare before and after.
#[derive(Debug, PartialEq)]
struct Snapshot {
    /// Id, title, capacity, taken, status and revision of every session.
    sessions: Vec<(i64, String, i32, i32, String, i32)>,
    /// Id, state and check-in time of every seat.
    seats: Vec<(i64, String, Option<chrono::NaiveDateTime>)>,
    /// Id, status and payment status of every booking.
    bookings: Vec<(i64, String, String)>,
    /// Id, state and place in the queue of every waitlist entry.
    waitlist: Vec<(i64, String, i64)>,
    /// Rows in the outbox.
    emails: i64,
    /// Rows in the audit trail.
    audit_rows: i64,
}

async fn snapshot(app: &TestApp) -> Snapshot {
    with_db(app, |conn| Snapshot {
        sessions: sessions::table
            .order(sessions::id)
            .select((
                sessions::id,
                sessions::title,
                sessions::capacity,
                sessions::taken,
                sessions::status,
                sessions::revision,
            ))
            .load(conn)
            .expect("sessions"),
        seats: seats::table
            .order(seats::id)
            .select((seats::id, seats::state, seats::checked_in_at))
            .load(conn)
            .expect("seats"),
        bookings: bookings::table
            .order(bookings::id)
            .select((bookings::id, bookings::status, bookings::payment_status))
            .load(conn)
            .expect("bookings"),
        waitlist: waitlist_entries::table
            .order(waitlist_entries::id)
            .select((
                waitlist_entries::id,
                waitlist_entries::state,
                waitlist_entries::queue_key,
            ))
            .load(conn)
            .expect("waitlist"),
        emails: email_jobs::table.count().get_result(conn).expect("emails"),
        audit_rows: audit_log::table
            .count()
            .get_result(conn)
            .expect("audit rows"),
    })
    .await
}

/// The newest audit row, checking that it is the only one written since there were `count`.
async fn the_one_row_after(app: &TestApp, count: i64) -> Row {
    let mut rows = audit_rows(app).await;
    assert_eq!(
        rows.len() as i64,
        count + 1,
        "exactly one new row: {rows:?}"
    );
    rows.pop().expect("a row")
}

/// A full one-seat session with `ada@example.org` in its seat and `bea@example.org` waiting for
/// one: (slug, session id, Ada's booking reference).
async fn full_session_with_a_waitlist(app: &TestApp, slug: &str) -> (String, i64, String) {
    let slug = app.published_event(slug).await;
    let session = app.session(&slug, "Benefits mapping", 1, 0).await;
    let booking = app.booked(&slug, "ada@example.org", &[session]).await;
    let reference = booking["reference"].as_str().expect("reference").to_owned();
    expect_json(
        app.post(
            &format!("/api/v1/events/{slug}/sessions/{session}/waitlist"),
            &json!({"name": "Bea Waiting", "email": "bea@example.org"}),
        )
        .await,
        201,
    )
    .await;
    (slug, session, reference)
}

async fn an_api_change_whose_audit_row_cannot_be_written_changes_nothing(app: TestApp) {
    let (_, session, reference) = full_session_with_a_waitlist(&app, "audit-atomic").await;
    let path = format!("/api/v1/admin/sessions/{session}");
    let cancel = format!("/api/v1/admin/bookings/{reference}/cancel");
    let renamed = json!({"title": "Benefits mapping, advanced"});
    let more_room = json!({"capacity": 2});
    let before = snapshot(&app).await;

    refuse_audit_rows(&app).await;
    expect_problem(app.admin_patch(&path, &renamed).await, 500, "internal").await;
    // More room would offer Bea a seat; cancelling Ada's would too, and email them both;
    // cancelling the session would cancel Ada's seat and close the waitlist.
    expect_problem(app.admin_patch(&path, &more_room).await, 500, "internal").await;
    expect_problem(app.admin_post(&cancel, &json!({})).await, 500, "internal").await;
    expect_problem(
        app.admin_patch(&path, &json!({"status": "cancelled"}))
            .await,
        500,
        "internal",
    )
    .await;
    assert_eq!(snapshot(&app).await, before, "nothing changed");

    allow_audit_rows(&app).await;
    let changed = expect_json(app.admin_patch(&path, &renamed).await, 200).await;
    assert_eq!(changed["title"], "Benefits mapping, advanced");
    let (_, action, subject, _, after) = the_one_row_after(&app, before.audit_rows).await;
    assert_eq!(action, "session.update");
    assert_eq!(subject, format!("session:{session}"));
    assert_eq!(json_of(&after)["title"], "Benefits mapping, advanced");

    let roomier = expect_json(app.admin_patch(&path, &more_room).await, 200).await;
    assert_eq!(roomier["capacity"], 2);
    let (_, action, _, _, after) = the_one_row_after(&app, before.audit_rows + 1).await;
    assert_eq!(action, "session.update");
    assert_eq!(json_of(&after)["capacity"], 2);

    expect_json(app.admin_post(&cancel, &json!({})).await, 200).await;
    let (_, action, subject, _, _) = the_one_row_after(&app, before.audit_rows + 2).await;
    assert_eq!(action, "booking.cancel");
    assert_eq!(subject, format!("booking:{reference}"));
    let after = snapshot(&app).await;
    assert!(after.emails > before.emails, "the changes were emailed");
    assert_eq!(before.waitlist.len(), 1, "Bea waits: {:?}", before.waitlist);
    assert!(
        after.waitlist.len() == before.waitlist.len()
            && after
                .waitlist
                .iter()
                .all(|(_, state, _)| state != "waiting"),
        "Bea was offered a seat: {:?}",
        after.waitlist
    );
}

async fn a_dashboard_form_whose_audit_row_cannot_be_written_changes_nothing(app: TestApp) {
    let (slug, session, reference) = full_session_with_a_waitlist(&app, "audit-forms").await;
    let mut admin = signed_in(&app, "alex@example.org", "Alex Admin", Role::Admin).await;
    let capacity = format!("/organiser/sessions/{session}/capacity");
    let event_page = admin.get(&format!("/organiser/events/{slug}")).await;
    assert_eq!(event_page.status, 200, "{}", event_page.body);
    let csrf = event_page.csrf();
    let before = snapshot(&app).await;

    refuse_audit_rows(&app).await;
    let raised = admin
        .post(
            &capacity,
            &[("csrf", csrf.clone()), ("capacity", "2".to_owned())],
        )
        .await;
    assert_eq!(raised.status, 500, "{}", raised.body);
    raised.shows(&[
        "Something went wrong",
        "whether the change was made",
        "href=\"/organiser\"",
    ]);
    raised.lacks(&["If you were booking"]);
    let seat_cancelled = admin
        .post(
            &format!("/organiser/sessions/{session}/people/cancel"),
            &[("csrf", csrf.clone()), ("reference", reference.clone())],
        )
        .await;
    assert_eq!(seat_cancelled.status, 500, "{}", seat_cancelled.body);
    let session_cancelled = admin
        .post(
            &format!("/organiser/sessions/{session}/cancel"),
            &[("csrf", csrf.clone())],
        )
        .await;
    assert_eq!(session_cancelled.status, 500, "{}", session_cancelled.body);
    // A door check-in writes its row only when someone goes in: still all or nothing.
    let seat = seat_id(&app, session, "ada@example.org").await;
    let at_the_door = admin
        .post(
            &format!("/organiser/sessions/{session}/checkin"),
            &[
                ("csrf", csrf.clone()),
                ("seat_id", seat.to_string()),
                ("q", String::new()),
            ],
        )
        .await;
    assert_eq!(at_the_door.status, 500, "{}", at_the_door.body);
    assert_eq!(snapshot(&app).await, before, "nothing changed");

    allow_audit_rows(&app).await;
    let raised = admin
        .post(&capacity, &[("csrf", csrf), ("capacity", "2".to_owned())])
        .await;
    assert_eq!(raised.status, 303, "{}", raised.body);
    let (who, action, subject, old, new) = the_one_row_after(&app, before.audit_rows).await;
    assert_eq!(who, Some(organiser_id(&app, "alex@example.org").await));
    assert_eq!(action, "session.capacity");
    assert_eq!(subject, format!("session:{session}"));
    assert_eq!(json_of(&old)["capacity"], 1);
    assert_eq!(json_of(&new)["capacity"], 2);
}
