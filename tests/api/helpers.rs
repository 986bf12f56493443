//! The test harness: a real server on port 0 against a fresh database of the chosen backend.
//!
//! PostgreSQL tests use `MASTERCLASS_TEST_DATABASE_URL` (an admin URL) or the local server at
//! 127.0.0.1:5432, and create a database per test. Without a reachable server they are skipped
//! with a warning, unless `CI` is set: then they fail.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};

use diesel::{Connection, PgConnection, RunQueryDsl};
use masterclass::bookings::Issuer;
use masterclass::clock::Clock;
use masterclass::config::Settings;
use masterclass::db::Db;
use masterclass::organisers::{self, NewOrganiser, Role};
use masterclass::payments::Payments;
use masterclass::startup::Application;
use masterclass::tokens::TokenKey;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named test on SQLite and on PostgreSQL, with what `$spawn` (an async fn taking the
/// backend and giving `Option<_>`, `None` to skip) makes for it. Paths in `$spawn` are seen from
/// inside the generated `sqlite` and `postgres` modules (`super::…` for the caller's own).
#[macro_export]
macro_rules! on_both_backends_with {
    ($spawn:expr; $($test:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(subject) = ($spawn)($crate::helpers::Backend::Sqlite).await {
                        super::$test(subject).await;
                    }
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(subject) = ($spawn)($crate::helpers::Backend::Postgres).await {
                        super::$test(subject).await;
                    }
                }
            )+
        }
    };
}

/// Runs each named test on SQLite and on PostgreSQL, each with its own [`TestApp`].
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),+ $(,)?) => {
        $crate::on_both_backends_with!($crate::helpers::TestApp::spawn; $($test),+);
    };
}

pub struct TestApp {
    pub address: String,
    pub backend: Backend,
    pub database_url: String,
    pub client: reqwest::Client,
    /// An owner's API token.
    pub admin_token: String,
    pub db: Db,
    /// The server's clock for deadlines: a test clock, moved by hand.
    pub clock: Clock,
    /// What new bookings and offers are issued with, as the server has it.
    pub issuer: Issuer,
    /// Card payments as the server has them (for sweeps the test runs).
    pub payments: Arc<Payments>,
    _scratch: Scratch,
}

/// What a test's database leaves behind, removed when the test ends.
pub enum Scratch {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Scratch::Postgres { admin_url, name } = self {
            if let Ok(mut conn) = PgConnection::establish(admin_url) {
                let _ =
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn);
            }
        }
    }
}

/// Loopback without TLS by default: nothing to protect there, and no OpenSSL state for the
/// process's exit to tear down while a pool thread is still inside libpq.
pub fn postgres_admin_url() -> String {
    std::env::var("MASTERCLASS_TEST_DATABASE_URL").unwrap_or_else(|_| {
        "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".to_owned()
    })
}

/// Whether PostgreSQL tests can run; says so loudly when they cannot.
fn postgres_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let url = postgres_admin_url();
        match PgConnection::establish(&url) {
            Ok(_) => true,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("CI is set but PostgreSQL at {url} is not reachable: {e}")
            }
            Err(e) => {
                eprintln!("WARNING: PostgreSQL at {url} is not reachable ({e}); PostgreSQL tests are SKIPPED. Set CI=1 to make them mandatory.");
                false
            }
        }
    })
}

/// A fresh, empty database of `backend`; `None` when PostgreSQL is out of reach outside CI.
pub fn fresh_database(backend: Backend) -> Option<(String, Scratch)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temporary folder");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            Some((url, Scratch::Sqlite(dir)))
        }
        Backend::Postgres => {
            if !postgres_available() {
                return None;
            }
            let admin_url = postgres_admin_url();
            let name = format!("mc_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = PgConnection::establish(&admin_url).expect("connect to PostgreSQL");
            diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
                .execute(&mut conn)
                .expect("create test database");
            let (location, query) = match admin_url.split_once('?') {
                Some((location, query)) => (location, format!("?{query}")),
                None => (admin_url.as_str(), String::new()),
            };
            let base = location
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(location);
            let url = format!("{base}/{name}{query}");
            Some((url, Scratch::Postgres { admin_url, name }))
        }
    }
}

pub fn test_settings(database_url: &str) -> Settings {
    let mut settings =
        Settings::load_from(Path::new("config"), Some("test")).expect("test settings");
    settings.database.url =
        masterclass::db::DatabaseUrl::parse(database_url).expect("database url");
    settings.server.port = 0;
    settings.server.host = "127.0.0.1".to_owned();
    settings.demo = false;
    settings
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with a chance to change the settings first.
    pub async fn spawn_with(
        backend: Backend,
        adjust: impl FnOnce(&mut Settings),
    ) -> Option<TestApp> {
        let (database_url, scratch) = fresh_database(backend)?;
        let mut settings = test_settings(&database_url);
        adjust(&mut settings);
        let issuer = Issuer {
            reference_prefix: settings.bookings.reference_prefix.as_str().to_owned(),
            key: TokenKey::from_settings(&settings.secrets).expect("token key"),
            hold: settings.bookings.hold(),
            offer: settings.bookings.offer(),
        };
        let clock = Clock::manual(chrono::Utc::now());
        masterclass::install_crypto_provider();
        let payments = Arc::new(Payments::from_settings(&settings.payments).expect("payments"));
        let app = Application::build_with_clock(settings, clock.clone())
            .await
            .expect("application starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let db = app.db();
        tokio::spawn(app.run_until_stopped());
        let admin_token = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || {
                let mut conn = db.conn().expect("connection");
                let new = NewOrganiser::parse("owner@example.org", "Olive Owner", Role::Owner)
                    .expect("organiser");
                organisers::create_with_token(&mut conn, &new, "tests")
                    .expect("organiser created")
                    .1
                     .0
            })
            .await
            .expect("token task")
        };
        Some(TestApp {
            address,
            backend,
            database_url,
            client: reqwest::Client::new(),
            admin_token,
            db,
            clock,
            issuer,
            payments,
            _scratch: scratch,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.admin(reqwest::Method::GET, path, None).await
    }

    pub async fn admin_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.admin(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn admin_patch(&self, path: &str, body: &Value) -> reqwest::Response {
        self.admin(reqwest::Method::PATCH, path, Some(body)).await
    }

    /// A request with the owner's token, and a JSON body when given.
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self.request(method, path).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// Creates a published event open for registration; returns its slug.
    /// A published event in which one person may book overlapping sessions: most tests give
    /// their sessions the same default time. [`TestApp::strict_event`] refuses clashes.
    pub async fn published_event(&self, slug: &str) -> String {
        let body = crate::helpers::merged(event_body(slug), json!({"allow_clashes": true}));
        let response = self.admin_post("/api/v1/admin/events", &body).await;
        assert_eq!(
            response.status(),
            201,
            "event created: {}",
            response.text().await.unwrap_or_default()
        );
        slug.to_owned()
    }

    /// Adds a published session a month ahead; returns its id.
    /// A published event with the default rule: overlapping sessions are refused.
    pub async fn strict_event(&self, slug: &str) -> String {
        expect_json(
            self.admin_post("/api/v1/admin/events", &event_body(slug))
                .await,
            201,
        )
        .await;
        slug.to_owned()
    }

    pub async fn session(&self, slug: &str, title: &str, capacity: i32, price_minor: i64) -> i64 {
        self.session_at(
            slug,
            title,
            capacity,
            price_minor,
            "2027-03-10T09:00:00+00:00",
            "2027-03-10T10:30:00+00:00",
        )
        .await
    }

    /// "Benefits realisation", the day after [`TestApp::session`]'s (2027-03-11, 09:00–10:30).
    pub async fn next_day_session(&self, slug: &str, capacity: i32, price_minor: i64) -> i64 {
        self.session_at(
            slug,
            "Benefits realisation",
            capacity,
            price_minor,
            "2027-03-11T09:00:00+00:00",
            "2027-03-11T10:30:00+00:00",
        )
        .await
    }

    pub async fn session_at(
        &self,
        slug: &str,
        title: &str,
        capacity: i32,
        price_minor: i64,
        starts_at: &str,
        ends_at: &str,
    ) -> i64 {
        let response = self
            .admin_post(
                &format!("/api/v1/admin/events/{slug}/sessions"),
                &json!({
                    "title": title,
                    "abstract": "A hands-on masterclass.",
                    "speakers": ["Priya Natarajan"],
                    "track": "Foundations",
                    "room": "Thames Room",
                    "starts_at": starts_at,
                    "ends_at": ends_at,
                    "capacity": capacity,
                    "price_minor": price_minor
                }),
            )
            .await;
        assert_eq!(response.status(), 201, "session created");
        let body: Value = response.json().await.expect("json");
        body["id"].as_i64().expect("session id")
    }

    /// Books `session_ids` for a person; returns the raw response.
    pub async fn book(&self, slug: &str, email: &str, session_ids: &[i64]) -> reqwest::Response {
        self.post(
            &format!("/api/v1/events/{slug}/bookings"),
            &json!({
                "attendee": {"name": "Ada Lovelace", "email": email, "organisation": "Analytical Engines Ltd"},
                "session_ids": session_ids
            }),
        )
        .await
    }

    /// The public programme entry of one session.
    pub async fn public_session(&self, slug: &str, id: i64) -> Value {
        let programme: Value = self
            .get(&format!("/api/v1/events/{slug}"))
            .await
            .json()
            .await
            .expect("json");
        programme["sessions"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == id).cloned())
            .expect("session in programme")
    }

    /// Runs `masterclass check` against this test's database: (exit code, output).
    pub fn check(&self) -> (i32, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_masterclass"))
            .arg("check")
            .env("MASTERCLASS_ENV", "test")
            .env("MASTERCLASS__DATABASE__URL", &self.database_url)
            .output()
            .expect("masterclass check runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code().unwrap_or(-1), text)
    }
}

/// A `masterclass serve` process of its own, stopped when dropped.
pub struct ServeProcess {
    child: Child,
    pub address: String,
}

impl ServeProcess {
    pub fn start(database_url: &str) -> ServeProcess {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_masterclass"))
            .arg("serve")
            .env("MASTERCLASS_ENV", "test")
            .env("MASTERCLASS__DATABASE__URL", database_url)
            .env("MASTERCLASS__SERVER__PORT", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("masterclass serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("serve printed its address")
                .expect("stdout line");
            if let Some(rest) = line.strip_prefix("masterclass listening on ") {
                break rest.split_whitespace().next().expect("address").to_owned();
            }
        };
        // Keep draining stdout so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ServeProcess { child, address }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The problem `type` of an error response, after checking its content type.
pub async fn problem_type(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        content_type, "application/problem+json",
        "errors are problem+json"
    );
    let body: Value = response.json().await.expect("problem body");
    let kind = body["type"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("/problems/")
        .to_owned();
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(status)),
        "status field matches"
    );
    (status, kind, body)
}

/// Replaces or adds the top-level fields of `changes` in `base`; a `null` is kept, so a test can
/// send an explicit `null`.
pub fn merged(mut base: Value, changes: Value) -> Value {
    if let (Some(fields), Value::Object(changes)) = (base.as_object_mut(), changes) {
        fields.extend(changes);
    }
    base
}

/// A valid body for `POST /api/v1/admin/events`: a published event in London, open for
/// registration, for tests to change with [`merged`].
pub fn event_body(slug: &str) -> Value {
    json!({
        "slug": slug,
        "name": "PMO Masterclasses 2027",
        "venue": "Riverside Conference Centre, London",
        "time_zone": "Europe/London",
        "currency": "GBP",
        "status": "published"
    })
}

/// A valid body for `POST /api/v1/admin/events/{slug}/sessions`, a month ahead.
pub fn session_body(title: &str, capacity: i32, price_minor: i64) -> Value {
    json!({
        "title": title,
        "abstract": "A hands-on masterclass.",
        "speakers": ["Priya Natarajan"],
        "track": "Foundations",
        "room": "Thames Room",
        "starts_at": "2027-03-10T09:00:00+00:00",
        "ends_at": "2027-03-10T10:30:00+00:00",
        "capacity": capacity,
        "price_minor": price_minor
    })
}

/// A valid body for `POST /api/v1/events/{slug}/bookings`.
pub fn booking_body(email: &str, session_ids: &[i64]) -> Value {
    json!({
        "attendee": {"name": "Ada Lovelace", "email": email, "organisation": "Analytical Engines Ltd"},
        "session_ids": session_ids
    })
}

/// Whether `reference` reads like `PMO-7K3F9Q`: six characters that cannot be confused with
/// each other (no 0, 1, I or O).
pub fn is_reference(reference: &str) -> bool {
    reference.strip_prefix("PMO-").is_some_and(|code| {
        code.len() == 6
            && code
                .chars()
                .all(|c| matches!(c, '2'..='9' | 'A'..='H' | 'J'..='N' | 'P'..='Z'))
    })
}

/// Checks that an error response is the expected problem, with a title and a detail; returns
/// its body.
pub async fn expect_problem(response: reqwest::Response, status: u16, kind: &str) -> Value {
    let (actual_status, actual_kind, body) = problem_type(response).await;
    assert_eq!(
        (actual_status, actual_kind.as_str()),
        (status, kind),
        "unexpected answer: {body}"
    );
    for member in ["title", "detail"] {
        assert!(
            body[member].as_str().is_some_and(|s| !s.is_empty()),
            "the problem has a {member}: {body}"
        );
    }
    body
}

/// Checks that a response is a 422 `validation` problem naming `field`; returns its body.
pub async fn expect_invalid(response: reqwest::Response, field: &str) -> Value {
    let body = expect_problem(response, 422, "validation").await;
    assert!(
        error_fields(&body).iter().any(|f| f == field),
        "the problem names {field}: {body}"
    );
    body
}

/// The field paths a `validation` problem names.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a successful JSON answer, showing the body when the status is not the expected one.
pub async fn expect_json(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("response body");
    assert_eq!(actual, status, "unexpected answer: {text}");
    serde_json::from_str(&text).expect("a JSON body")
}

impl TestApp {
    /// A request to `path` with nothing set, for tests that shape it themselves.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn create_event(&self, body: &Value) -> reqwest::Response {
        self.admin_post("/api/v1/admin/events", body).await
    }

    /// Creates an event from `body` (see [`event_body`]); returns its slug.
    pub async fn created_event(&self, body: &Value) -> String {
        let created = expect_json(self.create_event(body).await, 201).await;
        created["slug"].as_str().expect("slug").to_owned()
    }

    pub async fn patch_event(&self, slug: &str, body: &Value) -> reqwest::Response {
        self.admin_patch(&format!("/api/v1/admin/events/{slug}"), body)
            .await
    }

    pub async fn create_session(&self, slug: &str, body: &Value) -> reqwest::Response {
        self.admin_post(&format!("/api/v1/admin/events/{slug}/sessions"), body)
            .await
    }

    /// Creates a session from `body` (see [`session_body`]); returns its id.
    pub async fn created_session(&self, slug: &str, body: &Value) -> i64 {
        let created = expect_json(self.create_session(slug, body).await, 201).await;
        created["id"].as_i64().expect("session id")
    }

    pub async fn patch_session(&self, id: i64, body: &Value) -> reqwest::Response {
        self.admin_patch(&format!("/api/v1/admin/sessions/{id}"), body)
            .await
    }

    /// Books `session_ids` for `email` and expects it to work; returns the 201 body.
    pub async fn booked(&self, slug: &str, email: &str, session_ids: &[i64]) -> Value {
        expect_json(self.book(slug, email, session_ids).await, 201).await
    }

    /// The booking behind a manage token, as the attendee sees it.
    pub async fn booking(&self, manage_token: &str) -> Value {
        expect_json(
            self.get(&format!("/api/v1/bookings/{manage_token}")).await,
            200,
        )
        .await
    }

    /// Cancels seats of a booking: all of them without a body, some with one.
    pub async fn cancel(&self, manage_token: &str, body: Option<&Value>) -> reqwest::Response {
        let request = self.request(
            reqwest::Method::POST,
            &format!("/api/v1/bookings/{manage_token}/cancel"),
        );
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        request.send().await.expect("request sent")
    }

    /// The public event with its programme.
    pub async fn programme(&self, slug: &str) -> Value {
        expect_json(self.get(&format!("/api/v1/events/{slug}")).await, 200).await
    }

    pub async fn seats_left(&self, slug: &str, session_id: i64) -> i64 {
        self.public_session(slug, session_id).await["seats_left"]
            .as_i64()
            .expect("seats_left")
    }

    /// Every booking of an event, as organisers see them.
    pub async fn admin_bookings(&self, slug: &str) -> Vec<Value> {
        let list = expect_json(
            self.admin_get(&format!("/api/v1/admin/events/{slug}/bookings"))
                .await,
            200,
        )
        .await;
        list.as_array().expect("a list").clone()
    }

    /// The emails of the people holding a seat in a session, in booking order.
    pub async fn attendee_emails(&self, session_id: i64) -> Vec<String> {
        let list = expect_json(
            self.admin_get(&format!("/api/v1/admin/sessions/{session_id}/attendees"))
                .await,
            200,
        )
        .await;
        list["attendees"]
            .as_array()
            .expect("attendees")
            .iter()
            .map(|a| a["email"].as_str().expect("email").to_owned())
            .collect()
    }

    /// Creates another organiser with `role`; returns their API token.
    pub async fn organiser_token(&self, email: &str, role: Role) -> String {
        let db = self.db.clone();
        let email = email.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.conn().expect("connection");
            let new = NewOrganiser::parse(&email, "Chris Checkin", role).expect("organiser");
            organisers::create_with_token(&mut conn, &new, "tests")
                .expect("organiser created")
                .1
                 .0
        })
        .await
        .expect("token task")
    }

    /// Runs `masterclass check` and expects every session's counter to match its seats.
    /// Moves the server's clock and runs one sweep, as the sweeper thread would.
    pub async fn advance(&self, by: chrono::Duration) -> masterclass::sweeper::Swept {
        self.clock.advance(by);
        let (db, issuer, clock) = (self.db.clone(), self.issuer.clone(), self.clock.clone());
        let payments = self.payments.clone();
        tokio::task::spawn_blocking(move || {
            masterclass::sweeper::sweep(&db, &issuer, &payments, &clock).expect("sweep")
        })
        .await
        .expect("sweep task")
    }

    pub fn assert_no_drift(&self) {
        let (code, output) = self.check();
        assert_eq!(
            code, 0,
            "{:?}: check finds no drift: {output}",
            self.backend
        );
    }
}

impl TestApp {
    /// Another server on this app's database and clock, as a second process behind the same
    /// load balancer would be, with the test settings changed by `adjust` (as in
    /// [`TestApp::spawn_with`]). Returns its address; it serves until the test ends.
    pub async fn another_instance(&self, adjust: impl FnOnce(&mut Settings)) -> String {
        let mut settings = test_settings(&self.database_url);
        adjust(&mut settings);
        let app = Application::build_with_clock(settings, self.clock.clone())
            .await
            .expect("the second instance starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }
}

impl TestApp {
    /// The path of the newest invitation or password reset link emailed to the organiser
    /// `email`, if there is one.
    pub async fn newest_organiser_link(&self, email: &str) -> Option<String> {
        let (db, key, email) = (self.db.clone(), self.issuer.key.clone(), email.to_owned());
        tokio::task::spawn_blocking(move || {
            use diesel::{ExpressionMethods, OptionalExtension, QueryDsl};
            use masterclass::db::schema::{organiser_links, organisers as organiser_table};
            let mut pooled = db.conn().expect("connection");
            let conn: &mut masterclass::db::DbConn = &mut pooled;
            let id: Option<i64> = organiser_links::table
                .inner_join(organiser_table::table)
                .filter(organiser_table::email.eq(&email))
                .order(organiser_links::id.desc())
                .select(organiser_links::id)
                .first(conn)
                .optional()
                .expect("the newest link");
            id.map(|id| {
                let token = organisers::accounts::link_token(&key, id);
                format!("/organiser/password/{token}")
            })
        })
        .await
        .expect("database task")
    }
}

/// The id of `email`'s newest seat in `session_id`, whatever its state.
pub async fn seat_id(app: &TestApp, session_id: i64, email: &str) -> i64 {
    use diesel::{ExpressionMethods, QueryDsl};
    use masterclass::db::schema::seats;
    let db = app.db.clone();
    let email = email.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = db.conn().expect("connection");
        seats::table
            .filter(seats::session_id.eq(session_id))
            .filter(seats::attendee_email.eq(email))
            .order(seats::id.desc())
            .select(seats::id)
            .first::<i64>(&mut *conn)
            .expect("a seat")
    })
    .await
    .expect("query task")
}

/// The check-in code of `email`'s seat in `session_id`, as their ticket shows it.
pub async fn code_of(app: &TestApp, session_id: i64, email: &str) -> String {
    let seat = seat_id(app, session_id, email).await;
    masterclass::checkin::token::code(&app.issuer.key, seat, session_id)
}
