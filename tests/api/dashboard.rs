//! The organisers' dashboard accounts over HTTP: invitation links, signing in and out, the
//! session cookie, forgotten passwords, the per-account limit, the team and API tokens.

use chrono::Duration;
use diesel::prelude::*;
use masterclass::organisers::{self, accounts, NewOrganiser, Role};

use crate::helpers::{Backend, TestApp};
use crate::pages::{Browser, Page};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn(backend).await
}

/// Runs `f` with a connection of the app's database.
pub(crate) async fn with_db<T: Send + 'static>(
    app: &TestApp,
    f: impl FnOnce(&mut masterclass::db::DbConn) -> T + Send + 'static,
) -> T {
    let db = app.db.clone();
    tokio::task::spawn_blocking(move || f(&mut db.conn().expect("connection")))
        .await
        .expect("database task")
}

/// An organiser with `role` and the path of their invitation link.
pub(crate) async fn invited(app: &TestApp, email: &str, role: Role) -> String {
    let key = app.issuer.key.clone();
    let now = app.clock.now();
    let email = email.to_owned();
    with_db(app, move |conn| {
        let new = NewOrganiser::parse(&email, "Invited Person", role).expect("valid");
        let organiser = organisers::insert(conn, &new).expect("organiser");
        let link =
            accounts::invite_link(conn, &key, &organiser, "PMO Masterclasses", now).expect("link");
        format!("/organiser/password/{}", accounts::link_token(&key, link))
    })
    .await
}

/// A browser signed in as a new organiser with `role` (named Pat Organiser).
pub(crate) async fn signed_in(app: &TestApp, email: &str, role: Role) -> Browser {
    signed_in_as(app, email, "Pat Organiser", role).await
}

/// A browser signed in as a new organiser `name` with `role`, through their invitation link.
pub(crate) async fn signed_in_as(app: &TestApp, email: &str, name: &str, role: Role) -> Browser {
    let link = invited(app, email, role).await;
    let mut browser = Browser::of(app);
    let done = choose_password(&mut browser, &link, Some(name), PASSWORD).await;
    assert_eq!(done.status, 303, "signed in: {}", done.body);
    browser
}

/// Emails waiting in the outbox for `to` with `template`.
pub(crate) async fn outbox(app: &TestApp, to: &str, template: &str) -> usize {
    let (to, template) = (to.to_owned(), template.to_owned());
    with_db(app, move |conn| {
        use masterclass::db::schema::email_jobs;
        email_jobs::table
            .filter(email_jobs::recipient.eq(&to))
            .filter(email_jobs::template.eq(&template))
            .count()
            .get_result::<i64>(conn)
            .expect("count") as usize
    })
    .await
}

/// Accepts an invitation (or a reset) at `link` with the password; returns the answer.
pub(crate) async fn choose_password(
    browser: &mut Browser,
    link: &str,
    name: Option<&str>,
    password: &str,
) -> Page {
    let form = browser.get(link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let mut fields = vec![
        ("csrf", form.csrf()),
        ("password", password.to_owned()),
        ("repeat_password", password.to_owned()),
    ];
    if let Some(name) = name {
        fields.push(("name", name.to_owned()));
    }
    browser.post(link, &fields).await
}

pub(crate) async fn sign_in(browser: &mut Browser, email: &str, password: &str) -> Page {
    let form = browser.get("/organiser/login").await;
    browser
        .post(
            "/organiser/login",
            &[
                ("csrf", form.csrf().as_str()),
                ("email", email),
                ("password", password),
                ("next", "/organiser"),
            ],
        )
        .await
}

crate::on_both_backends_with!(super::app;
    an_invitation_link_sets_the_password_once_and_signs_in,
    signing_in_and_out_with_the_session_cookie,
    a_forgotten_password_is_reset_by_an_emailed_link_that_expires,
    using_one_link_spends_the_other_open_links_of_the_account,
    too_many_sign_ins_to_one_account_get_a_429,
    owners_invite_colleagues_and_other_roles_cannot,
    api_tokens_are_shown_once_and_can_be_revoked,
    exports_download_from_the_dashboard_for_the_roles_allowed,
);

/// The invitation link asks for a name and a password, signs in with a secure cookie, and
/// cannot be used twice.
async fn an_invitation_link_sets_the_password_once_and_signs_in(app: TestApp) {
    let link = invited(&app, "olive@example.org", Role::Owner).await;
    let mut browser = Browser::of(&app);
    let form = browser.get(&link).await;
    form.shows(&["Join the organisers", "olive@example.org", "name=\"name\""]);

    let short = browser
        .post(
            &link,
            &[
                ("csrf", form.csrf().as_str()),
                ("name", "Olive"),
                ("password", "short"),
                ("repeat_password", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 422);
    short.error_by_field("password");
    short.lacks(&["value=\"short\""]);

    let done = choose_password(&mut browser, &link, Some("Olive Owner"), PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location(), "/organiser");
    let cookie = done
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("mc_session="))
        .expect("a session cookie")
        .to_owned();
    for part in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/organiser",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    let home = browser.get("/organiser").await;
    assert_eq!(home.status, 200);
    home.shows(&["Signed in as Olive Owner (olive@example.org), owner."]);

    let again = browser.get(&link).await;
    assert_eq!(again.status, 404);
    again.shows(&["This link has been used"]);
    let forged = browser
        .get("/organiser/password/mcl_0000000000000000000000000000")
        .await;
    assert_eq!(forged.status, 404);
}

/// A wrong password is refused with one message for every reason; the right one opens a
/// session, and signing out ends it.
async fn signing_in_and_out_with_the_session_cookie(app: TestApp) {
    let link = invited(&app, "ada@example.org", Role::Admin).await;
    choose_password(&mut Browser::of(&app), &link, Some("Ada"), PASSWORD).await;

    let mut browser = Browser::of(&app);
    let away = browser.get("/organiser").await;
    assert_eq!(away.status, 303);
    assert_eq!(away.location(), "/organiser/login?next=/organiser");

    for (email, password) in [
        ("ada@example.org", "wrong password entirely"),
        ("nobody@example.org", PASSWORD),
    ] {
        let refused = sign_in(&mut browser, email, password).await;
        assert_eq!(refused.status, 401);
        refused.shows(&["The email address or password is not right."]);
        refused.lacks(&[password]);
    }
    let signed = sign_in(&mut browser, "ADA@example.org", PASSWORD).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(signed.location(), "/organiser");
    let home = browser.get("/organiser").await;
    home.shows(&["Signed in as Ada (ada@example.org), admin."]);

    let out = browser
        .post("/organiser/logout", &[("csrf", home.csrf().as_str())])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location(), "/organiser/login?done=out");
    assert_eq!(browser.get("/organiser").await.status, 303, "signed out");
}

/// A reset link is emailed for a known address only (the page says the same either way), sets
/// a new password once, ends the other sessions, and lapses after an hour.
async fn a_forgotten_password_is_reset_by_an_emailed_link_that_expires(app: TestApp) {
    let link = invited(&app, "ada@example.org", Role::Admin).await;
    let mut elsewhere = Browser::of(&app);
    choose_password(&mut elsewhere, &link, Some("Ada"), PASSWORD).await;
    assert_eq!(elsewhere.get("/organiser").await.status, 200);

    let mut browser = Browser::of(&app);
    for email in ["ada@example.org", "nobody@example.org"] {
        let form = browser.get("/organiser/forgot").await;
        let sent = browser
            .post(
                "/organiser/forgot",
                &[("csrf", form.csrf().as_str()), ("email", email)],
            )
            .await;
        assert_eq!(sent.status, 200);
        sent.shows(&[&format!(
            "If {email} belongs to an organiser, we have emailed a link"
        )]);
    }
    assert_eq!(outbox(&app, "ada@example.org", "password_reset").await, 1);
    assert_eq!(
        outbox(&app, "nobody@example.org", "password_reset").await,
        0
    );

    let reset = app
        .newest_organiser_link("ada@example.org")
        .await
        .expect("a reset link");
    let form = browser.get(&reset).await;
    form.shows(&["Choose a new password"]);
    form.lacks(&["name=\"name\""]);
    let done = choose_password(&mut browser, &reset, None, "a brand new pass phrase").await;
    assert_eq!(done.status, 303);
    assert_eq!(
        elsewhere.get("/organiser").await.status,
        303,
        "other sessions end"
    );
    assert_eq!(
        sign_in(&mut Browser::of(&app), "ada@example.org", PASSWORD)
            .await
            .status,
        401
    );
    assert_eq!(
        sign_in(
            &mut Browser::of(&app),
            "ada@example.org",
            "a brand new pass phrase"
        )
        .await
        .status,
        303
    );

    // A second reset, not used within the hour.
    let form = browser.get("/organiser/forgot").await;
    browser
        .post(
            "/organiser/forgot",
            &[("csrf", form.csrf().as_str()), ("email", "ada@example.org")],
        )
        .await;
    let late = app
        .newest_organiser_link("ada@example.org")
        .await
        .expect("a reset link");
    app.clock.advance(Duration::minutes(61));
    let expired = browser.get(&late).await;
    assert_eq!(expired.status, 404);
    expired.shows(&["This link has expired"]);
}

/// Two reset links asked for, the first used: the second no longer sets a password.
async fn using_one_link_spends_the_other_open_links_of_the_account(app: TestApp) {
    let link = invited(&app, "ada@example.org", Role::Admin).await;
    choose_password(&mut Browser::of(&app), &link, Some("Ada"), PASSWORD).await;

    let key = app.issuer.key.clone();
    let now = app.clock.now();
    let (first, second) = with_db(&app, move |conn| {
        let mut path = || {
            let id = accounts::request_reset(conn, &key, "ada@example.org", "PMO", now)
                .expect("reset")
                .expect("a known organiser");
            format!("/organiser/password/{}", accounts::link_token(&key, id))
        };
        (path(), path())
    })
    .await;
    assert_ne!(first, second);

    let mut browser = Browser::of(&app);
    let done = choose_password(&mut browser, &first, None, "a brand new pass phrase").await;
    assert_eq!(done.status, 303, "{}", done.body);
    let spent = Browser::of(&app).get(&second).await;
    assert_eq!(spent.status, 404, "{}", spent.body);
    spent.shows(&["This link has been used"]);
    assert_eq!(
        sign_in(
            &mut Browser::of(&app),
            "ada@example.org",
            "a brand new pass phrase"
        )
        .await
        .status,
        303
    );
}

/// After ten failed sign-ins within 15 minutes (the defaults) an account takes no more, not
/// even the right password.
async fn too_many_sign_ins_to_one_account_get_a_429(app: TestApp) {
    let link = invited(&app, "ada@example.org", Role::Admin).await;
    choose_password(&mut Browser::of(&app), &link, Some("Ada"), PASSWORD).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            sign_in(
                &mut Browser::of(&app),
                "ada@example.org",
                "not the password",
            )
            .await
            .status,
        );
    }
    let blocked = sign_in(&mut Browser::of(&app), "ada@example.org", PASSWORD).await;
    assert_eq!(statuses, [401; 10]);
    assert_eq!(blocked.status, 429);
    blocked.shows(&["Too many requests"]);
    let retry: u64 = blocked
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=15 * 60).contains(&retry), "{retry}");
}

/// Owners invite with a role (the colleague gets the email); admins and check-in staff do not
/// see the team.
async fn owners_invite_colleagues_and_other_roles_cannot(app: TestApp) {
    let owner = invited(&app, "olive@example.org", Role::Owner).await;
    let mut browser = Browser::of(&app);
    choose_password(&mut browser, &owner, Some("Olive"), PASSWORD).await;
    let team = browser.get("/organiser/team").await;
    assert_eq!(team.status, 200);
    let sent = browser
        .post(
            "/organiser/team",
            &[
                ("csrf", team.csrf().as_str()),
                ("name", "Carl Checker"),
                ("email", "carl@example.org"),
                ("role", "checkin"),
            ],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    sent.shows(&[
        "Carl Checker has been invited as checkin",
        "Invited: no password yet",
    ]);
    assert_eq!(
        outbox(&app, "carl@example.org", "organiser_invite").await,
        1
    );
    let twice = browser
        .post(
            "/organiser/team",
            &[
                ("csrf", team.csrf().as_str()),
                ("name", "Carl Again"),
                ("email", "carl@example.org"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(twice.status, 409);
    twice.shows(&["carl@example.org is an organiser already."]);

    let carl = app
        .newest_organiser_link("carl@example.org")
        .await
        .expect("an invitation");
    let mut checker = Browser::of(&app);
    choose_password(&mut checker, &carl, Some("Carl"), PASSWORD).await;
    let refused = checker.get("/organiser/team").await;
    assert_eq!(refused.status, 403);
    refused.shows(&["Not for your role"]);
    let home = checker.get("/organiser").await;
    home.lacks(&["href=\"/organiser/team\""]);
}

/// A token is shown once when made, works with the API, and stops working when revoked.
async fn api_tokens_are_shown_once_and_can_be_revoked(app: TestApp) {
    let link = invited(&app, "ada@example.org", Role::Admin).await;
    let mut browser = Browser::of(&app);
    choose_password(&mut browser, &link, Some("Ada"), PASSWORD).await;
    let page = browser.get("/organiser/tokens").await;
    page.shows(&["You have no API tokens."]);
    let made = browser
        .post(
            "/organiser/tokens",
            &[("csrf", page.csrf().as_str()), ("label", "export script")],
        )
        .await;
    assert_eq!(made.status, 200);
    let start = made
        .body
        .find("<code class=\"token\">")
        .expect("the token shown")
        + 20;
    let token = made.body[start..]
        .split('<')
        .next()
        .expect("token")
        .to_owned();
    assert!(token.starts_with("mct_"), "{token}");
    let list = browser.get("/organiser/tokens").await;
    list.shows(&["export script", "In use"]);
    list.lacks(&[&token]);

    let slug = app.published_event("tokens").await;
    let api = |token: String| {
        let url = app.url(&format!("/api/v1/admin/events/{slug}/bookings"));
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }
    };
    assert_eq!(api(token.clone()).await, 200);
    let id = list
        .body
        .split("/organiser/tokens/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a revoke form")
        .to_owned();
    let revoked = browser
        .post(
            &format!("/organiser/tokens/{id}/revoke"),
            &[("csrf", list.csrf().as_str())],
        )
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(api(token).await, 401);
    browser.get("/organiser/tokens").await.shows(&["Revoked"]);
}

/// The exports from the dashboard: files for an admin, the sign-in sheet for check-in staff too,
/// the sign-in page for nobody.
async fn exports_download_from_the_dashboard_for_the_roles_allowed(app: TestApp) {
    let slug = app.published_event("exports").await;
    let session = app.session(&slug, "Portfolio triage", 5, 0).await;
    app.booked(&slug, "grace@example.org", &[session]).await;
    let files = [
        format!("/organiser/sessions/{session}/attendees.csv"),
        format!("/organiser/events/{slug}/bookings.csv"),
        format!("/organiser/events/{slug}/invoices.csv"),
    ];
    let sheet = format!("/organiser/sessions/{session}/sign-in-sheet");

    let mut nobody = Browser::of(&app);
    for path in files.iter().chain([&sheet]) {
        let away = nobody.get(path).await;
        assert_eq!(away.status, 303, "{path}");
        assert!(
            away.location().starts_with("/organiser/login?next="),
            "{path}"
        );
    }

    let link = invited(&app, "ada@example.org", Role::Admin).await;
    let mut admin = Browser::of(&app);
    choose_password(&mut admin, &link, Some("Ada"), PASSWORD).await;
    for path in &files {
        let file = admin.get(path).await;
        assert_eq!(file.status, 200, "{path}: {}", file.body);
        assert_eq!(
            file.header("content-type"),
            Some("text/csv; charset=utf-8"),
            "{path}"
        );
        assert!(file
            .header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment;")));
    }
    let list = admin.get(&files[0]).await;
    assert!(list.body.contains("grace@example.org"), "{}", list.body);
    let printed = admin.get(&sheet).await;
    assert_eq!(printed.status, 200);
    printed.shows(&["Portfolio triage", "Signature"]);
    assert_eq!(
        admin
            .get("/organiser/sessions/999999/attendees.csv")
            .await
            .status,
        404
    );

    let link = invited(&app, "carl@example.org", Role::Checkin).await;
    let mut checker = Browser::of(&app);
    choose_password(&mut checker, &link, Some("Carl"), PASSWORD).await;
    for path in &files {
        assert_eq!(checker.get(path).await.status, 403, "{path}");
    }
    assert_eq!(checker.get(&sheet).await.status, 200);
}
