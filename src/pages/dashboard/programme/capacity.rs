//! What changes the seats of a session: its capacity from the event page, and cancelling it
//! after a confirmation that says what it touches.

use super::event_pages::{event_page, CapacityAttempt};
use super::session_pages::{change, find_session, session_refusal};
use super::*;
use crate::audit::Record;

pub(super) async fn change_capacity(
    state: web::Data<AppState>,
    req: HttpRequest,
    PostedBy { form, me }: AdminPost,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let (event, current) = find_session(&state, id.into_inner()).await?;
    let value = form.text("capacity");
    let if_revision = form_revision(form.get("revision").unwrap_or_default())?;
    let parsed = whole_number(&value).and_then(|v| {
        SessionChanges::try_from(SessionPatch {
            capacity: Some(v),
            ..empty_patch()
        })
        .map(|changes| SessionChanges {
            if_revision,
            ..changes
        })
        .map_err(|e| joined(messages(&e)))
    });
    let refusal = match parsed {
        Ok(changes) => {
            let changed = change(&state, &me, current.id, changes, |before, after, _| {
                Record::new("session.capacity", format!("session:{}", after.id))
                    .before(&serde_json::json!({ "capacity": before.capacity }))
                    .after(&serde_json::json!({ "capacity": after.capacity }))
            })
            .await?;
            match changed {
                Ok((event, session)) => {
                    state.programmes.forget(&event.slug);
                    tracing::info!(
                        organiser = me.id,
                        session = session.id,
                        capacity = session.capacity,
                        "session capacity changed"
                    );
                    return Ok(redirect(&format!(
                        "/organiser/events/{}?done=capacity#session-{}",
                        event.slug, session.id
                    )));
                }
                Err(SessionError::Changed { id, .. }) => {
                    let (_, now) = find_session(&state, id).await?;
                    format!(
                        "someone else changed this session while you were editing; its capacity \
                         is now {}. Set it again if you still want {value}",
                        now.capacity
                    )
                }
                Err(e) => joined(session_refusal(e)?),
            }
        }
        Err(m) => sentence(&m),
    };
    event_page(
        &state,
        &req,
        &me,
        event.slug.clone(),
        None,
        Said::default(),
        None,
        Some(CapacityAttempt {
            id: current.id,
            value,
            message: format!("Capacity of {}: {}", current.title, lower_first(&refusal)),
        }),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

/// Field messages as one text, for the single message next to a capacity.
fn joined(messages: Vec<FieldMessage>) -> String {
    messages
        .into_iter()
        .map(|m| m.message)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with its first letter in lower case, to follow a colon.
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A session patch that changes nothing.
fn empty_patch() -> SessionPatch {
    SessionPatch {
        title: None,
        abstract_text: None,
        speakers: None,
        track: None,
        room: None,
        starts_at: None,
        ends_at: None,
        capacity: None,
        price_minor: None,
        status: None,
        waitlist_enabled: None,
        cpd_tenths: None,
    }
}

#[derive(Serialize)]
pub(super) struct CancelPage {
    title: String,
    csrf: String,
    me: Me,
    id: i64,
    event_slug: String,
    session_title: String,
    when: String,
    already: bool,
    seats: i64,
    bookings: i64,
    paid_seats: i64,
    waitlisted: i64,
}

pub(super) async fn cancel_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    me: Admin,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    let (event, session, preview) = run(&state.db, move |conn| -> Result<_, Problem> {
        let session = sessions::find(conn, id)?;
        let event = events::by_id(conn, session.event_id)?;
        let preview = sessions::cancel_preview(conn, id)?;
        Ok((event, session, preview))
    })
    .await?;
    let form = csrf::form_token(&req, &state.pages);
    let page = CancelPage {
        title: format!("Cancel {}", session.title),
        csrf: form.token,
        me: Me::from(&me),
        id: session.id,
        event_slug: event.slug.clone(),
        session_title: session.title.clone(),
        when: when(&session, event.time_zone),
        already: session.status == SessionStatus::Cancelled,
        seats: preview.seats,
        bookings: preview.bookings,
        paid_seats: preview.paid_seats,
        waitlisted: preview.waitlisted,
    };
    let html = state
        .pages
        .render("dashboard/programme/cancel.html", page)?;
    Ok(html_page(StatusCode::OK, html, form.set_cookie))
}

pub(super) async fn cancel_session(
    state: web::Data<AppState>,
    PostedBy { me, .. }: AdminPost,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let changes = SessionChanges {
        status: Some(SessionStatus::Cancelled),
        ..SessionChanges::default()
    };
    let (event, session) = change(&state, &me, id.into_inner(), changes, |before, after, _| {
        Record::new("session.cancel", format!("session:{}", after.id))
            .before(&serde_json::json!({ "status": before.status.as_str() }))
            .after(&serde_json::json!({ "status": after.status.as_str() }))
    })
    .await?
    .map_err(|e| PageError::from(Problem::from(e)))?;
    state.programmes.forget(&event.slug);
    // Paid places of a cancelled session are refunded.
    crate::payments::http::send_refunds_soon(&state);
    tracing::info!(organiser = me.id, session = session.id, "session cancelled");
    Ok(redirect(&format!(
        "/organiser/events/{}?done=cancelled",
        event.slug
    )))
}
