//! Waitlists on the web: joining a full session's (`/events/{slug}/sessions/{id}/waitlist`) and
//! the page behind a place's secret link (`/waitlist/{token}`), where an offered seat is claimed
//! or declined before its deadline, or the place given up.

use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::booking::{FieldMessage, Values};
use super::programme::{EventSummary, SessionCard};
use super::{csrf, html_page, redirect, FormData, PageError};
use crate::api::idempotency::{self, Guarded};
use crate::api::{run, AppState, Kind, Problem};
use crate::bookings::{Attendee, BookingStatus};
use crate::mail::compose;
use crate::validation::{optional_text, required_text, Email, Fields};
use crate::waitlist::{EntryState, EntryView, Joined};

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route(
        "/events/{slug}/sessions/{id}/waitlist",
        super::get().to(join_form),
    )
    .route(
        "/events/{slug}/sessions/{id}/waitlist",
        web::post().to(join),
    )
    .route("/waitlist/{token}", super::get().to(place))
    .route("/waitlist/{token}/claim", web::post().to(claim))
    .route("/waitlist/{token}/decline", web::post().to(decline))
    .route("/waitlist/{token}/leave", web::post().to(leave));
}

#[derive(Serialize)]
struct JoinPage {
    title: String,
    event: EventSummary,
    session: SessionCard,
    csrf: String,
    form_id: String,
    values: Values,
    errors: Vec<FieldMessage>,
    problem: Option<String>,
    /// The session has seats after all: book one instead.
    book_href: Option<String>,
}

async fn session_of(
    state: &AppState,
    slug: String,
    id: &str,
) -> Result<(EventSummary, SessionCard), PageError> {
    let id: i64 = id.parse().map_err(|_| PageError::not_found())?;
    let (event, sessions) = run(&state.db, move |conn| {
        crate::sessions::programme(conn, &slug)
    })
    .await?;
    let Some(session) = sessions.iter().find(|s| s.id == id) else {
        return Err(PageError::not_found());
    };
    let now = state.clock.now();
    Ok((
        EventSummary::new(&event, &sessions, now),
        SessionCard::new(session, &event, now),
    ))
}

#[allow(clippy::too_many_arguments)]
fn join_page(
    state: &AppState,
    req: &HttpRequest,
    (event, session): (EventSummary, SessionCard),
    form_id: Option<String>,
    values: Values,
    errors: Vec<FieldMessage>,
    problem: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let form = csrf::form_token(req, &state.pages);
    let book_href = session
        .bookable
        .then(|| format!("/events/{}/book?session={}", event.slug, session.id));
    let page = JoinPage {
        title: format!("Join the waitlist – {}", session.title),
        event,
        session,
        csrf: form.token,
        form_id: form_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        values,
        errors,
        problem,
        book_href,
    };
    let html = state.pages.render("waitlist_join.html", page)?;
    Ok(html_page(status, html, form.set_cookie))
}

async fn join_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    let (slug, id) = path.into_inner();
    let found = session_of(&state, slug, &id).await?;
    join_page(
        &state,
        &req,
        found,
        None,
        Values::default(),
        Vec::new(),
        None,
        StatusCode::OK,
    )
}

async fn join(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let form = FormData(body.into_inner());
    csrf::check(&req, &state.pages, form.get(csrf::FIELD))?;
    state.pages.limiter.check(&req)?;
    let (slug, id) = path.into_inner();
    let found = session_of(&state, slug.clone(), &id).await?;
    let form_id = form.get("form_id").map(str::to_owned);
    let text = |name: &str| form.get(name).unwrap_or_default().to_owned();
    let values = Values {
        name: text("name"),
        email: text("email"),
        organisation: text("organisation"),
        ..Default::default()
    };
    let mut fields = Fields::new();
    let name = fields.check("name", required_text(&values.name, 200));
    let email = fields.check("email", Email::parse(&values.email));
    let organisation = fields.check(
        "organisation",
        optional_text(Some(values.organisation.as_str()), 200),
    );
    let who = match (fields.finish(), name, email, organisation) {
        (Ok(()), Some(name), Some(email), Some(organisation)) => Attendee {
            name,
            email,
            organisation,
        },
        (outcome, ..) => {
            let errors = outcome
                .err()
                .map(|e| FieldMessage::all(&e))
                .unwrap_or_default();
            return join_page(
                &state,
                &req,
                found,
                form_id,
                values,
                errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let session_id = found.1.id;
    let scope = format!("POST /events/{slug}/sessions/{session_id}/waitlist");
    let key = form_id.as_deref().and_then(|id| {
        super::form_key(
            scope,
            id,
            &(&values.name, &values.email, &values.organisation),
        )
    });
    let join = |key: Option<crate::idempotency::Key>| {
        let (issuer, db, slug, who) = (
            state.issuer.clone(),
            state.db.clone(),
            slug.clone(),
            who.clone(),
        );
        let now = state.clock.now();
        idempotency::guarded(&state, key, move |key| async move {
            run(&db, move |conn| {
                let finish = idempotency::answer_with(key, |joined: &Joined| {
                    crate::waitlist::http::WaitlistView::from(&joined.view)
                });
                crate::waitlist::join(conn, &issuer, &slug, session_id, &who, now, finish)
            })
            .await
        })
    };
    let mut outcome = join(key).await;
    if matches!(&outcome, Ok(Guarded::Replayed(answer)) if !answer.status().is_success()) {
        // Refused before, and a refusal changed nothing: ask again for today's answer.
        outcome = join(None).await;
    }
    let outcome = match outcome {
        Ok(Guarded::Done(joined)) => {
            tracing::info!(reference = %joined.view.entry.reference, session = session_id, "joined a waitlist on the web");
            Ok(joined.manage_token)
        }
        // The same form sent again: the place the first one made.
        Ok(Guarded::Replayed(answer)) => super::kept_answer(answer).await.map(|json| {
            state
                .issuer
                .key
                .manage_token(json["reference"].as_str().unwrap_or_default())
        }),
        Err(problem) => Err(problem),
    };
    match outcome {
        Ok(token) => Ok(redirect(&format!("/waitlist/{token}?done=joined"))),
        Err(problem) if problem.status().is_server_error() || problem.kind() == Kind::NotFound => {
            Err(problem.into())
        }
        Err(problem) => {
            let message = format!(
                "{} You have not been added to the waitlist.",
                super::booking::sentence(problem.detail())
            );
            join_page(
                &state,
                &req,
                found,
                form_id,
                values,
                Vec::new(),
                Some(message),
                problem.status(),
            )
        }
    }
}

#[derive(Serialize)]
struct PlacePage {
    title: String,
    csrf: String,
    notice: Option<String>,
    reference: String,
    name: String,
    email: String,
    event_name: String,
    event_href: String,
    session: SessionCard,
    /// `waiting`, `offered`, `claimed`, `declined`, `expired`, `withdrawn` …
    state: &'static str,
    position: Option<i64>,
    offered_until: Option<String>,
    booking_href: Option<String>,
    token: String,
}

async fn load(state: &AppState, token: &str) -> Result<EntryView, PageError> {
    let token = token.to_owned();
    run(&state.db, move |conn| {
        crate::waitlist::find_by_token(conn, &token)
    })
    .await
    .map_err(|p| {
        if p.kind() == Kind::NotFound {
            PageError::link_not_valid()
        } else {
            p.into()
        }
    })
}

async fn place(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let token = token.into_inner();
    let query = FormData(query.into_inner());
    let view = load(&state, &token).await?;
    let now = state.clock.now();
    let entry = &view.entry;
    let zone = view.event.time_zone;
    let notice = match query.get("done") {
        Some("joined") => Some(
            "You are on the waitlist. We have sent you an email with a link to this page."
                .to_owned(),
        ),
        Some("declined") => {
            Some("You have declined the seat; it has been offered to the next person.".to_owned())
        }
        Some("left") => Some("You have left the waitlist.".to_owned()),
        _ => None,
    };
    let form = csrf::form_token(&req, &state.pages);
    let booking_href = match (entry.state, entry.booking_id) {
        (EntryState::Claimed, Some(_)) => {
            let reference = run(&state.db, {
                let id = entry.booking_id;
                move |conn| -> Result<Option<String>, Problem> {
                    match id {
                        Some(id) => Ok(Some(crate::bookings::load(conn, id)?.reference)),
                        None => Ok(None),
                    }
                }
            })
            .await?;
            reference.map(|r| format!("/bookings/{}", state.issuer.key.manage_token(&r)))
        }
        _ => None,
    };
    let page = PlacePage {
        title: format!("Waitlist – {}", view.session.title),
        csrf: form.token,
        notice,
        reference: entry.reference.clone(),
        name: entry.attendee_name.clone(),
        email: entry.attendee_email.clone(),
        event_name: view.event.name.clone(),
        event_href: format!("/events/{}", view.event.slug),
        session: SessionCard::new(&view.session, &view.event, now),
        state: entry.state.as_str(),
        position: view.position,
        offered_until: (entry.state == EntryState::Offered)
            .then_some(entry.offer_expires_at)
            .flatten()
            .filter(|until| *until > now)
            .map(|until| compose::moment(until, zone)),
        booking_href,
        token,
    };
    let html = state.pages.render("waitlist_place.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

fn refused(problem: Problem, token: &str) -> PageError {
    match problem.kind() {
        Kind::NotFound => PageError::link_not_valid(),
        _ if problem.status().is_client_error() => PageError::from(problem)
            .with_next("Back to your waitlist place", format!("/waitlist/{token}")),
        _ => problem.into(),
    }
}

async fn claim(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let form = FormData(body.into_inner());
    csrf::check(&req, &state.pages, form.get(csrf::FIELD))?;
    state.pages.limiter.check(&req)?;
    let token = token.into_inner();
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let claim_token = token.clone();
    let claimed = run(&state.db, move |conn| {
        crate::waitlist::claim(conn, &issuer, &claim_token, now, None)
    })
    .await;
    let booked = match claimed {
        Ok(booked) => booked,
        Err(problem) => {
            // A second click, or the page opened again after claiming: the booking the
            // claim made.
            if let Ok(view) = load(&state, &token).await {
                if let (EntryState::Claimed, Some(id)) = (view.entry.state, view.entry.booking_id) {
                    let booking = run(&state.db, move |conn| -> Result<_, Problem> {
                        Ok(crate::bookings::load(conn, id)?)
                    })
                    .await?;
                    let to = state.issuer.key.manage_token(&booking.reference);
                    return Ok(redirect(&match booking.status {
                        BookingStatus::Held => format!("/bookings/{to}/pay"),
                        _ => format!("/bookings/{to}"),
                    }));
                }
            }
            return Err(refused(problem, &token));
        }
    };
    tracing::info!(reference = %booked.booking.reference, "waitlist offer claimed on the web");
    if booked.booking.status == BookingStatus::Held {
        Ok(redirect(&format!("/bookings/{}/pay", booked.manage_token)))
    } else {
        Ok(redirect(&format!(
            "/bookings/{}/booked",
            booked.manage_token
        )))
    }
}

async fn decline(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    end(
        state,
        req,
        token,
        body,
        crate::waitlist::decline,
        "declined",
    )
    .await
}

async fn leave(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    end(state, req, token, body, crate::waitlist::leave, "left").await
}

type End = fn(
    &mut crate::db::DbConn,
    &crate::bookings::Issuer,
    &str,
    chrono::DateTime<chrono::Utc>,
) -> Result<EntryView, crate::waitlist::WaitlistError>;

async fn end(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: web::Form<Vec<(String, String)>>,
    how: End,
    done: &str,
) -> Result<HttpResponse, PageError> {
    let form = FormData(body.into_inner());
    csrf::check(&req, &state.pages, form.get(csrf::FIELD))?;
    state.pages.limiter.check(&req)?;
    let token = token.into_inner();
    let issuer = state.issuer.clone();
    let now = state.clock.now();
    let end_token = token.clone();
    run(&state.db, move |conn| how(conn, &issuer, &end_token, now))
        .await
        .map_err(|p| refused(p, &token))?;
    Ok(redirect(&format!("/waitlist/{token}?done={done}")))
}
