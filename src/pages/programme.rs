//! `/` (the current event, or a list when several are published), `/events/{slug}` (the
//! programme by day and track, with what is left of each session) and
//! `/events/{slug}/sessions/{id}` (a session with its abstract and speakers).
//!
//! The programme is the page everyone opens when registration opens, so it is kept rendered for
//! a moment (`pages.programme_cache_ms`): its seat counts may be that old, which the page says;
//! a booking always checks the real count.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::{self, Bytes, ServiceConfig};
use actix_web::HttpResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::PageError;
use crate::api::{run, AppState};
use crate::events::{Event, EventStatus};
use crate::mail::compose;
use crate::sessions::{Session, SessionStatus};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/", super::get().to(home))
        .route("/events/{slug}", super::get().to(programme_page))
        .route(
            "/events/{slug}/sessions/{id}",
            super::get().to(session_page),
        );
}

/// Rendered programme pages by slug. When one is older than the time to live, the first
/// request to notice renders it again while the others keep getting the old one: a page is
/// rendered at most once per interval however many people ask at that moment.
pub struct PageCache {
    ttl: Duration,
    pages: Mutex<HashMap<String, Kept>>,
}

struct Kept {
    at: Instant,
    html: Bytes,
    /// Since when a request has been rendering it again. A request that is dropped mid-render
    /// never clears it, so after [`STUCK`] another request takes over.
    refreshing: Option<Instant>,
}

/// How long one request may take to render a page before another tries.
const STUCK: Duration = Duration::from_secs(5);

/// What the cache has for a page.
enum Lookup {
    /// Fresh enough, or being rendered again by another request meanwhile.
    Hit(Bytes),
    /// To be rendered by the caller, who then [`PageCache::put`]s or [`PageCache::abandon`]s it.
    Miss,
}

impl PageCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            pages: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, slug: &str) -> Lookup {
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        match pages.get_mut(slug) {
            Some(kept)
                if kept.at.elapsed() < self.ttl
                    || kept.refreshing.is_some_and(|since| since.elapsed() < STUCK) =>
            {
                Lookup::Hit(kept.html.clone())
            }
            Some(kept) => {
                kept.refreshing = Some(Instant::now());
                Lookup::Miss
            }
            None => Lookup::Miss,
        }
    }

    fn put(&self, slug: &str, html: Bytes) {
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if self.ttl.is_zero() {
            return;
        }
        // Never more entries than there are events recently asked for.
        let ttl = self.ttl;
        pages.retain(|_, kept| kept.at.elapsed() < ttl * 10);
        pages.insert(
            slug.to_owned(),
            Kept {
                at: Instant::now(),
                html,
                refreshing: None,
            },
        );
    }

    /// Rendering failed: the page kept (if any) is served meanwhile, and the next request after
    /// it tries again.
    fn abandon(&self, slug: &str) {
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(kept) = pages.get_mut(slug) {
            kept.refreshing = None;
        }
    }
}

/// A session as a card on the programme or a line on the booking form.
#[derive(Debug, Clone, Serialize)]
pub struct SessionCard {
    pub id: i64,
    pub title: String,
    pub href: String,
    pub day: String,
    pub time: String,
    pub room: Option<String>,
    pub track: Option<String>,
    pub speakers: String,
    pub price: String,
    pub price_minor: i64,
    pub badge: Badge,
    /// Can be booked now (registration open, seats left, not started or cancelled).
    pub bookable: bool,
    /// Where to join its waitlist, when it is full and has one.
    pub waitlist_href: Option<String>,
    /// Unix seconds, for the timetable-clash hints of the page script.
    pub starts: i64,
    pub ends: i64,
}

/// The availability badge: a class for its colour and a text that says it all without colour.
#[derive(Debug, Clone, Serialize)]
pub struct Badge {
    pub kind: &'static str,
    pub text: String,
}

impl SessionCard {
    pub fn new(session: &Session, event: &Event, now: DateTime<Utc>) -> Self {
        let (day, time) =
            compose::day_and_time(session.starts_at, session.ends_at, event.time_zone);
        let left = session.seats_left();
        let started = session.starts_at <= now;
        let open = event.registration_open(now);
        let seats = |n: i32| {
            if n == 1 {
                "1 seat left".to_owned()
            } else {
                format!("{n} seats left")
            }
        };
        let badge = if session.status == SessionStatus::Cancelled {
            Badge {
                kind: "cancelled",
                text: "Cancelled".to_owned(),
            }
        } else if started {
            Badge {
                kind: "past",
                text: "Already started".to_owned(),
            }
        } else if left == 0 && session.waitlist_enabled {
            Badge {
                kind: "full",
                text: "Full – join the waitlist".to_owned(),
            }
        } else if left == 0 {
            Badge {
                kind: "full",
                text: "Full".to_owned(),
            }
        } else if left <= 5 && left * 5 <= session.capacity {
            Badge {
                kind: "few",
                text: format!("Only {}", seats(left)),
            }
        } else {
            Badge {
                kind: "open",
                text: seats(left),
            }
        };
        let live = session.status == SessionStatus::Published && !started;
        Self {
            id: session.id,
            title: session.title.clone(),
            href: format!("/events/{}/sessions/{}", event.slug, session.id),
            day,
            time,
            room: session.room.clone(),
            track: session.track.clone(),
            speakers: session.speakers.join(", "),
            price: price(session.price_minor, &event.currency),
            price_minor: session.price_minor,
            bookable: live && open && left > 0,
            waitlist_href: (live && open && left == 0 && session.waitlist_enabled)
                .then(|| format!("/events/{}/sessions/{}/waitlist", event.slug, session.id)),
            starts: session.starts_at.timestamp(),
            ends: session.ends_at.timestamp(),
            badge,
        }
    }
}

pub fn price(minor: i64, currency: &str) -> String {
    if minor == 0 {
        "Free".to_owned()
    } else {
        compose::money(minor, currency)
    }
}

/// An event as its pages introduce it.
#[derive(Debug, Serialize)]
pub struct EventSummary {
    pub slug: String,
    pub name: String,
    pub venue: String,
    pub href: String,
    /// "12 May 2027" or "12–13 May 2027".
    pub dates: Option<String>,
    /// Whether bookings are taken now.
    pub open: bool,
    /// "Registration is open until …", "Registration opens at …", "Registration is closed".
    pub registration: String,
    pub time_zone: String,
    pub allow_clashes: bool,
}

impl EventSummary {
    pub fn new(event: &Event, sessions: &[Session], now: DateTime<Utc>) -> Self {
        let zone = event.time_zone;
        let first = sessions.iter().map(|s| s.starts_at).min();
        let last = sessions.iter().map(|s| s.ends_at).max();
        let dates = first.zip(last).map(|(first, last)| {
            let (a, b) = (compose::day(first, zone), compose::day(last, zone));
            if a == b {
                a
            } else {
                format!("{a} – {b}")
            }
        });
        let open = event.registration_open(now);
        let registration = if event.status != EventStatus::Published {
            "Registration is closed.".to_owned()
        } else if let Some(opens) = event.registration_opens_at.filter(|t| now < *t) {
            format!("Registration opens at {}.", compose::moment(opens, zone))
        } else if !open {
            "Registration is closed.".to_owned()
        } else if let Some(closes) = event.registration_closes_at {
            format!(
                "Registration is open until {}.",
                compose::moment(closes, zone)
            )
        } else {
            "Registration is open.".to_owned()
        };
        Self {
            slug: event.slug.clone(),
            name: event.name.clone(),
            venue: event.venue.clone(),
            href: format!("/events/{}", event.slug),
            dates,
            open,
            registration,
            time_zone: zone.name().to_owned(),
            allow_clashes: event.allow_clashes,
        }
    }
}

#[derive(Debug, Serialize)]
struct Day {
    label: String,
    anchor: String,
    tracks: Vec<Track>,
}

#[derive(Debug, Serialize)]
struct Track {
    name: Option<String>,
    sessions: Vec<SessionCard>,
}

/// Sessions (in time order) by day, then by track in order of first appearance.
fn by_day_and_track(cards: Vec<SessionCard>) -> Vec<Day> {
    let mut days: Vec<Day> = Vec::new();
    for card in cards {
        if days.last().is_none_or(|d| d.label != card.day) {
            days.push(Day {
                label: card.day.clone(),
                anchor: format!("day-{}", days.len() + 1),
                tracks: Vec::new(),
            });
        }
        let Some(day) = days.last_mut() else { continue };
        match day.tracks.iter_mut().find(|t| t.name == card.track) {
            Some(track) => track.sessions.push(card),
            None => day.tracks.push(Track {
                name: card.track.clone(),
                sessions: vec![card],
            }),
        }
    }
    days
}

#[derive(Serialize)]
struct ProgrammePage {
    title: String,
    event: EventSummary,
    days: Vec<Day>,
    any_bookable: bool,
    cache_seconds: u64,
}

/// The programme page of a published event.
async fn render_programme(state: &AppState, slug: String) -> Result<Bytes, PageError> {
    let pages = &state.pages;
    if let Lookup::Hit(html) = pages.programmes.get(&slug) {
        return Ok(html);
    }
    let key = slug.clone();
    let rendered = render_fresh(state, slug).await;
    match &rendered {
        Ok(html) => pages.programmes.put(&key, html.clone()),
        Err(_) => pages.programmes.abandon(&key),
    }
    rendered
}

async fn render_fresh(state: &AppState, slug: String) -> Result<Bytes, PageError> {
    let pages = &state.pages;
    let (event, sessions) = run(&state.db, move |conn| {
        crate::sessions::programme(conn, &slug)
    })
    .await?;
    let now = state.clock.now();
    let cards: Vec<SessionCard> = sessions
        .iter()
        .map(|s| SessionCard::new(s, &event, now))
        .collect();
    let html = Bytes::from(pages.render(
        "programme.html",
        ProgrammePage {
            title: event.name.clone(),
            event: EventSummary::new(&event, &sessions, now),
            any_bookable: cards.iter().any(|c| c.bookable),
            days: by_day_and_track(cards),
            cache_seconds: pages.programmes.ttl.as_secs(),
        },
    )?);
    Ok(html)
}

fn html(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

async fn programme_page(
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    Ok(html(render_programme(&state, slug.into_inner()).await?))
}

#[derive(Serialize)]
struct EventsPage {
    title: &'static str,
    events: Vec<EventSummary>,
}

/// The one published event's programme, or the list of them.
async fn home(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    let events = run(&state.db, |conn| -> Result<_, crate::db::DbError> {
        let events = crate::events::list(conn, false)?;
        if events.len() == 1 {
            return Ok(events
                .into_iter()
                .map(|e| (e, Vec::new()))
                .collect::<Vec<_>>());
        }
        events
            .into_iter()
            .map(|e| {
                let sessions = crate::sessions::for_event(conn, e.id, false)?;
                Ok((e, sessions))
            })
            .collect()
    })
    .await?;
    if let [(only, _)] = events.as_slice() {
        return Ok(html(render_programme(&state, only.slug.clone()).await?));
    }
    let now = state.clock.now();
    let page = EventsPage {
        title: "Events",
        events: events
            .iter()
            .map(|(e, sessions)| EventSummary::new(e, sessions, now))
            .collect(),
    };
    Ok(html(Bytes::from(state.pages.render("events.html", page)?)))
}

#[derive(Serialize)]
struct SessionPage {
    title: String,
    event: EventSummary,
    session: SessionCard,
    paragraphs: Vec<String>,
    speakers: Vec<String>,
}

async fn session_page(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (slug, id) = path.into_inner();
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    let (event, sessions) = run(&state.db, move |conn| {
        crate::sessions::programme(conn, &slug)
    })
    .await?;
    let Some(session) = sessions.iter().find(|s| s.id == id) else {
        return Err(PageError::not_found());
    };
    let now = state.clock.now();
    let page = SessionPage {
        title: session.title.clone(),
        event: EventSummary::new(&event, &sessions, now),
        session: SessionCard::new(session, &event, now),
        paragraphs: session
            .abstract_text
            .split("\n\n")
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect(),
        speakers: session.speakers.clone(),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("text/html; charset=utf-8")
        .body(state.pages.render("session.html", page)?))
}
