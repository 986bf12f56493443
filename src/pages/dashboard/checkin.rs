//! Check-in at the door for organisers with the `checkin` role or above: the sessions to pick
//! from, and a session's door page with its counts, a form for the check-in code (typed, or
//! scanned with the camera by `checkin.js`), a search by name, email or booking reference with a
//! "Check in" button per person, and undo.
//!
//! Every form works without JavaScript. After a form is sent the browser is sent back to the
//! door page (303) and the outcome travels in a short-lived signed cookie, so reloading the page
//! never presents a code twice and a crafted address cannot show a made-up outcome.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Anyone, AnyonePost, Me, PostedBy, COOKIE_PATH};
use crate::api::{run, AppState, Problem};
use crate::audit::{self, Record};
use crate::bookings::SeatState;
use crate::checkin::{self, Arrival, CheckinError, DoorEntry, Outcome, Presented, Search};
use crate::events::Event;
use crate::mail::compose;
use crate::pages::booking::FieldMessage;
use crate::pages::{csrf, html_page, redirect, FormData, PageError};
use crate::sessions::{Session, SessionStatus};

/// The cookie carrying the outcome of the last form to the door page.
const OUTCOME_COOKIE: &str = "mc_door";
const OUTCOME_PURPOSE: &[u8] = b"masterclass door outcome";

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/organiser/checkin", crate::pages::get().to(sessions))
        .route(
            "/organiser/sessions/{id}/checkin",
            crate::pages::get().to(door),
        )
        .route("/organiser/sessions/{id}/checkin", web::post().to(present))
        .route(
            "/organiser/sessions/{id}/checkin/{seat}/undo",
            web::post().to(undo),
        );
}

#[derive(Serialize)]
struct SessionItem {
    id: i64,
    title: String,
    event: String,
    room: Option<String>,
    day: String,
    time: String,
}

impl SessionItem {
    fn new(session: &Session, event: &Event) -> Self {
        let (day, time) =
            compose::day_and_time(session.starts_at, session.ends_at, event.time_zone);
        Self {
            id: session.id,
            title: session.title.clone(),
            event: event.name.clone(),
            room: session.room.clone(),
            day,
            time,
        }
    }
}

#[derive(Serialize)]
struct SessionsPage {
    title: &'static str,
    csrf: String,
    me: Me,
    today: Vec<SessionItem>,
    others: Vec<SessionItem>,
}

/// The sessions of published events (not cancelled ones), today's first.
async fn sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Anyone,
) -> Result<HttpResponse, PageError> {
    let now = state.clock.now();
    let (today, others) = run(&state.db, move |conn| -> Result<_, Problem> {
        let mut today = Vec::new();
        let mut others = Vec::new();
        for event in crate::events::list(conn, false)? {
            for session in crate::sessions::for_event(conn, event.id, false)? {
                if session.status == SessionStatus::Cancelled {
                    continue;
                }
                let on_today = compose::day(session.starts_at, event.time_zone)
                    == compose::day(now, event.time_zone);
                let item = (session.starts_at, SessionItem::new(&session, &event));
                if on_today {
                    today.push(item);
                } else {
                    others.push(item);
                }
            }
        }
        today.sort_by_key(|(at, _)| *at);
        others.sort_by_key(|(at, _)| *at);
        let strip = |v: Vec<(DateTime<Utc>, SessionItem)>| v.into_iter().map(|(_, i)| i).collect();
        Ok((strip(today), strip(others)))
    })
    .await?;
    let form = csrf::form_token(&req, &state.pages);
    let page = SessionsPage {
        title: "Check-in",
        csrf: form.token,
        me: Me::from(&*me),
        today,
        others,
    };
    let html = state
        .pages
        .render("dashboard/checkin/sessions.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

/// What the last form came to, as the door page shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Said {
    session: i64,
    /// Let them in (`true`), or not.
    ok: bool,
    headline: String,
    detail: String,
}

#[derive(Serialize)]
struct Person {
    seat_id: i64,
    name: String,
    email: String,
    reference: String,
    organisation: Option<String>,
    checked_in: Option<String>,
}

#[derive(Serialize)]
struct DoorPage {
    title: String,
    csrf: String,
    me: Me,
    session: SessionItem,
    confirmed: i64,
    checked_in: i64,
    said: Option<Said>,
    q: String,
    searched: bool,
    people: Vec<Person>,
    more: bool,
    code: String,
    errors: Vec<FieldMessage>,
}

fn person(entry: &DoorEntry, event: &Event) -> Person {
    Person {
        seat_id: entry.seat_id,
        name: entry.name.clone(),
        email: entry.email.clone(),
        reference: entry.reference.clone(),
        organisation: entry.organisation.clone(),
        checked_in: entry
            .checked_in_at
            .map(|at| checked_in_text(entry, at, event)),
    }
}

fn checked_in_text(entry: &DoorEntry, at: DateTime<Utc>, event: &Event) -> String {
    let by = entry
        .checked_in_by
        .as_ref()
        .map(|by| format!(" by {}", by.name))
        .unwrap_or_default();
    format!("at {}{by}", compose::moment(at, event.time_zone))
}

/// The door page of session `id`, with the outcome of the last form if there is one for it.
async fn door(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Anyone,
    id: web::Path<i64>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let query = FormData(query.into_inner());
    let q = query.text("q");
    let said = read_outcome(&state, &req).filter(|s| s.session == *id);
    door_page(
        &state,
        &req,
        &me,
        id.into_inner(),
        DoorInput {
            q,
            said,
            code: String::new(),
            errors: Vec::new(),
        },
        StatusCode::OK,
    )
    .await
}

struct DoorInput {
    q: String,
    said: Option<Said>,
    code: String,
    errors: Vec<FieldMessage>,
}

async fn door_page(
    state: &AppState,
    req: &HttpRequest,
    me: &crate::organisers::Organiser,
    session_id: i64,
    input: DoorInput,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let mut errors = input.errors;
    let search = match Search::parse(Some(&input.q)) {
        Ok(search) => search,
        Err(e) => {
            errors.extend(e.0.iter().map(|f| FieldMessage {
                field: f.field.clone(),
                message: crate::pages::booking::sentence(&f.message),
            }));
            None
        }
    };
    let searched = search.is_some();
    let list = run(&state.db, move |conn| {
        checkin::door_list(conn, session_id, search.as_ref())
    })
    .await?;
    let form = csrf::form_token(req, &state.pages);
    let status = if errors.is_empty() {
        status
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = DoorPage {
        title: format!("Check-in: {}", list.session.title),
        csrf: form.token,
        me: Me::from(me),
        session: SessionItem::new(&list.session, &list.event),
        confirmed: list.confirmed,
        checked_in: list.checked_in,
        said: input.said,
        q: input.q,
        searched,
        people: list
            .entries
            .iter()
            .map(|e| person(e, &list.event))
            .collect(),
        more: list.more,
        code: input.code,
        errors,
    };
    let html = state.pages.render("dashboard/checkin/door.html", page)?;
    let mut answer = html_page(status, html, form.set_cookie);
    if req.cookie(OUTCOME_COOKIE).is_some() {
        // Shown once: a reload shows the page without it.
        answer
            .add_cookie(&outcome_cookie(&state.pages, String::new(), true))
            .map_err(|_| PageError::internal())?;
    }
    Ok(answer)
}

/// Where to go back to after a form of the door page: the page, with the search kept.
fn back_to(session_id: i64, q: &str) -> String {
    let path = format!("/organiser/sessions/{session_id}/checkin");
    if q.is_empty() {
        path
    } else {
        format!("{path}?q={}", super::encode(q))
    }
}

/// A code (field `code`) or a seat from the list (field `seat_id`) presented at the door.
async fn present(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AnyonePost,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let session_id = id.into_inner();
    let q = form.text("q");
    let code = form.get("code").map(|c| c.trim().to_owned());
    let presented = match (code, form.get("seat_id")) {
        (_, Some(seat)) => match seat.trim().parse::<i64>() {
            Ok(seat) => Presented::Seat(seat),
            Err(_) => return Err(PageError::not_found()),
        },
        (Some(code), None) if !code.is_empty() => Presented::Code(code),
        (code, None) => {
            let errors = vec![FieldMessage {
                field: "code".to_owned(),
                message: "Enter the check-in code: scan it, or type it from the attendee's ticket."
                    .to_owned(),
            }];
            let input = DoorInput {
                q,
                said: None,
                code: code.unwrap_or_default(),
                errors,
            };
            return door_page(
                &state,
                &req,
                &me,
                session_id,
                input,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let key = state.issuer.key.clone();
    let now = state.clock.now();
    let organiser_id = me.id;
    let by_code = matches!(presented, Presented::Code(_));
    let arrival = run(&state.db, move |conn| -> Result<_, Problem> {
        Ok(audit::recorded(
            conn,
            Some(organiser_id),
            |conn| -> Result<_, CheckinError> {
                let arrival =
                    checkin::check_in(conn, session_id, &presented, &key, organiser_id, now)?;
                let record = arrival.audit_record();
                Ok((arrival, record))
            },
        ))
    })
    .await?;
    let said = match arrival {
        Ok(arrival) => {
            tracing::info!(
                session = session_id,
                seat = arrival.entry.seat_id,
                organiser = organiser_id,
                outcome = ?arrival.outcome,
                "presented at the door"
            );
            said_of(&arrival)
        }
        Err(CheckinError::UnknownCode) if by_code => Said {
            session: session_id,
            ok: false,
            headline: "Unknown code: not checked in".to_owned(),
            detail: "This is not a valid check-in code: it may be mistyped, damaged or not one of ours. Find the person by name, email or booking reference instead.".to_owned(),
        },
        Err(CheckinError::UnknownCode | CheckinError::SeatNotFound(_)) => {
            return Err(PageError::not_found())
        }
        Err(e) => return Err(Problem::from(e).into()),
    };
    tell(&state, session_id, &q, &said)
}

/// What to tell the person at the door.
fn said_of(arrival: &Arrival) -> Said {
    let entry = &arrival.entry;
    let name = &entry.name;
    let title = &arrival.session.title;
    let (ok, headline, detail) = match &arrival.outcome {
        Outcome::CheckedIn => (
            true,
            format!("Checked in: {name}"),
            format!("{name} ({}) is checked in to \"{title}\".", entry.reference),
        ),
        Outcome::AlreadyCheckedIn => {
            let when = entry
                .checked_in_at
                .map(|at| format!(" {}", checked_in_text(entry, at, &arrival.event)))
                .unwrap_or_default();
            (
                false,
                format!("Already used: {name} is already checked in"),
                format!("This code was used before: {name} was checked in to \"{title}\"{when}."),
            )
        }
        Outcome::OtherSession { title: other, .. } => (
            false,
            format!("Another session's: {name} is not checked in"),
            format!("{name}'s place is in \"{other}\", not \"{title}\"."),
        ),
        Outcome::Cancelled => (
            false,
            format!("Cancelled: {name} is not checked in"),
            format!("{name}'s place in \"{title}\" was cancelled."),
        ),
        Outcome::NotConfirmed => (
            false,
            format!("Not confirmed: {name} is not checked in"),
            if entry.state == SeatState::Expired {
                format!("{name}'s place in \"{title}\" was released because it was not paid for in time.")
            } else {
                format!("{name}'s place in \"{title}\" is held but not paid for yet.")
            },
        ),
    };
    Said {
        session: arrival.session.id,
        ok,
        headline,
        detail,
    }
}

/// Takes back a check-in made by mistake.
async fn undo(
    state: web::Data<AppState>,
    PostedBy { form, me }: AnyonePost,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, PageError> {
    let (session_id, seat_id) = path.into_inner();
    let q = form.text("q");
    let by = Some(me.id);
    let undone = run(&state.db, move |conn| -> Result<_, Problem> {
        let undone = audit::recorded(conn, by, |conn| -> Result<_, CheckinError> {
            let undone = checkin::undo(conn, session_id, seat_id)?;
            // A seat that was not checked in is left as it was: nothing to record.
            let record = undone.undone.then(|| {
                Record::new("checkin.undo", format!("seat:{seat_id}"))
                    .before(&serde_json::json!({ "checked_in": true }))
                    .after(&serde_json::json!({ "checked_in": false }))
            });
            Ok((undone, record))
        });
        match undone {
            Ok(undone) => Ok(Some(undone)),
            Err(CheckinError::SeatNotFound(_) | CheckinError::NotInSession { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?
    .ok_or_else(PageError::not_found)?;
    let name = &undone.entry.name;
    let said = if undone.undone {
        tracing::info!(
            session = session_id,
            seat = seat_id,
            organiser = me.id,
            "check-in undone"
        );
        Said {
            session: session_id,
            ok: true,
            headline: format!("Check-in undone: {name}"),
            detail: format!("{name} is no longer checked in."),
        }
    } else {
        Said {
            session: session_id,
            ok: true,
            headline: format!("{name} was not checked in"),
            detail: "Nothing was changed.".to_owned(),
        }
    };
    tell(&state, session_id, &q, &said)
}

/// Back to the door page (search `q` kept), which shows `said` once.
fn tell(
    state: &AppState,
    session_id: i64,
    q: &str,
    said: &Said,
) -> Result<HttpResponse, PageError> {
    let mut answer = redirect(&back_to(session_id, q));
    answer
        .add_cookie(&outcome_cookie(&state.pages, seal(state, said), false))
        .map_err(|_| PageError::internal())?;
    Ok(answer)
}

/// `said` as a cookie value: hex of its JSON, a dot, and its signature.
fn seal(state: &AppState, said: &Said) -> String {
    let body = hex::encode(serde_json::to_vec(said).unwrap_or_default());
    let tag = state.issuer.key.sign(OUTCOME_PURPOSE, &body);
    format!("{body}.{}", &tag[..32])
}

/// The outcome in the request's cookie, if it is one we signed.
fn read_outcome(state: &AppState, req: &HttpRequest) -> Option<Said> {
    let cookie = req.cookie(OUTCOME_COOKIE)?;
    let (body, tag) = cookie.value().split_once('.')?;
    let tag = hex::decode(tag).ok()?;
    if !state.issuer.key.verify_prefix(OUTCOME_PURPOSE, body, &tag) {
        return None;
    }
    serde_json::from_slice(&hex::decode(body).ok()?).ok()
}

fn outcome_cookie(pages: &crate::pages::Pages, value: String, ended: bool) -> Cookie<'static> {
    Cookie::build(OUTCOME_COOKIE, value)
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(pages.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(if ended {
            time::Duration::ZERO
        } else {
            time::Duration::seconds(120)
        })
        .finish()
}
