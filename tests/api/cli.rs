//! The `masterclass` command line: configuration errors, migrations, organiser tokens and the
//! demo programme a newcomer sees on first start.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::{fresh_database, Backend};

fn masterclass() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_masterclass"));
    command.env("MASTERCLASS_ENV", "test");
    command
}

#[test]
fn a_bad_setting_stops_start_up_with_a_message_naming_the_key() {
    let output = masterclass()
        .arg("migrate")
        .env("MASTERCLASS__SERVER__PORT", "eighty")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.port"), "names the key: {stderr}");

    let output = masterclass()
        .arg("migrate")
        .env("DATABASE_URL", "mysql://localhost/masterclass")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("database.url") && stderr.contains("scheme"),
        "names the key: {stderr}"
    );

    let output = masterclass()
        .arg("migrate")
        .env("MASTERCLASS__SERVER__PROT", "8080")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "unknown keys are refused: {stderr}"
    );
    assert!(stderr.contains("prot"), "names the unknown key: {stderr}");
}

#[test]
fn a_missing_profile_file_stops_start_up() {
    let output = Command::new(env!("CARGO_BIN_EXE_masterclass"))
        .arg("migrate")
        .env("MASTERCLASS_ENV", "no-such-profile")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("no-such-profile.toml"), "{stderr}");
}

#[test]
fn database_url_is_accepted_as_a_shortcut_and_migrate_is_repeatable() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some((url, _scratch)) = fresh_database(backend) else {
            continue;
        };
        let first = masterclass()
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .output()
            .expect("runs");
        assert!(
            first.status.success(),
            "{backend:?}: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        assert!(String::from_utf8_lossy(&first.stdout).contains("applied migrations"));
        let second = masterclass()
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .output()
            .expect("runs");
        assert!(second.status.success());
        assert!(
            String::from_utf8_lossy(&second.stdout).contains("up to date"),
            "{backend:?}"
        );
    }
}

/// Starts `serve` with the demo programme on; returns (child, address, printed token).
fn serve_demo(url: &str) -> (std::process::Child, String, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_masterclass"))
        .env("MASTERCLASS_ENV", "test")
        .env("MASTERCLASS__DEMO", "true")
        .env("MASTERCLASS__DATABASE__URL", url)
        .env("MASTERCLASS__SERVER__PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut token = None;
    let address = loop {
        let line = lines
            .next()
            .expect("serve prints its address")
            .expect("line");
        if let Some(rest) = line.split("(shown once): ").nth(1) {
            token = Some(rest.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("masterclass listening on ") {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, address, token)
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.expect("sent");
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_newcomer_gets_a_demo_programme_and_an_organiser_token_once() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some((url, _scratch)) = fresh_database(backend) else {
            continue;
        };
        let (mut child, address, token) = serve_demo(&url);
        let client = reqwest::Client::new();
        let events = get_json(&client, &format!("{address}/api/v1/events")).await;
        let slug = events[0]["slug"]
            .as_str()
            .expect("a published demo event")
            .to_owned();
        let programme = get_json(&client, &format!("{address}/api/v1/events/{slug}")).await;
        let sessions = programme["sessions"].as_array().expect("sessions");
        assert!(
            (8..=12).contains(&sessions.len()),
            "{backend:?}: 8 to 12 sessions"
        );
        assert!(
            sessions.iter().any(|s| s["price_minor"] == 0),
            "some are free"
        );
        assert!(
            sessions.iter().any(|s| s["price_minor"].as_i64() > Some(0)),
            "some are priced"
        );
        assert!(
            sessions.iter().any(|s| s["seats_left"]
                .as_i64()
                .is_some_and(|l| (1..=2).contains(&l))),
            "one is nearly full"
        );
        let token = token.expect("the demo token is printed on first start");
        let bookings = client
            .get(format!("{address}/api/v1/admin/events/{slug}/bookings"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("sent");
        assert_eq!(bookings.status(), 200, "the printed token works");
        let _ = child.kill();
        let _ = child.wait();

        let (mut again, _, second_token) = serve_demo(&url);
        assert!(
            second_token.is_none(),
            "{backend:?}: no second demo, no second token"
        );
        let _ = again.kill();
        let _ = again.wait();
    }
}

#[tokio::test]
async fn two_processes_starting_on_one_empty_postgres_make_one_demo_programme() {
    let Some((url, _scratch)) = fresh_database(Backend::Postgres) else {
        return;
    };
    let first_url = url.clone();
    let first = std::thread::spawn(move || serve_demo(&first_url));
    let (mut second, address, second_token) = serve_demo(&url);
    let (mut first, _, first_token) = first.join().expect("first process started");

    let events = get_json(&reqwest::Client::new(), &format!("{address}/api/v1/events")).await;
    assert_eq!(
        events.as_array().map(Vec::len),
        Some(1),
        "one demo event: {events}"
    );
    assert!(
        first_token.is_some() != second_token.is_some(),
        "exactly one process made the demo and printed its token"
    );
    for child in [&mut first, &mut second] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[tokio::test]
async fn organiser_create_prints_a_token_that_opens_the_admin_api() {
    let Some((url, _scratch)) = fresh_database(Backend::Sqlite) else {
        return;
    };
    let output = masterclass()
        .args([
            "organiser",
            "create",
            "--email",
            "Grace@Example.org",
            "--name",
            "Grace Hopper",
            "--role",
            "admin",
        ])
        .env("MASTERCLASS__DATABASE__URL", &url)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = stdout
        .lines()
        .find_map(|l| l.split(": ").nth(1).filter(|t| t.starts_with("mct_")))
        .expect("token printed")
        .to_owned();

    let again = masterclass()
        .args([
            "organiser",
            "create",
            "--email",
            "grace@example.org",
            "--name",
            "Grace Again",
        ])
        .env("MASTERCLASS__DATABASE__URL", &url)
        .output()
        .expect("runs");
    assert!(
        !again.status.success(),
        "the same email (any case) cannot be used twice"
    );

    let settings = crate::helpers::test_settings(&url);
    let app = masterclass::startup::Application::build(settings)
        .await
        .expect("starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let response = reqwest::Client::new()
        .post(format!("{address}/api/v1/admin/events"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"slug": "cli-made", "name": "CLI", "venue": "Hall", "time_zone": "UTC", "currency": "EUR"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn each_request_gets_one_log_line_with_its_id_and_route_never_the_manage_token() {
    use std::io::Read;
    let Some((url, _scratch)) = fresh_database(Backend::Sqlite) else {
        return;
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_masterclass"))
        .env("MASTERCLASS_ENV", "test")
        .env("MASTERCLASS__DEMO", "true")
        .env("MASTERCLASS__DATABASE__URL", &url)
        .env("MASTERCLASS__SERVER__PORT", "0")
        .env("MASTERCLASS__LOG__LEVEL", "info")
        .env("MASTERCLASS__LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines.next().expect("address printed").expect("line");
        if let Some(rest) = line.strip_prefix("masterclass listening on ") {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    let client = reqwest::Client::new();
    let events = get_json(&client, &format!("{address}/api/v1/events")).await;
    let slug = events[0]["slug"].as_str().expect("slug").to_owned();
    let programme = get_json(&client, &format!("{address}/api/v1/events/{slug}")).await;
    let session = programme["sessions"][0]["id"].as_i64().expect("session");
    let booked: Value = client
        .post(format!("{address}/api/v1/events/{slug}/bookings"))
        .json(&serde_json::json!({"attendee": {"name": "Ada", "email": "ada@example.org"}, "session_ids": [session]}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let token = booked["manage_token"].as_str().expect("token").to_owned();
    let first = client
        .get(format!("{address}/api/v1/bookings/{token}"))
        .send()
        .await
        .expect("sent");
    let second = client
        .get(format!("{address}/api/v1/bookings/{token}"))
        .send()
        .await
        .expect("sent");
    let id = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (first_id, second_id) = (
        id(&first).expect("request id"),
        id(&second).expect("request id"),
    );
    assert_ne!(first_id, second_id, "each request has its own id");

    // A failure of ours: the answer says nothing of it, the log has the whole cause chain.
    {
        use diesel::{Connection, RunQueryDsl, SqliteConnection};
        let path = url.trim_start_matches("sqlite://");
        let mut conn = SqliteConnection::establish(path).expect("open");
        diesel::sql_query("DROP TABLE seats")
            .execute(&mut conn)
            .expect("drop");
    }
    let broken = client
        .get(format!("{address}/api/v1/bookings/{token}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(broken.status(), 500);
    let body = broken.text().await.expect("body");
    assert!(
        body.contains("/problems/internal") && !body.contains("seats"),
        "no internals: {body}"
    );

    let _ = child.kill();
    let _ = child.wait();
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("log");
    assert!(
        !log.contains(&token),
        "the manage token never reaches the log"
    );
    let handled: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "handled")
        .collect();
    assert_eq!(handled.len(), 6, "one line per request: {log}");
    let for_first: Vec<&Value> = handled
        .iter()
        .filter(|l| l["span"]["id"] == first_id.as_str())
        .collect();
    assert_eq!(for_first.len(), 1, "the line carries the request id");
    assert_eq!(
        for_first[0]["fields"]["route"],
        "/api/v1/bookings/{manage_token}"
    );
    assert_eq!(for_first[0]["fields"]["status"], 200);
    assert!(
        log.contains("request failed") && log.contains("no such table: seats"),
        "the failure is logged with its cause: {log}"
    );
}
