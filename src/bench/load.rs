//! The load generator: an API client for the calls a run needs, and a pool of workers that each
//! take the next request as soon as their last one is answered.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{Duration as Days, Utc};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// No single request may take longer than this; it then counts as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How one booking attempt was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 201: a seat.
    Booked,
    /// 409 `session-full`: the right answer once the seats are gone.
    Full,
    /// 200 with a page of this many bytes (the pages scenario).
    Served(usize),
    /// Any other answer, as "STATUS problem-type".
    Refused(String),
    /// No answer: connection failure or timeout.
    Transport(String),
}

/// One attempt: its outcome, how long it took, and when (since the start of the run) it ended.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub outcome: Outcome,
    pub latency: Duration,
    pub done_at: Duration,
}

/// Every attempt of a run and the wall time it took.
pub struct Run {
    pub attempts: Vec<Attempt>,
    pub elapsed: Duration,
}

/// Runs `total` requests made by `job(i)`, at most `concurrency` at once. Dropping the returned
/// future aborts every request still in flight.
pub async fn run<F, Fut>(concurrency: usize, total: usize, job: F) -> anyhow::Result<Run>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.min(total) {
        let (job, next) = (Arc::clone(&job), Arc::clone(&next));
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break done;
                }
                let sent = Instant::now();
                let outcome = job(i).await;
                let now = Instant::now();
                done.push(Attempt {
                    outcome,
                    latency: now - sent,
                    done_at: now - started,
                });
            }
        });
    }
    let mut attempts = Vec::with_capacity(total);
    while let Some(finished) = workers.join_next().await {
        attempts.extend(finished.context("a load worker failed")?);
    }
    Ok(Run {
        attempts,
        elapsed: started.elapsed(),
    })
}

/// The parts of the masterclass API a bench run uses.
#[derive(Clone)]
pub struct Api {
    client: Client,
    base: Arc<str>,
    token: Arc<str>,
}

impl Api {
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        let client = Client::builder()
            // Straight to the server: no proxy from the environment, no redirect elsewhere.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(4096)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').into(),
            token: token.into(),
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(&*self.token)
    }

    /// Waits for `/readyz`, then checks that the token is accepted.
    pub async fn ready(&self) -> anyhow::Result<()> {
        let response = self.request(Method::GET, "/readyz").send().await;
        let response = response.with_context(|| format!("cannot reach {}", self.base))?;
        anyhow::ensure!(
            response.status().is_success(),
            "{}/readyz answers {}",
            self.base,
            response.status()
        );
        let probe = self
            .admin(
                Method::GET,
                "/api/v1/admin/events/bench-no-such-event/bookings",
            )
            .send()
            .await?;
        anyhow::ensure!(
            !matches!(
                probe.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            ),
            "the organiser token is refused ({}); it needs the admin or owner role",
            probe.status()
        );
        Ok(())
    }

    /// Opens `concurrency` connections and lets the server fill its database pool (`/readyz`
    /// takes a pooled connection), so the run measures bookings rather than start-up.
    pub async fn warm_up(&self, concurrency: usize) {
        let mut calls = JoinSet::new();
        for _ in 0..concurrency {
            let call = self.request(Method::GET, "/readyz").send();
            calls.spawn(async move {
                if let Ok(response) = call.await {
                    let _ = response.bytes().await;
                }
            });
        }
        while calls.join_next().await.is_some() {}
    }

    /// Creates a published event open for registration; returns its slug.
    pub async fn create_event(&self, kind: &str) -> anyhow::Result<String> {
        let slug = format!(
            "bench-{kind}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let body = json!({
            "slug": slug,
            "name": format!("Benchmark ({kind})"),
            "venue": "Benchmark",
            "time_zone": "Europe/London",
            "currency": "GBP",
            "status": "published"
        });
        let response = self
            .admin(Method::POST, "/api/v1/admin/events")
            .json(&body)
            .send()
            .await;
        expect(response, StatusCode::CREATED, "create the event").await?;
        Ok(slug)
    }

    /// Adds a free published session a year ahead; returns its id.
    pub async fn create_session(
        &self,
        slug: &str,
        title: &str,
        capacity: u32,
    ) -> anyhow::Result<i64> {
        let starts = Utc::now() + Days::days(365);
        let body = json!({
            "title": title,
            "abstract": "Load test.",
            "starts_at": starts.to_rfc3339(),
            "ends_at": (starts + Days::minutes(90)).to_rfc3339(),
            "capacity": capacity,
            "price_minor": 0
        });
        let response = self
            .admin(
                Method::POST,
                &format!("/api/v1/admin/events/{slug}/sessions"),
            )
            .json(&body)
            .send()
            .await;
        let created = expect(response, StatusCode::CREATED, "create a session").await?;
        created["id"]
            .as_i64()
            .context("a created session came back without an id")
    }

    /// Adds a free published session to a programme of `of` sessions over two days and three
    /// tracks, with a room, speakers and an abstract as real ones have; returns its id.
    pub async fn create_programme_session(
        &self,
        slug: &str,
        n: u32,
        of: u32,
    ) -> anyhow::Result<i64> {
        let per_day = of.div_ceil(2).max(1);
        let (day, slot) = (n / per_day, n % per_day);
        let starts = Utc::now()
            + Days::days(365 + i64::from(day))
            + Days::minutes(i64::from(slot / 3) * 105);
        let body = json!({
            "title": format!("Masterclass {}: running a PMO that lasts", n + 1),
            "abstract": "How a portfolio office earns its place: the services it offers, the few measures that matter, and how to keep sponsors engaged once the launch is over.",
            "speakers": [format!("Speaker {}", n + 1), "Priya Natarajan"],
            "track": format!("Track {}", slot % 3 + 1),
            "room": format!("Room {}", slot % 3 + 1),
            "starts_at": starts.to_rfc3339(),
            "ends_at": (starts + Days::minutes(90)).to_rfc3339(),
            "capacity": 100,
            "price_minor": if n.is_multiple_of(2) { 0 } else { 14_500 }
        });
        let response = self
            .admin(
                Method::POST,
                &format!("/api/v1/admin/events/{slug}/sessions"),
            )
            .json(&body)
            .send()
            .await;
        let created = expect(response, StatusCode::CREATED, "create a session").await?;
        created["id"]
            .as_i64()
            .context("a created session came back without an id")
    }

    /// One request for a page, read to the end.
    pub async fn page(&self, path: &str) -> Outcome {
        let response = match self.request(Method::GET, path).send().await {
            Ok(response) => response,
            Err(e) => return Outcome::Transport(transport_kind(&e)),
        };
        let status = response.status();
        match response.bytes().await {
            Ok(body) if status == StatusCode::OK => Outcome::Served(body.len()),
            Ok(_) => Outcome::Refused(status.as_u16().to_string()),
            Err(e) => Outcome::Transport(transport_kind(&e)),
        }
    }

    /// Bytes of the stylesheet and scripts of our own that the page at `path` loads.
    pub async fn page_assets(&self, path: &str) -> anyhow::Result<usize> {
        let response = self.request(Method::GET, path).send().await;
        let html = response
            .context("cannot load the page")?
            .text()
            .await
            .context("cannot read the page")?;
        let mut total = 0;
        for link in html.split('"').filter(|part| part.starts_with("/static/")) {
            let response = self.request(Method::GET, link).send().await;
            let body = response
                .context("cannot load a static file")?
                .bytes()
                .await
                .context("cannot read a static file")?;
            total += body.len();
        }
        Ok(total)
    }

    /// One booking attempt for one session.
    pub async fn book(&self, slug: &str, email: &str, session_id: i64) -> Outcome {
        let body = json!({
            "attendee": {"name": "Bench Attendee", "email": email, "organisation": "Benchmark Ltd"},
            "session_ids": [session_id]
        });
        let sent = self
            .request(Method::POST, &format!("/api/v1/events/{slug}/bookings"))
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Outcome::Transport(transport_kind(&e)),
        };
        let status = response.status();
        // Read the whole answer: it is part of the latency, and it frees the connection.
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) => return Outcome::Transport(transport_kind(&e)),
        };
        if status == StatusCode::CREATED {
            return Outcome::Booked;
        }
        let kind = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|problem| problem["type"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let kind = kind.rsplit('/').next().unwrap_or_default();
        if status == StatusCode::CONFLICT && kind == "session-full" {
            Outcome::Full
        } else {
            Outcome::Refused(format!("{} {kind}", status.as_u16()).trim_end().to_owned())
        }
    }

    /// The active seats the server lists for a session, counted by state.
    pub async fn seat_states(&self, session_id: i64) -> anyhow::Result<Vec<String>> {
        let response = self
            .admin(
                Method::GET,
                &format!("/api/v1/admin/sessions/{session_id}/attendees"),
            )
            .send()
            .await;
        let list = expect(response, StatusCode::OK, "read the attendee list").await?;
        let attendees = list["attendees"]
            .as_array()
            .context("the attendee list has no `attendees`")?;
        Ok(attendees
            .iter()
            .map(|a| a["state"].as_str().unwrap_or_default().to_owned())
            .collect())
    }

    /// `(session id, capacity, seats_left)` of every session in the public programme.
    pub async fn programme(&self, slug: &str) -> anyhow::Result<Vec<(i64, i64, i64)>> {
        let response = self
            .request(Method::GET, &format!("/api/v1/events/{slug}"))
            .send()
            .await;
        let programme = expect(response, StatusCode::OK, "read the programme").await?;
        let sessions = programme["sessions"]
            .as_array()
            .context("the programme has no `sessions`")?;
        sessions
            .iter()
            .map(|s| {
                match (
                    s["id"].as_i64(),
                    s["capacity"].as_i64(),
                    s["seats_left"].as_i64(),
                ) {
                    (Some(id), Some(capacity), Some(left)) => Ok((id, capacity, left)),
                    _ => anyhow::bail!("a programme session lacks id, capacity or seats_left"),
                }
            })
            .collect()
    }

    /// Takes a bench event off the public programme of a server that is not ours.
    pub async fn unpublish(&self, slug: &str) -> anyhow::Result<()> {
        let response = self
            .admin(Method::PATCH, &format!("/api/v1/admin/events/{slug}"))
            .json(&json!({"status": "draft"}))
            .send()
            .await;
        expect(response, StatusCode::OK, "unpublish the bench event").await?;
        Ok(())
    }
}

/// The JSON body of an answer with the `wanted` status, or an error that shows what came back.
async fn expect(
    sent: reqwest::Result<reqwest::Response>,
    wanted: StatusCode,
    what: &str,
) -> anyhow::Result<Value> {
    let response = sent.with_context(|| format!("cannot {what}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("cannot {what}: the answer broke off"))?;
    if status != wanted {
        let excerpt: String = text.chars().take(300).collect();
        anyhow::bail!("cannot {what}: the server answered {status}: {excerpt}");
    }
    serde_json::from_str(&text).with_context(|| format!("cannot {what}: the answer is not JSON"))
}

fn transport_kind(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect"
    } else if err.is_body() || err.is_decode() {
        "body"
    } else {
        "request"
    };
    format!("transport {kind}")
}
