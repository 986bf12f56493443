//! The attendee web pages, driven as a browser without JavaScript would: the programme, the
//! booking form and its refusals, CSRF and rate-limit protection, security headers, the manage
//! page with cancellation, and waitlist places. Every action is checked in the API afterwards.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use chrono::{DateTime, Duration, Utc};
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde_json::{json, Value};

use crate::helpers::{
    event_body, expect_json, merged, problem_type, session_body, Backend, TestApp,
};

/// Every page test's app, with the programme page rendered afresh on each view.
async fn app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| s.pages.programme_cache_ms = 0).await
}

/// A browser without JavaScript: keeps the cookies it is given (the CSRF cookie, an organiser's
/// session), never follows redirects.
pub(crate) struct Browser {
    client: reqwest::Client,
    address: String,
    cookies: std::collections::BTreeMap<String, String>,
}

/// One answer, read in full.
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl Browser {
    pub(crate) fn new(address: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            address: address.to_owned(),
            cookies: std::collections::BTreeMap::new(),
        }
    }

    pub(crate) fn of(app: &TestApp) -> Self {
        Self::new(&app.address)
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.address));
        self.send(request).await
    }

    pub(crate) async fn post(&mut self, path: &str, fields: &(impl Serialize + ?Sized)) -> Page {
        self.post_with(path, fields, &[]).await
    }

    /// A form post with extra request headers (`Origin`, `Sec-Fetch-Site`).
    pub(crate) async fn post_with(
        &mut self,
        path: &str,
        fields: &(impl Serialize + ?Sized),
        headers: &[(&str, &str)],
    ) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Page {
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request = request.header("cookie", jar.join("; "));
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().expect("cookie text");
            let Some((name, rest)) = set.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or_default();
            if value.is_empty() || set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }
}

impl Page {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Where a 303 sends the browser.
    pub(crate) fn location(&self) -> &str {
        assert_eq!(self.status, 303, "a redirect: {}", self.body);
        self.header("location").expect("a Location header")
    }

    /// The value of the first form field `name` (hidden fields and filled-in inputs).
    pub(crate) fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} field on the page: {}", self.body))
            + marker.len();
        let length = self.body[start..].find('"').expect("closing quote");
        self.body[start..start + length].to_owned()
    }

    pub(crate) fn csrf(&self) -> String {
        self.field("csrf")
    }

    #[track_caller]
    pub(crate) fn shows(&self, texts: &[&str]) {
        for text in texts {
            assert!(
                self.body.contains(text),
                "the page shows {text:?}: {}",
                self.body
            );
        }
    }

    #[track_caller]
    pub(crate) fn lacks(&self, texts: &[&str]) {
        for text in texts {
            assert!(
                !self.body.contains(text),
                "the page does not show {text:?}: {}",
                self.body
            );
        }
    }

    /// A session's card on the programme page.
    fn card(&self, session: i64) -> &str {
        let start = self
            .body
            .find(&format!(
                "<article class=\"session card\" id=\"session-{session}\">"
            ))
            .unwrap_or_else(|| panic!("session {session} on the programme: {}", self.body));
        let length = self.body[start..].find("</article>").expect("card ends");
        &self.body[start..start + length]
    }

    /// Checks that `name`'s message is shown between its label and its input.
    #[track_caller]
    pub(crate) fn error_by_field(&self, name: &str) {
        let at = |text: String| {
            self.body
                .find(&text)
                .unwrap_or_else(|| panic!("{text} on the page: {}", self.body))
        };
        let label = at(format!("<label for=\"{name}\""));
        let error = at(format!("id=\"{name}-error\""));
        let input = at(format!("<input id=\"{name}\""));
        assert!(
            label < error && error < input,
            "the {name} message sits by its field"
        );
    }
}

/// `/events/{slug}/book` with `sessions` ticked.
fn book_path(slug: &str, sessions: &[i64]) -> String {
    let query: Vec<String> = sessions.iter().map(|s| format!("session={s}")).collect();
    format!("/events/{slug}/book?{}", query.join("&"))
}

/// The booking form as `browser` would send it after opening it for `sessions`.
async fn filled_form(
    browser: &mut Browser,
    slug: &str,
    sessions: &[i64],
    name: &str,
    email: &str,
) -> Vec<(&'static str, String)> {
    let form = browser.get(&book_path(slug, sessions)).await;
    assert_eq!(form.status, 200, "the booking form: {}", form.body);
    let mut fields = vec![
        ("csrf", form.csrf()),
        ("form_id", form.field("form_id")),
        ("name", name.to_owned()),
        ("email", email.to_owned()),
        ("organisation", "Analytical Engines Ltd".to_owned()),
    ];
    fields.extend(sessions.iter().map(|s| ("session", s.to_string())));
    fields
}

/// Books `sessions` through the form; returns the manage token the redirect leads to.
async fn booked_on_the_web(
    browser: &mut Browser,
    slug: &str,
    sessions: &[i64],
    email: &str,
) -> String {
    let fields = filled_form(browser, slug, sessions, "Ada Lovelace", email).await;
    let answer = browser.post(&format!("/events/{slug}/book"), &fields).await;
    token_of(answer.location(), "/bookings/", "/booked")
}

fn token_of(location: &str, prefix: &str, suffix: &str) -> String {
    location
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .unwrap_or_else(|| panic!("{location} is {prefix}{{token}}{suffix}"))
        .to_owned()
}

async fn waitlist_entry(app: &TestApp, token: &str) -> Value {
    expect_json(app.get(&format!("/api/v1/waitlist/{token}")).await, 200).await
}

async fn join_through_api(app: &TestApp, slug: &str, session: i64, email: &str) -> String {
    let joined = expect_json(
        app.post(
            &format!("/api/v1/events/{slug}/sessions/{session}/waitlist"),
            &json!({"name": "Someone Waiting", "email": email}),
        )
        .await,
        201,
    )
    .await;
    joined["manage_token"].as_str().expect("token").to_owned()
}

async fn manage_token(app: &TestApp, slug: &str, email: &str, sessions: &[i64]) -> String {
    app.booked(slug, email, sessions).await["manage_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Joins `session`'s waitlist through its page; returns the place's token.
async fn joined_on_the_web(browser: &mut Browser, slug: &str, session: i64, email: &str) -> String {
    let path = format!("/events/{slug}/sessions/{session}/waitlist");
    let form = browser.get(&path).await;
    assert_eq!(form.status, 200, "the waitlist form: {}", form.body);
    let answer = browser
        .post(
            &path,
            &[
                ("csrf", form.csrf().as_str()),
                ("name", "Bob Babbage"),
                ("email", email),
                ("organisation", ""),
            ],
        )
        .await;
    token_of(answer.location(), "/waitlist/", "?done=joined")
}

fn seat_states(booking: &Value) -> Vec<(i64, String)> {
    booking["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|s| {
            (
                s["session_id"].as_i64().expect("session id"),
                s["state"].as_str().expect("state").to_owned(),
            )
        })
        .collect()
}

/// `at` as the pages write a moment in London.
fn london_moment(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::London)
        .format("%H:%M on %A %-d %B %Y")
        .to_string()
}

/// The programme shows each session's time in the event's zone, room, price and availability.
async fn the_programme_shows_each_session_with_its_time_room_price_and_availability(app: TestApp) {
    let slug = app.published_event("programme").await;
    let (app_ref, slug_ref) = (&app, slug.as_str());
    // 08:00 UTC in June is 09:00 in London (summer time).
    let at = move |title: &'static str, capacity: i32, price: i64| {
        app_ref.session_at(
            slug_ref,
            title,
            capacity,
            price,
            "2027-06-10T08:00:00+00:00",
            "2027-06-10T09:30:00+00:00",
        )
    };
    let plenty = at("Portfolio prioritisation", 50, 14_500).await;
    let few = at("Resource capacity planning", 10, 0).await;
    let waitlisted = at("Agile PMO", 1, 0).await;
    let closed = at("Governance that helps", 1, 0).await;
    let cancelled = at("Benefits realisation", 20, 0).await;
    for n in 0..8 {
        app.booked(&slug, &format!("few{n}@example.org"), &[few])
            .await;
    }
    app.booked(&slug, "ada@example.org", &[waitlisted, closed])
        .await;
    expect_json(
        app.patch_session(closed, &json!({"waitlist_enabled": false}))
            .await,
        200,
    )
    .await;
    expect_json(
        app.patch_session(cancelled, &json!({"status": "cancelled"}))
            .await,
        200,
    )
    .await;

    let page = Browser::of(&app).get(&format!("/events/{slug}")).await;

    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    page.shows(&[
        "<h2 id=\"day-1\">Thursday 10 June 2027</h2>",
        "Times are in Europe/London.",
    ]);
    for session in [plenty, few, waitlisted, closed, cancelled] {
        let card = page.card(session);
        for text in [
            "09:00–10:30",
            "Thursday 10 June 2027",
            "Room: Thames Room",
            "With Priya Natarajan",
        ] {
            assert!(card.contains(text), "{text} in {card}");
        }
    }
    let card = page.card(plenty);
    assert!(
        card.contains("Portfolio prioritisation") && card.contains("£145.00"),
        "{card}"
    );
    assert!(
        card.contains("<span class=\"badge badge--open\">50 seats left</span>"),
        "{card}"
    );
    assert!(
        card.contains(&format!("name=\"session\" value=\"{plenty}\"")),
        "selectable: {card}"
    );
    let card = page.card(few);
    assert!(card.contains("<span class=\"price\">Free</span>"), "{card}");
    assert!(
        card.contains("<span class=\"badge badge--few\">Only 2 seats left</span>"),
        "{card}"
    );
    let card = page.card(waitlisted);
    assert!(
        card.contains("<span class=\"badge badge--full\">Full – join the waitlist</span>"),
        "{card}"
    );
    assert!(
        card.contains(&format!(
            "href=\"/events/{slug}/sessions/{waitlisted}/waitlist\""
        )),
        "{card}"
    );
    assert!(!card.contains("name=\"session\""), "not selectable: {card}");
    let card = page.card(closed);
    assert!(
        card.contains("<span class=\"badge badge--full\">Full</span>"),
        "{card}"
    );
    assert!(
        !card.contains("waitlist") && !card.contains("name=\"session\""),
        "{card}"
    );
    let card = page.card(cancelled);
    assert!(
        card.contains("<span class=\"badge badge--cancelled\">Cancelled</span>"),
        "{card}"
    );
    assert!(!card.contains("name=\"session\""), "{card}");

    // The page and the API agree, and the next view shows the next booking.
    assert_eq!(app.seats_left(&slug, few).await, 2);
    app.booked(&slug, "ninth@example.org", &[few]).await;
    let page = Browser::of(&app).get(&format!("/events/{slug}")).await;
    assert!(
        page.card(few).contains("Only 1 seat left"),
        "{}",
        page.card(few)
    );
    assert_eq!(app.seats_left(&slug, few).await, 1);
}

/// A session's page shows its abstract paragraph by paragraph and every speaker.
async fn a_session_page_shows_its_abstract_and_speakers(app: TestApp) {
    let slug = app.published_event("session-page").await;
    let body = merged(
        session_body("Setting up a PMO that lasts", 30, 9_500),
        json!({
            "abstract": "Mandate and sponsorship.\n\nThe first hundred days.",
            "speakers": ["Priya Natarajan", "Martin Keller"]
        }),
    );
    let id = app.created_session(&slug, &body).await;
    let mut browser = Browser::of(&app);

    let page = browser.get(&format!("/events/{slug}/sessions/{id}")).await;

    assert_eq!(page.status, 200);
    page.shows(&[
        "<h1>Setting up a PMO that lasts</h1>",
        "<p>Mandate and sponsorship.</p>",
        "<p>The first hundred days.</p>",
        "<li>Priya Natarajan</li>",
        "<li>Martin Keller</li>",
        "Wednesday 10 March 2027",
        "09:00–10:30",
        "£95.00",
        "30 seats left",
        &format!("<input type=\"hidden\" name=\"session\" value=\"{id}\">"),
    ]);
    let public = app.public_session(&slug, id).await;
    assert_eq!(
        public["speakers"],
        json!(["Priya Natarajan", "Martin Keller"])
    );

    for missing in [
        format!("/events/{slug}/sessions/{}", id + 100),
        format!("/events/{slug}/sessions/abc"),
    ] {
        let page = browser.get(&missing).await;
        assert_eq!(page.status, 404, "{missing}");
        page.shows(&["Page not found"]);
    }
}

/// `/` shows the programme of the one published event, and lists them once two are.
async fn the_home_page_shows_the_only_published_event_or_a_list(app: TestApp) {
    let spring = app
        .created_event(&merged(
            event_body("spring"),
            json!({"name": "Spring Masterclasses", "allow_clashes": true}),
        ))
        .await;
    app.session(&spring, "Portfolio prioritisation", 10, 0)
        .await;
    let autumn = app
        .created_event(&merged(
            event_body("autumn"),
            json!({"name": "Autumn Masterclasses", "status": "draft"}),
        ))
        .await;
    let mut browser = Browser::of(&app);

    let home = browser.get("/").await;

    assert_eq!(home.status, 200);
    home.shows(&["<h1>Spring Masterclasses</h1>", "Portfolio prioritisation"]);
    home.lacks(&["Autumn Masterclasses"]);

    expect_json(
        app.patch_event(&autumn, &json!({"status": "published"}))
            .await,
        200,
    )
    .await;
    let home = browser.get("/").await;
    assert_eq!(home.status, 200);
    home.shows(&[
        "<h1>Events</h1>",
        "<a href=\"/events/spring\">Spring Masterclasses</a>",
        "<a href=\"/events/autumn\">Autumn Masterclasses</a>",
    ]);
    home.lacks(&["Portfolio prioritisation"]);
    let listed = expect_json(app.get("/api/v1/events").await, 200).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
}

/// A free session booked through the form is confirmed once, even when the form is sent twice.
async fn booking_a_free_session_through_the_form_confirms_it_once(app: TestApp) {
    let slug = app.published_event("book-free").await;
    let session = app.session(&slug, "PMO forum", 10, 0).await;
    let mut browser = Browser::of(&app);

    let form = browser.get(&book_path(&slug, &[session])).await;
    assert_eq!(form.status, 200);
    let cookie = form
        .header("set-cookie")
        .expect("the form sets the CSRF cookie");
    for part in ["mc_csrf=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    form.shows(&[&format!(
        "id=\"session-{session}\" name=\"session\" value=\"{session}\" checked"
    )]);
    let fields = filled_form(
        &mut browser,
        &slug,
        &[session],
        "Ada Lovelace",
        "ada@example.org",
    )
    .await;

    let first = browser.post(&format!("/events/{slug}/book"), &fields).await;

    let token = token_of(first.location(), "/bookings/", "/booked");
    let booking = app.booking(&token).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["attendee"]["email"], "ada@example.org");
    assert_eq!(
        booking["attendee"]["organisation"],
        "Analytical Engines Ltd"
    );
    assert_eq!(seat_states(&booking), [(session, "confirmed".to_owned())]);
    let reference = booking["reference"].as_str().expect("reference");
    let booked = browser.get(first.location()).await;
    assert_eq!(booked.status, 200);
    booked.shows(&[
        "<h1>You are booked</h1>",
        &format!("<dd class=\"reference\">{reference}</dd>"),
        "PMO forum",
        &format!("href=\"/bookings/{token}\""),
    ]);

    // A double click: the same form again books nothing more and leads to the same booking.
    let again = browser.post(&format!("/events/{slug}/book"), &fields).await;
    assert_eq!(again.location(), first.location());
    assert_eq!(app.admin_bookings(&slug).await.len(), 1);
    assert_eq!(app.seats_left(&slug, session).await, 9);
    app.assert_no_drift();
}

/// A form with errors comes back (422) with messages by the fields, values kept, nothing booked.
async fn a_form_with_errors_comes_back_with_messages_by_the_fields_and_values_kept(app: TestApp) {
    let slug = app.published_event("book-errors").await;
    let session = app.session(&slug, "PMO forum", 10, 0).await;
    let mut browser = Browser::of(&app);
    let form = browser.get(&format!("/events/{slug}/book")).await;
    let (csrf, form_id) = (form.csrf(), form.field("form_id"));

    let refused = browser
        .post(
            &format!("/events/{slug}/book"),
            &[
                ("csrf", csrf.as_str()),
                ("form_id", form_id.as_str()),
                ("name", ""),
                ("email", "not-an-email"),
                ("organisation", "Engines \"Ltd\" <b>"),
            ],
        )
        .await;

    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.shows(&[
        "There is a problem",
        "id=\"sessions-error\"",
        "Choose at least one session.",
        "value=\"not-an-email\"",
        "value=\"Engines &quot;Ltd&quot; &lt;b&gt;\"",
        &format!("name=\"form_id\" value=\"{form_id}\""),
    ]);
    refused.error_by_field("name");
    refused.error_by_field("email");
    refused.lacks(&["id=\"organisation-error\"", "<b>"]);
    assert!(app.admin_bookings(&slug).await.is_empty());
    assert_eq!(app.seats_left(&slug, session).await, 10);

    let session_text = session.to_string();
    let corrected = browser
        .post(
            &format!("/events/{slug}/book"),
            &[
                ("csrf", refused.csrf().as_str()),
                ("form_id", form_id.as_str()),
                ("session", session_text.as_str()),
                ("name", "Ada Lovelace"),
                ("email", "ada@example.org"),
                ("organisation", "Analytical Engines Ltd"),
            ],
        )
        .await;
    let token = token_of(corrected.location(), "/bookings/", "/booked");
    assert_eq!(app.booking(&token).await["status"], "confirmed");
    assert_eq!(app.admin_bookings(&slug).await.len(), 1);
}

/// Overlapping sessions are explained on the form, and refused (409) when sent: nothing booked.
async fn a_timetable_clash_is_explained_before_sending_and_refused_after(app: TestApp) {
    let slug = app.strict_event("clash").await;
    let first = app.session(&slug, "Portfolio prioritisation", 10, 0).await;
    let second = app
        .session_at(
            &slug,
            "Resource capacity planning",
            10,
            0,
            "2027-03-10T10:00:00+00:00",
            "2027-03-10T11:00:00+00:00",
        )
        .await;
    let mut browser = Browser::of(&app);

    let form = browser.get(&book_path(&slug, &[first, second])).await;

    assert_eq!(form.status, 200);
    form.shows(&[
        "<p class=\"clash-hints clash-box\" id=\"clash-hints\" aria-live=\"polite\">“Portfolio",
        "“Portfolio prioritisation” and “Resource capacity planning” overlap in time: one person can book only one of them.",
    ]);
    let fields = filled_form(
        &mut browser,
        &slug,
        &[first, second],
        "Ada Lovelace",
        "ada@example.org",
    )
    .await;
    let refused = browser.post(&format!("/events/{slug}/book"), &fields).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    refused.shows(&[
        "in time, and one person can book only one of them. Nothing was booked",
        "value=\"ada@example.org\"",
    ]);
    assert!(app.admin_bookings(&slug).await.is_empty());
    assert_eq!(app.seats_left(&slug, first).await, 10);
    assert_eq!(app.seats_left(&slug, second).await, 10);

    // A clash with a seat already held is refused the same way.
    let held = manage_token(&app, &slug, "ada@example.org", &[first]).await;
    let fields = filled_form(
        &mut browser,
        &slug,
        &[second],
        "Ada Lovelace",
        "ada@example.org",
    )
    .await;
    let refused = browser.post(&format!("/events/{slug}/book"), &fields).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    refused.shows(&["if you already hold a seat in the other, cancel that first"]);
    assert_eq!(app.admin_bookings(&slug).await.len(), 1);
    assert_eq!(
        seat_states(&app.booking(&held).await),
        [(first, "confirmed".to_owned())]
    );
    assert_eq!(app.seats_left(&slug, second).await, 10);
}

/// A session that filled while the form was open is refused (409) with its waitlist; none booked.
async fn a_session_that_filled_comes_back_with_a_message_and_its_waitlist(app: TestApp) {
    let slug = app.published_event("filled").await;
    let scarce = app.session(&slug, "Agile PMO", 1, 0).await;
    let other = app.next_day_session(&slug, 5, 0).await;
    let mut browser = Browser::of(&app);
    let fields = filled_form(
        &mut browser,
        &slug,
        &[scarce, other],
        "Bob Babbage",
        "bob@example.org",
    )
    .await;
    app.booked(&slug, "ada@example.org", &[scarce]).await;

    let refused = browser.post(&format!("/events/{slug}/book"), &fields).await;

    assert_eq!(refused.status, 409, "{}", refused.body);
    refused.shows(&[
        "“Agile PMO” has just filled up, so nothing was booked. Untick it to book the others, or join its waitlist.",
        &format!("href=\"/events/{slug}/sessions/{scarce}/waitlist\""),
        "value=\"Bob Babbage\"",
        "value=\"bob@example.org\"",
    ]);
    assert_eq!(app.attendee_emails(scarce).await, ["ada@example.org"]);
    assert!(app.attendee_emails(other).await.is_empty());
    assert_eq!(app.seats_left(&slug, other).await, 5);
    assert_eq!(app.admin_bookings(&slug).await.len(), 1);
}

/// Posts without a matching CSRF token and cookie, or from another site, get 403 and do nothing.
async fn posts_without_a_matching_token_or_from_another_site_change_nothing(app: TestApp) {
    let slug = app.published_event("csrf").await;
    let session = app.session(&slug, "PMO forum", 10, 0).await;
    let mut browser = Browser::of(&app);
    let fields = filled_form(
        &mut browser,
        &slug,
        &[session],
        "Ada Lovelace",
        "ada@example.org",
    )
    .await;
    let without = |name: &str| -> Vec<(&str, String)> {
        fields.iter().filter(|(n, _)| *n != name).cloned().collect()
    };
    let with_token = |token: &str| -> Vec<(&str, String)> {
        let mut changed = without("csrf");
        changed.push(("csrf", token.to_owned()));
        changed
    };
    let book = format!("/events/{slug}/book");
    let own_origin = app.address.clone();

    let mut refusals = vec![
        ("no token", browser.post(&book, &without("csrf")).await),
        (
            "a wrong token",
            browser.post(&book, &with_token("0123abcd")).await,
        ),
        (
            "another site's origin",
            browser
                .post_with(&book, &fields, &[("origin", "https://evil.example")])
                .await,
        ),
        (
            "a cross-site fetch",
            browser
                .post_with(&book, &fields, &[("sec-fetch-site", "cross-site")])
                .await,
        ),
    ];
    let mut stranger = Browser::of(&app);
    refusals.push(("no cookie", stranger.post(&book, &fields).await));

    for (what, page) in &refusals {
        assert_eq!(page.status, 403, "{what}: {}", page.body);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{what}"
        );
        page.shows(&["This form has expired", "Nothing was changed."]);
    }
    assert!(app.admin_bookings(&slug).await.is_empty());
    assert_eq!(app.seats_left(&slug, session).await, 10);

    // The same form from this site, saying so, is taken.
    let taken = browser
        .post_with(
            &book,
            &fields,
            &[
                ("origin", own_origin.as_str()),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    let token = token_of(taken.location(), "/bookings/", "/booked");

    // Cancelling is protected the same way.
    let session_text = session.to_string();
    let refused = browser
        .post(
            &format!("/bookings/{token}/cancel"),
            &[("csrf", "0123abcd"), ("session", session_text.as_str())],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.booking(&token).await["status"], "confirmed");
    assert_eq!(app.seats_left(&slug, session).await, 9);
}

/// Pages and error pages carry security headers, the API does not; each gets its own kind of 404.
async fn pages_carry_security_headers_and_unknown_addresses_get_the_right_404(app: TestApp) {
    let slug = app.published_event("headers").await;
    app.session(&slug, "PMO forum", 10, 0).await;
    let mut browser = Browser::of(&app);
    let programme = browser.get(&format!("/events/{slug}")).await;
    let css = {
        let marker = "<link rel=\"stylesheet\" href=\"";
        let start = programme.body.find(marker).expect("stylesheet") + marker.len();
        let length = programme.body[start..].find('"').expect("quote");
        programme.body[start..start + length].to_owned()
    };
    let expired = browser
        .post(&format!("/events/{slug}/book"), &[("name", "Ada")])
        .await;
    let pages = vec![
        ("programme", programme),
        (
            "booking form",
            browser.get(&format!("/events/{slug}/book")).await,
        ),
        ("404", browser.get("/nope").await),
        ("403", expired),
        (
            "bad manage link",
            browser.get("/bookings/not-a-real-token").await,
        ),
        (
            "bad waitlist link",
            browser.get("/waitlist/not-a-real-token").await,
        ),
        ("stylesheet", browser.get(&css).await),
    ];

    for (what, page) in &pages {
        let csp = page.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self';")
                && csp.contains("frame-ancestors 'none'")
                && csp.contains("form-action 'self'"),
            "{what}: {csp}"
        );
        assert_eq!(
            page.header("referrer-policy"),
            Some("no-referrer"),
            "{what}"
        );
        assert_eq!(page.header("x-frame-options"), Some("DENY"), "{what}");
        assert_eq!(
            page.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            page.header("strict-transport-security"),
            None,
            "{what}: off by default"
        );
    }
    let status = |what: &str| pages.iter().find(|(w, _)| *w == what).expect(what).1.status;
    assert_eq!(status("programme"), 200);
    assert_eq!(status("stylesheet"), 200);
    let not_found = &pages[2].1;
    assert_eq!(not_found.status, 404);
    assert_eq!(
        not_found.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    not_found.shows(&["<h1>Page not found</h1>"]);
    for (_, page) in &pages[4..6] {
        assert_eq!(page.status, 404);
        page.shows(&["<h1>This link is not valid</h1>"]);
    }

    let api = app.get(&format!("/api/v1/events/{slug}")).await;
    assert_eq!(api.status(), 200);
    assert_eq!(api.headers().get("content-security-policy"), None);
    assert_eq!(api.headers().get("x-frame-options"), None);
    assert_eq!(
        api.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let (status, kind, _) = problem_type(app.get("/api/v1/nope").await).await;
    assert_eq!((status, kind.as_str()), (404, "not-found"));
}

/// Cancelling a free place (confirmed on its page, nothing refunded) offers it to the waitlist.
async fn cancelling_a_free_place_offers_it_to_the_waitlist(app: TestApp) {
    let slug = app.published_event("cancel-free").await;
    let scarce = app.session(&slug, "Agile PMO", 1, 0).await;
    let other = app.next_day_session(&slug, 10, 0).await;
    let mut browser = Browser::of(&app);
    let token = booked_on_the_web(&mut browser, &slug, &[scarce, other], "ada@example.org").await;
    let bob = join_through_api(&app, &slug, scarce, "bob@example.org").await;
    let manage = browser.get(&format!("/bookings/{token}")).await;
    assert_eq!(manage.status, 200);
    manage.shows(&[
        "<h1>Your booking</h1>",
        "Nothing to pay.",
        &format!("href=\"/bookings/{token}/cancel?session={scarce}\""),
        &format!("href=\"/bookings/{token}/cancel\""),
    ]);

    let confirm = browser
        .get(&format!("/bookings/{token}/cancel?session={scarce}"))
        .await;

    assert_eq!(confirm.status, 200);
    confirm.shows(&[
        "<h1>Cancel a place</h1>",
        "Agile PMO",
        "Nothing will be refunded for this place.",
        &format!("<input type=\"hidden\" name=\"session\" value=\"{scarce}\">"),
    ]);
    confirm.lacks(&["Benefits realisation", "name=\"all\""]);
    assert_eq!(
        seat_states(&app.booking(&token).await),
        [
            (scarce, "confirmed".to_owned()),
            (other, "confirmed".to_owned())
        ],
        "showing the confirmation changes nothing"
    );
    let scarce_text = scarce.to_string();
    let done = browser
        .post(
            &format!("/bookings/{token}/cancel"),
            &[
                ("csrf", confirm.csrf().as_str()),
                ("session", scarce_text.as_str()),
            ],
        )
        .await;
    assert_eq!(done.location(), format!("/bookings/{token}?done=cancelled"));
    let booking = app.booking(&token).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(
        seat_states(&booking),
        [
            (scarce, "cancelled".to_owned()),
            (other, "confirmed".to_owned())
        ]
    );
    let offered = waitlist_entry(&app, &bob).await;
    assert_eq!(
        offered["state"], "offered",
        "the freed seat goes to the person waiting"
    );
    assert_eq!(app.seats_left(&slug, scarce).await, 0, "held for the offer");
    let after = browser.get(done.location()).await;
    after.shows(&[
        "Cancelled. We have sent you an email about it.",
        "<span class=\"state state--cancelled\">Cancelled</span>",
    ]);

    // The rest of the booking, all at once.
    let confirm = browser.get(&format!("/bookings/{token}/cancel")).await;
    confirm.shows(&[
        "<h1>Cancel your booking</h1>",
        "<input type=\"hidden\" name=\"all\" value=\"yes\">",
    ]);
    let done = browser
        .post(
            &format!("/bookings/{token}/cancel"),
            &[("csrf", confirm.csrf().as_str()), ("all", "yes")],
        )
        .await;
    assert_eq!(done.location(), format!("/bookings/{token}?done=cancelled"));
    let booking = app.booking(&token).await;
    assert_eq!(booking["status"], "cancelled");
    assert_eq!(app.seats_left(&slug, other).await, 10);
    // Nothing left to cancel: the confirmation page sends the browser back.
    let nothing = browser.get(&format!("/bookings/{token}/cancel")).await;
    assert_eq!(nothing.location(), format!("/bookings/{token}"));
    app.assert_no_drift();
}

/// An invoice booking made on the form is shown, then credited, what its refund policy gives back.
async fn cancelling_an_invoiced_booking_shows_and_issues_the_credit_by_the_policy(app: TestApp) {
    let body = merged(
        event_body("credit"),
        json!({
            "allow_clashes": true, "vat_rate_bp": 2000, "invoices_allowed": true,
            "invoice_prefix": "CRD",
            "refund_policy": [{"days_before": 14, "percent": 100}, {"days_before": 7, "percent": 50}]
        }),
    );
    let slug = app.created_event(&body).await;
    let session = app
        .session(&slug, "Portfolio prioritisation", 10, 14_500)
        .await;
    let mut browser = Browser::of(&app);
    let form = browser.get(&book_path(&slug, &[session])).await;
    form.shows(&[
        "id=\"payment-invoice\" name=\"payment\" value=\"invoice\" checked",
        "£145.00",
    ]);
    let mut fields = filled_form(
        &mut browser,
        &slug,
        &[session],
        "Ada Lovelace",
        "ada@example.org",
    )
    .await;
    fields.extend([
        ("payment", "invoice".to_owned()),
        ("company", "Analytical Engines Ltd".to_owned()),
        (
            "billing_address",
            "1 Babbage Street\nLondon EC1 2AB".to_owned(),
        ),
        ("po_number", "PO-4471".to_owned()),
    ]);
    // Without a company to invoice, the form comes back with the message by that field.
    let no_company: Vec<(&str, String)> = fields
        .iter()
        .filter(|(name, _)| *name != "company")
        .cloned()
        .collect();
    let refused = browser
        .post(&format!("/events/{slug}/book"), &no_company)
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.error_by_field("company");
    refused.shows(&[
        "value=\"PO-4471\"",
        "1 Babbage Street\nLondon EC1 2AB</textarea>",
    ]);
    assert!(app.admin_bookings(&slug).await.is_empty());
    let answer = browser.post(&format!("/events/{slug}/book"), &fields).await;
    let token = token_of(answer.location(), "/bookings/", "/booked");
    let booking = app.booking(&token).await;
    assert_eq!(
        (
            booking["status"].as_str(),
            booking["payment_status"].as_str()
        ),
        (Some("confirmed"), Some("invoiced"))
    );
    let booked = browser.get(answer.location()).await;
    booked.shows(&["CRD-0001 (PDF)", "£145.00, due"]);

    // Ten days before the session: half comes back.
    let starts = DateTime::parse_from_rfc3339("2027-03-10T09:00:00+00:00")
        .expect("time")
        .with_timezone(&Utc);
    app.clock
        .advance(starts - Duration::days(10) - app.clock.now());
    let confirm = browser.get(&format!("/bookings/{token}/cancel")).await;

    assert_eq!(confirm.status, 200);
    confirm.shows(&[
        "A credit note for <strong>£72.50</strong> will be issued against your invoice.",
        "£72.50 (50 %)",
        "100 % back when cancelled at least 14 days before the session.",
        "50 % back when cancelled at least 7 days before the session.",
        "Nothing back after that.",
    ]);
    assert_eq!(app.booking(&token).await["status"], "confirmed");
    assert_eq!(
        app.admin_get("/api/v1/admin/invoices/CRD-0002")
            .await
            .status(),
        404
    );
    let done = browser
        .post(
            &format!("/bookings/{token}/cancel"),
            &[("csrf", confirm.csrf().as_str()), ("all", "yes")],
        )
        .await;
    assert_eq!(done.location(), format!("/bookings/{token}?done=cancelled"));
    assert_eq!(app.booking(&token).await["status"], "cancelled");
    let credit = app.admin_get("/api/v1/admin/invoices/CRD-0002").await;
    assert_eq!(credit.status(), 200, "the credit note is issued");
    let text = String::from_utf8_lossy(&credit.bytes().await.expect("pdf")).into_owned();
    assert!(
        text.contains("Credit note") && text.contains("50 % under the refund policy"),
        "{text}"
    );
    let manage = browser.get(done.location()).await;
    manage.shows(&["Credit note", "CRD-0002 (PDF)</a>: £72.50"]);
    assert_eq!(app.seats_left(&slug, session).await, 10);
}

/// After its invoice is paid, a booking's cancel page still says what is credited, and the
/// cancellation credits exactly that.
async fn cancelling_after_the_invoice_is_paid_shows_the_credit_it_issues(app: TestApp) {
    let body = merged(
        event_body("paid-invoice"),
        json!({
            "allow_clashes": true, "vat_rate_bp": 2000, "invoices_allowed": true,
            "invoice_prefix": "PDI",
            "refund_policy": [{"days_before": 14, "percent": 100}]
        }),
    );
    let slug = app.created_event(&body).await;
    let session = app
        .session(&slug, "Portfolio prioritisation", 10, 14_500)
        .await;
    let mut request = crate::helpers::booking_body("ada@example.org", &[session]);
    request["invoice"] = json!({
        "company": "Analytical Engines Ltd",
        "billing_address": "1 Babbage Street\nLondon EC1 2AB"
    });
    let booked = expect_json(
        app.post(&format!("/api/v1/events/{slug}/bookings"), &request)
            .await,
        201,
    )
    .await;
    let token = booked["manage_token"].as_str().expect("token").to_owned();
    expect_json(
        app.admin_post("/api/v1/admin/invoices/PDI-0001/paid", &json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(app.booking(&token).await["payment_status"], "paid");

    let mut browser = Browser::of(&app);
    let confirm = browser.get(&format!("/bookings/{token}/cancel")).await;
    confirm.shows(&[
        "A credit note for <strong>£145.00</strong> will be issued against your invoice.",
    ]);
    confirm.lacks(&["Nothing will be refunded"]);
    browser
        .post(
            &format!("/bookings/{token}/cancel"),
            &[("csrf", confirm.csrf().as_str()), ("all", "yes")],
        )
        .await;
    let manage = browser.get(&format!("/bookings/{token}")).await;
    manage.shows(&["Credit note", "PDI-0002 (PDF)</a>: £145.00"]);
    assert_eq!(app.booking(&token).await["status"], "cancelled");
}

/// Booking with someone else's address shows nothing of their waitlist places: booking does
/// not prove the address is one's own.
async fn a_booking_shows_no_waitlist_place_found_by_its_address(app: TestApp) {
    let slug = app.published_event("not-yours").await;
    let full = app.session(&slug, "Agile PMO", 1, 0).await;
    let open = app.next_day_session(&slug, 10, 0).await;
    app.booked(&slug, "grace@example.org", &[full]).await;
    let victim = join_through_api(&app, &slug, full, "victim@example.org").await;
    let mut browser = Browser::of(&app);
    let token = booked_on_the_web(&mut browser, &slug, &[open], "Victim@Example.org").await;
    let page = browser.get(&format!("/bookings/{token}")).await;
    assert_eq!(page.status, 200);
    page.lacks(&["/waitlist/", &victim, "Agile PMO"]);
}

/// `/booked` of a booking cancelled since leads to the manage page, which says so.
async fn the_confirmation_of_a_cancelled_booking_is_not_shown(app: TestApp) {
    let slug = app.published_event("gone-since").await;
    let session = app.session(&slug, "Agile PMO", 5, 0).await;
    let token = manage_token(&app, &slug, "ada@example.org", &[session]).await;
    assert_eq!(app.cancel(&token, None).await.status(), 200);
    let mut browser = Browser::of(&app);
    let booked = browser.get(&format!("/bookings/{token}/booked")).await;
    assert_eq!(booked.status, 303);
    assert_eq!(booked.location(), format!("/bookings/{token}"));
    let manage = browser.get(booked.location()).await;
    manage.shows(&["Cancelled"]);
    manage.lacks(&["You are booked"]);
}

/// A claim sent twice (a double click) leads both times to the booking the first one made.
async fn a_claim_sent_twice_leads_to_the_booking_it_made(app: TestApp) {
    let slug = app.published_event("claim-twice").await;
    let full = app.session(&slug, "Agile PMO", 1, 0).await;
    let holder = manage_token(&app, &slug, "grace@example.org", &[full]).await;
    let mut browser = Browser::of(&app);
    let place = joined_on_the_web(&mut browser, &slug, full, "bob@example.org").await;
    assert_eq!(app.cancel(&holder, None).await.status(), 200);
    let page = browser.get(&format!("/waitlist/{place}")).await;
    let fields = [("csrf", page.csrf())];
    let first = browser
        .post(&format!("/waitlist/{place}/claim"), &fields)
        .await;
    let second = browser
        .post(&format!("/waitlist/{place}/claim"), &fields)
        .await;
    assert_eq!((first.status, second.status), (303, 303), "{}", second.body);
    let booking = token_of(first.location(), "/bookings/", "/booked");
    assert_eq!(second.location(), format!("/bookings/{booking}"));
    assert_eq!(app.booking(&booking).await["status"], "confirmed");
    assert_eq!(app.seats_left(&slug, full).await, 0);
    app.assert_no_drift();
}

/// Outside the registration window the booking form is a page that says so, with the date it
/// opens, and nothing can be booked.
async fn closed_registration_gets_a_page_that_says_when_it_opens(app: TestApp) {
    let opens = app.clock.now() + Duration::days(3);
    let body = merged(
        event_body("later"),
        json!({"registration_opens_at": opens.to_rfc3339()}),
    );
    let slug = app.created_event(&body).await;
    let session = app.session(&slug, "Agile PMO", 5, 0).await;
    let mut browser = Browser::of(&app);
    let programme = browser.get(&format!("/events/{slug}")).await;
    programme.shows(&["Registration opens at"]);
    programme.lacks(&["name=\"session\""]);
    let form = browser.get(&book_path(&slug, &[session])).await;
    assert_eq!(form.status, 409);
    form.shows(&["<h1>Registration is closed</h1>", "registration opens at"]);
    assert_eq!(app.seats_left(&slug, session).await, 5);
}

/// The page Stripe returns to never says a payment failed or succeeded when none was made: a
/// held booking without a card payment is told it is not paid yet, and can pay.
async fn the_return_page_of_an_unpaid_booking_says_it_is_not_paid_yet(app: TestApp) {
    let slug = app.published_event("unpaid").await;
    let session = app
        .session(&slug, "Portfolio prioritisation", 5, 14_500)
        .await;
    let token = manage_token(&app, &slug, "ada@example.org", &[session]).await;
    assert_eq!(app.booking(&token).await["status"], "held");
    let mut browser = Browser::of(&app);
    let page = browser.get(&format!("/bookings/{token}/paid")).await;
    assert_eq!(page.status, 200);
    page.shows(&[
        "No payment has been made for this booking yet.",
        &format!("href=\"/bookings/{token}/pay\""),
    ]);
    page.lacks(&["Payment received", "no money has been taken"]);
    assert!(page.header("refresh").is_none());
}

/// Joining a waitlist on its page puts one first in line; claiming the offered seat books it.
async fn joining_a_waitlist_and_claiming_the_offered_seat_books_it(app: TestApp) {
    let slug = app.published_event("claim").await;
    let scarce = app.session(&slug, "Agile PMO", 1, 0).await;
    let ada = manage_token(&app, &slug, "ada@example.org", &[scarce]).await;
    let mut bob = Browser::of(&app);

    let place = joined_on_the_web(&mut bob, &slug, scarce, "bob@example.org").await;

    let entry = waitlist_entry(&app, &place).await;
    assert_eq!(
        (entry["state"].as_str(), entry["position"].as_i64()),
        (Some("waiting"), Some(1))
    );
    assert_eq!(entry["attendee"]["email"], "bob@example.org");
    let page = bob.get(&format!("/waitlist/{place}?done=joined")).await;
    assert_eq!(page.status, 200);
    page.shows(&[
        "You are on the waitlist.",
        "You are number <strong>1</strong> in the queue.",
        &format!("action=\"/waitlist/{place}/leave\""),
    ]);

    expect_json(app.cancel(&ada, None).await, 200).await;
    let deadline = app.clock.now() + app.issuer.offer;
    let page = bob.get(&format!("/waitlist/{place}")).await;
    page.shows(&[
        &format!(
            "A seat is yours if you claim it by <strong>{}</strong>.",
            london_moment(deadline)
        ),
        &format!("action=\"/waitlist/{place}/claim\""),
        &format!("action=\"/waitlist/{place}/decline\""),
    ]);
    assert_eq!(waitlist_entry(&app, &place).await["state"], "offered");

    let claimed = bob
        .post(
            &format!("/waitlist/{place}/claim"),
            &[("csrf", page.csrf().as_str())],
        )
        .await;

    let booking_token = token_of(claimed.location(), "/bookings/", "/booked");
    let booking = app.booking(&booking_token).await;
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["attendee"]["email"], "bob@example.org");
    assert_eq!(seat_states(&booking), [(scarce, "confirmed".to_owned())]);
    assert_eq!(waitlist_entry(&app, &place).await["state"], "claimed");
    assert_eq!(app.attendee_emails(scarce).await, ["bob@example.org"]);
    bob.get(claimed.location())
        .await
        .shows(&["<h1>You are booked</h1>"]);
    let page = bob.get(&format!("/waitlist/{place}")).await;
    page.shows(&[
        "You claimed your seat.",
        &format!("href=\"/bookings/{booking_token}\""),
    ]);
    app.assert_no_drift();
}

/// Declining an offer on the place's page passes the seat to the next person in line.
async fn declining_an_offer_passes_it_to_the_next_person(app: TestApp) {
    let slug = app.published_event("decline").await;
    let scarce = app.session(&slug, "Agile PMO", 1, 0).await;
    let ada = manage_token(&app, &slug, "ada@example.org", &[scarce]).await;
    let mut bob = Browser::of(&app);
    let bob_place = joined_on_the_web(&mut bob, &slug, scarce, "bob@example.org").await;
    let mut cyd = Browser::of(&app);
    let cyd_place = joined_on_the_web(&mut cyd, &slug, scarce, "cyd@example.org").await;
    cyd.get(&format!("/waitlist/{cyd_place}"))
        .await
        .shows(&["You are number <strong>2</strong> in the queue."]);
    expect_json(app.cancel(&ada, None).await, 200).await;
    let page = bob.get(&format!("/waitlist/{bob_place}")).await;
    page.shows(&["A seat is yours if you claim it by"]);

    let declined = bob
        .post(
            &format!("/waitlist/{bob_place}/decline"),
            &[("csrf", page.csrf().as_str())],
        )
        .await;

    assert_eq!(
        declined.location(),
        format!("/waitlist/{bob_place}?done=declined")
    );
    assert_eq!(waitlist_entry(&app, &bob_place).await["state"], "declined");
    assert_eq!(waitlist_entry(&app, &cyd_place).await["state"], "offered");
    bob.get(declined.location())
        .await
        .shows(&["You have declined the seat; it has been offered to the next person."]);
    cyd.get(&format!("/waitlist/{cyd_place}"))
        .await
        .shows(&["A seat is yours if you claim it by"]);
    assert_eq!(
        app.seats_left(&slug, scarce).await,
        0,
        "held for Cyd's offer"
    );
    app.assert_no_drift();
}

crate::on_both_backends_with!(
    super::app;
    the_programme_shows_each_session_with_its_time_room_price_and_availability,
    a_session_page_shows_its_abstract_and_speakers,
    the_home_page_shows_the_only_published_event_or_a_list,
    booking_a_free_session_through_the_form_confirms_it_once,
    a_form_with_errors_comes_back_with_messages_by_the_fields_and_values_kept,
    a_timetable_clash_is_explained_before_sending_and_refused_after,
    a_session_that_filled_comes_back_with_a_message_and_its_waitlist,
    posts_without_a_matching_token_or_from_another_site_change_nothing,
    pages_carry_security_headers_and_unknown_addresses_get_the_right_404,
    cancelling_a_free_place_offers_it_to_the_waitlist,
    cancelling_an_invoiced_booking_shows_and_issues_the_credit_by_the_policy,
    cancelling_after_the_invoice_is_paid_shows_the_credit_it_issues,
    a_booking_shows_no_waitlist_place_found_by_its_address,
    the_confirmation_of_a_cancelled_booking_is_not_shown,
    a_claim_sent_twice_leads_to_the_booking_it_made,
    closed_registration_gets_a_page_that_says_when_it_opens,
    the_return_page_of_an_unpaid_booking_says_it_is_not_paid_yet,
    joining_a_waitlist_and_claiming_the_offered_seat_books_it,
    declining_an_offer_passes_it_to_the_next_person,
);

mod rate_limit {
    use super::*;

    async fn limited(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |s| {
            s.pages.submissions_per_minute = std::num::NonZeroU32::new(3).expect("non-zero");
            s.pages.trust_forwarded_for = true;
        })
        .await
    }

    /// Past the per-minute limit, a client's forms get a 429 page with `Retry-After`, doing nothing.
    async fn too_many_forms_from_one_address_get_a_429_page(app: TestApp) {
        let slug = app.published_event("limited").await;
        let session = app.session(&slug, "PMO forum", 10, 0).await;
        let full = app.next_day_session(&slug, 1, 0).await;
        app.booked(&slug, "ada@example.org", &[full]).await;
        let mut browser = Browser::of(&app);
        for n in 0..3 {
            booked_on_the_web(
                &mut browser,
                &slug,
                &[session],
                &format!("p{n}@example.org"),
            )
            .await;
        }
        let fields = filled_form(
            &mut browser,
            &slug,
            &[session],
            "Dan Fourth",
            "dan@example.org",
        )
        .await;

        let refused = browser.post(&format!("/events/{slug}/book"), &fields).await;

        assert_eq!(refused.status, 429, "{}", refused.body);
        let wait: u64 = refused
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(
            refused.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        refused.shows(&[
            "<h1>Too many requests</h1>",
            "Nothing was changed by the last one.",
            &format!("Please wait {wait} seconds"),
        ]);
        assert_eq!(app.admin_bookings(&slug).await.len(), 4);
        assert_eq!(app.seats_left(&slug, session).await, 7);
        let emails = app.attendee_emails(session).await;
        assert!(!emails.iter().any(|e| e == "dan@example.org"), "{emails:?}");

        // The limit is per client, over every kind of form.
        let join = format!("/events/{slug}/sessions/{full}/waitlist");
        let form = browser.get(&join).await;
        let refused = browser
            .post(
                &join,
                &[
                    ("csrf", form.csrf().as_str()),
                    ("name", "Dan Fourth"),
                    ("email", "dan@example.org"),
                ],
            )
            .await;
        assert_eq!(refused.status, 429);
        let waiting = expect_json(
            app.admin_get(&format!("/api/v1/admin/sessions/{full}/waitlist"))
                .await,
            200,
        )
        .await;
        assert_eq!(waiting.as_array().map(Vec::len), Some(0), "{waiting}");
        // Another client (by its proxy's word, trusted here) is not held back.
        let mut other = Browser::of(&app);
        let fields = filled_form(
            &mut other,
            &slug,
            &[session],
            "Eve Fifth",
            "eve@example.org",
        )
        .await;
        let taken = other
            .post_with(
                &format!("/events/{slug}/book"),
                &fields,
                &[("x-forwarded-for", "203.0.113.9")],
            )
            .await;
        let token = token_of(taken.location(), "/bookings/", "/booked");
        assert_eq!(
            app.booking(&token).await["attendee"]["email"],
            "eve@example.org"
        );
        assert_eq!(app.seats_left(&slug, session).await, 6);
    }

    /// Behind a proxy that appends the address it saw, a client cannot pick its own limit key
    /// by sending an `X-Forwarded-For` of its own.
    async fn a_client_cannot_evade_the_limit_with_its_own_forwarded_for(app: TestApp) {
        let slug = app.published_event("spoof").await;
        let session = app.session(&slug, "PMO forum", 50, 0).await;
        let mut browser = Browser::of(&app);
        let mut statuses = Vec::new();
        for n in 0..4 {
            let fields = filled_form(
                &mut browser,
                &slug,
                &[session],
                "Mallory",
                &format!("m{n}@example.org"),
            )
            .await;
            // What the client sent, then the address the proxy saw, as nginx's
            // `$proxy_add_x_forwarded_for` writes it.
            let forwarded = format!("198.51.100.{n}, 192.0.2.7");
            let page = browser
                .post_with(
                    &format!("/events/{slug}/book"),
                    &fields,
                    &[("x-forwarded-for", forwarded.as_str())],
                )
                .await;
            statuses.push(page.status);
        }
        assert_eq!(statuses, [303, 303, 303, 429]);
        assert_eq!(app.seats_left(&slug, session).await, 47);
    }

    crate::on_both_backends_with!(super::limited;
        too_many_forms_from_one_address_get_a_429_page,
        a_client_cannot_evade_the_limit_with_its_own_forwarded_for,
    );
}

mod refusals {
    use super::*;

    /// A refusal the form shows reads as sentences: the reason, then "Nothing was booked."
    async fn a_session_cancelled_while_the_form_is_open_is_refused_in_sentences(app: TestApp) {
        let slug = app.published_event("gone").await;
        let session = app.session(&slug, "Agile PMO", 5, 0).await;
        let mut browser = Browser::of(&app);
        let fields = filled_form(&mut browser, &slug, &[session], "Ada", "ada@example.org").await;
        expect_json(
            app.patch_session(session, &json!({"status": "cancelled"}))
                .await,
            200,
        )
        .await;
        let refused = browser.post(&format!("/events/{slug}/book"), &fields).await;
        assert_eq!(refused.status, 409);
        refused.shows(&["is cancelled. Nothing was booked."]);
        refused.lacks(&["cancelled Nothing was booked."]);
    }

    /// The same refused form sent twice is refused the same way, waitlist button included.
    async fn a_refused_form_sent_twice_is_refused_the_same_way(app: TestApp) {
        let slug = app.published_event("twice").await;
        let full = app.session(&slug, "Agile PMO", 1, 0).await;
        app.booked(&slug, "ada@example.org", &[full]).await;
        let mut browser = Browser::of(&app);
        let fields = filled_form(&mut browser, &slug, &[full], "Bob", "bob@example.org").await;
        let first = browser.post(&format!("/events/{slug}/book"), &fields).await;
        let second = browser.post(&format!("/events/{slug}/book"), &fields).await;
        assert_eq!((first.status, second.status), (409, 409));
        for page in [&first, &second] {
            page.shows(&[
                "“Agile PMO” has just filled up",
                "Join the waitlist of the full session",
            ]);
        }
        assert_eq!(app.admin_bookings(&slug).await.len(), 1);
    }

    crate::on_both_backends_with!(super::app;
        a_session_cancelled_while_the_form_is_open_is_refused_in_sentences,
        a_refused_form_sent_twice_is_refused_the_same_way,
    );
}

mod hsts {
    use super::*;

    async fn with_hsts(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |s| s.pages.hsts_seconds = 31_536_000).await
    }

    /// With `pages.hsts_seconds` set, pages and error pages say so in `Strict-Transport-Security`.
    async fn pages_carry_hsts_when_it_is_configured(app: TestApp) {
        let slug = app.published_event("hsts").await;
        let mut browser = Browser::of(&app);
        for path in [format!("/events/{slug}"), "/nope".to_owned()] {
            let page = browser.get(&path).await;
            assert_eq!(
                page.header("strict-transport-security"),
                Some("max-age=31536000"),
                "{path}"
            );
            assert_eq!(page.header("x-frame-options"), Some("DENY"), "{path}");
        }
        assert_eq!(app.programme(&slug).await["slug"], slug.as_str());
    }

    crate::on_both_backends_with!(super::with_hsts; pages_carry_hsts_when_it_is_configured);
}

mod logs {
    use super::*;

    /// A `masterclass serve` process on `app`'s database logging JSON lines at info, and the
    /// thread collecting what it writes to stderr.
    fn serve_logging(
        app: &TestApp,
    ) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_masterclass"))
            .arg("serve")
            .env("MASTERCLASS_ENV", "test")
            .env("MASTERCLASS__DATABASE__URL", &app.database_url)
            .env("MASTERCLASS__SERVER__PORT", "0")
            .env("MASTERCLASS__LOG__LEVEL", "info")
            .env("MASTERCLASS__LOG__FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("masterclass serve starts");
        let mut stderr = child.stderr.take().expect("stderr");
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("serve printed its address")
                .expect("stdout line");
            if let Some(rest) = line.strip_prefix("masterclass listening on ") {
                break rest.split_whitespace().next().expect("address").to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        (child, address, log)
    }

    /// Booking, managing, cancelling and waitlist pages log their routes, never a manage token.
    async fn manage_tokens_never_reach_the_log(app: TestApp) {
        let slug = app.published_event("quiet").await;
        let scarce = app.session(&slug, "Agile PMO", 1, 0).await;
        let other = app.next_day_session(&slug, 10, 0).await;
        app.booked(&slug, "ada@example.org", &[scarce]).await;
        let (mut child, address, log) = serve_logging(&app);
        let mut browser = Browser::new(&address);

        let booking = booked_on_the_web(&mut browser, &slug, &[other], "bob@example.org").await;
        browser.get(&format!("/bookings/{booking}/booked")).await;
        browser.get(&format!("/bookings/{booking}")).await;
        let confirm = browser.get(&format!("/bookings/{booking}/cancel")).await;
        let done = browser
            .post(
                &format!("/bookings/{booking}/cancel"),
                &[("csrf", confirm.csrf().as_str()), ("all", "yes")],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        let place = joined_on_the_web(&mut browser, &slug, scarce, "cyd@example.org").await;
        browser.get(&format!("/waitlist/{place}")).await;
        let form = browser.get(&format!("/waitlist/{place}")).await;
        let left = browser
            .post(
                &format!("/waitlist/{place}/leave"),
                &[("csrf", form.csrf().as_str())],
            )
            .await;
        assert_eq!(left.status, 303, "{}", left.body);
        let _ = child.kill();
        let _ = child.wait();
        let log = log.join().expect("log reader");

        assert_eq!(app.booking(&booking).await["status"], "cancelled");
        assert_eq!(waitlist_entry(&app, &place).await["state"], "withdrawn");
        let routes: Vec<String> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["fields"]["message"] == "handled")
            .filter_map(|l| l["fields"]["route"].as_str().map(str::to_owned))
            .collect();
        for route in [
            "/events/{slug}/book",
            "/bookings/{token}",
            "/bookings/{token}/booked",
            "/bookings/{token}/cancel",
            "/waitlist/{token}",
            "/waitlist/{token}/leave",
        ] {
            assert!(
                routes.iter().any(|r| r == route),
                "{route} is logged: {log}"
            );
        }
        for token in [&booking, &place] {
            assert!(
                !log.contains(token.as_str()),
                "a manage token in the log: {log}"
            );
        }
    }

    crate::on_both_backends_with!(
        crate::helpers::TestApp::spawn;
        manage_tokens_never_reach_the_log
    );
}
