//! The people of one session, for admins: who holds a seat (and whether they have been checked
//! in), who is waiting and in what order, and what organisers do for them: promote someone from
//! the waitlist, move a seat to another session, cancel a seat (refunded in full), resend a
//! booking confirmation.

use actix_web::http::StatusCode;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Admin, AdminPost, Me, PostedBy};
use crate::api::{run, AppState, Problem};
use crate::audit::{self, Record};
use crate::bookings::{self, BookingError, SeatState};
use crate::events::Event;
use crate::organisers::Organiser;
use crate::pages::booking::{sentence, FieldMessage};
use crate::pages::{csrf, html_page, redirect, FormData, PageError};
use crate::sessions::Session;
use crate::waitlist::{self, EntryState, WaitlistError};

pub fn routes(cfg: &mut ServiceConfig) {
    super::people_bookings::routes(cfg);
    super::people_outbox::routes(cfg);
    cfg.route(
        "/organiser/sessions/{id}/people",
        crate::pages::get().to(people),
    )
    .route(
        "/organiser/sessions/{id}/people/promote",
        web::post().to(promote),
    )
    .route(
        "/organiser/sessions/{id}/people/move",
        web::post().to(move_seat),
    )
    .route(
        "/organiser/sessions/{id}/people/cancel",
        crate::pages::get().to(cancel_form),
    )
    .route(
        "/organiser/sessions/{id}/people/cancel",
        web::post().to(cancel),
    )
    .route(
        "/organiser/sessions/{id}/people/resend",
        web::post().to(resend),
    );
}

/// A moment as the dashboard shows it, in the event's time zone.
pub(super) fn when(at: DateTime<Utc>, event: &Event) -> String {
    at.with_timezone(&event.time_zone)
        .format("%a %-d %b %Y, %H:%M")
        .to_string()
}

/// Whether `needle` (lower case) is in any of `texts`, in any case.
pub(super) fn matches(needle: &str, texts: &[&str]) -> bool {
    needle.is_empty() || texts.iter().any(|t| t.to_lowercase().contains(needle))
}

#[derive(Serialize)]
struct SessionHead {
    id: i64,
    title: String,
    event: String,
    when: String,
    room: Option<String>,
    capacity: i32,
    taken: i32,
    status: &'static str,
}

#[derive(Serialize)]
struct PersonLine {
    reference: String,
    name: String,
    email: String,
    organisation: Option<String>,
    state: &'static str,
    confirmed: bool,
    checked_in: Option<String>,
}

#[derive(Serialize)]
struct WaitLine {
    id: i64,
    /// 1 is next in line; only while waiting.
    position: Option<usize>,
    reference: String,
    name: String,
    email: String,
    organisation: Option<String>,
    state: &'static str,
    waiting: bool,
    offer_until: Option<String>,
}

#[derive(Serialize)]
struct Target {
    id: i64,
    label: String,
}

#[derive(Serialize)]
struct PeoplePage {
    title: String,
    csrf: String,
    me: Me,
    session: SessionHead,
    q: String,
    attendees: Vec<PersonLine>,
    /// How many hold a seat, before the search.
    attendee_count: usize,
    waitlist: Vec<WaitLine>,
    targets: Vec<Target>,
    errors: Vec<FieldMessage>,
    problem: Option<String>,
    waive: Option<Waive>,
    notice: Option<&'static str>,
}

/// Everything the page shows, read in one go.
struct People {
    event: Event,
    session: Session,
    attendees: Vec<bookings::SessionAttendee>,
    check_ins: std::collections::HashMap<String, DateTime<Utc>>,
    waitlist: Vec<waitlist::Entry>,
    others: Vec<Session>,
}

fn read_people(conn: &mut crate::db::DbConn, session_id: i64) -> Result<People, BookingError> {
    let (event, session, attendees) = bookings::attendees(conn, session_id)?;
    let check_ins = bookings::check_ins(conn, session_id)?;
    let waitlist = waitlist::for_session(conn, session_id)?;
    let others = crate::sessions::for_event(conn, event.id, false)?
        .into_iter()
        .filter(|s| s.id != session_id)
        .collect();
    Ok(People {
        event,
        session,
        attendees,
        check_ins,
        waitlist,
        others,
    })
}

/// What a refused action shows on the page again.
#[derive(Default)]
struct Refusal {
    errors: Vec<FieldMessage>,
    problem: Option<String>,
    status: Option<StatusCode>,
    /// A move refused for the price difference, to offer again with the difference waived.
    waive: Option<Waive>,
}

/// The move of `reference`'s seat to session `to` that costs more than the seat was paid at.
#[derive(Serialize, Clone)]
struct Waive {
    reference: String,
    to: i64,
}

impl Refusal {
    /// `message` next to `field`, answered with `status`.
    fn at(field: String, message: String, status: StatusCode) -> Self {
        Self {
            errors: vec![FieldMessage { field, message }],
            status: Some(status),
            ..Self::default()
        }
    }

    /// A domain refusal as the page shows it: next to `field` when it names one; a failure of
    /// ours (database, unavailable) stays an error page.
    fn of(problem: Problem, field: &str) -> Result<Self, PageError> {
        let status = problem.status();
        if !status.is_client_error() {
            return Err(problem.into());
        }
        let message = problem
            .field_errors()
            .first()
            .map(|f| sentence(&f.message))
            .unwrap_or_else(|| sentence(problem.detail()));
        Ok(Self::at(field.to_owned(), message, status))
    }
}

/// Runs `change` and writes its audit record (see [`audit::recorded`]) on the blocking pool, as
/// organiser `by`: the domain's refusal comes back inside, a failure of ours outside.
pub(super) async fn run_recorded<T, E, R, F>(
    state: &AppState,
    by: i64,
    change: F,
) -> Result<Result<T, E>, Problem>
where
    F: FnOnce(&mut crate::db::DbConn) -> Result<(T, R), E> + Send + 'static,
    R: Into<Option<Record>>,
    E: From<diesel::result::Error> + Send + 'static,
    T: Send + 'static,
{
    run(&state.db, move |conn| -> Result<_, Problem> {
        Ok(audit::recorded(conn, Some(by), change))
    })
    .await
}

async fn people_page(
    state: &AppState,
    req: &HttpRequest,
    me: &Organiser,
    session_id: i64,
    q: String,
    notice: Option<&'static str>,
    refusal: Refusal,
) -> Result<HttpResponse, PageError> {
    let found = run(&state.db, move |conn| -> Result<_, Problem> {
        match read_people(conn, session_id) {
            Ok(people) => Ok(Some(people)),
            Err(BookingError::Session(crate::sessions::SessionError::NotFound(_))) => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let Some(people) = found else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "No such session",
            "There is no session with this number. It may have been deleted.",
        )
        .with_next("Back to the dashboard", "/organiser"));
    };
    let needle = q.trim().to_lowercase();
    let event = &people.event;
    let attendees = people
        .attendees
        .iter()
        .filter(|a| {
            matches(
                &needle,
                &[
                    &a.name,
                    &a.email,
                    &a.reference,
                    a.organisation.as_deref().unwrap_or_default(),
                ],
            )
        })
        .map(|a| PersonLine {
            reference: a.reference.clone(),
            name: a.name.clone(),
            email: a.email.clone(),
            organisation: a.organisation.clone(),
            state: a.state.as_str(),
            confirmed: a.state == SeatState::Confirmed,
            checked_in: people.check_ins.get(&a.reference).map(|t| when(*t, event)),
        })
        .collect();
    let mut position = 0;
    let waitlist = people
        .waitlist
        .iter()
        .filter_map(|e| {
            let waiting = e.state == EntryState::Waiting;
            if waiting {
                position += 1;
            }
            let shown = matches(
                &needle,
                &[
                    &e.attendee_name,
                    &e.attendee_email,
                    &e.reference,
                    e.attendee_organisation.as_deref().unwrap_or_default(),
                ],
            );
            shown.then(|| WaitLine {
                id: e.id,
                position: waiting.then_some(position),
                reference: e.reference.clone(),
                name: e.attendee_name.clone(),
                email: e.attendee_email.clone(),
                organisation: e.attendee_organisation.clone(),
                state: e.state.as_str(),
                waiting,
                offer_until: e.offer_expires_at.map(|t| when(t, event)),
            })
        })
        .collect();
    let targets = people
        .others
        .iter()
        .map(|s| Target {
            id: s.id,
            label: format!("{} ({})", s.title, when(s.starts_at, event)),
        })
        .collect();
    let session = &people.session;
    let form = csrf::form_token(req, &state.pages);
    let page = PeoplePage {
        title: format!("People: {}", session.title),
        csrf: form.token,
        me: Me::from(me),
        session: SessionHead {
            id: session.id,
            title: session.title.clone(),
            event: event.name.clone(),
            when: when(session.starts_at, event),
            room: session.room.clone(),
            capacity: session.capacity,
            taken: session.taken,
            status: session.status.as_str(),
        },
        q,
        attendee_count: people.attendees.len(),
        attendees,
        waitlist,
        targets,
        errors: refusal.errors,
        problem: refusal.problem,
        waive: refusal.waive,
        notice,
    };
    let html = state.pages.render("dashboard/people/session.html", page)?;
    Ok(html_page(
        refusal.status.unwrap_or(StatusCode::OK),
        html,
        form.set_cookie,
    ))
}

/// The people page again after a refused action, with the refusal shown.
async fn refused_page(
    state: &AppState,
    req: &HttpRequest,
    me: &Organiser,
    session_id: i64,
    refusal: Refusal,
) -> Result<HttpResponse, PageError> {
    people_page(state, req, me, session_id, String::new(), None, refusal).await
}

fn done_notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "promoted" => Some("Moved to the front of the waitlist. If a seat is free they have been offered it and told by email."),
        "moved" => Some("The seat has been moved, and the attendee told by email. The seat freed here went to the waitlist first."),
        "cancelled" => Some("The seat has been cancelled and refunded in full; the attendee has been told by email."),
        "resent" => Some("The booking confirmation is on its way to the attendee again."),
        _ => None,
    }
}

async fn people(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    path: web::Path<i64>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let query = FormData(query.into_inner());
    let q = query.get("q").unwrap_or_default().to_owned();
    let notice = done_notice(query.get("done"));
    people_page(
        &state,
        &req,
        &me,
        path.into_inner(),
        q,
        notice,
        Refusal::default(),
    )
    .await
}

/// The dashboard path of a session's people, with a notice of what was done.
fn people_path(session_id: i64, done: &str) -> String {
    format!("/organiser/sessions/{session_id}/people?done={done}")
}

async fn promote(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    path: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let session_id = path.into_inner();
    let Some(entry_id) = form.get("entry").and_then(|e| e.parse::<i64>().ok()) else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Nobody chosen",
            "Choose a person on the waitlist to promote.",
        ));
    };
    let add_seat = form.get("add_seat") == Some("yes");
    let (issuer, now) = (state.issuer.clone(), state.clock.now());
    let outcome = run_recorded(&state, me.id, move |conn| -> Result<_, WaitlistError> {
        waitlist::promote(conn, &issuer, session_id, entry_id, add_seat, now)?;
        let record = Record::new("waitlist.promote", format!("waitlist:{entry_id}"))
            .before(&serde_json::json!({ "session_id": session_id, "add_seat": add_seat }));
        Ok(((), record))
    })
    .await?;
    match outcome {
        Ok(()) => {
            tracing::info!(
                session = session_id,
                entry = entry_id,
                add_seat,
                by = me.id,
                "waitlist entry promoted"
            );
            Ok(redirect(&people_path(session_id, "promoted")))
        }
        Err(WaitlistError::NotFound) => Err(PageError::not_found()),
        Err(e) => {
            let refusal = Refusal::of(e.into(), &format!("entry-{entry_id}"))?;
            refused_page(&state, &req, &me, session_id, refusal).await
        }
    }
}

async fn move_seat(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    path: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let session_id = path.into_inner();
    let reference = form.text("reference");
    let field = format!("to-{reference}");
    let Some(to) = form.get("to").and_then(|t| t.parse::<i64>().ok()) else {
        let refusal = Refusal::at(
            field,
            "Choose the session to move them to.".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        return refused_page(&state, &req, &me, session_id, refusal).await;
    };
    let waive_difference = form.get("waive_difference") == Some("yes");
    let (issuer, now) = (state.issuer.clone(), state.clock.now());
    let moved_ref = reference.clone();
    let moved = if waive_difference {
        serde_json::json!({ "session_id": to, "waive_difference": true })
    } else {
        serde_json::json!({ "session_id": to })
    };
    let outcome = run_recorded(&state, me.id, move |conn| -> Result<_, BookingError> {
        bookings::move_seat(
            conn,
            &moved_ref,
            session_id,
            to,
            waive_difference,
            &issuer,
            now,
        )?;
        let record = Record::new("booking.move", format!("booking:{moved_ref}"))
            .before(&serde_json::json!({ "session_id": session_id }))
            .after(&moved);
        Ok(((), record))
    })
    .await?;
    match outcome {
        Ok(()) => {
            tracing::info!(%reference, from = session_id, to, by = me.id, "seat moved by an organiser");
            Ok(redirect(&people_path(session_id, "moved")))
        }
        Err(e) => {
            let dearer = matches!(&e, BookingError::Invalid(v)
                if v.0.iter().any(|f| f.field == "waive_difference"));
            let mut refusal = Refusal::of(e.into(), &field)?;
            // The move is all or nothing: say that the old seat stays.
            for error in &mut refusal.errors {
                error.message.push_str(" They keep their seat here.");
            }
            if dearer {
                refusal.waive = Some(Waive { reference, to });
            }
            refused_page(&state, &req, &me, session_id, refusal).await
        }
    }
}

#[derive(Serialize)]
struct CancelPage {
    title: &'static str,
    csrf: String,
    me: Me,
    session_id: i64,
    session_title: String,
    reference: String,
    name: String,
    email: String,
    confirmed: bool,
}

/// The confirmation step before cancelling a seat.
async fn cancel_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    path: web::Path<i64>,
    query: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, PageError> {
    let session_id = path.into_inner();
    let reference = FormData(query.into_inner())
        .get("reference")
        .unwrap_or_default()
        .to_owned();
    let (_, session, attendees) =
        run(&state.db, move |conn| bookings::attendees(conn, session_id)).await?;
    let Some(person) = attendees.into_iter().find(|a| a.reference == reference) else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "No such seat",
            "This booking holds no seat in this session (it may have been cancelled already).",
        )
        .with_next(
            "Back to the session's people",
            format!("/organiser/sessions/{session_id}/people"),
        ));
    };
    let form = csrf::form_token(&req, &state.pages);
    let page = CancelPage {
        title: "Cancel a seat",
        csrf: form.token,
        me: Me::from(&me),
        session_id,
        session_title: session.title,
        reference: person.reference,
        name: person.name,
        email: person.email,
        confirmed: person.state == SeatState::Confirmed,
    };
    let html = state.pages.render("dashboard/people/cancel.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    path: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let session_id = path.into_inner();
    let reference = form.text("reference");
    let (issuer, now) = (state.issuer.clone(), state.clock.now());
    let cancelled_ref = reference.clone();
    let outcome = run_recorded(&state, me.id, move |conn| -> Result<_, BookingError> {
        bookings::cancel_by_reference(conn, &cancelled_ref, Some(&[session_id]), &issuer, now)?;
        let record = Record::new("booking.cancel", format!("booking:{cancelled_ref}"))
            .before(&serde_json::json!({ "session_ids": [session_id] }));
        Ok(((), record))
    })
    .await?;
    match outcome {
        Ok(()) => {
            tracing::info!(%reference, session = session_id, by = me.id, "seat cancelled by an organiser");
            crate::payments::http::send_refunds_soon(&state);
            Ok(redirect(&people_path(session_id, "cancelled")))
        }
        Err(e) => {
            let refusal = Refusal::of(e.into(), &format!("person-{reference}"))?;
            refused_page(&state, &req, &me, session_id, refusal).await
        }
    }
}

async fn resend(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    path: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let session_id = path.into_inner();
    let reference = form.text("reference");
    let resent_ref = reference.clone();
    let outcome = run_recorded(&state, me.id, move |conn| -> Result<_, BookingError> {
        let resent = bookings::resend_confirmation(conn, &resent_ref)?;
        // A booking without a confirmed seat gets no email: nothing to record.
        let record = resent.then(|| {
            Record::new(
                "booking.resend_confirmation",
                format!("booking:{resent_ref}"),
            )
        });
        Ok((resent, record))
    })
    .await?;
    let field = format!("person-{reference}");
    let refusal = match outcome {
        Ok(true) => {
            tracing::info!(%reference, by = me.id, "booking confirmation resent");
            return Ok(redirect(&people_path(session_id, "resent")));
        }
        Ok(false) => Refusal::at(
            field,
            "This booking has no confirmed seat, so there is no confirmation to send.".to_owned(),
            StatusCode::CONFLICT,
        ),
        Err(e) => Refusal::of(e.into(), &field)?,
    };
    refused_page(&state, &req, &me, session_id, refusal).await
}
